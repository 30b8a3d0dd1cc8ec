// Batcher with a fake sink: grouping by (table, mask), each flush trigger, oversized blocks,
// limits changed at run time, a closed sink, and a multi-producer shutdown that must deliver
// every block exactly once and in order per (ring, table).
#include "batch/batcher.h"

#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace sluice {
namespace {

using namespace std::chrono_literals;

class FakeSink : public BatchSink {
 public:
  bool push(Batch&& batch) override {
    std::lock_guard<std::mutex> lock(mutex_);
    if (closed) return false;
    batches_.push_back(std::move(batch));
    cv_.notify_all();
    return true;
  }
  // Waits until at least n batches arrived (or 5 s passed); returns how many there are.
  size_t wait_for(size_t n, std::chrono::milliseconds timeout = 5s) {
    std::unique_lock<std::mutex> lock(mutex_);
    cv_.wait_for(lock, timeout, [&] { return batches_.size() >= n; });
    return batches_.size();
  }
  std::vector<Batch> take() {
    std::lock_guard<std::mutex> lock(mutex_);
    return std::move(batches_);
  }
  bool idle() const override { return report_idle.load(); }
  bool closed = false;
  std::atomic<bool> report_idle{false};

 private:
  std::mutex mutex_;
  std::condition_variable cv_;
  std::vector<Batch> batches_;
};

// A block whose data is `bytes` long and starts with (tag) so tests can identify it.
BlockPtr make_block(uint32_t table, uint64_t mask, uint32_t rows, size_t bytes, uint64_t tag,
                    int64_t time = 0) {
  auto b = std::make_unique<Block>();
  b->table_id = table;
  b->column_mask = mask;
  b->rows = rows;
  b->min_time = time;
  b->max_time = time + 10;
  b->data.assign(std::max<size_t>(bytes, sizeof tag), '\0');
  std::memcpy(b->data.data(), &tag, sizeof tag);
  return b;
}

uint64_t tag_of(const BlockPtr& b) {
  uint64_t tag = 0;
  std::memcpy(&tag, b->data.data(), sizeof tag);
  return tag;
}

std::vector<uint64_t> tags(const Batch& batch) {
  std::vector<uint64_t> out;
  for (const auto& b : batch.blocks) out.push_back(tag_of(b));
  return out;
}

void push(SpscRing<BlockPtr>& ring, BlockPtr b) { ASSERT_TRUE(ring.try_push(std::move(b))); }

BatchLimits limits(size_t rows, size_t bytes, std::chrono::milliseconds age) {
  BatchLimits l;
  l.max_rows = rows;
  l.max_bytes = bytes;
  l.max_age = age;
  return l;
}

TEST(Batcher, GroupsByTableAndColumnMask) {
  SpscRing<BlockPtr> ring(64);
  FakeSink sink;
  Batcher batcher({&ring}, limits(1000, 1 << 20, 10s), sink);
  push(ring, make_block(1, 0, 2, 16, 100, 50));
  push(ring, make_block(2, 0, 3, 16, 200));
  push(ring, make_block(1, 1, 4, 16, 300));
  push(ring, make_block(1, 0, 5, 24, 101, 20));
  batcher.stop_and_drain();  // never started: drains on this thread

  auto batches = sink.take();
  ASSERT_EQ(batches.size(), 3u);
  std::map<std::pair<uint32_t, uint64_t>, const Batch*> by_key;
  for (const auto& b : batches) {
    EXPECT_EQ(b.trigger, FlushTrigger::shutdown);
    by_key[{b.table_id, b.column_mask}] = &b;
    for (const auto& block : b.blocks) {
      EXPECT_EQ(block->table_id, b.table_id);
      EXPECT_EQ(block->column_mask, b.column_mask);
    }
  }
  ASSERT_EQ(by_key.size(), 3u);
  const Batch& t1m0 = *by_key[std::make_pair(1u, uint64_t{0})];
  EXPECT_EQ(tags(t1m0), (std::vector<uint64_t>{100, 101}));
  EXPECT_EQ(t1m0.rows, 7u);
  EXPECT_EQ(t1m0.bytes, 40u);
  EXPECT_EQ(t1m0.min_time, 20);
  EXPECT_EQ(t1m0.max_time, 60);
  const Batch& t2m0 = *by_key[std::make_pair(2u, uint64_t{0})];
  const Batch& t1m1 = *by_key[std::make_pair(1u, uint64_t{1})];
  EXPECT_EQ(tags(t2m0), (std::vector<uint64_t>{200}));
  EXPECT_EQ(tags(t1m1), (std::vector<uint64_t>{300}));
  EXPECT_EQ(t1m1.rows, 4u);

  EXPECT_EQ(batcher.stats().flushed[static_cast<int>(FlushTrigger::shutdown)].load(), 3u);
  EXPECT_EQ(batcher.stats().blocks.load(), 4u);
  EXPECT_EQ(batcher.stats().rows.load(), 14u);
}

TEST(Batcher, FlushesOnRows) {
  SpscRing<BlockPtr> ring(64);
  FakeSink sink;
  Batcher batcher({&ring}, limits(10, 1 << 20, 10s), sink);
  batcher.start();
  for (uint64_t i = 0; i < 4; ++i) push(ring, make_block(7, 0, 4, 16, i));
  ASSERT_EQ(sink.wait_for(1), 1u);
  batcher.stop_and_drain();
  auto batches = sink.take();
  ASSERT_EQ(batches.size(), 2u);
  EXPECT_EQ(batches[0].trigger, FlushTrigger::rows);
  EXPECT_EQ(batches[0].rows, 12u);  // the block that crossed 10 is included
  EXPECT_EQ(tags(batches[0]), (std::vector<uint64_t>{0, 1, 2}));
  EXPECT_EQ(batches[1].trigger, FlushTrigger::shutdown);
  EXPECT_EQ(tags(batches[1]), (std::vector<uint64_t>{3}));
  EXPECT_EQ(batcher.stats().flushed[static_cast<int>(FlushTrigger::rows)].load(), 1u);
  EXPECT_EQ(batcher.stats().flushed[static_cast<int>(FlushTrigger::shutdown)].load(), 1u);
}

TEST(Batcher, FlushesOnBytes) {
  SpscRing<BlockPtr> ring(64);
  FakeSink sink;
  Batcher batcher({&ring}, limits(1000, 100, 10s), sink);
  batcher.start();
  for (uint64_t i = 0; i < 4; ++i) push(ring, make_block(7, 0, 1, 40, i));
  ASSERT_EQ(sink.wait_for(1), 1u);
  batcher.stop_and_drain();
  auto batches = sink.take();
  ASSERT_EQ(batches.size(), 2u);
  EXPECT_EQ(batches[0].trigger, FlushTrigger::bytes);
  EXPECT_EQ(batches[0].bytes, 120u);
  EXPECT_EQ(tags(batches[0]), (std::vector<uint64_t>{0, 1, 2}));
  EXPECT_EQ(batches[1].trigger, FlushTrigger::shutdown);
  EXPECT_EQ(batches[1].bytes, 40u);
}

TEST(Batcher, FlushesAtOnceWhenAWriterIsIdle) {
  SpscRing<BlockPtr> ring(64);
  FakeSink sink;
  sink.report_idle = true;
  Batcher batcher({&ring}, limits(1000, 1 << 20, 10s), sink);
  batcher.start();
  push(ring, make_block(1, 0, 5, 16, 1));
  push(ring, make_block(1, 0, 5, 16, 2));
  ASSERT_GE(sink.wait_for(1), 1u);  // long before the 10 s age limit
  sink.report_idle = false;
  batcher.stop_and_drain();
  auto batches = sink.take();
  ASSERT_FALSE(batches.empty());
  EXPECT_EQ(batches[0].trigger, FlushTrigger::idle);
  EXPECT_GE(batcher.stats().flushed[static_cast<int>(FlushTrigger::idle)].load(), 1u);
}

TEST(Batcher, HoldsRowsWhileTheWritersAreBusy) {
  SpscRing<BlockPtr> ring(64);
  FakeSink sink;  // not idle: only the limits flush
  Batcher batcher({&ring}, limits(1000, 1 << 20, 10s), sink);
  batcher.start();
  push(ring, make_block(1, 0, 5, 16, 1));
  EXPECT_EQ(sink.wait_for(1, 200ms), 0u);
  batcher.stop_and_drain();
}

// An idle batcher sleeps on its doorbell (at most kMaxSleep at a time) instead of polling the rings.
TEST(Batcher, SleepsWhileNothingArrives) {
  SpscRing<BlockPtr> ring(64);
  FakeSink sink;
  sink.report_idle = true;
  Batcher batcher({&ring}, limits(1000, 1 << 20, 10s), sink);
  batcher.start();
  std::this_thread::sleep_for(300ms);
  const uint64_t sleeps = batcher.stats().sleeps.load();
  const uint64_t wakes = batcher.doorbell().wakes();
  batcher.stop_and_drain();
  EXPECT_GE(sleeps, 1u);
  // 300 ms / kMaxSleep (50 ms) = 6, plus the first and the one in progress; a polling loop would
  // have counted hundreds.
  EXPECT_LE(sleeps, static_cast<uint64_t>(300ms / Batcher::kMaxSleep) + 2);
  EXPECT_EQ(wakes, 0u);
}

// Pushes `count` one-row blocks (tags 1..count), `pause` apart, ringing the doorbell after each as
// IngestContext::push_all does. With `until_woken` it stops once a push woke the batcher: the
// batcher is asleep almost all the time, but one push may land while it is awake.
void push_and_ring(SpscRing<BlockPtr>& ring, Batcher& batcher, uint64_t count, std::chrono::milliseconds pause,
                   bool urgent, bool until_woken) {
  for (uint64_t i = 1; i <= count && !(until_woken && batcher.doorbell().wakes() > 0); ++i) {
    std::this_thread::sleep_for(pause);
    push(ring, make_block(1, 0, 1, 16, i));
    batcher.doorbell().pushed(urgent);
  }
}

// While a writer waits, a push rings the doorbell and the block goes out as an idle flush.
TEST(Batcher, PushWakesTheBatcherWhenAWriterWaits) {
  SpscRing<BlockPtr> ring(64);
  FakeSink sink;
  sink.report_idle = true;
  Batcher batcher({&ring}, limits(1000, 1 << 20, 10s), sink);
  batcher.start();
  push_and_ring(ring, batcher, 5, 20ms, false, true);
  EXPECT_GE(batcher.doorbell().wakes(), 1u);
  EXPECT_GE(sink.wait_for(1), 1u);
  batcher.stop_and_drain();
  for (const auto& b : sink.take()) EXPECT_EQ(b.trigger, FlushTrigger::idle);
}

// While every writer is busy, ordinary pushes do not wake the batcher (no syscall per push); a
// writer that becomes idle does, and gets what was pending.
TEST(Batcher, BusyWritersAreNotWokenByPushesButAnIdleWriterRings) {
  SpscRing<BlockPtr> ring(64);
  FakeSink sink;
  Batcher batcher({&ring}, limits(1000, 1 << 20, 10s), sink);
  batcher.start();
  push_and_ring(ring, batcher, 5, 10ms, false, false);
  EXPECT_EQ(batcher.doorbell().wakes(), 0u);
  EXPECT_EQ(sink.wait_for(1, 100ms), 0u);
  sink.report_idle = true;
  batcher.doorbell().became_idle();  // as WriterPool::pop does: pushes came since the batcher slept
  ASSERT_EQ(sink.wait_for(1), 1u);
  batcher.stop_and_drain();
  auto batches = sink.take();
  ASSERT_EQ(batches.size(), 1u);
  EXPECT_EQ(batches[0].trigger, FlushTrigger::idle);
  EXPECT_EQ(batches[0].blocks.size(), 5u);
}

// A writer that becomes idle while the batcher holds nothing and no push came does not wake it
// (one sleep per batch, not two); the next ordinary push then does, and goes out as an idle flush.
TEST(Batcher, AnIdleWriterWithNothingPendingDoesNotWakeTheBatcherButTheNextPushDoes) {
  SpscRing<BlockPtr> ring(64);
  FakeSink sink;  // busy: the batcher sleeps without asking for pushes
  Batcher batcher({&ring}, limits(1000, 1 << 20, 10s), sink);
  batcher.start();
  std::this_thread::sleep_for(100ms);  // asleep, nothing pending
  sink.report_idle = true;
  batcher.doorbell().became_idle();
  std::this_thread::sleep_for(100ms);
  EXPECT_EQ(batcher.doorbell().wakes(), 0u);  // only kMaxSleep (50 ms) timeouts ended its sleeps
  push(ring, make_block(1, 0, 1, 16, 1));
  batcher.doorbell().pushed(false);
  ASSERT_EQ(sink.wait_for(1, 1s), 1u);  // long before the 10 s age limit
  EXPECT_GE(batcher.doorbell().wakes(), 1u);
  batcher.stop_and_drain();
  auto batches = sink.take();
  ASSERT_EQ(batches.size(), 1u);
  EXPECT_EQ(batches[0].trigger, FlushTrigger::idle);
}

// A ring more than half full wakes the batcher even while the writers are busy.
TEST(Batcher, UrgentPushWakesABusyBatcher) {
  SpscRing<BlockPtr> ring(8);
  FakeSink sink;
  Batcher batcher({&ring}, limits(1000, 1 << 20, 10s), sink);
  batcher.start();
  push_and_ring(ring, batcher, 5, 20ms, true, true);
  EXPECT_GE(batcher.doorbell().wakes(), 1u);
  batcher.stop_and_drain();
}

TEST(Batcher, FlushesOnAge) {
  SpscRing<BlockPtr> ring(64);
  FakeSink sink;
  Batcher batcher({&ring}, limits(1000, 1 << 20, 30ms), sink);
  batcher.start();
  const auto pushed_at = std::chrono::steady_clock::now();
  push(ring, make_block(3, 0, 1, 16, 1));
  push(ring, make_block(4, 0, 1, 16, 2));
  ASSERT_EQ(sink.wait_for(2), 2u);
  const auto waited = std::chrono::steady_clock::now() - pushed_at;
  batcher.stop_and_drain();
  auto batches = sink.take();
  ASSERT_EQ(batches.size(), 2u);
  for (const auto& b : batches) {
    EXPECT_EQ(b.trigger, FlushTrigger::age);
    EXPECT_EQ(b.blocks.size(), 1u);
  }
  EXPECT_GE(waited, 30ms);
  EXPECT_EQ(batcher.stats().flushed[static_cast<int>(FlushTrigger::age)].load(), 2u);
  EXPECT_EQ(batcher.stats().flushed[static_cast<int>(FlushTrigger::shutdown)].load(), 0u);
}

TEST(Batcher, OversizedBlockBecomesItsOwnBatch) {
  SpscRing<BlockPtr> ring(64);
  FakeSink sink;
  Batcher batcher({&ring}, limits(10, 1000, 10s), sink);
  push(ring, make_block(1, 0, 2, 16, 1));
  push(ring, make_block(1, 0, 50, 16, 2));    // too many rows alone
  push(ring, make_block(1, 0, 1, 5000, 3));   // too many bytes alone
  push(ring, make_block(1, 0, 2, 16, 4));
  batcher.stop_and_drain();
  auto batches = sink.take();
  ASSERT_EQ(batches.size(), 4u);
  EXPECT_EQ(tags(batches[0]), (std::vector<uint64_t>{1}));
  EXPECT_EQ(batches[0].trigger, FlushTrigger::rows);
  EXPECT_EQ(tags(batches[1]), (std::vector<uint64_t>{2}));
  EXPECT_EQ(batches[1].trigger, FlushTrigger::rows);
  EXPECT_EQ(batches[1].rows, 50u);
  EXPECT_EQ(tags(batches[2]), (std::vector<uint64_t>{3}));
  EXPECT_EQ(batches[2].trigger, FlushTrigger::bytes);
  EXPECT_EQ(tags(batches[3]), (std::vector<uint64_t>{4}));
  EXPECT_EQ(batches[3].trigger, FlushTrigger::shutdown);
}

TEST(Batcher, SetLimitsTakesEffectWhileRunning) {
  SpscRing<BlockPtr> ring(64);
  FakeSink sink;
  Batcher batcher({&ring}, limits(1000, 1 << 20, 10s), sink);
  batcher.start();
  batcher.set_limits(limits(3, 1 << 20, 10s));
  EXPECT_EQ(batcher.limits().max_rows, 3u);
  for (uint64_t i = 0; i < 3; ++i) push(ring, make_block(1, 0, 1, 16, i));
  ASSERT_EQ(sink.wait_for(1), 1u);
  batcher.stop_and_drain();
  auto batches = sink.take();
  ASSERT_EQ(batches.size(), 1u);
  EXPECT_EQ(batches[0].trigger, FlushTrigger::rows);
  EXPECT_EQ(batches[0].rows, 3u);
}

TEST(Batcher, ClosedSinkCompletesAcksWithShutdown) {
  SpscRing<BlockPtr> ring(64);
  FakeSink sink;
  sink.closed = true;
  AckResult result;
  int calls = 0;
  auto ack = Ack::make(2, [&](const AckResult& r) {
    result = r;
    ++calls;
  });
  for (uint64_t i = 0; i < 2; ++i) {
    auto b = make_block(1, 0, 1, 16, i);
    b->ack = ack;
    push(ring, std::move(b));
  }
  push(ring, make_block(1, 0, 1, 16, 9));  // no ack (UDP)
  Batcher batcher({&ring}, limits(1000, 1 << 20, 10s), sink);
  batcher.stop_and_drain();
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(result.outcome, AckOutcome::shutdown);
  EXPECT_EQ(result.rows_committed, 0u);
  EXPECT_EQ(batcher.stats().sink_closed_blocks.load(), 3u);
}

// Several producers, each with its own ring, writing blocks for three tables while the batcher
// runs with small limits. After stop_and_drain every block must have reached the sink exactly
// once, and per (ring, table) in the order it was pushed.
TEST(Batcher, ConcurrentProducersExactlyOnceInOrder) {
  constexpr int kRings = 3;
  constexpr uint64_t kBlocksPerRing = 20000;
  std::vector<std::unique_ptr<SpscRing<BlockPtr>>> rings;
  std::vector<SpscRing<BlockPtr>*> ring_ptrs;
  for (int i = 0; i < kRings; ++i) {
    rings.push_back(std::make_unique<SpscRing<BlockPtr>>(128));
    ring_ptrs.push_back(rings.back().get());
  }
  FakeSink sink;
  Batcher batcher(ring_ptrs, limits(50, 4096, 2ms), sink);
  batcher.start();

  std::vector<std::thread> producers;
  for (int r = 0; r < kRings; ++r) {
    producers.emplace_back([&, r] {
      for (uint64_t seq = 0; seq < kBlocksPerRing; ++seq) {
        const uint32_t table = static_cast<uint32_t>(seq % 3);
        BlockPtr b = make_block(table, 0, 1 + seq % 7, 16 + seq % 100, (uint64_t(r) << 32) | seq);
        while (!rings[r]->try_push(std::move(b))) std::this_thread::yield();
      }
    });
  }
  for (auto& t : producers) t.join();
  batcher.stop_and_drain();

  auto batches = sink.take();
  std::vector<uint64_t> seen(kRings * kBlocksPerRing, 0);
  std::map<std::pair<uint64_t, uint32_t>, int64_t> last_seq;  // (ring, table) -> last sequence
  uint64_t order_errors = 0, rows = 0, triggers[kFlushTriggerCount] = {};
  for (const auto& batch : batches) {
    ++triggers[static_cast<size_t>(batch.trigger)];
    uint32_t batch_rows = 0;
    for (const auto& b : batch.blocks) {
      const uint64_t tag = tag_of(b);
      const uint64_t r = tag >> 32, seq = tag & 0xffffffffu;
      ASSERT_LT(r, uint64_t(kRings));
      ASSERT_LT(seq, kBlocksPerRing);
      ASSERT_EQ(b->table_id, batch.table_id);
      ++seen[r * kBlocksPerRing + seq];
      auto [it, inserted] = last_seq.try_emplace({r, b->table_id}, -1);
      if (static_cast<int64_t>(seq) <= it->second) ++order_errors;
      it->second = static_cast<int64_t>(seq);
      batch_rows += b->rows;
    }
    EXPECT_EQ(batch.rows, batch_rows);
    rows += batch_rows;
  }
  uint64_t missing = 0, duplicated = 0;
  for (uint64_t n : seen) {
    if (n == 0) ++missing;
    if (n > 1) ++duplicated;
  }
  EXPECT_EQ(missing, 0u);
  EXPECT_EQ(duplicated, 0u);
  EXPECT_EQ(order_errors, 0u);
  EXPECT_EQ(batcher.stats().blocks.load(), kRings * kBlocksPerRing);
  EXPECT_EQ(batcher.stats().rows.load(), rows);
  EXPECT_GT(triggers[static_cast<size_t>(FlushTrigger::rows)], 0u);
  uint64_t flushed = 0;
  for (size_t t = 0; t < kFlushTriggerCount; ++t) {
    EXPECT_EQ(batcher.stats().flushed[t].load(), triggers[t]);
    flushed += triggers[t];
  }
  EXPECT_EQ(flushed, batches.size());
  EXPECT_EQ(batcher.pending_groups(), 0u);
}

}  // namespace
}  // namespace sluice
