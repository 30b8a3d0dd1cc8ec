// ingest/idempotency.h — requests carrying an Idempotency-Key (README "Delivery").
//
//   request with key ── valid_idempotency_key? ── no ─► 400
//        │ yes
//        ▼
//   IdempotencyGate::try_enter(key) ── key in flight in this process ─► 409 Conflict (retry later)
//        │ entered                                                       (we do not join the first attempt)
//        ▼
//   blocks carry (key, index) ─► writer records "key#index" with the rows (pg/copy_writer.h); a block
//   already recorded is skipped and acked as committed, so a retry is answered like the original
//        │
//   answer sent ─► leave(key)
//
// One gate for the whole process (shared by the IO threads, so a mutex; only requests with a key
// touch it).
#pragma once

#include <mutex>
#include <string>
#include <string_view>
#include <unordered_set>

namespace sluice {

// 1..200 characters, printable ASCII (0x21-0x7e).
bool valid_idempotency_key(std::string_view key);

class IdempotencyGate {
 public:
  bool try_enter(std::string_view key) {
    std::lock_guard<std::mutex> lock(mutex_);
    return in_flight_.emplace(key).second;
  }
  void leave(const std::string& key) {
    std::lock_guard<std::mutex> lock(mutex_);
    in_flight_.erase(key);
  }

 private:
  std::mutex mutex_;
  std::unordered_set<std::string> in_flight_;
};

}  // namespace sluice
