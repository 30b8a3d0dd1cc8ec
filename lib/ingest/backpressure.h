// ingest/backpressure.h — what an HTTP write gets when its IO thread's ring is full, and when to
// come back (Retry-After), from how fast the pipeline drains right now.
//
//   IO thread: ring full ──► Backpressure::when_full() ──► 429 + Retry-After   (database up)
//                                   │                 └──► 503 + Retry-After   (no writer connected)
//                                   ▼ (under a mutex; only on the refusal path, never per row)
//   sample(): rows committed or refused by the database so far (writer stats), rows accepted but
//             not yet through the writers (the backlog), whether any writer is connected
//   DrainRate: rows/s between samples at least `interval` apart, smoothed (EWMA)
//   Retry-After = backlog / rate, rounded up, clamped to [min_s, max_s]; max_s when nothing drained in
//   the last interval (min_s before a first interval was observed); outage_s while the database is down (the writers' reconnect backoff cap).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>

namespace sluice {

// Seconds until `backlog_rows` are drained at `rows_per_second`, rounded up and clamped to
// [min_s, max_s]; max_s when the rate is not positive. min_s >= 1 (HTTP delta-seconds of 0 would
// invite an immediate retry).
unsigned retry_after_seconds(double backlog_rows, double rows_per_second, unsigned min_s, unsigned max_s);

// Committed rows per second, from a monotonically increasing total sampled now and then.
class DrainRate {
 public:
  using Clock = std::chrono::steady_clock;
  // Samples closer than `interval` to the previous one are ignored (too noisy); each new interval's
  // rate is blended in with weight `alpha`. An interval longer than `stale` replaces the estimate.
  explicit DrainRate(std::chrono::milliseconds interval = std::chrono::milliseconds(1000), double alpha = 0.5,
                     std::chrono::milliseconds stale = std::chrono::milliseconds(10000));
  void observe(Clock::time_point now, uint64_t total);
  double rows_per_second() const { return rate_; }
  bool known() const { return known_; }  // at least one full interval observed

 private:
  std::chrono::milliseconds interval_, stale_;
  double alpha_;
  bool started_ = false, known_ = false;
  Clock::time_point last_at_{};
  uint64_t last_total_ = 0;
  double rate_ = 0;
};

struct DeliverySample {
  uint64_t drained_rows = 0;  // rows the writers are done with (committed, dead-lettered, failed)
  uint64_t backlog_rows = 0;  // rows accepted and not yet done with
  bool database_up = true;    // at least one writer holds a connection
};

struct BackpressureOptions {
  unsigned min_s = 1;      // Retry-After bounds for 429
  unsigned max_s = 30;
  unsigned outage_s = 5;   // Retry-After of 503 while the database is down
};

struct BackpressureAdvice {
  unsigned status = 429;   // 429 or 503
  unsigned retry_after_s = 1;
};

// Thread-safe; shared by every IO thread.
class Backpressure {
 public:
  Backpressure(std::function<DeliverySample()> sample, BackpressureOptions options = {});
  BackpressureAdvice when_full() { return when_full(DrainRate::Clock::now()); }
  BackpressureAdvice when_full(DrainRate::Clock::time_point now);
  // Takes a sample without advising (keeps the rate recent; optional).
  void tick(DrainRate::Clock::time_point now = DrainRate::Clock::now());

 private:
  std::function<DeliverySample()> sample_;
  BackpressureOptions options_;
  std::mutex mutex_;
  DrainRate rate_;
};

}  // namespace sluice
