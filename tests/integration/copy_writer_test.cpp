// Integration tests of pg/copy_writer.h (WriterPool) against a real PostgreSQL 15
// (tests/support/pg_server.h): rows encoded by RowEncoder go in with binary COPY and every ack
// reports what happened; a CHECK violation is isolated down to its row (dead letter) and the rest
// commits; a
// schema error fails the batch; a server restart mid-stream loses nothing; stop() against a dead
// server gives up after stop_timeout with `shutdown` acks.
#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <fstream>
#include <functional>
#include <sstream>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <stdexcept>

#include "catalog/catalog.h"
#include "catalog/row_encoder.h"
#include "pg/connection.h"
#include "pg/copy_writer.h"
#include "support/pg_server.h"

namespace sluice {
namespace {

using namespace std::chrono_literals;
using test::shared_pg_server;

constexpr const char* kCreateTable = R"sql(
CREATE TABLE readings (
  time    timestamptz NOT NULL,
  device  text NOT NULL,
  seq     bigint NOT NULL,
  value   double precision,
  amount  numeric(12,3),
  ok      boolean,
  id      uuid,
  attrs   jsonb,
  note    text DEFAULT 'none',
  CONSTRAINT value_non_negative CHECK (value >= 0)
);
)sql";

constexpr int64_t kBaseEpoch = 1709251200;  // 2024-03-01T00:00:00Z

// Records the result of every ack it hands out.
class AckLog {
 public:
  std::shared_ptr<Ack> make(uint32_t blocks = 1) {
    std::lock_guard<std::mutex> lock(mutex_);
    const size_t slot = results_.size();
    results_.emplace_back();
    calls_.push_back(0);
    return Ack::make(blocks, [this, slot](const AckResult& r) {
      std::lock_guard<std::mutex> lock(mutex_);
      results_[slot] = r;
      ++calls_[slot];
      cv_.notify_all();
    });
  }
  // Waits until every ack handed out so far completed (or 20 s passed).
  bool wait_all() {
    std::unique_lock<std::mutex> lock(mutex_);
    return cv_.wait_for(lock, 20s, [&] {
      for (int c : calls_) {
        if (c == 0) return false;
      }
      return true;
    });
  }
  AckResult result(size_t i) {
    std::lock_guard<std::mutex> lock(mutex_);
    return results_.at(i);
  }
  int calls(size_t i) {
    std::lock_guard<std::mutex> lock(mutex_);
    return calls_.at(i);
  }
  size_t size() {
    std::lock_guard<std::mutex> lock(mutex_);
    return results_.size();
  }

 private:
  std::mutex mutex_;
  std::condition_variable cv_;
  std::vector<AckResult> results_;
  std::vector<int> calls_;
};

std::string read_migration(const std::string& name) {
  std::ifstream in(std::string(SLUICE_SOURCE_DIR) + "/sql/" + name);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string uuid_for(int64_t seq) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "00000000-0000-4000-8000-%012llx", static_cast<unsigned long long>(seq));
  return buf;
}

class CopyWriterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string db = std::string("copy_writer_") +
                           ::testing::UnitTest::GetInstance()->current_test_info()->name();
    db_ = db;
    url_ = shared_pg_server().create_database(db_);
    shared_pg_server().psql(db_, kCreateTable);
    pg::Connection conn(url_);
    catalog_ = load_catalog(conn.get(), {TableSpec{"readings", "time"}});
    ASSERT_EQ(catalog_.tables.size(), 1u);
    ASSERT_EQ(catalog_.tables[0].all_omittable, 1u);  // only `note` has a default
  }

  const TableSchema& table() const { return catalog_.tables[0]; }

  pg::WriterOptions options(int connections = 2) const {
    pg::WriterOptions o;
    o.url = url_;
    o.connections = connections;
    o.queue_batches = 4;
    o.reconnect_min = 20ms;
    o.reconnect_max = 200ms;
    return o;
  }

  // Rows seq in [first, first + n); the row with seq == bad_seq gets value -1 (CHECK violation).
  BlockPtr encode(int64_t first, int n, std::shared_ptr<Ack> ack, bool with_note = false,
                  int64_t bad_seq = -1) {
    RowEncoder enc(table());
    const TableSchema& t = table();
    auto b = std::make_unique<Block>();
    b->table_id = t.id;
    b->ack = std::move(ack);
    for (int64_t seq = first; seq < first + n; ++seq) {
      uint64_t mask = 0;
      enc.begin_row();
      const bool ok = enc.put_number(t.find("time"), std::to_string(kBaseEpoch + seq)) &&
                      enc.put_string(t.find("device"), "dev-" + std::to_string(seq % 7)) &&
                      enc.put_number(t.find("seq"), std::to_string(seq)) &&
                      enc.put_number(t.find("value"), seq == bad_seq ? "-1" : std::to_string(seq) + ".5") &&
                      enc.put_number(t.find("amount"), std::to_string(seq) + ".125") &&
                      enc.put_bool(t.find("ok"), seq % 2 == 0) &&
                      enc.put_string(t.find("id"), uuid_for(seq)) &&
                      enc.put_json(t.find("attrs"), "{\"k\":" + std::to_string(seq) + "}") &&
                      (!with_note || enc.put_string(t.find("note"), "n" + std::to_string(seq))) &&
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

  std::string db_;
  std::string url_;
  Catalog catalog_;
};

TEST_F(CopyWriterTest, CommitsEveryRowAndAcksEachBlock) {
  AckLog acks;
  pg::WriterPool pool(catalog_, options());
  pool.start();
  // Batch 1: two blocks of one request (one ack for both) + a block without ack (UDP).
  {
    auto shared = acks.make(2);
    std::vector<BlockPtr> blocks;
    blocks.push_back(encode(0, 100, shared));
    blocks.push_back(encode(100, 50, shared));
    blocks.push_back(encode(150, 25, nullptr));
    ASSERT_TRUE(pool.push(batch_of(std::move(blocks))));
  }
  // Batch 2: with the defaulted column present (a different column mask).
  {
    std::vector<BlockPtr> blocks;
    blocks.push_back(encode(175, 25, acks.make(), /*with_note=*/true));
    EXPECT_EQ(blocks.front()->column_mask, 1u);
    ASSERT_TRUE(pool.push(batch_of(std::move(blocks))));
  }
  ASSERT_TRUE(acks.wait_all());
  EXPECT_TRUE(pool.connected());
  pool.stop();
  EXPECT_FALSE(pool.connected());

  ASSERT_EQ(acks.size(), 2u);
  EXPECT_EQ(acks.calls(0), 1);
  EXPECT_EQ(acks.result(0).outcome, AckOutcome::committed);
  EXPECT_EQ(acks.result(0).rows_committed, 150u);
  EXPECT_EQ(acks.result(0).message, "");
  EXPECT_EQ(acks.result(1).outcome, AckOutcome::committed);
  EXPECT_EQ(acks.result(1).rows_committed, 25u);

  EXPECT_EQ(sql("SELECT count(*), count(DISTINCT seq), min(seq), max(seq) FROM readings"), "200|200|0|199");
  EXPECT_EQ(sql("SELECT extract(epoch FROM time)::bigint, device, value, amount, ok, id, attrs->>'k', note "
                "FROM readings WHERE seq = 42"),
            "1709251242|dev-0|42.5|42.125|t|00000000-0000-4000-8000-00000000002a|42|none");
  EXPECT_EQ(sql("SELECT count(*) FROM readings WHERE note = 'none'"), "175");
  EXPECT_EQ(sql("SELECT note FROM readings WHERE seq = 180"), "n180");

  const auto& s = pool.stats();
  EXPECT_EQ(s.committed_rows[0].load(), 200u);
  EXPECT_EQ(s.committed_batches[0].load(), 2u);
  EXPECT_GT(s.committed_bytes[0].load(), 200u * 8);
  EXPECT_EQ(s.failed_blocks[0].load(), 0u);
  EXPECT_EQ(s.copy_count.load(), 2u);
  uint64_t in_buckets = 0;
  for (const auto& b : s.copy_buckets) in_buckets += b.load();
  EXPECT_EQ(in_buckets, 2u);
  EXPECT_EQ(s.queue_depth.load(), 0);
  EXPECT_EQ(s.connection_losses.load(), 0u);
  EXPECT_FALSE(pool.push(batch_of([&] {
    std::vector<BlockPtr> v;
    v.push_back(encode(500, 1, nullptr));
    return v;
  }())));  // closed after stop()
}

// pipeline.sink "null": no connection at all (the URL points nowhere), every block acked committed,
// the stats count the rows as committed, nothing reaches the table.
TEST_F(CopyWriterTest, NullSinkAcksCommittedAndCountsWithoutTheDatabase) {
  AckLog acks;
  pg::WriterOptions o = options(2);
  o.url = "postgresql://nobody@127.0.0.1:1/none";
  o.null_sink = true;
  int commits = 0;
  int64_t min_seen = INT64_MAX, max_seen = INT64_MIN;
  std::mutex m;
  o.on_commit = [&](uint32_t, int64_t lo, int64_t hi) {
    std::lock_guard<std::mutex> lock(m);
    ++commits;
    min_seen = std::min(min_seen, lo);
    max_seen = std::max(max_seen, hi);
  };
  pg::WriterPool pool(catalog_, o);
  pool.start();
  {
    auto shared = acks.make(2);
    std::vector<BlockPtr> blocks;
    blocks.push_back(encode(0, 100, shared));
    blocks.push_back(encode(100, 50, shared));
    blocks.push_back(encode(150, 25, nullptr));
    ASSERT_TRUE(pool.push(batch_of(std::move(blocks))));
  }
  {
    std::vector<BlockPtr> blocks;
    blocks.push_back(encode(175, 25, acks.make()));
    ASSERT_TRUE(pool.push(batch_of(std::move(blocks))));
  }
  ASSERT_TRUE(acks.wait_all());
  EXPECT_TRUE(pool.connected());  // /readyz is ready without a database
  pool.stop();
  ASSERT_EQ(acks.size(), 2u);
  EXPECT_EQ(acks.result(0).outcome, AckOutcome::committed);
  EXPECT_EQ(acks.result(0).rows_committed, 150u);
  EXPECT_EQ(acks.result(1).outcome, AckOutcome::committed);
  EXPECT_EQ(acks.result(1).rows_committed, 25u);
  const auto& s = pool.stats();
  EXPECT_EQ(s.committed_rows[0].load(), 200u);
  EXPECT_GE(s.committed_batches[0].load(), 1u);
  EXPECT_GT(s.committed_bytes[0].load(), 200u * 8);
  EXPECT_EQ(s.copy_count.load(), 0u);
  EXPECT_EQ(s.connect_failures.load(), 0u);
  EXPECT_GE(commits, 1);
  EXPECT_LT(min_seen, max_seen);
  EXPECT_EQ(sql("SELECT count(*) FROM readings"), "0");
}

// A batch taken while the other writer waits for work is cut in two and runs on both
// connections; the request's Ack still completes once, with every row, and the worst outcome of
// the two halves (here one half holds a CHECK violation: dead-lettered, the rest committed).
TEST_F(CopyWriterTest, ABatchIsSharedWithAWaitingWriter) {
  shared_pg_server().psql(db_, read_migration("006_dead_letter.sql"));
  AckLog acks;
  pg::WriterOptions o = options(2);
  o.idle_check_interval = 1h;  // no idle probe takes a writer out of its wait between check and push
  pg::WriterPool pool(catalog_, o);
  pool.start();
  auto both_waiting = [&] {
    for (int i = 0; i < 2000 && pool.waiting_writers() < 2; ++i) std::this_thread::sleep_for(5ms);
    return pool.waiting_writers() == 2;
  };
  ASSERT_TRUE(both_waiting());
  {
    std::vector<BlockPtr> blocks;
    blocks.push_back(encode(0, 1000, acks.make(), false, /*bad_seq=*/900));
    ASSERT_TRUE(pool.push(batch_of(std::move(blocks))));
  }
  ASSERT_TRUE(acks.wait_all());
  const auto& s = pool.stats();
  EXPECT_EQ(s.idle_splits.load(), 1u);
  EXPECT_EQ(acks.calls(0), 1);
  EXPECT_EQ(acks.result(0).outcome, AckOutcome::dead_lettered);
  EXPECT_EQ(acks.result(0).rows_committed, 999u);
  EXPECT_EQ(s.committed_rows[0].load(), 999u);
  EXPECT_EQ(s.dead_letter_rows[0].load(), 1u);
  EXPECT_EQ(sql("SELECT count(*), count(DISTINCT seq), min(seq), max(seq), count(*) FILTER (WHERE seq = 900) "
                "FROM readings"),
            "999|999|0|999|0");
  EXPECT_EQ(sql("SELECT row_data->>'seq' FROM sluice_dead_letter"), "900");

  // Below twice split_min_rows a batch stays whole; a larger one is shared again.
  ASSERT_TRUE(both_waiting());
  {
    std::vector<BlockPtr> blocks;
    blocks.push_back(encode(1000, 999, acks.make()));
    ASSERT_TRUE(pool.push(batch_of(std::move(blocks))));
  }
  ASSERT_TRUE(acks.wait_all());
  EXPECT_EQ(s.idle_splits.load(), 1u);
  ASSERT_TRUE(both_waiting());
  {
    auto shared = acks.make(2);
    std::vector<BlockPtr> blocks;
    blocks.push_back(encode(1999, 700, shared));
    blocks.push_back(encode(2699, 700, shared));
    ASSERT_TRUE(pool.push(batch_of(std::move(blocks))));
  }
  ASSERT_TRUE(acks.wait_all());
  pool.stop();
  EXPECT_EQ(s.idle_splits.load(), 2u);
  EXPECT_EQ(acks.result(1).rows_committed, 999u);
  EXPECT_EQ(acks.result(2).outcome, AckOutcome::committed);
  EXPECT_EQ(acks.result(2).rows_committed, 1400u);
  EXPECT_EQ(sql("SELECT count(*), count(DISTINCT seq), max(seq) FROM readings"), "3398|3398|3398");

  // With split_min_rows 0 the pool never splits.
  o.split_min_rows = 0;
  pg::WriterPool whole(catalog_, o);
  whole.start();
  for (int i = 0; i < 2000 && whole.waiting_writers() < 2; ++i) std::this_thread::sleep_for(5ms);
  ASSERT_EQ(whole.waiting_writers(), 2);
  {
    std::vector<BlockPtr> blocks;
    blocks.push_back(encode(5000, 2000, acks.make()));
    ASSERT_TRUE(whole.push(batch_of(std::move(blocks))));
  }
  ASSERT_TRUE(acks.wait_all());
  whole.stop();
  EXPECT_EQ(whole.stats().idle_splits.load(), 0u);
  EXPECT_EQ(whole.stats().committed_batches[0].load(), 1u);
  EXPECT_EQ(acks.result(3).rows_committed, 2000u);
}

// A table with a primary key is shared by key: rows with the same key stay in one part, in their
// order, so "the last sent wins" (update) and "the later duplicate is refused" (error) hold as
// if the batch had not been split.
TEST_F(CopyWriterTest, ASharedBatchOfAKeyedTableKeepsEachKeysOrder) {
  shared_pg_server().psql(db_, read_migration("006_dead_letter.sql"));
  shared_pg_server().psql(db_, "CREATE TABLE keyed (t timestamptz NOT NULL, dev text NOT NULL, v bigint, "
                               "PRIMARY KEY (t, dev))");
  pg::Connection conn(url_);
  const Catalog catalog = load_catalog(conn.get(), {TableSpec{"keyed", "t"}});
  const TableSchema& t = catalog.tables[0];
  ASSERT_EQ(t.row_order, RowOrder::keyed);
  // Row i has key (kBaseEpoch + key(i), "d<key % 3>") and value i.
  auto encode_keyed = [&](int first, int n, const std::function<int(int)>& key, std::shared_ptr<Ack> ack) {
    RowEncoder enc(t);
    auto b = std::make_unique<Block>();
    b->table_id = 0;
    b->ack = std::move(ack);
    for (int i = first; i < first + n; ++i) {
      uint64_t mask = 0;
      enc.begin_row();
      const int k = key(i);
      EXPECT_TRUE(enc.put_number(t.find("t"), std::to_string(kBaseEpoch + k)) &&
                  enc.put_string(t.find("dev"), "d" + std::to_string(k % 3)) &&
                  enc.put_number(t.find("v"), std::to_string(i)) && enc.end_row(b->data, mask, b->min_time, b->max_time))
          << enc.error();
      ++b->rows;
    }
    return b;
  };
  auto run = [&](pg::ConflictMode mode, const std::function<int(int)>& key, int rows) {
    AckLog acks;
    pg::WriterOptions o = options(2);
    o.conflict = {mode};
    o.idle_check_interval = 1h;  // see ABatchIsSharedWithAWaitingWriter
    pg::WriterPool pool(catalog, o);
    pool.start();
    for (int i = 0; i < 2000 && pool.waiting_writers() < 2; ++i) std::this_thread::sleep_for(5ms);
    EXPECT_EQ(pool.waiting_writers(), 2);
    std::vector<BlockPtr> blocks;
    auto ack = acks.make(2);
    blocks.push_back(encode_keyed(0, rows / 2, key, ack));
    blocks.push_back(encode_keyed(rows / 2, rows - rows / 2, key, ack));
    EXPECT_TRUE(pool.push(batch_of(std::move(blocks))));
    EXPECT_TRUE(acks.wait_all());
    pool.stop();
    EXPECT_EQ(pool.stats().idle_splits.load(), 1u);
    return acks.result(0);
  };

  // The keys are laid out so that a split into two halves by position would have the second half
  // write shared keys first (and the first half wait for it, then overwrite or be refused).
  // update: rows 0..999 have keys 0..999, rows 1000..1999 the same keys backwards; the row of each
  // key sent last (from the second half) wins.
  const AckResult updated = run(pg::ConflictMode::update, [](int i) { return i < 1000 ? i : 1999 - i; }, 2000);
  EXPECT_EQ(updated.outcome, AckOutcome::committed) << updated.message;
  EXPECT_EQ(sql("SELECT count(*), min(v), max(v) FROM keyed"), "1000|1000|1999");

  // error: rows 500..504 repeat the keys of rows 495..499; the first of each pair is stored.
  sql("TRUNCATE keyed");
  const AckResult refused =
      run(pg::ConflictMode::error, [](int i) { return i >= 495 && i < 505 ? 10000 + (i - 495) % 5 : i; }, 1000);
  EXPECT_EQ(refused.outcome, AckOutcome::dead_lettered) << refused.message;
  EXPECT_EQ(refused.rows_committed, 995u);
  EXPECT_EQ(sql("SELECT count(*), min(v), max(v), count(*) FILTER (WHERE v BETWEEN 495 AND 499) FROM keyed"),
            "995|0|999|5");
  EXPECT_EQ(sql("SELECT string_agg(row_data->>'v', ',' ORDER BY (row_data->>'v')::int) FROM sluice_dead_letter"),
            "500,501,502,503,504");
}

TEST_F(CopyWriterTest, RowLevelErrorIsolatesTheBadRowAndCommitsTheRest) {
  shared_pg_server().psql(db_, read_migration("006_dead_letter.sql"));
  AckLog acks;
  pg::WriterPool pool(catalog_, options(1));
  pool.start();
  std::vector<BlockPtr> blocks;
  blocks.push_back(encode(0, 30, acks.make()));
  blocks.push_back(encode(30, 30, acks.make(), false, /*bad_seq=*/45));
  blocks.push_back(encode(60, 30, acks.make()));
  auto whole_request = acks.make(2);  // one request whose two blocks are both good
  blocks.push_back(encode(90, 5, whole_request));
  blocks.push_back(encode(95, 5, whole_request));
  ASSERT_TRUE(pool.push(batch_of(std::move(blocks))));
  ASSERT_TRUE(acks.wait_all());
  pool.stop();

  EXPECT_EQ(acks.result(0).outcome, AckOutcome::committed);
  EXPECT_EQ(acks.result(0).rows_committed, 30u);
  const AckResult bad = acks.result(1);
  EXPECT_EQ(bad.outcome, AckOutcome::dead_lettered);
  EXPECT_EQ(bad.rows_committed, 29u);  // the block's good rows are stored
  EXPECT_EQ(bad.message.rfind("1 row(s) refused by the database and stored in sluice_dead_letter: 23514: ", 0), 0u)
      << bad.message;
  EXPECT_NE(bad.message.find("value_non_negative"), std::string::npos) << bad.message;
  EXPECT_EQ(acks.result(2).outcome, AckOutcome::committed);
  EXPECT_EQ(acks.result(3).outcome, AckOutcome::committed);
  EXPECT_EQ(acks.result(3).rows_committed, 10u);

  EXPECT_EQ(sql("SELECT count(*), min(seq), max(seq), count(*) FILTER (WHERE seq = 45) FROM readings"), "99|0|99|0");
  EXPECT_EQ(sql("SELECT table_name, sqlstate, row_data->>'seq', row_data->>'value', row_data->>'time', "
                "row_data->>'note' IS NULL FROM sluice_dead_letter"),
            "readings|23514|45|-1|2024-03-01T00:00:45Z|t");
  const auto& s = pool.stats();
  EXPECT_EQ(s.split_batches.load(), 1u);
  // 100 rows, bad row 45: halves [0,50) fails, [0,25) [25,37) [37,43) pass, [43,46) fails, [43,44)
  // [44,45) pass, [45,46) fails (dead letter), [46,50) [50,100) pass.
  EXPECT_EQ(s.isolation_copies.load(), 10u);
  EXPECT_EQ(s.failures("23"), 4u);  // the whole batch + three failing pieces
  EXPECT_EQ(s.failed_blocks[0].load(), 1u);
  EXPECT_EQ(s.failed_rows[0].load(), 1u);
  EXPECT_EQ(s.dead_letter_rows[0].load(), 1u);
  EXPECT_EQ(s.committed_rows[0].load(), 99u);
  EXPECT_EQ(s.committed_batches[0].load(), 1u);  // one transaction
  std::vector<std::string> classes;
  s.for_each_failure_class([&](std::string_view cls, uint64_t n) {
    classes.push_back(std::string(cls) + "=" + std::to_string(n));
  });
  EXPECT_EQ(classes, (std::vector<std::string>{"23=4"}));
}

TEST_F(CopyWriterTest, MissingDeadLetterTableRetriesInsteadOfDropping) {
  AckLog acks;
  pg::WriterOptions o = options(1);
  o.stop_timeout = 300ms;
  pg::WriterPool pool(catalog_, o);
  pool.start();
  std::vector<BlockPtr> blocks;
  blocks.push_back(encode(0, 10, acks.make(), false, /*bad_seq=*/3));
  ASSERT_TRUE(pool.push(batch_of(std::move(blocks))));
  std::this_thread::sleep_for(300ms);
  EXPECT_EQ(acks.calls(0), 0);  // still retrying: no sluice_dead_letter yet
  EXPECT_GE(pool.stats().dead_letter_failures.load(), 1u);
  EXPECT_EQ(sql("SELECT count(*) FROM readings"), "0");  // the good rows were rolled back with it
  shared_pg_server().psql(db_, read_migration("006_dead_letter.sql"));
  ASSERT_TRUE(acks.wait_all());
  pool.stop();
  EXPECT_EQ(acks.result(0).outcome, AckOutcome::dead_lettered);
  EXPECT_EQ(acks.result(0).rows_committed, 9u);
  EXPECT_EQ(sql("SELECT count(*) FROM readings"), "9");
  EXPECT_EQ(sql("SELECT count(*), min(row_data->>'seq') FROM sluice_dead_letter"), "1|3");
}

TEST_F(CopyWriterTest, SchemaErrorFailsEveryBlockWithTheMessage) {
  shared_pg_server().psql(db_, "ALTER TABLE readings DROP COLUMN amount;");
  AckLog acks;
  pg::WriterPool pool(catalog_, options(1));
  pool.start();
  std::vector<BlockPtr> blocks;
  blocks.push_back(encode(0, 10, acks.make()));
  blocks.push_back(encode(10, 10, acks.make()));
  ASSERT_TRUE(pool.push(batch_of(std::move(blocks))));
  ASSERT_TRUE(acks.wait_all());
  pool.stop();
  for (size_t i = 0; i < 2; ++i) {
    EXPECT_EQ(acks.result(i).outcome, AckOutcome::failed);
    EXPECT_NE(acks.result(i).message.find("42703"), std::string::npos) << acks.result(i).message;
    EXPECT_NE(acks.result(i).message.find("amount"), std::string::npos) << acks.result(i).message;
  }
  EXPECT_EQ(pool.stats().failures("42"), 1u);
  EXPECT_EQ(pool.stats().split_batches.load(), 0u);
  EXPECT_EQ(pool.stats().failed_blocks[0].load(), 2u);
  EXPECT_EQ(sql("SELECT count(*) FROM readings"), "0");
}

TEST_F(CopyWriterTest, ServerRestartMidStreamLosesNothing) {
  // Batches big enough that a COPY is likely in flight when the server goes down.
  constexpr int kBatches = 60;
  constexpr int kRowsPerBatch = 1000;
  AckLog acks;
  pg::WriterPool pool(catalog_, options(2));
  pool.start();

  std::mutex m;
  std::condition_variable cv;
  int pushed = 0;
  std::thread producer([&] {
    for (int i = 0; i < kBatches; ++i) {
      std::vector<BlockPtr> blocks;
      blocks.push_back(encode(int64_t{i} * kRowsPerBatch, kRowsPerBatch, acks.make()));
      EXPECT_TRUE(pool.push(batch_of(std::move(blocks))));
      {
        std::lock_guard<std::mutex> lock(m);
        ++pushed;
      }
      cv.notify_all();
    }
  });
  {
    std::unique_lock<std::mutex> lock(m);
    cv.wait(lock, [&] { return pushed >= kBatches / 3; });
  }
  shared_pg_server().restart();  // fast shutdown: in-flight COPYs and idle connections break
  producer.join();
  ASSERT_TRUE(acks.wait_all());
  pool.stop();

  int committed = 0;
  uint64_t rows = 0;
  for (size_t i = 0; i < acks.size(); ++i) {
    EXPECT_EQ(acks.calls(i), 1);
    if (acks.result(i).outcome == AckOutcome::committed) ++committed;
    rows += acks.result(i).rows_committed;
  }
  EXPECT_EQ(committed, kBatches);
  EXPECT_EQ(rows, uint64_t{kBatches} * kRowsPerBatch);
  const int n = kBatches * kRowsPerBatch;
  EXPECT_EQ(sql("SELECT count(DISTINCT seq), min(seq), max(seq) FROM readings"),
            std::to_string(n) + "|0|" + std::to_string(n - 1));
  EXPECT_EQ(sql("SELECT count(*) FROM readings"), std::to_string(n));
  const auto& s = pool.stats();
  EXPECT_GE(s.connection_losses.load(), 1u);
  EXPECT_GE(s.reconnects.load(), 1u);
  EXPECT_EQ(s.committed_rows[0].load(), uint64_t(n));
  EXPECT_EQ(s.shutdown_blocks.load(), 0u);
  EXPECT_EQ(s.failed_blocks[0].load(), 0u);
}

TEST_F(CopyWriterTest, StopGivesUpOnUnreachableDatabaseWithShutdownAcks) {
  auto& server = shared_pg_server();
  struct Restore {
    ~Restore() { shared_pg_server().start_again(); }
  } restore;
  server.stop_keep_data();

  AckLog acks;
  pg::WriterOptions o = options(2);
  o.stop_timeout = 300ms;
  pg::WriterPool pool(catalog_, o);
  pool.start();
  for (int i = 0; i < 3; ++i) {
    std::vector<BlockPtr> blocks;
    blocks.push_back(encode(i * 10, 10, acks.make()));
    ASSERT_TRUE(pool.push(batch_of(std::move(blocks))));
  }
  std::this_thread::sleep_for(100ms);
  EXPECT_FALSE(pool.connected());
  const auto t0 = std::chrono::steady_clock::now();
  pool.stop();
  const auto took = std::chrono::steady_clock::now() - t0;
  EXPECT_GE(took, 250ms);
  EXPECT_LT(took, 3s);
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(acks.calls(i), 1);
    EXPECT_EQ(acks.result(i).outcome, AckOutcome::shutdown);
    EXPECT_EQ(acks.result(i).rows_committed, 0u);
  }
  EXPECT_EQ(pool.stats().shutdown_blocks.load(), 3u);
  EXPECT_GE(pool.stats().connect_failures.load(), 2u);
  EXPECT_EQ(pool.stats().committed_rows[0].load(), 0u);
}

