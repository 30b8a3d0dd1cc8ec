// core/ack.h — completion of one request's blocks.
//
// A request that produced K blocks creates one Ack expecting K completions. Each writer that
// commits (or gives up on) a block calls complete(). When the last block is done the callback
// runs once, on the writer's thread: it must only hand off (e.g. asio::post to the session's
// executor) and never block. The outcome is the worst of the blocks' outcomes.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>

namespace sluice {

// Ordered from best to worst: a request's outcome is the worst of its blocks' outcomes.
enum class AckOutcome : uint8_t {
  committed = 0,      // every row of every block is committed
  dead_lettered = 1,  // the database refused some rows one by one (constraint, data error); they are
                      // in the dead-letter table and the others are committed: retrying will not help
  failed = 2,         // the database refused a block as a whole; message says why
  shutdown = 3,       // the daemon stopped before the rows could be written
};

struct AckResult {
  AckOutcome outcome = AckOutcome::committed;
  uint64_t rows_committed = 0;
  std::string message;  // first failure message, empty on success
};

class Ack {
 public:
  using Callback = std::function<void(const AckResult&)>;

  Ack(uint32_t expected_blocks, Callback callback)
      : pending_(expected_blocks), callback_(std::move(callback)) {}

  static std::shared_ptr<Ack> make(uint32_t expected_blocks, Callback callback) {
    return std::make_shared<Ack>(expected_blocks, std::move(callback));
  }

  // One more block to wait for: a writer that cuts a block in two calls this before either part
  // can complete (while the block it cuts is still pending, so the callback cannot have run).
  void add_pending(uint32_t blocks = 1) { pending_.fetch_add(blocks, std::memory_order_relaxed); }

  // Thread-safe. Called exactly once per block.
  void complete(AckOutcome outcome, uint64_t rows_committed, std::string_view message = {});

 private:
  std::atomic<uint32_t> pending_;
  std::mutex mutex_;  // guards result_ (only on completion, never on the row path)
  AckResult result_;
  Callback callback_;
};

}  // namespace sluice
