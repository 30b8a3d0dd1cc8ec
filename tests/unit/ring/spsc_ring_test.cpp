// Single-threaded semantics of SpscRing: capacity rounding, full/empty, wrap-around, move-only T.
#include "ring/spsc_ring.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>

namespace sluice {
namespace {

TEST(SpscRing, CapacityRoundsUpToPowerOfTwo) {
  EXPECT_EQ(SpscRing<int>(0).capacity(), 1u);
  EXPECT_EQ(SpscRing<int>(1).capacity(), 1u);
  EXPECT_EQ(SpscRing<int>(3).capacity(), 4u);
  EXPECT_EQ(SpscRing<int>(8).capacity(), 8u);
  EXPECT_EQ(SpscRing<int>(1000).capacity(), 1024u);
}

TEST(SpscRing, EmptyPopLeavesOutputUntouched) {
  SpscRing<int> ring(4);
  EXPECT_TRUE(ring.empty_approx());
  EXPECT_EQ(ring.size_approx(), 0u);
  int out = 42;
  EXPECT_FALSE(ring.try_pop(out));
  EXPECT_EQ(out, 42);
}

TEST(SpscRing, FullPushFailsAndKeepsValue) {
  SpscRing<std::unique_ptr<int>> ring(4);
  for (int i = 0; i < 4; ++i) {
    auto v = std::make_unique<int>(i);
    ASSERT_TRUE(ring.try_push(std::move(v)));
    EXPECT_EQ(v, nullptr);
  }
  EXPECT_EQ(ring.size_approx(), 4u);
  auto extra = std::make_unique<int>(99);
  EXPECT_FALSE(ring.try_push(std::move(extra)));
  ASSERT_NE(extra, nullptr);
  EXPECT_EQ(*extra, 99);

  std::unique_ptr<int> out;
  ASSERT_TRUE(ring.try_pop(out));
  EXPECT_EQ(*out, 0);
  EXPECT_EQ(ring.size_approx(), 3u);
  // One slot is free again.
  EXPECT_TRUE(ring.try_push(std::move(extra)));
  EXPECT_FALSE(ring.try_push(std::make_unique<int>(100)));
  for (int expected : {1, 2, 3, 99}) {
    ASSERT_TRUE(ring.try_pop(out));
    EXPECT_EQ(*out, expected);
  }
  EXPECT_FALSE(ring.try_pop(out));
  EXPECT_TRUE(ring.empty_approx());
}

TEST(SpscRing, WrapsAroundManyTimesInOrder) {
  SpscRing<uint64_t> ring(8);
  uint64_t next_push = 0, next_pop = 0;
  // Pushes and pops in uneven chunks so the indices cross the array end at every offset.
  for (int round = 0; round < 1000; ++round) {
    const int pushes = 1 + round % 8;
    for (int i = 0; i < pushes; ++i) {
      uint64_t v = next_push;
      if (!ring.try_push(std::move(v))) break;
      ++next_push;
    }
    const int pops = 1 + (round * 5) % 7;
    for (int i = 0; i < pops; ++i) {
      uint64_t out = 0;
      if (!ring.try_pop(out)) break;
      ASSERT_EQ(out, next_pop);
      ++next_pop;
    }
    ASSERT_EQ(ring.size_approx(), next_push - next_pop);
  }
  uint64_t out = 0;
  while (ring.try_pop(out)) ASSERT_EQ(out, next_pop++);
  EXPECT_EQ(next_pop, next_push);
  EXPECT_GT(next_push, 3000u);
}

struct Counted {
  static inline int alive = 0;
  std::unique_ptr<std::string> payload;
  explicit Counted(std::string s) : payload(std::make_unique<std::string>(std::move(s))) { ++alive; }
  Counted(Counted&& o) noexcept : payload(std::move(o.payload)) { ++alive; }
  Counted& operator=(Counted&& o) noexcept {
    payload = std::move(o.payload);
    return *this;
  }
  Counted(const Counted&) = delete;
  Counted& operator=(const Counted&) = delete;
  ~Counted() { --alive; }
};

TEST(SpscRing, MoveOnlyTypeIsConstructedAndDestroyedExactlyOnce) {
  Counted::alive = 0;
  {
    SpscRing<Counted> ring(4);
    for (int i = 0; i < 3; ++i) {
      Counted c("item" + std::to_string(i));
      ASSERT_TRUE(ring.try_push(std::move(c)));
    }
    EXPECT_EQ(Counted::alive, 3);  // the three moved-from locals are gone, three live in the ring
    Counted out("x");
    ASSERT_TRUE(ring.try_pop(out));
    EXPECT_EQ(*out.payload, "item0");
    EXPECT_EQ(Counted::alive, 3);  // out + two in the ring
  }
  // The ring's destructor destroys what was never popped.
  EXPECT_EQ(Counted::alive, 0);
}

}  // namespace
}  // namespace sluice
