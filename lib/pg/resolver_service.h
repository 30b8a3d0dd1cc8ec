// pg/resolver_service.h — resolves the cache misses of the IO threads on its own thread and connection.
//
//   IO thread: ThreadResolvers::take_misses() ──submit(misses, callback)──► queue ─┐
//                                                                               ▼
//   service thread (one libpq connection): per key: shared cache → lookup_sql → (create: BEGIN;
//       pg_advisory_xact_lock; lookup again; create_sql; lookup; COMMIT) → shared cache
//                                                                               │
//   callback(results) on the service thread ◄────────────────────────────────────┘
//   (the caller's callback posts them to its IO thread, which applies them and parses again)
//
// One thread works the keys one at a time, so a burst of the same new key from many senders (on any
// IO thread) is created once: the first job creates it, the later ones find it in the shared cache.
// The advisory lock (per resolver) also serialises creation across several sluiced processes, even for
// registries without a unique constraint (flux.mg_device_registry) or with NULL keys (series.subtype).
// A lost connection answers `unavailable` (not cached; the sender retries) and is re-opened on the
// next job. Statements run with statement_timeout 30 s and lock_timeout 10 s (a timed-out key fails
// and is cached as failed for negative_ttl_ms). stop() answers the queued jobs `unavailable` and joins
// the thread.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "catalog/resolver.h"

namespace sluice::pg {

class ResolverService : public KeyResolverService {
 public:
  using Callback = std::function<void(std::vector<ResolveResult>)>;

  struct Counters {  // by resolver, written by the service thread
    std::atomic<uint64_t> lookups{0};  // lookup queries run
    std::atomic<uint64_t> creates{0};  // rows created
    std::atomic<uint64_t> errors{0};   // failed or unavailable keys
  };

  // `set` must outlive the service. Nothing connects before start().
  ResolverService(std::string url, const ResolverSet& set);
  ~ResolverService();
  ResolverService(const ResolverService&) = delete;
  ResolverService& operator=(const ResolverService&) = delete;

  // Start-up check on its own connection: every lookup_sql/create_sql prepares, uses exactly one
  // parameter per key, and lookups return a column. Throws std::runtime_error naming each resolver.
  void check();
  void start();
  void stop();
  // Thread-safe. The callback runs on the service thread (or inside stop()), exactly once.
  void submit(std::vector<KeyMiss> misses, Callback callback) override;

  const Counters& counters(uint32_t resolver) const { return *counters_[resolver]; }

 private:
  struct Job {
    std::vector<KeyMiss> misses;
    Callback callback;
  };
  void run();
  ResolveResult resolve(const KeyMiss& miss);

  std::string url_;
  const ResolverSet& set_;
  std::vector<std::unique_ptr<Counters>> counters_;
  std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<Job> queue_;
  bool stopping_ = false;
  bool stopped_ = false;
  std::thread thread_;
  struct Impl;
  std::unique_ptr<Impl> impl_;  // connection and shared cache (service thread only)
};

}  // namespace sluice::pg