// A TCP proxy between the writer and PostgreSQL that loses the answer to one COPY, the way a
// network cut does. It forwards the frontend's stream message by message (the StartupMessage first,
// untyped; then type byte + length) and everything the server sends as it comes. At the first
// CopyDone:
//   after_commit      forwards it, reads (and drops) what the server answers up to ReadyForQuery —
//                     the COPY's implicit transaction is then committed — and closes both sides;
//   before_copy_done  drops it and closes only the writer's side: the old backend keeps waiting
//                     for COPY data with its transaction open (until the writer ends it).
// Later connections are forwarded unchanged.
class CuttingProxy {
 public:
  enum class Cut { after_commit, before_copy_done };
  CuttingProxy(int upstream_port, Cut cut) : upstream_port_(upstream_port), cut_(cut) {
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    ::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = 0;
    if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(listen_fd_, 8) != 0) {
      throw std::runtime_error("proxy: bind/listen failed");
    }
    socklen_t len = sizeof a;
    ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    acceptor_ = std::thread([this] { accept_loop(); });
  }
  ~CuttingProxy() {
    stopping_ = true;
    ::shutdown(listen_fd_, SHUT_RDWR);
    ::close(listen_fd_);
    acceptor_.join();
    for (auto& t : sessions_) t.join();
    for (int fd : held_) ::close(fd);
  }
  int port() const { return port_; }
  bool cut_done() const { return cut_done_; }

 private:
  static bool write_all(int fd, const char* p, size_t n) {
    while (n > 0) {
      const ssize_t k = ::send(fd, p, n, MSG_NOSIGNAL);
      if (k <= 0) return false;
      p += k;
      n -= static_cast<size_t>(k);
    }
    return true;
  }
  static uint32_t be32(const char* p) {
    return (uint32_t(uint8_t(p[0])) << 24) | (uint32_t(uint8_t(p[1])) << 16) | (uint32_t(uint8_t(p[2])) << 8) |
           uint32_t(uint8_t(p[3]));
  }
  void accept_loop() {
    for (;;) {
      const int client = ::accept(listen_fd_, nullptr, nullptr);
      if (client < 0) return;
      if (stopping_) {
        ::close(client);
        return;
      }
      const int server = ::socket(AF_INET, SOCK_STREAM, 0);
      sockaddr_in a{};
      a.sin_family = AF_INET;
      a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      a.sin_port = htons(static_cast<uint16_t>(upstream_port_));
      if (::connect(server, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
        ::close(server);
        ::close(client);
        continue;
      }
      sessions_.emplace_back([this, client, server] { serve(client, server); });
    }
  }
  void serve(int client, int server) {
    std::string fe;  // frontend bytes not forwarded yet (an incomplete message)
    bool typed = false;
    char buf[65536];
    bool keep_server = false;
    for (bool open = true; open && !stopping_;) {
      pollfd p[2] = {{client, POLLIN, 0}, {server, POLLIN, 0}};
      if (::poll(p, 2, 100) <= 0) continue;
      if (p[1].revents != 0) {
        const ssize_t n = ::recv(server, buf, sizeof buf, 0);
        if (n <= 0 || !write_all(client, buf, static_cast<size_t>(n))) break;
      }
      if (p[0].revents == 0) continue;
      const ssize_t n = ::recv(client, buf, sizeof buf, 0);
      if (n <= 0) break;
      fe.append(buf, static_cast<size_t>(n));
      for (;;) {  // whole frontend messages
        const size_t head = typed ? 5 : 4;
        if (fe.size() < head) break;
        const size_t len = (typed ? 1 : 0) + be32(fe.data() + (typed ? 1 : 0));
        if (fe.size() < len) break;
        const bool copy_done = typed && fe[0] == 'c';
        typed = true;
        if (copy_done && !cut_done_.exchange(true)) {
          if (cut_ == Cut::before_copy_done) {
            keep_server = true;  // the backend waits for the rest of the COPY
          } else {
            write_all(server, fe.data(), len);
            std::string be;  // the answer, dropped: up to ReadyForQuery ('Z')
            for (bool ready = false; !ready;) {
              const ssize_t k = ::recv(server, buf, sizeof buf, 0);
              if (k <= 0) break;
              be.append(buf, static_cast<size_t>(k));
              for (size_t at = 0; at + 5 <= be.size() && !ready;) {
                const size_t mlen = 1 + be32(be.data() + at + 1);
                if (at + mlen > be.size()) break;
                ready = be[at] == 'Z';
                at += mlen;
              }
            }
          }
          open = false;
          break;
        }
        if (!write_all(server, fe.data(), len)) {
          open = false;
          break;
        }
        fe.erase(0, len);
      }
    }
    ::close(client);
    if (keep_server) {
      std::lock_guard<std::mutex> lock(held_mutex_);
      held_.push_back(server);
    } else {
      ::close(server);
    }
  }

  int upstream_port_;
  Cut cut_;
  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stopping_{false};
  std::atomic<bool> cut_done_{false};
  std::thread acceptor_;
  std::vector<std::thread> sessions_;  // accept_loop only
  std::mutex held_mutex_;
  std::vector<int> held_;
};

