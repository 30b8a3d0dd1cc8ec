// Multi-threaded stress test of SpscRing: several rings, one producer thread each, one consumer
// draining all of them. Every item must arrive exactly once and in order per producer.
//
// Items per producer: SLUICE_RING_STRESS_ITEMS, else 2,000,000 (200,000 under ThreadSanitizer).
#include "ring/spsc_ring.h"

#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <memory>
#include <thread>
#include <vector>

namespace sluice {
namespace {

#if defined(__SANITIZE_THREAD__)
constexpr uint64_t kDefaultItems = 500'000;
#else
constexpr uint64_t kDefaultItems = 2'000'000;
#endif

uint64_t items_per_producer() {
  if (const char* env = std::getenv("SLUICE_RING_STRESS_ITEMS")) {
    const uint64_t n = std::strtoull(env, nullptr, 10);
    if (n > 0) return n;
  }
  return kDefaultItems;
}

struct Item {
  uint32_t producer = 0;
  uint64_t sequence = 0;
};

// Runs `producers` threads, each owning one ring of `capacity`, and drains them on this thread.
// `make` turns (producer, sequence) into a T, `read` gets it back.
template <typename T, typename Make, typename Read>
void run_stress(int producers, size_t capacity, uint64_t items, Make make, Read read) {
  std::vector<std::unique_ptr<SpscRing<T>>> rings;
  for (int p = 0; p < producers; ++p) rings.push_back(std::make_unique<SpscRing<T>>(capacity));

  std::atomic<bool> go{false};
  std::vector<std::thread> threads;
  for (int p = 0; p < producers; ++p) {
    threads.emplace_back([&, p] {
      while (!go.load(std::memory_order_acquire)) std::this_thread::yield();
      SpscRing<T>& ring = *rings[p];
      for (uint64_t seq = 0; seq < items; ++seq) {
        T v = make(static_cast<uint32_t>(p), seq);
        while (!ring.try_push(std::move(v))) std::this_thread::yield();
      }
    });
  }

  std::vector<uint64_t> next(producers, 0);
  uint64_t received = 0, out_of_order = 0, wrong_ring = 0;
  const uint64_t total = items * static_cast<uint64_t>(producers);
  go.store(true, std::memory_order_release);
  T out{};
  while (received < total) {
    bool any = false;
    for (int p = 0; p < producers; ++p) {
      for (int burst = 0; burst < 256 && rings[p]->try_pop(out); ++burst) {
        any = true;
        const Item item = read(out);
        if (item.producer != static_cast<uint32_t>(p)) ++wrong_ring;
        else if (item.sequence != next[p]++) ++out_of_order;
        ++received;
      }
    }
    if (!any) std::this_thread::yield();
  }
  for (auto& t : threads) t.join();

  EXPECT_EQ(received, total);
  EXPECT_EQ(out_of_order, 0u);
  EXPECT_EQ(wrong_ring, 0u);
  for (int p = 0; p < producers; ++p) {
    EXPECT_EQ(next[p], items) << "producer " << p;
    EXPECT_TRUE(rings[p]->empty_approx());
    EXPECT_FALSE(rings[p]->try_pop(out));
  }
}

TEST(SpscRingStress, FourProducersValueItems) {
  const uint64_t items = items_per_producer();
  run_stress<Item>(
      4, 1024, items, [](uint32_t p, uint64_t s) { return Item{p, s}; },
      [](const Item& i) { return i; });
}

// Move-only heap items (like BlockPtr): also checks the payload written before the push is
// visible to the consumer (TSan flags a missing release/acquire here).
TEST(SpscRingStress, ThreeProducersHeapItemsTinyRing) {
  const uint64_t items = items_per_producer() / 8;
  run_stress<std::unique_ptr<Item>>(
      3, 8, items,
      [](uint32_t p, uint64_t s) { return std::make_unique<Item>(Item{p, s}); },
      [](const std::unique_ptr<Item>& i) { return *i; });
}

}  // namespace
}  // namespace sluice
