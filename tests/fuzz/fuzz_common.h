// tests/fuzz/fuzz_common.h — invariants the fuzz targets check on every parse result.
//
// A result that breaks one of them aborts (libFuzzer then saves the input): block row counts add up
// to rows_accepted, every block decodes into exactly `rows` tuples whose field count matches the
// table and the block's column_mask, time ranges are consistent, and the error list is bounded.
#pragma once

#include <cstdio>
#include <cstdlib>

#include "catalog/catalog.h"
#include "encoder_test_util.h"
#include "ingest/parse/json_rows.h"

namespace sluice::fuzz {

[[noreturn]] inline void fail(const char* what) {
  std::fprintf(stderr, "fuzz invariant broken: %s\n", what);
  std::abort();
}

inline void check(bool ok, const char* what) {
  if (!ok) fail(what);
}

// Fields in a tuple of a block with `mask`: the always-sent columns plus the omittable ones in mask.
inline size_t expected_fields(const TableSchema& t, uint64_t mask) {
  size_t n = 0;
  for (const Column& c : t.columns) {
    if (c.omit_bit < 0 || (mask >> c.omit_bit & 1)) ++n;
  }
  return n;
}

// `tables` is indexed by Block::table_id.
inline void check_result(const JsonParseResult& r, const std::vector<TableSchema>& tables, size_t max_errors) {
  check(r.errors.size() <= max_errors, "more errors kept than max_errors");
  check(r.errors.size() <= r.rows_rejected, "more errors than rejected rows");
  if (!r.syntax_ok) {
    check(r.blocks.empty() && r.rows_accepted == 0 && r.rows_rejected == 0, "syntax error with results");
    return;
  }
  uint64_t rows = 0;
  for (const auto& b : r.blocks) {
    check(b != nullptr, "null block");
    check(b->table_id < tables.size(), "block table_id out of range");
    const TableSchema& t = tables[b->table_id];
    check((b->column_mask & ~t.all_omittable) == 0, "column_mask has bits of no column");
    check(b->rows > 0, "empty block kept");
    rows += b->rows;
    const auto tuples = test::decode_all(b->data);
    check(tuples.size() == b->rows, "block does not decode into `rows` tuples");
    const size_t fields = expected_fields(t, b->column_mask);
    for (const auto& tuple : tuples) check(tuple.fields.size() == fields, "tuple field count != columns of mask");
    if (t.time_column >= 0 && t.columns[t.time_column].not_null) {
      check(b->min_time <= b->max_time, "time range inverted");
    }
  }
  check(rows == r.rows_accepted, "block rows != rows_accepted");
}

}  // namespace sluice::fuzz
