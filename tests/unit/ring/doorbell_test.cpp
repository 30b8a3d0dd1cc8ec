// ring/doorbell.h: a consumer that sleeps on the doorbell misses no push (producer and consumer
// threads racing on prepare/pushed), and a consumer that does not want pushes is not woken by them.
#include "ring/doorbell.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "ring/spsc_ring.h"

namespace sluice {
namespace {

using namespace std::chrono_literals;

// The producer pushes items one at a time, ringing after each; the consumer sleeps whenever the
// ring is empty, with a deadline far beyond the test's timeout. A lost wake-up would leave the
// consumer asleep with items in the ring: the test would time out (ctest TIMEOUT) instead of ending.
TEST(Doorbell, NoPushIsMissedBySleepingConsumer) {
#if defined(__SANITIZE_THREAD__)
  constexpr uint64_t kItems = 20000;
#else
  constexpr uint64_t kItems = 200000;
#endif
  SpscRing<uint64_t> ring(64);
  Doorbell bell;
  std::atomic<bool> done{false};
  uint64_t received = 0, sum = 0, sleeps = 0;
  std::thread consumer([&] {
    uint64_t v;
    while (received < kItems) {
      if (ring.try_pop(v)) {
        ++received;
        sum += v;
        continue;
      }
      bell.prepare(true);
      if (!ring.empty_approx()) {
        bell.cancel();
        continue;
      }
      bell.wait_until(Doorbell::Clock::now() + 1h);
      ++sleeps;
    }
    done = true;
  });
  for (uint64_t i = 1; i <= kItems; ++i) {
    while (!ring.try_push(uint64_t{i})) std::this_thread::yield();
    bell.pushed(false);
    if (i % 1024 == 0) std::this_thread::sleep_for(50us);  // let the consumer fall asleep now and then
  }
  consumer.join();
  EXPECT_TRUE(done);
  EXPECT_EQ(received, kItems);
  EXPECT_EQ(sum, kItems * (kItems + 1) / 2);
  EXPECT_GT(sleeps, 0u);
  EXPECT_GT(bell.wakes(), 0u);
}

TEST(Doorbell, PushesDoNotWakeAConsumerThatDidNotAskForThem) {
  Doorbell bell;
  std::atomic<bool> woke{false};
  std::thread consumer([&] {
    bell.prepare(false);
    woke = bell.wait_until(Doorbell::Clock::now() + 300ms);
  });
  std::this_thread::sleep_for(50ms);
  bell.pushed(false);  // not urgent: the consumer sleeps on
  consumer.join();
  EXPECT_FALSE(woke);
  EXPECT_EQ(bell.wakes(), 0u);
}

TEST(Doorbell, UrgentPushesAndRingWakeAConsumerThatDidNotAskForPushes) {
  for (int urgent = 0; urgent < 2; ++urgent) {
    Doorbell bell;
    std::atomic<bool> woke{false};
    const auto start = Doorbell::Clock::now();
    std::thread consumer([&] {
      bell.prepare(false);
      woke = bell.wait_until(Doorbell::Clock::now() + 1h);
    });
    while (bell.wakes() == 0) {  // until the consumer is asleep and woken
      std::this_thread::sleep_for(5ms);
      if (urgent) bell.pushed(true); else bell.ring();
    }
    consumer.join();
    EXPECT_TRUE(woke);
    EXPECT_LT(Doorbell::Clock::now() - start, 1h);
  }
}

}  // namespace
}  // namespace sluice
