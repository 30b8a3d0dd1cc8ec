#include "batch/batcher.h"

#include <pthread.h>

#include <algorithm>
#include <limits>
#include <utility>

namespace sluice {

using Clock = std::chrono::steady_clock;

Batcher::Batcher(std::vector<SpscRing<BlockPtr>*> rings, BatchLimits limits, BatchSink& sink)
    : rings_(std::move(rings)), sink_(sink), limits_(limits), new_limits_(limits) {
  groups_.reserve(16);
  sink_.set_idle_doorbell(&doorbell_);
}

Batcher::~Batcher() {
  stop_and_drain();
  sink_.set_idle_doorbell(nullptr);
}

void Batcher::start() {
  if (thread_.joinable() || drained_) return;
  thread_ = std::thread([this] { run(); });
}

void Batcher::stop_and_drain() {
  if (drained_) return;
  stopping_.store(true, std::memory_order_release);
  doorbell_.ring();
  if (thread_.joinable()) {
    thread_.join();  // run() drains before it returns
  } else {
    drain_everything();
  }
  drained_ = true;
}

void Batcher::set_limits(BatchLimits limits) {
  std::lock_guard<std::mutex> lock(limits_mutex_);
  new_limits_ = limits;
  limits_changed_.store(true, std::memory_order_release);
  doorbell_.ring();
}

BatchLimits Batcher::limits() const {
  std::lock_guard<std::mutex> lock(limits_mutex_);
  return new_limits_;
}

void Batcher::refresh_limits() {
  if (!limits_changed_.load(std::memory_order_acquire)) return;
  {
    std::lock_guard<std::mutex> lock(limits_mutex_);
    limits_ = new_limits_;
    limits_changed_.store(false, std::memory_order_relaxed);
  }
  // Pending batches that already reach the new size limits go out now.
  for (Pending& p : groups_) {
    if (p.batch.blocks.empty()) continue;
    if (p.batch.rows >= limits_.max_rows) {
      flush(p, FlushTrigger::rows);
    } else if (p.batch.bytes >= limits_.max_bytes) {
      flush(p, FlushTrigger::bytes);
    }
  }
}

size_t Batcher::pending_groups() const {
  return static_cast<size_t>(std::count_if(groups_.begin(), groups_.end(),
                                           [](const Pending& p) { return !p.batch.blocks.empty(); }));
}

void Batcher::run() {
  pthread_setname_np(pthread_self(), "sluice-batcher");  // ps -L, top -H, gdb
  while (!stopping_.load(std::memory_order_acquire)) {
    refresh_limits();
    const size_t taken = drain_pass(kBlocksPerRingPerPass);
    const auto now = Clock::now();
    flush_aged(now);
    // The rings are empty for now and a writer is waiting: waiting for a limit would only add
    // latency. Under load the writers stay busy, so batches grow until one is free again.
    if (taken == 0 && sink_.idle()) flush_all(FlushTrigger::idle);
    if (taken != 0) continue;
    // Nothing to take: sleep. A writer waiting for work makes every push worth a wake-up; else
    // only a writer becoming idle, a filling ring, new limits, stop or the age limit are.
    const bool writer_waiting = sink_.idle();
    const bool pending = pending_groups() != 0;
    if (writer_waiting && pending) continue;  // a writer became idle since the check above
    // A writer that becomes idle wakes this thread only when a batch waits for it; else it only
    // makes the next push wake it (Doorbell::became_idle).
    doorbell_.prepare(writer_waiting, pending);
    // Look once more after prepare(): a writer that changed state, or a push, since the first look
    // may have found the doorbell not yet armed.
    if (stopping_.load(std::memory_order_acquire) || limits_changed_.load(std::memory_order_acquire) ||
        !rings_empty() || sink_.idle() != writer_waiting) {
      doorbell_.cancel();
      continue;
    }
    doorbell_.wait_until(wake_deadline(now));
    stats_.sleeps.fetch_add(1, std::memory_order_relaxed);
  }
  drain_everything();
}

bool Batcher::rings_empty() const {
  for (const SpscRing<BlockPtr>* r : rings_) {
    if (!r->empty_approx()) return false;
  }
  return true;
}

Clock::time_point Batcher::wake_deadline(Clock::time_point now) const {
  Clock::time_point deadline = now + kMaxSleep;
  for (const Pending& p : groups_) {
    if (!p.batch.blocks.empty()) deadline = std::min(deadline, p.batch.first_block_at + limits_.max_age);
  }
  return deadline;
}

void Batcher::drain_everything() {
  refresh_limits();
  // Producers have stopped, so the rings only shrink: drain until a whole pass finds nothing.
  while (drain_pass(std::numeric_limits<size_t>::max()) != 0) {
  }
  flush_all(FlushTrigger::shutdown);
}

void Batcher::flush_all(FlushTrigger trigger) {
  for (Pending& p : groups_) {
    if (!p.batch.blocks.empty()) flush(p, trigger);
  }
}

size_t Batcher::drain_pass(size_t per_ring) {
  const size_t n = rings_.size();
  if (n == 0) return 0;
  size_t taken = 0;
  BlockPtr block;
  for (size_t k = 0; k < n; ++k) {
    SpscRing<BlockPtr>& ring = *rings_[(next_ring_ + k) % n];
    for (size_t i = 0; i < per_ring && ring.try_pop(block); ++i) {
      ++taken;
      if (block) add(std::move(block));
    }
  }
  next_ring_ = (next_ring_ + 1) % n;
  return taken;
}

Batcher::Pending& Batcher::group(uint32_t table_id, uint64_t column_mask) {
  if (last_group_ < groups_.size()) {
    Pending& p = groups_[last_group_];
    if (p.table_id == table_id && p.column_mask == column_mask) return p;
  }
  for (size_t i = 0; i < groups_.size(); ++i) {
    if (groups_[i].table_id == table_id && groups_[i].column_mask == column_mask) {
      last_group_ = i;
      return groups_[i];
    }
  }
  Pending p;
  p.table_id = table_id;
  p.column_mask = column_mask;
  groups_.push_back(std::move(p));
  last_group_ = groups_.size() - 1;
  return groups_.back();
}

void Batcher::add(BlockPtr block) {
  stats_.blocks.fetch_add(1, std::memory_order_relaxed);
  stats_.rows.fetch_add(block->rows, std::memory_order_relaxed);

  Pending& p = group(block->table_id, block->column_mask);
  const size_t block_bytes = block->data.size();
  const bool alone_rows = block->rows >= limits_.max_rows;
  const bool alone_bytes = block_bytes >= limits_.max_bytes;
  if ((alone_rows || alone_bytes) && !p.batch.blocks.empty()) {
    // An oversized block goes out on its own; what was pending before it goes out first.
    flush(p, alone_rows ? FlushTrigger::rows : FlushTrigger::bytes);
  }

  Batch& b = p.batch;
  if (b.blocks.empty()) {
    b.table_id = p.table_id;
    b.column_mask = p.column_mask;
    b.first_block_at = Clock::now();
  }
  b.rows += block->rows;
  b.bytes += block_bytes;
  b.min_time = std::min(b.min_time, block->min_time);
  b.max_time = std::max(b.max_time, block->max_time);
  b.blocks.push_back(std::move(block));

  if (b.rows >= limits_.max_rows) {
    flush(p, FlushTrigger::rows);
  } else if (b.bytes >= limits_.max_bytes) {
    flush(p, FlushTrigger::bytes);
  }
}

void Batcher::flush_aged(Clock::time_point now) {
  for (Pending& p : groups_) {
    if (!p.batch.blocks.empty() && now - p.batch.first_block_at >= limits_.max_age) {
      flush(p, FlushTrigger::age);
    }
  }
}

void Batcher::flush(Pending& p, FlushTrigger trigger) {
  const size_t block_count = p.batch.blocks.size();
  Batch out = std::move(p.batch);
  out.trigger = trigger;
  p.batch = Batch{};
  p.batch.blocks.reserve(block_count);  // next batch of this table is likely as large
  emit(std::move(out));
}

void Batcher::emit(Batch&& batch) {
  stats_.flushed[static_cast<size_t>(batch.trigger)].fetch_add(1, std::memory_order_relaxed);
  if (sink_.push(std::move(batch))) return;
  // The sink is closed: nobody will write these blocks, so their senders learn it now.
  for (BlockPtr& block : batch.blocks) {
    if (block && block->ack) block->ack->complete(AckOutcome::shutdown, 0, "writer pool is closed");
  }
  stats_.sink_closed_blocks.fetch_add(batch.blocks.size(), std::memory_order_relaxed);
}

}  // namespace sluice