// The writer's URL through the proxy (no TLS or GSS negotiation: the StartupMessage comes first).
std::string via_proxy(const std::string& db, int port) {
  return "postgresql://postgres@127.0.0.1:" + std::to_string(port) + "/" + db + "?sslmode=disable&gssencmode=disable";
}

// What one 1000-row batch through a CuttingProxy came to.
struct CutRun {
  bool acked = false;
  bool cut_done = false;
  AckResult ack;
  uint64_t in_doubt = 0, in_doubt_committed = 0, in_doubt_written_again = 0, committed_rows = 0,
           connection_losses = 0;
};

class CopyWriterCutTest : public CopyWriterTest {
 protected:
  // One writer connected through a CuttingProxy, one batch of 1000 rows (seq 0..999), then stop().
  CutRun write_through_cut(CuttingProxy::Cut cut) {
    CuttingProxy proxy(shared_pg_server().port(), cut);
    AckLog acks;
    pg::WriterOptions o = options(1);
    o.url = via_proxy(db_, proxy.port());
    pg::WriterPool pool(catalog_, o);
    pool.start();
    std::vector<BlockPtr> blocks;
    blocks.push_back(encode(0, 1000, acks.make()));
    CutRun run;
    if (!pool.push(batch_of(std::move(blocks)))) return run;
    run.acked = acks.wait_all();
    pool.stop();
    run.cut_done = proxy.cut_done();
    if (run.acked) run.ack = acks.result(0);
    const auto& s = pool.stats();
    run.in_doubt = s.commits_in_doubt.load();
    run.in_doubt_committed = s.in_doubt_committed.load();
    run.in_doubt_written_again = s.in_doubt_written_again.load();
    run.committed_rows = s.committed_rows[0].load();
    run.connection_losses = s.connection_losses.load();
    return run;
  }
};

