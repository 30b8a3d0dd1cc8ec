// Integration tests of bad-row isolation, the dead-letter store and the conflict rules
// (pg/copy_writer.h, pg/tuple_decode.h) against a real PostgreSQL 15: a 10,000-row batch with rows
// the database refuses (foreign key, CHECK, duplicate key under `error`) stores exactly the good
// rows and dead-letters each bad one with its SQLSTATE and readable JSON, in a bounded number of
// COPYs; `ignore` and `update` on a hypertable-shaped table (primary key including time); the
// tuple decoders against PostgreSQL's own rendering.
#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <fstream>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <vector>

#include "catalog/catalog.h"
#include "catalog/row_encoder.h"
#include "pg/connection.h"
#include "pg/copy_writer.h"
#include "pg/tuple_decode.h"
#include "support/pg_server.h"

namespace sluice {
namespace {

using namespace std::chrono_literals;
using test::shared_pg_server;

// Hypertable-shaped: the primary key includes the time column.
constexpr const char* kSchema = R"sql(
CREATE TABLE devices (id text PRIMARY KEY);
INSERT INTO devices VALUES ('m-0'), ('m-1'), ('m-2');
CREATE TABLE meter (
  time    timestamptz NOT NULL,
  device  text NOT NULL REFERENCES devices (id),
  seq     bigint NOT NULL,
  power   double precision CHECK (power >= 0),
  energy  numeric(12,3) CHECK (energy < 100000),
  ok      boolean,
  day     date,
  tag     uuid,
  attrs   jsonb,
  note    varchar(20) DEFAULT 'none',
  PRIMARY KEY (time, device)
);
)sql";

constexpr int64_t kBaseEpoch = 1709251200;  // 2024-03-01T00:00:00Z

std::string read_migration(const std::string& name) {
  std::ifstream in(std::string(SLUICE_SOURCE_DIR) + "/sql/" + name);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

class AckLog {
 public:
  std::shared_ptr<Ack> make() {
    std::lock_guard<std::mutex> lock(mutex_);
    const size_t slot = results_.size();
    results_.emplace_back();
    done_.push_back(false);
    return Ack::make(1, [this, slot](const AckResult& r) {
      std::lock_guard<std::mutex> lock(mutex_);
      results_[slot] = r;
      done_[slot] = true;
      cv_.notify_all();
    });
  }
  bool wait_all() {
    std::unique_lock<std::mutex> lock(mutex_);
    return cv_.wait_for(lock, 60s, [&] {
      for (bool d : done_) {
        if (!d) return false;
      }
      return true;
    });
  }
  AckResult result(size_t i) {
    std::lock_guard<std::mutex> lock(mutex_);
    return results_.at(i);
  }

 private:
  std::mutex mutex_;
  std::condition_variable cv_;
  std::vector<AckResult> results_;
  std::vector<bool> done_;
};

struct RowSpec {
  int64_t seq;
  int64_t second;          // time = base + second
  std::string device = "";  // default m-<seq % 3>
  std::string power = "";   // default <seq>.5
  std::string energy = "";  // default <seq>.125
};

class DeadLetterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    db_ = std::string("dead_letter_") + ::testing::UnitTest::GetInstance()->current_test_info()->name();
    url_ = shared_pg_server().create_database(db_);
    shared_pg_server().psql(db_, kSchema);
    shared_pg_server().psql(db_, read_migration("006_dead_letter.sql"));
    pg::Connection conn(url_);
    catalog_ = load_catalog(conn.get(), {TableSpec{"meter", "time"}});
  }
  const TableSchema& table() const { return catalog_.tables[0]; }

  pg::WriterOptions options(pg::ConflictMode mode) const {
    pg::WriterOptions o;
    o.url = url_;
    o.connections = 1;
    o.reconnect_min = 20ms;
    o.reconnect_max = 200ms;
    o.conflict = {mode};
    return o;
  }

