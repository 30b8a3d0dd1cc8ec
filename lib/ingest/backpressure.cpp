#include "ingest/backpressure.h"

#include <algorithm>
#include <cmath>

namespace sluice {

unsigned retry_after_seconds(double backlog_rows, double rows_per_second, unsigned min_s, unsigned max_s) {
  min_s = std::max(1u, min_s);
  max_s = std::max(min_s, max_s);
  if (!(rows_per_second > 0) || !std::isfinite(rows_per_second)) return max_s;
  const double seconds = std::ceil(std::max(0.0, backlog_rows) / rows_per_second);
  if (!(seconds < static_cast<double>(max_s))) return max_s;  // also NaN
  return std::max(min_s, static_cast<unsigned>(seconds));
}

DrainRate::DrainRate(std::chrono::milliseconds interval, double alpha, std::chrono::milliseconds stale)
    : interval_(interval), stale_(stale), alpha_(alpha) {}

void DrainRate::observe(Clock::time_point now, uint64_t total) {
  if (!started_) {
    started_ = true;
    last_at_ = now;
    last_total_ = total;
    return;
  }
  const auto elapsed = now - last_at_;
  if (elapsed < interval_) return;
  const double seconds = std::chrono::duration<double>(elapsed).count();
  const double rate = total >= last_total_ ? static_cast<double>(total - last_total_) / seconds : 0.0;
  rate_ = (!known_ || elapsed > stale_) ? rate : alpha_ * rate + (1 - alpha_) * rate_;
  known_ = true;
  last_at_ = now;
  last_total_ = total;
}

Backpressure::Backpressure(std::function<DeliverySample()> sample, BackpressureOptions options)
    : sample_(std::move(sample)), options_(options) {}

void Backpressure::tick(DrainRate::Clock::time_point now) {
  const DeliverySample s = sample_();
  std::lock_guard<std::mutex> lock(mutex_);
  rate_.observe(now, s.drained_rows);
}

BackpressureAdvice Backpressure::when_full(DrainRate::Clock::time_point now) {
  const DeliverySample s = sample_();
  std::lock_guard<std::mutex> lock(mutex_);
  rate_.observe(now, s.drained_rows);
  BackpressureAdvice a;
  if (!s.database_up) {
    a.status = 503;
    const unsigned lo = std::max(1u, options_.min_s);
    a.retry_after_s = std::clamp(options_.outage_s, lo, std::max(lo, options_.max_s));
    return a;
  }
  a.status = 429;
  if (!rate_.known()) {  // no full interval observed yet: no basis for a longer wait
    a.retry_after_s = std::max(1u, options_.min_s);
    return a;
  }
  a.retry_after_s = retry_after_seconds(static_cast<double>(s.backlog_rows), rate_.rows_per_second(), options_.min_s,
                                        options_.max_s);
  return a;
}

}  // namespace sluice
