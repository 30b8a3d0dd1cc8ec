// ring/doorbell.h — wakes the one consumer thread (the batcher) when it sleeps, and costs the
// producers nothing but a counter increment, a fence and a load while it is awake.
//
//   consumer:  prepare(wake_on_push, wake_on_idle) ─► look for work once more ─► wait_until(deadline) | cancel()
//   producer:  publish (ring push) ─► pushed(urgent)      writer: became_idle()      control: ring()
//
// The consumer announces that it is about to sleep (prepare: a store and a full fence), then checks
// its rings and conditions once more; a producer publishes its work, then (a full fence and a load)
// sees whether the consumer sleeps. With the two fences at least one side sees the other's store,
// so no push is missed (the Dekker pattern). Waking takes the mutex and a futex call, and happens
// only when the consumer really sleeps and wants to be woken: `wake_on_push` false means "pushes
// alone are not worth a wake-up now" (every writer is busy), and only urgent pushes (a ring more
// than half full) and ring() wake it then.
//
// A writer that becomes idle calls became_idle(). It wakes the consumer only when `wake_on_idle`
// (the consumer holds work for an idle writer). Otherwise it arms `wake_on_push`, so the next push
// wakes the consumer, and wakes it now only if a push came in since prepare() (counted in pushes_;
// the writer's store of wake_on_push and the producer's count are the two sides of a second Dekker
// pair). Without this, every batch cost the consumer two sleeps: one until the push, one until
// the writer that took the batch was idle again.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>

namespace sluice {

class Doorbell {
 public:
  using Clock = std::chrono::steady_clock;

  // Consumer: about to sleep. Check for work after this, then call wait_until() or cancel().
  // `wake_on_idle`: a writer becoming idle wakes the consumer (it has work waiting for one).
  void prepare(bool wake_on_push, bool wake_on_idle = true) noexcept {
    wake_on_push_.store(wake_on_push, std::memory_order_relaxed);
    wake_on_idle_.store(wake_on_idle, std::memory_order_relaxed);
    pushes_at_prepare_.store(pushes_.load(std::memory_order_acquire), std::memory_order_relaxed);
    sleeping_.store(true, std::memory_order_relaxed);
    std::atomic_thread_fence(std::memory_order_seq_cst);
  }
  // Consumer: found work after prepare(); does not sleep.
  void cancel() noexcept { sleeping_.store(false, std::memory_order_relaxed); }
  // Consumer: sleeps until rung or `deadline`. Returns true when it was rung.
  bool wait_until(Clock::time_point deadline) {
    std::unique_lock<std::mutex> lock(mutex_);
    const bool rung = cv_.wait_until(lock, deadline, [this] { return rung_; });
    rung_ = false;
    sleeping_.store(false, std::memory_order_relaxed);
    return rung;
  }

  // Producer, after publishing a push. `urgent`: wake the consumer even if it did not ask for pushes.
  void pushed(bool urgent) noexcept {
    pushes_.fetch_add(1, std::memory_order_seq_cst);
    std::atomic_thread_fence(std::memory_order_seq_cst);
    if (!sleeping_.load(std::memory_order_relaxed)) return;
    if (!urgent && !wake_on_push_.load(std::memory_order_relaxed)) return;
    wake();
  }
  // Any thread, after changing what the consumer looks at (a writer became idle, stop, new limits).
  void ring() noexcept {
    std::atomic_thread_fence(std::memory_order_seq_cst);
    if (sleeping_.load(std::memory_order_relaxed)) wake();
  }

  // A writer (or any thread that makes pushes worth a wake-up) became idle: see the header comment.
  void became_idle() noexcept {
    std::atomic_thread_fence(std::memory_order_seq_cst);
    if (!sleeping_.load(std::memory_order_relaxed)) return;
    if (wake_on_idle_.load(std::memory_order_relaxed)) {
      wake();
      return;
    }
    wake_on_push_.store(true, std::memory_order_relaxed);
    std::atomic_thread_fence(std::memory_order_seq_cst);
    // A push that saw wake_on_push still false: wake for it (else it waits for the deadline).
    if (pushes_.load(std::memory_order_relaxed) != pushes_at_prepare_.load(std::memory_order_relaxed)) wake();
  }

  uint64_t wakes() const noexcept { return wakes_.load(std::memory_order_relaxed); }

 private:
  void wake() noexcept {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      rung_ = true;
    }
    cv_.notify_one();
    wakes_.fetch_add(1, std::memory_order_relaxed);
  }

  std::atomic<bool> sleeping_{false};
  std::atomic<bool> wake_on_push_{true};
  std::atomic<bool> wake_on_idle_{true};
  std::atomic<uint64_t> pushes_{0};             // pushed() calls
  std::atomic<uint64_t> pushes_at_prepare_{0};  // pushes_ when the consumer last prepared to sleep
  std::atomic<uint64_t> wakes_{0};  // futex wake-ups sent
  std::mutex mutex_;
  std::condition_variable cv_;
  bool rung_ = false;  // guarded by mutex_
};

}  // namespace sluice
