// parse/row_blocks.h — files each encoded row under the Block of its (table, column set).
//
//   parser ── RowEncoder::put_*() ──► RowBlocks::end_row(encoder, table)
//                                        │ encoder.end_row() appends the tuple to the table's current
//                                        │ block; a row with another column mask moves to (or opens)
//                                        ▼ the block of that mask
//                          result blocks: one per (table, mask), rows in body order within each
//
// Every tuple of a block has the same columns, which is what lets the writer stream many blocks
// into one COPY. Used by the JSON and the line protocol parsers; one per parser, reused.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "catalog/row_encoder.h"
#include "core/block.h"

namespace sluice {

class RowBlocks {
 public:
  // Starts a body: blocks are appended to `out`; the first block of a table reserves `reserve_hint`.
  void begin(std::vector<BlockPtr>& out, size_t tables, size_t reserve_hint);

  // Completes the encoder's row into its block. False (nothing added) when the encoder refused the
  // row; its error() says why.
  bool end_row(RowEncoder& encoder, uint32_t table_id);

  // Drops blocks left empty (every row that reached them failed in end_row).
  void finish();

 private:
  static constexpr size_t kNone = static_cast<size_t>(-1);
  size_t open_block(uint32_t table_id, uint64_t mask);

  std::vector<BlockPtr>* out_ = nullptr;
  std::vector<size_t> current_;  // per table: index in *out_ of the block rows go to, or kNone
  size_t reserve_hint_ = 0;
};

}  // namespace sluice