  BlockPtr encode(const std::vector<RowSpec>& rows, std::shared_ptr<Ack> ack) {
    RowEncoder enc(table());
    const TableSchema& t = table();
    auto b = std::make_unique<Block>();
    b->table_id = t.id;
    b->ack = std::move(ack);
    for (const RowSpec& r : rows) {
      uint64_t mask = 0;
      enc.begin_row();
      const bool ok =
          enc.put_number(t.find("time"), std::to_string(kBaseEpoch + r.second)) &&
          enc.put_string(t.find("device"), r.device.empty() ? "m-" + std::to_string(r.seq % 3) : r.device) &&
          enc.put_number(t.find("seq"), std::to_string(r.seq)) &&
          enc.put_number(t.find("power"), r.power.empty() ? std::to_string(r.seq) + ".5" : r.power) &&
          enc.put_number(t.find("energy"), r.energy.empty() ? std::to_string(r.seq) + ".125" : r.energy) &&
          enc.put_bool(t.find("ok"), r.seq % 2 == 0) && enc.put_string(t.find("day"), "2024-02-29") &&
          enc.put_string(t.find("tag"), "0000000000004000800000000000002a") &&
          enc.put_json(t.find("attrs"), "{\"k\":" + std::to_string(r.seq) + ",\"s\":\"a\\\"b\"}") &&
          enc.end_row(b->data, mask, b->min_time, b->max_time);
      EXPECT_TRUE(ok) << enc.error();
      b->column_mask = mask;
      ++b->rows;
    }
    return b;
  }

  static Batch batch_of(std::vector<BlockPtr> blocks) {
    Batch b;
    b.table_id = blocks.front()->table_id;
    b.column_mask = blocks.front()->column_mask;
    for (auto& block : blocks) {
      b.rows += block->rows;
      b.bytes += block->data.size();
      b.blocks.push_back(std::move(block));
    }
    return b;
  }

  std::string sql(const std::string& query) const {
    std::string out = shared_pg_server().psql(db_, query);
    while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
    return out;
  }

  std::string db_, url_;
  Catalog catalog_;
};

