// Retry-After from the drain rate (ingest/backpressure.h): the pure computation, the smoothed
// rate over samples, and the advice of a full ring with the database up and down.
#include "ingest/backpressure.h"

#include <atomic>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

namespace sluice {
namespace {

using namespace std::chrono_literals;
using Clock = DrainRate::Clock;

TEST(RetryAfterSeconds, BacklogOverRateRoundedUpAndClamped) {
  EXPECT_EQ(retry_after_seconds(10000, 1000, 1, 30), 10u);
  EXPECT_EQ(retry_after_seconds(10001, 1000, 1, 30), 11u);   // rounded up
  EXPECT_EQ(retry_after_seconds(500, 1000, 1, 30), 1u);      // under a second: the minimum
  EXPECT_EQ(retry_after_seconds(0, 1000, 1, 30), 1u);        // nothing queued
  EXPECT_EQ(retry_after_seconds(0, 1000, 0, 30), 1u);        // never 0 (an immediate retry)
  EXPECT_EQ(retry_after_seconds(1e9, 1000, 1, 30), 30u);     // the maximum
  EXPECT_EQ(retry_after_seconds(100, 0, 1, 30), 30u);        // nothing drains
  EXPECT_EQ(retry_after_seconds(100, -5, 1, 30), 30u);
  EXPECT_EQ(retry_after_seconds(1e300, 1e-300, 1, 30), 30u); // no overflow
  EXPECT_EQ(retry_after_seconds(100, 10, 5, 60), 10u);
  EXPECT_EQ(retry_after_seconds(100, 100, 5, 60), 5u);
  EXPECT_EQ(retry_after_seconds(100, 1, 5, 2), 5u);          // max below min: min wins
}

TEST(DrainRate, RateFromSamplesAtLeastAnIntervalApartSmoothed) {
  DrainRate r(1000ms, 0.5, 10000ms);
  const auto t0 = Clock::now();
  r.observe(t0, 0);
  EXPECT_FALSE(r.known());
  r.observe(t0 + 500ms, 400);  // too close: ignored
  EXPECT_FALSE(r.known());
  r.observe(t0 + 1000ms, 1000);
  ASSERT_TRUE(r.known());
  EXPECT_DOUBLE_EQ(r.rows_per_second(), 1000.0);
  r.observe(t0 + 2000ms, 4000);  // 3000 rows/s this interval, blended half and half
  EXPECT_DOUBLE_EQ(r.rows_per_second(), 2000.0);
  r.observe(t0 + 3000ms, 4000);  // nothing drained
  EXPECT_DOUBLE_EQ(r.rows_per_second(), 1000.0);
  r.observe(t0 + 23000ms, 14000);  // a stale estimate is replaced, not blended: 10000 rows in 20 s
  EXPECT_DOUBLE_EQ(r.rows_per_second(), 500.0);
  r.observe(t0 + 24000ms, 100);  // a total going backwards (never expected) counts as 0 rows/s
  EXPECT_DOUBLE_EQ(r.rows_per_second(), 250.0);
}

TEST(Backpressure, FullRingAdviceFollowsTheDrainRateAndTheDatabase) {
  DeliverySample sample;
  BackpressureOptions o;
  o.min_s = 1;
  o.max_s = 30;
  o.outage_s = 5;
  Backpressure bp([&] { return sample; }, o);
  const auto t0 = Clock::now();

  sample.backlog_rows = 50000;
  auto a = bp.when_full(t0);  // no rate known yet: the minimum, not a guess
  EXPECT_EQ(a.status, 429u);
  EXPECT_EQ(a.retry_after_s, 1u);

  sample.drained_rows = 10000;  // 10,000 rows/s; 50,000 queued: 5 s
  a = bp.when_full(t0 + 1s);
  EXPECT_EQ(a.status, 429u);
  EXPECT_EQ(a.retry_after_s, 5u);

  sample.drained_rows = 12000;  // slows to 2,000 rows/s: blended 6,000 rows/s, 50,000 queued: 9 s
  a = bp.when_full(t0 + 2s);
  EXPECT_EQ(a.retry_after_s, 9u);

  bp.tick(t0 + 3s);  // nothing drained for a second: blended 3,000 rows/s: 17 s
  a = bp.when_full(t0 + 3500ms);
  EXPECT_EQ(a.retry_after_s, 17u);

  sample.database_up = false;  // the database is down: 503 with the outage hint
  a = bp.when_full(t0 + 4s);
  EXPECT_EQ(a.status, 503u);
  EXPECT_EQ(a.retry_after_s, 5u);

  sample.database_up = true;
  sample.backlog_rows = 0;
  a = bp.when_full(t0 + 5s);
  EXPECT_EQ(a.status, 429u);
  EXPECT_EQ(a.retry_after_s, 1u);
}

// Every IO thread asks at once (run under TSan by scripts/test's tsan tree).
TEST(Backpressure, ConcurrentCallersGetSaneAdvice) {
  std::atomic<uint64_t> drained{0};
  std::atomic<bool> up{true};
  Backpressure bp([&] {
    DeliverySample s;
    s.drained_rows = drained.load();
    s.backlog_rows = 1000;
    s.database_up = up.load();
    return s;
  });
  std::atomic<int> bad{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 2000; ++i) {
        if (t == 0) {
          drained.fetch_add(10);
          if (i % 500 == 0) up.store(!up.load());
        }
        const auto a = (t == 1) ? (bp.tick(), bp.when_full()) : bp.when_full();
        if ((a.status != 429 && a.status != 503) || a.retry_after_s < 1 || a.retry_after_s > 30) ++bad;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(bad.load(), 0);
}

}  // namespace
}  // namespace sluice