// The COPY committed but its answer was lost with the connection: before, the writer wrote the batch
// again and the rows were stored twice. Now it asks txid_status() of the COPY's transaction on the
// new connection, finds it committed, and acknowledges without writing again.
TEST_F(CopyWriterCutTest, ACommitWhoseAnswerIsLostIsRecognisedNotWrittenTwice) {
  const CutRun run = write_through_cut(CuttingProxy::Cut::after_commit);
  ASSERT_TRUE(run.acked);
  EXPECT_TRUE(run.cut_done);
  EXPECT_EQ(run.ack.outcome, AckOutcome::committed);
  EXPECT_EQ(run.ack.rows_committed, 1000u);
  EXPECT_EQ(sql("SELECT count(*), count(DISTINCT seq) FROM readings"), "1000|1000");
  EXPECT_EQ(run.in_doubt, 1u);
  EXPECT_EQ(run.in_doubt_committed, 1u);
  EXPECT_EQ(run.in_doubt_written_again, 0u);
  EXPECT_EQ(run.committed_rows, 1000u);
  EXPECT_GE(run.connection_losses, 1u);
}

// The connection broke before the COPY was complete, and the old backend does not notice (it keeps
// waiting for COPY data, its transaction open, as behind a network cut): txid_status() says
// "in progress", the writer ends that backend, sees the transaction aborted and writes the batch
// again — once.
TEST_F(CopyWriterCutTest, AnUnfinishedCopyBehindACutIsEndedAndWrittenOnce) {
  const CutRun run = write_through_cut(CuttingProxy::Cut::before_copy_done);
  ASSERT_TRUE(run.acked);
  EXPECT_TRUE(run.cut_done);
  EXPECT_EQ(run.ack.outcome, AckOutcome::committed);
  EXPECT_EQ(sql("SELECT count(*), count(DISTINCT seq) FROM readings"), "1000|1000");
  EXPECT_EQ(run.in_doubt, 1u);
  EXPECT_EQ(run.in_doubt_committed, 0u);
  EXPECT_EQ(run.in_doubt_written_again, 1u);
  // The old backend was ended by the writer, not left waiting (its entry may outlive the abort by a
  // moment while it exits: look for up to 5 s).
  std::string stuck;
  for (int i = 0; i < 50; ++i) {
    stuck = sql("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND state = 'active' "
                "AND query LIKE '%COPY%readings%' AND pid <> pg_backend_pid()");
    if (stuck == "0") break;
    std::this_thread::sleep_for(100ms);
  }
  EXPECT_EQ(stuck, "0");
}

