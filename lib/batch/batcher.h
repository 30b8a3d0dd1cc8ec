// batch/batcher.h — drains the IO threads' rings and groups blocks into batches per table.
//
//   ring[0] ─┐   round-robin, at most kBlocksPerRingPerPass per ring per pass
//   ring[1] ─┼──► pending batch per (table_id, column_mask) ──► flush on rows | bytes | age ──► BatchSink
//   ring[n] ─┘                                                   (shutdown: everything left)
//
// One thread. Blocks are moved, never copied or concatenated here. A batch is flushed when, after
// appending a block, it holds >= max_rows rows or >= max_bytes bytes, or when its oldest block has
// waited max_age. A block that alone reaches a limit becomes its own batch (any pending batch of
// the same key is flushed just before it, so order is kept). BatchSink::push may block: that
// stops the draining and the rings fill up, which is the back-pressure the IO threads see.
// When every ring is empty the thread sleeps on its Doorbell (ring/doorbell.h) until the oldest
// pending batch reaches max_age, at most kMaxSleep. What wakes it earlier: a push while a writer
// waits for work (the rows go out at once), a ring more than half full, a writer that becomes idle
// while a batch is pending (the sink calls Doorbell::became_idle; with nothing pending that only
// makes the next push wake it), new limits, stop. While every writer is busy, pushes do not wake it: the
// blocks wait in the rings, where they would wait in a batch anyway, and the producers make no
// syscall. If the sink is closed, the batch's acks are completed with `shutdown`.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <thread>
#include <vector>

#include "batch/batch.h"
#include "core/block.h"
#include "ring/doorbell.h"
#include "ring/spsc_ring.h"

namespace sluice {

class Batcher {
 public:
  static constexpr size_t kBlocksPerRingPerPass = 64;
  // The longest the thread sleeps without being rung (it also rechecks stop and limits then).
  static constexpr std::chrono::milliseconds kMaxSleep{50};

  // The rings and the sink must outlive the batcher.
  Batcher(std::vector<SpscRing<BlockPtr>*> rings, BatchLimits limits, BatchSink& sink);
  ~Batcher();  // calls stop_and_drain() if still running
  Batcher(const Batcher&) = delete;
  Batcher& operator=(const Batcher&) = delete;

  void start();           // starts its thread
  // The caller guarantees producers have stopped. Drains every ring, flushes all pending batches
  // with trigger `shutdown`, joins the thread. Without start() it drains on the calling thread.
  void stop_and_drain();
  void set_limits(BatchLimits limits);  // thread-safe, takes effect at the next pass
  BatchLimits limits() const;

  struct Stats {
    std::atomic<uint64_t> flushed[kFlushTriggerCount] = {};  // batches, indexed by FlushTrigger
    std::atomic<uint64_t> blocks{0};                 // blocks taken from the rings
    std::atomic<uint64_t> rows{0};                   // rows in those blocks
    std::atomic<uint64_t> sink_closed_blocks{0};     // blocks acked `shutdown` because push() failed
    std::atomic<uint64_t> sleeps{0};                 // times the thread slept (rung or timed out)
  };
  const Stats& stats() const { return stats_; }

  // Producers ring it after pushing into a ring (IngestContext::push_all); the sink calls
  // became_idle() when a writer starts waiting for work (BatchSink::set_idle_doorbell, wired by the
  // constructor).
  Doorbell& doorbell() { return doorbell_; }

  // Number of (table, mask) groups with a pending batch right now (batcher thread / tests only).
  size_t pending_groups() const;

 private:
  struct Pending {
    uint32_t table_id = 0;
    uint64_t column_mask = 0;
    Batch batch;  // batch.blocks empty = nothing pending
  };

  void run();
  // Takes up to `per_ring` blocks from each ring; returns how many it took.
  size_t drain_pass(size_t per_ring);
  void add(BlockPtr block);
  void flush_all(FlushTrigger trigger);
  void flush_aged(std::chrono::steady_clock::time_point now);
  void flush(Pending& p, FlushTrigger trigger);
  void emit(Batch&& batch);
  void refresh_limits();
  void drain_everything();
  bool rings_empty() const;
  std::chrono::steady_clock::time_point wake_deadline(std::chrono::steady_clock::time_point now) const;
  Pending& group(uint32_t table_id, uint64_t column_mask);

  std::vector<SpscRing<BlockPtr>*> rings_;
  BatchSink& sink_;
  size_t next_ring_ = 0;  // round-robin start

  BatchLimits limits_;                // batcher thread's copy
  mutable std::mutex limits_mutex_;   // guards new_limits_
  BatchLimits new_limits_;
  std::atomic<bool> limits_changed_{false};

  std::vector<Pending> groups_;       // few tables: linear scan, last hit cached
  size_t last_group_ = 0;

  std::atomic<bool> stopping_{false};
  Doorbell doorbell_;
  std::thread thread_;
  bool drained_ = false;
  Stats stats_;
};

}  // namespace sluice