TEST_F(DeadLetterTest, TenThousandRowsWithRejectedRowsStoreExactlyTheGoodOnes) {
  constexpr int kRows = 10000, kPerBlock = 1000;
  // seq 1234: unknown device (foreign key 23503); 5000: power -1 (CHECK 23514); 7777: energy
  // 100000.5 (CHECK 23514, the "overflow" the encoder's numeric(12,3) lets through); 9999: same
  // (time, device) as seq 9 (duplicate key 23505 under `error`).
  std::vector<RowSpec> rows;
  for (int64_t seq = 0; seq < kRows; ++seq) {
    RowSpec r{seq, seq};
    if (seq == 1234) r.device = "ghost";
    if (seq == 5000) r.power = "-1";
    if (seq == 7777) r.energy = "100000.5";
    if (seq == 9999) {
      r.second = 9;
      r.device = "m-0";
    }
    rows.push_back(r);
  }
  AckLog acks;
  pg::WriterPool pool(catalog_, options(pg::ConflictMode::error));
  pool.start();
  std::vector<BlockPtr> blocks;
  for (int i = 0; i < kRows / kPerBlock; ++i) {
    blocks.push_back(encode({rows.begin() + i * kPerBlock, rows.begin() + (i + 1) * kPerBlock}, acks.make()));
  }
  ASSERT_TRUE(pool.push(batch_of(std::move(blocks))));
  ASSERT_TRUE(acks.wait_all());
  pool.stop();

  uint64_t committed = 0;
  for (int i = 0; i < kRows / kPerBlock; ++i) {
    const AckResult r = acks.result(i);
    committed += r.rows_committed;
    const bool has_bad = i == 1 || i == 5 || i == 7 || i == 9;
    EXPECT_EQ(r.outcome, has_bad ? AckOutcome::dead_lettered : AckOutcome::committed) << i;
    EXPECT_EQ(r.rows_committed, has_bad ? 999u : 1000u) << i;
  }
  EXPECT_EQ(committed, 9996u);
  EXPECT_EQ(acks.result(1).message.rfind("1 row(s) refused by the database and stored in sluice_dead_letter: 23503: ", 0), 0u)
      << acks.result(1).message;
  EXPECT_EQ(acks.result(9).message.rfind("1 row(s) refused by the database and stored in sluice_dead_letter: 23505: ", 0), 0u)
      << acks.result(9).message;

  EXPECT_EQ(sql("SELECT count(*), count(DISTINCT seq), sum(seq) FROM meter"),
            "9996|9996|" + std::to_string(int64_t{kRows} * (kRows - 1) / 2 - 1234 - 5000 - 7777 - 9999));
  EXPECT_EQ(sql("SELECT count(*) FROM meter WHERE seq IN (1234, 5000, 7777, 9999)"), "0");
  EXPECT_EQ(sql("SELECT string_agg(row_data->>'seq' || ':' || sqlstate, ',' ORDER BY (row_data->>'seq')::int) "
                "FROM sluice_dead_letter WHERE table_name = 'meter'"),
            "1234:23503,5000:23514,7777:23514,9999:23505");
  EXPECT_EQ(sql("SELECT message LIKE '%meter_device_fkey%' FROM sluice_dead_letter WHERE sqlstate = '23503'"), "t");
  EXPECT_EQ(sql("SELECT message LIKE '%meter_pkey%' FROM sluice_dead_letter WHERE sqlstate = '23505'"), "t");
  // The row reads back as JSON keyed by column name (the defaulted `note` was not sent: absent).
  EXPECT_EQ(sql("SELECT row_data FROM sluice_dead_letter WHERE sqlstate = '23503'"),
            R"({"ok": true, "day": "2024-02-29", "seq": 1234, "tag": "00000000-0000-4000-8000-00000000002a", )"
            R"("time": "2024-03-01T00:20:34Z", "attrs": {"k": 1234, "s": "a\"b"}, "power": 1234.5, )"
            R"("device": "ghost", "energy": 1234.125})");
  EXPECT_EQ(sql("SELECT row_data->>'energy', row_data->>'power' FROM sluice_dead_letter WHERE row_data->>'seq' = '7777'"),
            "100000.500|7777.5");
  // The dead letter's JSON goes back into the table as the original row.
  EXPECT_EQ(sql("SELECT (jsonb_populate_record(NULL::meter, row_data)).time = '2024-03-01T00:20:34Z' "
                "FROM sluice_dead_letter WHERE sqlstate = '23503'"),
            "t");

  const auto& s = pool.stats();
  EXPECT_EQ(s.dead_letter_rows[0].load(), 4u);
  EXPECT_EQ(s.failed_rows[0].load(), 4u);
  EXPECT_EQ(s.failed_blocks[0].load(), 4u);
  EXPECT_EQ(s.committed_rows[0].load(), 9996u);
  EXPECT_EQ(s.split_batches.load(), 1u);
  // Bounded: at most 2 COPYs per level of bisection per bad row (log2(10000) < 14).
  EXPECT_LE(s.isolation_copies.load(), 4u * 2u * 14u);
  EXPECT_GE(s.isolation_copies.load(), 4u * 13u);
  EXPECT_EQ(s.copy_count.load(), 1u + s.isolation_copies.load());
}

// Existing rows: (t=0, m-0) seq 0 and (t=1, m-1) seq 1. The batch re-sends (t=1, m-1) with new
// values, adds (t=2, m-2) twice (first seq 20, then seq 21) and a CHECK-violating row.
std::vector<RowSpec> conflict_rows() {
  return {RowSpec{100, 1, "m-1", "100.5"}, RowSpec{20, 2, "m-2"}, RowSpec{21, 2, "m-2"},
          RowSpec{30, 3, "m-0", "-5"}, RowSpec{31, 4, "m-1"}};
}

void seed(DeadLetterTest& t, const std::string& db) {
  shared_pg_server().psql(db, "INSERT INTO meter (time, device, seq, power) VALUES "
                              "('2024-03-01T00:00:00Z', 'm-0', 0, 0.5), ('2024-03-01T00:00:01Z', 'm-1', 1, 1.5);");
  (void)t;
}

