// batch/batch.h — a batch of encoded blocks for one COPY, and the sink that takes batches.
//
//   Batcher ── groups blocks by (table_id, column_mask) ──► Batch ──► BatchSink::push ──► writers
//
// Every block of a batch has the same table and column mask, so the writer streams all of them
// into a single `COPY table (columns) FROM STDIN (FORMAT binary)` without looking inside.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "core/block.h"
#include "ring/doorbell.h"

namespace sluice {

// rows/bytes/age: a limit was reached. idle: a writer was waiting for work and the rings were
// empty, so holding the rows back would only add latency (the database had nothing to do).
enum class FlushTrigger : uint8_t { rows = 0, bytes = 1, age = 2, shutdown = 3, idle = 4 };
inline constexpr size_t kFlushTriggerCount = 5;
const char* flush_trigger_name(FlushTrigger t);  // "rows", "bytes", "age", "shutdown", "idle"

struct BatchLimits {
  size_t max_rows = 20000;                  // flush once a batch holds at least this many rows
  size_t max_bytes = 8 << 20;               // ... or at least this many encoded bytes
  std::chrono::milliseconds max_age{50};    // ... or its oldest block has waited this long
};

struct Batch {
  uint32_t table_id = 0;
  uint64_t column_mask = 0;
  uint32_t rows = 0;
  size_t bytes = 0;                          // sum of the blocks' data sizes
  int64_t min_time = INT64_MAX;              // time column range, PostgreSQL epoch microseconds
  int64_t max_time = INT64_MIN;
  FlushTrigger trigger = FlushTrigger::shutdown;
  std::chrono::steady_clock::time_point first_block_at{};  // when the batcher took the first block
  std::vector<BlockPtr> blocks;              // in arrival order per ring
  bool split_part = false;                   // made by split_batch(): not merged or split again
};

// Byte offset just past the first `rows` binary COPY tuples of data[0, size) (each tuple: int16
// field count, then per field an int32 length, -1 for NULL, and that many bytes). SIZE_MAX when
// the data ends before `rows` tuples or a tuple is malformed.
size_t tuple_offset(const char* data, size_t size, uint32_t rows);

// Splits `batch` into up to `parts` batches to be written at once on several connections, into
// fewer (or none) so that there are at most rows / min_rows of them.
//
// key_fields null: the rows' order does not matter (TableSchema RowOrder::free). The parts are
// consecutive runs of about equal rows: blocks are moved whole where that keeps the parts even; a
// block that straddles a boundary is cut at a tuple (only when both pieces parse as exactly their
// rows' tuples).
// key_fields given (RowOrder::keyed: tuple positions of the order key): each row goes to the part
// that a hash of those fields' bytes picks, so rows with equal keys stay in one part, in order.
// Every block is copied out into one piece per part; nothing is split when a block does not parse
// as its rows' tuples or when one has a spool id or an Idempotency-Key.
//
// Blocks with a spool id or an Idempotency-Key are never cut: their id names exactly the rows
// they hold. Each piece of a cut block shares its Ack (one more expected completion per extra
// piece) and keeps its whole time range (a superset is harmless for the commit hook). `batch`
// keeps the first part; the others are returned in order, all marked split_part (so is `batch`
// when any were made); every part's rows, bytes and time range are recomputed from its blocks.
std::vector<Batch> split_batch(Batch& batch, size_t parts, uint32_t min_rows,
                               const std::vector<int>* key_fields = nullptr);

class BatchSink {
 public:
  virtual ~BatchSink() = default;
  // Blocks while the sink is full (back-pressure up to the rings). Returns false only if the sink
  // is closed; the batch is then left untouched (the caller still owns its blocks and acks).
  virtual bool push(Batch&& batch) = 0;
  // True when a batch pushed now would be picked up at once (a writer is waiting and nothing is
  // queued). The batcher then flushes what it holds instead of waiting for a limit.
  virtual bool idle() const { return false; }
  // The batcher's doorbell (null: none). A sink that can become idle calls became_idle() on it when
  // it does: the sleeping batcher flushes what it holds at once, or, holding nothing, is woken by
  // the next push.
  virtual void set_idle_doorbell(Doorbell* /*doorbell*/) {}
};

}  // namespace sluice
