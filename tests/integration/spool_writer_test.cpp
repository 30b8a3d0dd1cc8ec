// The writer side of exactly-once (pg/copy_writer.h) against a real PostgreSQL 15: spooled blocks
// record their ids in sluice_spool_committed with the rows, a replayed block is skipped, pruning
// follows the spool's low-water mark; Idempotency-Key tokens likewise.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <fstream>
#include <mutex>
#include <set>
#include <sstream>
#include <string>

#include "catalog/catalog.h"
#include "pg/connection.h"
#include "pg/copy_writer.h"
#include "support/pg_server.h"

namespace sluice {
namespace {

using namespace std::chrono_literals;

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void put_be(std::vector<char>& out, uint64_t v, int bytes) {
  for (int i = bytes - 1; i >= 0; --i) out.push_back(static_cast<char>(v >> (8 * i)));
}

// A block of rows (a, b) of int4 columns.
BlockPtr block(std::initializer_list<std::pair<int, int>> rows) {
  auto b = std::make_unique<Block>();
  for (auto [a, v] : rows) {
    put_be(b->data, 2, 2);
    put_be(b->data, 4, 4);
    put_be(b->data, static_cast<uint32_t>(a), 4);
    put_be(b->data, 4, 4);
    put_be(b->data, static_cast<uint32_t>(v), 4);
    ++b->rows;
  }
  return b;
}

class SpoolWriterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    db_ = std::string("spool_writer_") + ::testing::UnitTest::GetInstance()->current_test_info()->name();
    url_ = test::shared_pg_server().create_database(db_);
    pg::Connection conn(url_);
    conn.exec("CREATE TABLE t (a int NOT NULL, b int)");
    conn.exec(read_file(std::string(SLUICE_SOURCE_DIR) + "/sql/007_delivery.sql"));
    catalog_ = load_catalog(conn.get(), {TableSpec{"t", ""}});
    pg::WriterOptions o;
    o.url = url_;
    o.connections = 1;
    o.spool_prune_interval = 0ms;
    o.on_spool_resolved = [this](uint64_t id) {
      std::lock_guard<std::mutex> lock(mutex_);
      resolved_.insert(id);
    };
    o.spool_low_water = [this] { return low_water_.load(); };
    pool_ = std::make_unique<pg::WriterPool>(catalog_, o);
    pool_->start();
  }
  void TearDown() override { pool_->stop(); }

  // Pushes the blocks as one batch and waits until every block is acked; returns the outcomes.
  std::vector<AckOutcome> write(std::vector<BlockPtr> blocks) {
    std::mutex m;
    std::condition_variable cv;
    size_t done = 0;
    std::vector<AckOutcome> outcomes(blocks.size());
    Batch batch;
    for (size_t i = 0; i < blocks.size(); ++i) {
      blocks[i]->ack = Ack::make(1, [&, i](const AckResult& r) {
        std::lock_guard<std::mutex> lock(m);
        outcomes[i] = r.outcome;
        ++done;
        cv.notify_all();
      });
      batch.rows += blocks[i]->rows;
      batch.blocks.push_back(std::move(blocks[i]));
    }
    const size_t n = batch.blocks.size();
    EXPECT_TRUE(pool_->push(std::move(batch)));
    std::unique_lock<std::mutex> lock(m);
    EXPECT_TRUE(cv.wait_for(lock, 20s, [&] { return done == n; }));
    return outcomes;
  }
  long long scalar(const std::string& sql) {
    pg::Connection conn(url_);
    auto r = conn.query(sql);
    return std::atoll(PQgetvalue(r.get(), 0, 0));
  }

  std::string db_, url_;
  Catalog catalog_;
  std::unique_ptr<pg::WriterPool> pool_;
  std::mutex mutex_;
  std::set<uint64_t> resolved_;
  std::atomic<uint64_t> low_water_{0};
};