TEST_F(DeadLetterTest, ConflictIgnoreKeepsStoredRowsAndTheFirstOfDuplicates) {
  seed(*this, db_);
  AckLog acks;
  pg::WriterPool pool(catalog_, options(pg::ConflictMode::ignore));
  pool.start();
  std::vector<BlockPtr> blocks;
  blocks.push_back(encode(conflict_rows(), acks.make()));
  ASSERT_TRUE(pool.push(batch_of(std::move(blocks))));
  ASSERT_TRUE(acks.wait_all());
  pool.stop();
  EXPECT_EQ(acks.result(0).outcome, AckOutcome::dead_lettered);  // the CHECK row
  EXPECT_EQ(acks.result(0).rows_committed, 4u);
  EXPECT_EQ(sql("SELECT string_agg(extract(epoch FROM time - '2024-03-01T00:00:00Z')::int || '/' || device || '/' || "
                "seq || '/' || power, ',' ORDER BY time) FROM meter"),
            "0/m-0/0/0.5,1/m-1/1/1.5,2/m-2/20/20.5,4/m-1/31/31.5");
  EXPECT_EQ(sql("SELECT row_data->>'seq', sqlstate FROM sluice_dead_letter"), "30|23514");
}

TEST_F(DeadLetterTest, ConflictUpdateOverwritesNonKeyColumnsLastDuplicateWins) {
  seed(*this, db_);
  AckLog acks;
  pg::WriterPool pool(catalog_, options(pg::ConflictMode::update));
  pool.start();
  {
    std::vector<BlockPtr> blocks;
    blocks.push_back(encode(conflict_rows(), acks.make()));
    ASSERT_TRUE(pool.push(batch_of(std::move(blocks))));
  }
  ASSERT_TRUE(acks.wait_all());
  // A clean batch after that: one transaction, no isolation.
  {
    std::vector<BlockPtr> blocks;
    blocks.push_back(encode({RowSpec{40, 0, "m-0", "7.25"}}, acks.make()));
    ASSERT_TRUE(pool.push(batch_of(std::move(blocks))));
  }
  ASSERT_TRUE(acks.wait_all());
  pool.stop();
  EXPECT_EQ(acks.result(0).outcome, AckOutcome::dead_lettered);
  EXPECT_EQ(acks.result(0).rows_committed, 4u);
  EXPECT_EQ(acks.result(1).outcome, AckOutcome::committed);
  EXPECT_EQ(acks.result(1).rows_committed, 1u);
  EXPECT_EQ(sql("SELECT string_agg(extract(epoch FROM time - '2024-03-01T00:00:00Z')::int || '/' || device || '/' || "
                "seq || '/' || power || '/' || coalesce(note, '-'), ',' ORDER BY time) FROM meter"),
            "0/m-0/40/7.25/none,1/m-1/100/100.5/none,2/m-2/21/21.5/none,4/m-1/31/31.5/none");
  EXPECT_EQ(sql("SELECT row_data->>'seq', sqlstate FROM sluice_dead_letter"), "30|23514");
  EXPECT_EQ(pool.stats().committed_rows[0].load(), 5u);
  EXPECT_EQ(pool.stats().split_batches.load(), 1u);
}

TEST_F(DeadLetterTest, ConflictErrorDeadLettersTheDuplicate) {
  seed(*this, db_);
  AckLog acks;
  pg::WriterPool pool(catalog_, options(pg::ConflictMode::error));
  pool.start();
  std::vector<BlockPtr> blocks;
  blocks.push_back(encode({RowSpec{100, 1, "m-1", "100.5"}, RowSpec{31, 4, "m-1"}}, acks.make()));
  ASSERT_TRUE(pool.push(batch_of(std::move(blocks))));
  ASSERT_TRUE(acks.wait_all());
  pool.stop();
  EXPECT_EQ(acks.result(0).outcome, AckOutcome::dead_lettered);
  EXPECT_EQ(acks.result(0).rows_committed, 1u);
  EXPECT_EQ(sql("SELECT string_agg(seq::text, ',' ORDER BY time) FROM meter"), "0,1,31");
  EXPECT_EQ(sql("SELECT row_data->>'seq', sqlstate FROM sluice_dead_letter"), "100|23505");
}

// ---- decoders ------------------------------------------------------------------------------------

std::string bytes(std::initializer_list<int> b) {
  std::string s;
  for (int x : b) s.push_back(static_cast<char>(x));
  return s;
}

