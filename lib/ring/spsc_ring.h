// ring/spsc_ring.h — bounded lock-free single-producer/single-consumer ring.
//
//   IO thread (the one producer) ── try_push(BlockPtr&&) ──► [ slots ] ──► try_pop() ── batcher (the one consumer)
//
// One ring per IO thread; the ring is the only hand-off on the data path. A full ring is
// back-pressure: try_push returns false and leaves the value with the caller, it never spins,
// blocks, allocates or drops. Capacity is rounded up to a power of two and fixed at construction.
//
// Layout (after rigtorp's SPSCQueue): the write index and the producer's cached copy of the read
// index share one cache line, the read index and the consumer's cached copy of the write index
// another, so each side normally touches only its own line and reads the other side's index only
// when its cached copy says "full" / "empty". The slot array is padded by a cache line on both
// ends so neighbouring heap objects never share a line with the first/last slot. Indices grow
// monotonically (wrap at 2^64) and are masked into the slot array, so all `capacity` slots are used.
// Publication uses release stores / acquire loads; nothing else is synchronised.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <new>
#include <type_traits>
#include <utility>

namespace sluice {

template <typename T>
class SpscRing {
  static_assert(std::is_nothrow_move_constructible_v<T>, "SpscRing<T> needs a nothrow-movable T");
  static_assert(std::is_nothrow_destructible_v<T>, "SpscRing<T> needs a nothrow-destructible T");

 public:
  static constexpr size_t kCacheLine = 64;

  // Capacity is min_capacity rounded up to a power of two (at least 1).
  explicit SpscRing(size_t min_capacity)
      : capacity_(round_up_pow2(min_capacity)), mask_(capacity_ - 1) {
    const size_t bytes = (capacity_ + 2 * kPadSlots) * sizeof(T);
    storage_ = static_cast<T*>(::operator new(bytes, std::align_val_t{kCacheLine}));
  }

  SpscRing(const SpscRing&) = delete;
  SpscRing& operator=(const SpscRing&) = delete;

  ~SpscRing() {
    size_t r = read_.load(std::memory_order_relaxed);
    const size_t w = write_.load(std::memory_order_relaxed);
    for (; r != w; ++r) slot(r)->~T();
    ::operator delete(static_cast<void*>(storage_), std::align_val_t{kCacheLine});
  }

  // Producer only. Returns false when the ring is full; `v` is then left untouched.
  bool try_push(T&& v) noexcept {
    const size_t w = write_.load(std::memory_order_relaxed);
    if (w - cached_read_ >= capacity_) {
      cached_read_ = read_.load(std::memory_order_acquire);
      if (w - cached_read_ >= capacity_) return false;
    }
    ::new (static_cast<void*>(slot(w))) T(std::move(v));
    write_.store(w + 1, std::memory_order_release);
    return true;
  }

  // Consumer only. Returns false when the ring is empty; `out` is then left untouched.
  bool try_pop(T& out) noexcept(std::is_nothrow_move_assignable_v<T>) {
    const size_t r = read_.load(std::memory_order_relaxed);
    if (r == cached_write_) {
      cached_write_ = write_.load(std::memory_order_acquire);
      if (r == cached_write_) return false;
    }
    T* p = slot(r);
    out = std::move(*p);
    p->~T();
    read_.store(r + 1, std::memory_order_release);
    return true;
  }

  // Number of items; exact when called from a quiescent ring, approximate while both sides run.
  size_t size_approx() const noexcept {
    // Read the read index first: it can only have advanced less than the write index we load after.
    const size_t r = read_.load(std::memory_order_acquire);
    const size_t w = write_.load(std::memory_order_acquire);
    const size_t n = w - r;
    return n > capacity_ ? capacity_ : n;
  }
  bool empty_approx() const noexcept {
    return write_.load(std::memory_order_acquire) == read_.load(std::memory_order_acquire);
  }
  size_t capacity() const noexcept { return capacity_; }

 private:
  // Enough whole slots to cover one cache line before and after the live slots.
  static constexpr size_t kPadSlots = (kCacheLine - 1) / sizeof(T) + 1;

  static size_t round_up_pow2(size_t n) {
    size_t c = 1;
    while (c < n) c <<= 1;
    return c;
  }
  T* slot(size_t index) const noexcept { return storage_ + kPadSlots + (index & mask_); }

  // Read-only after construction; shared by both sides without contention.
  alignas(kCacheLine) const size_t capacity_;
  const size_t mask_;
  T* storage_ = nullptr;

  // Producer's line.
  alignas(kCacheLine) std::atomic<size_t> write_{0};
  size_t cached_read_ = 0;

  // Consumer's line.
  alignas(kCacheLine) std::atomic<size_t> read_{0};
  size_t cached_write_ = 0;

  // Keep the next object off the consumer's line (sizeof is a multiple of the alignment anyway).
  char tail_pad_[kCacheLine - sizeof(std::atomic<size_t>) - sizeof(size_t)];
};

}  // namespace sluice
