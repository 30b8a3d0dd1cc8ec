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

// became_idle() with wake_on_idle: the consumer holds work for an idle writer and is woken.
TEST(Doorbell, BecameIdleWakesAConsumerThatWaitsForAnIdleWriter) {
  Doorbell bell;
  std::atomic<bool> woke{false};
  std::thread consumer([&] {
    bell.prepare(false, true);
    woke = bell.wait_until(Doorbell::Clock::now() + 1h);
  });
  while (bell.wakes() == 0) {  // until the consumer is asleep and woken
    std::this_thread::sleep_for(5ms);
    bell.became_idle();
  }
  consumer.join();
  EXPECT_TRUE(woke);
}

// A consumer thread that asked neither for pushes nor for idle writers and sleeps (deadline far
// beyond the test's timeout) once the constructor returns.
struct UninterestedSleeper {
  explicit UninterestedSleeper(Doorbell& bell) : thread([this, &bell] {
    bell.prepare(false, false);
    prepared = true;
    woke = bell.wait_until(Doorbell::Clock::now() + 1h);
  }) {
    while (!prepared) std::this_thread::yield();
    std::this_thread::sleep_for(50ms);  // in wait_until by now
  }
  bool join() {
    thread.join();
    return woke;
  }
  std::atomic<bool> prepared{false}, woke{false};
  std::thread thread;
};

// became_idle() without wake_on_idle and with no push since prepare(): no wake-up, but the next
// (ordinary) push wakes the consumer, which had not asked for pushes when it fell asleep.
TEST(Doorbell, BecameIdleWithNothingPendingOnlyArmsPushes) {
  Doorbell bell;
  UninterestedSleeper consumer(bell);
  bell.became_idle();
  std::this_thread::sleep_for(100ms);
  EXPECT_EQ(bell.wakes(), 0u);
  EXPECT_FALSE(consumer.woke);
  bell.pushed(false);
  EXPECT_TRUE(consumer.join());
  EXPECT_EQ(bell.wakes(), 1u);
}

// A push that came while the consumer did not want pushes (writers busy) is not lost when a writer
// becomes idle afterwards: became_idle() sees the count moved since prepare() and wakes.
TEST(Doorbell, BecameIdleWakesForAPushThatCameBefore) {
  Doorbell bell;
  UninterestedSleeper consumer(bell);
  bell.pushed(false);  // not wanted: no wake-up
  std::this_thread::sleep_for(50ms);
  EXPECT_EQ(bell.wakes(), 0u);
  bell.became_idle();
  EXPECT_TRUE(consumer.join());
}

// The batcher's protocol with a writer that becomes idle while a producer pushes, both racing the
// consumer's prepare(): the consumer reads the writer's state, prepares with wake_on_push = that
// state and nothing pending, looks once more (ring and writer state), then sleeps with a deadline
// far beyond the test's timeout. In every round the item must reach the consumer: a lost wake-up
// hangs the test (ctest TIMEOUT).
TEST(Doorbell, NoPushIsMissedWhileAWriterBecomesIdle) {
#if defined(__SANITIZE_THREAD__)
  constexpr int kRounds = 300;
#else
  constexpr int kRounds = 3000;
#endif
  int slept = 0;
  for (int round = 0; round < kRounds; ++round) {
    SpscRing<uint64_t> ring(4);
    Doorbell bell;
    std::atomic<bool> writer_idle{false}, go{false};
    uint64_t got = 0;
    std::thread consumer([&] {
      while (!go.load()) {
      }
      uint64_t v;
      for (;;) {
        if (ring.try_pop(v)) {
          got = v;
          return;
        }
        const bool waiting = writer_idle.load(std::memory_order_acquire);
        bell.prepare(waiting, false);
        if (!ring.empty_approx() || writer_idle.load(std::memory_order_acquire) != waiting) {
          bell.cancel();
          continue;
        }
        bell.wait_until(Doorbell::Clock::now() + 1h);
        ++slept;
      }
    });
    std::thread writer([&] {
      while (!go.load()) {
      }
      for (int k = 0; k < round % 7; ++k) std::this_thread::yield();
      writer_idle.store(true, std::memory_order_release);
      bell.became_idle();
    });
    std::thread producer([&] {
      while (!go.load()) {
      }
      for (int k = 0; k < round % 5; ++k) std::this_thread::yield();
      ASSERT_TRUE(ring.try_push(uint64_t(round + 1)));
      bell.pushed(false);
    });
    go = true;
    producer.join();
    writer.join();
    consumer.join();
    ASSERT_EQ(got, uint64_t(round + 1)) << "round " << round;
  }
  EXPECT_GT(slept, 0);
}

}  // namespace
}  // namespace sluice