TEST(TupleDecode, NumericBinaryToText) {
  auto num = [](std::initializer_list<int> b) {
    const std::string s = bytes(b);
    return pg::numeric_binary_to_text(s.data(), s.size());
  };
  // ndigits, weight, sign, dscale, digits (base 10000, big-endian int16 each)
  EXPECT_EQ(num({0, 2, 0, 0, 0, 0, 0, 3, 0x04, 0xD2, 0x04, 0xE2}), "1234.125");       // 1234 | 1250
  EXPECT_EQ(num({0, 2, 0, 1, 0x40, 0, 0, 0, 0, 1, 0, 0}), "-10000");                  // 1 0000, weight 1
  EXPECT_EQ(num({0, 1, 0xFF, 0xFF, 0, 0, 0, 5, 0, 5}), "0.00050");                    // weight -1
  EXPECT_EQ(num({0, 0, 0, 0, 0, 0, 0, 2}), "0.00");
  EXPECT_EQ(num({0, 0, 0, 0, 0xC0, 0, 0, 0}), "NaN");
  EXPECT_EQ(num({0, 0, 0, 0, 0xD0, 0, 0, 0}), "Infinity");
  EXPECT_EQ(num({0, 1, 0, 0, 0, 0}), "");  // truncated
}

TEST(TupleDecode, TimesAndDates) {
  EXPECT_EQ(pg::pg_timestamp_to_rfc3339(0), "2000-01-01T00:00:00Z");
  EXPECT_EQ(pg::pg_timestamp_to_rfc3339(-1), "1999-12-31T23:59:59.999999Z");
  EXPECT_EQ(pg::pg_timestamp_to_rfc3339(762480016500000), "2024-02-29T00:00:16.5Z");
  EXPECT_EQ(pg::pg_timestamp_to_rfc3339(INT64_MAX), "infinity");
  EXPECT_EQ(pg::pg_date_to_text(0), "2000-01-01");
  EXPECT_EQ(pg::pg_date_to_text(8825), "2024-02-29");
  EXPECT_EQ(pg::pg_date_to_text(-1), "1999-12-31");
}

TEST(TupleDecode, SplitTuplesAndMalformedInput) {
  // Two tuples of one int4 field, then one with a NULL.
  const std::string data = bytes({0, 1, 0, 0, 0, 4, 0, 0, 0, 7, 0, 1, 0xFF, 0xFF, 0xFF, 0xFF});
  std::vector<char> v(data.begin(), data.end());
  std::vector<pg::TupleSpan> spans;
  ASSERT_TRUE(pg::split_tuples(v, 3, spans));
  ASSERT_EQ(spans.size(), 2u);
  EXPECT_EQ(spans[0].block, 3u);
  EXPECT_EQ(spans[0].offset, 0u);
  EXPECT_EQ(spans[0].size, 10u);
  EXPECT_EQ(spans[1].offset, 10u);
  EXPECT_EQ(spans[1].size, 6u);
  v.pop_back();
  spans.clear();
  EXPECT_FALSE(pg::split_tuples(v, 0, spans));
  EXPECT_EQ(spans.size(), 1u);

  TableSchema t;
  t.name = t.config_name = "x";
  Column c;
  c.name = "n";
  c.type = PgType::int4;
  t.columns.push_back(c);
  finish_table_schema(t);
  EXPECT_EQ(pg::tuple_to_json(t, 0, data.data(), 10), R"({"n":7})");
  EXPECT_EQ(pg::tuple_to_json(t, 0, data.data() + 10, 6), R"({"n":null})");
  EXPECT_EQ(pg::tuple_to_json(t, 0, data.data(), 9), R"({"_tuple_hex":"\\x000100000004000000"})");
  t.columns[0].type = PgType::text;
  finish_table_schema(t);
  const std::string bad_utf8 = bytes({0, 1, 0, 0, 0, 2, 0xC3, 0x28});
  EXPECT_EQ(pg::tuple_to_json(t, 0, bad_utf8.data(), bad_utf8.size()), R"({"n":"\\xc328"})");
}

}  // namespace
}  // namespace sluice