TEST_F(SpoolWriterTest, SpooledIdsCommitWithTheRowsAndAReplayIsSkipped) {
  std::vector<BlockPtr> first;
  first.push_back(block({{1, 10}, {2, 20}}));
  first.back()->spool_id = 11;
  first.push_back(block({{3, 30}}));
  first.back()->spool_id = 12;
  first.push_back(block({{4, 40}}));  // not spooled, same batch
  EXPECT_EQ(write(std::move(first)), (std::vector<AckOutcome>(3, AckOutcome::committed)));
  EXPECT_EQ(scalar("SELECT count(*) FROM t"), 4);
  EXPECT_EQ(scalar("SELECT count(*) FROM sluice_spool_committed WHERE record_id IN (11, 12)"), 2);
  {
    std::lock_guard<std::mutex> lock(mutex_);
    EXPECT_EQ(resolved_, (std::set<uint64_t>{11, 12}));
  }

  // Record 11 replayed after a crash, next to a new record 13: only 13 is stored.
  std::vector<BlockPtr> replay;
  replay.push_back(block({{1, 10}, {2, 20}}));
  replay.back()->spool_id = 11;
  replay.push_back(block({{5, 50}}));
  replay.back()->spool_id = 13;
  EXPECT_EQ(write(std::move(replay)), (std::vector<AckOutcome>(2, AckOutcome::committed)));
  EXPECT_EQ(scalar("SELECT count(*) FROM t"), 5);
  EXPECT_EQ(scalar("SELECT count(*) FROM t WHERE a = 1"), 1);
  EXPECT_EQ(pool_->stats().spool_duplicates_skipped.load(), 1u);

  // The spool deleted everything below 13: those ids are pruned after the next spooled commit.
  low_water_ = 13;
  std::vector<BlockPtr> next;
  next.push_back(block({{6, 60}}));
  next.back()->spool_id = 14;
  write(std::move(next));
  EXPECT_EQ(scalar("SELECT count(*) FROM sluice_spool_committed"), 2);
  EXPECT_EQ(scalar("SELECT min(record_id) FROM sluice_spool_committed"), 13);
}

TEST_F(SpoolWriterTest, IdempotencyTokensStoreEachBlockOnce) {
  auto key = std::make_shared<const std::string>("req-\"quoted\"\\x");
  auto keyed = [&](std::initializer_list<std::pair<int, int>> rows, uint32_t index) {
    BlockPtr b = block(rows);
    b->idempotency_key = key;
    b->idempotency_index = index;
    return b;
  };
  std::vector<BlockPtr> first;
  first.push_back(keyed({{1, 1}, {2, 2}}, 0));
  first.push_back(keyed({{3, 3}}, 1));
  write(std::move(first));
  EXPECT_EQ(scalar("SELECT count(*) FROM t"), 3);
  // The retry: both blocks known, nothing stored; a block with a new index is.
  std::vector<BlockPtr> retry;
  retry.push_back(keyed({{1, 1}, {2, 2}}, 0));
  retry.push_back(keyed({{3, 3}}, 1));
  retry.push_back(keyed({{4, 4}}, 2));
  EXPECT_EQ(write(std::move(retry)), (std::vector<AckOutcome>(3, AckOutcome::committed)));
  EXPECT_EQ(scalar("SELECT count(*) FROM t"), 4);
  EXPECT_EQ(pool_->stats().idempotent_blocks_skipped.load(), 2u);
  EXPECT_EQ(pool_->stats().idempotent_rows_skipped.load(), 3u);
  EXPECT_EQ(scalar("SELECT count(*) FROM sluice_idempotency_keys WHERE idempotency_key = 'req-\"quoted\"\\x#2'"), 1);
}

// A retried request merged into one batch with the replay of its first attempt from the spool: both
// blocks carry the same token; the rows are stored once, the spooled copy is the one written, and
// both senders' acks say committed.
TEST_F(SpoolWriterTest, TwoBlocksWithOneTokenInOneBatchAreStoredOnce) {
  auto key = std::make_shared<const std::string>("req-3");
  std::vector<BlockPtr> batch;
  batch.push_back(block({{7, 1}, {8, 2}}));  // the retry: in memory, no spool record
  batch.back()->idempotency_key = key;
  batch.push_back(block({{7, 1}, {8, 2}}));  // the first attempt, replayed from the spool
  batch.back()->idempotency_key = key;
  batch.back()->spool_id = 4242;
  EXPECT_EQ(write(std::move(batch)), (std::vector<AckOutcome>(2, AckOutcome::committed)));
  EXPECT_EQ(scalar("SELECT count(*) FROM t"), 2);
  EXPECT_EQ(scalar("SELECT count(*) FROM sluice_spool_committed WHERE record_id = 4242"), 1);
  EXPECT_EQ(pool_->stats().idempotent_blocks_skipped.load(), 1u);
  EXPECT_EQ(pool_->stats().spool_duplicates_skipped.load(), 0u);
  std::lock_guard<std::mutex> lock(mutex_);
  EXPECT_EQ(resolved_.count(4242), 1u);
}

}  // namespace
}  // namespace sluice