TEST(CopyWriterClassify, SqlstateClasses) {
  using pg::CopyFailureKind;
  const std::vector<std::pair<const char*, CopyFailureKind>> table = {
      {"08006", CopyFailureKind::connection}, {"08P01", CopyFailureKind::connection},
      {"08001", CopyFailureKind::connection}, {"57P01", CopyFailureKind::connection},
      {"57P02", CopyFailureKind::connection}, {"57P03", CopyFailureKind::connection},
      {"57014", CopyFailureKind::connection},  // query canceled: retried
      {"40001", CopyFailureKind::connection},  // serialization failure
      {"40P01", CopyFailureKind::connection},  // deadlock
      {"53000", CopyFailureKind::connection}, {"53100", CopyFailureKind::connection},  // disk full
      {"53200", CopyFailureKind::connection},  // out of memory
      {"53300", CopyFailureKind::connection},  // too many connections
      {"55P03", CopyFailureKind::connection},  // lock not available
      {"22P02", CopyFailureKind::row_level}, {"22003", CopyFailureKind::row_level},
      {"22001", CopyFailureKind::row_level}, {"23505", CopyFailureKind::row_level},
      {"23503", CopyFailureKind::row_level}, {"23514", CopyFailureKind::row_level},
      {"23502", CopyFailureKind::row_level},
      {"42703", CopyFailureKind::other}, {"42P01", CopyFailureKind::other},
      {"40002", CopyFailureKind::other}, {"55000", CopyFailureKind::other},
      {"57000", CopyFailureKind::other}, {"XX000", CopyFailureKind::other},
      {"", CopyFailureKind::connection}, {"08", CopyFailureKind::connection},
  };
  for (const auto& [state, kind] : table) {
    EXPECT_EQ(pg::classify_sqlstate(state), kind) << state;
  }
}

TEST(CopyWriterClassify, ConflictModes) {
  pg::ConflictMode m = pg::ConflictMode::update;
  EXPECT_TRUE(pg::parse_conflict_mode("error", m));
  EXPECT_EQ(m, pg::ConflictMode::error);
  EXPECT_TRUE(pg::parse_conflict_mode("ignore", m));
  EXPECT_EQ(m, pg::ConflictMode::ignore);
  EXPECT_TRUE(pg::parse_conflict_mode("update", m));
  EXPECT_EQ(m, pg::ConflictMode::update);
  EXPECT_FALSE(pg::parse_conflict_mode("upsert", m));
  EXPECT_EQ(m, pg::ConflictMode::update);
}

}  // namespace
}  // namespace sluice
