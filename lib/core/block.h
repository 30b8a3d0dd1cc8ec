// core/block.h — the unit that crosses from an IO thread to the database.
//
//   IO thread: parse → map → encode rows ──► Block{table, columns, rows, bytes, ack}
//        │                                         │  (moved through the SPSC ring, never copied)
//        ▼                                         ▼
//   HTTP session waits on Ack ◄── writer completes ack after COMMIT (or failure)
//
// A Block holds already-encoded PostgreSQL binary COPY tuples (no file header, no trailer) for
// one table and one column set. Every tuple in a block has the same columns, so the writer can
// stream many blocks into one COPY without looking at them.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/ack.h"

namespace sluice {

struct Block {
  uint32_t table_id = 0;      // index into the Catalog
  uint64_t column_mask = 0;   // which omittable (defaulted) columns are present; see TableSchema
  uint32_t rows = 0;
  int64_t min_time = INT64_MAX;  // time column range of the rows, PostgreSQL epoch microseconds
  int64_t max_time = INT64_MIN;
  std::vector<char> data;        // concatenated binary COPY tuples
  std::shared_ptr<Ack> ack;      // null when nobody waits (UDP)
  uint64_t spool_id = 0;         // id of its spool record (lib/spool), 0 when not spooled: the
                                 // writer records it with the rows (exactly once across a crash)
  // Idempotency-Key of the request (null when none) and the block's index in that request: the
  // writer records "key#index" with the rows, so a retried request stores each block once.
  std::shared_ptr<const std::string> idempotency_key;
  uint32_t idempotency_index = 0;
};

using BlockPtr = std::unique_ptr<Block>;

}  // namespace sluice
