#include "ingest/parse/row_blocks.h"

#include <memory>

namespace sluice {

void RowBlocks::begin(std::vector<BlockPtr>& out, size_t tables, size_t reserve_hint) {
  out_ = &out;
  current_.assign(tables, kNone);
  reserve_hint_ = reserve_hint;
}

size_t RowBlocks::open_block(uint32_t table_id, uint64_t mask) {
  auto b = std::make_unique<Block>();
  b->table_id = table_id;
  b->column_mask = mask;
  b->data.reserve(reserve_hint_);
  reserve_hint_ = 0;  // only the first block of a body is likely to be large
  out_->push_back(std::move(b));
  return out_->size() - 1;
}

bool RowBlocks::end_row(RowEncoder& encoder, uint32_t table_id) {
  if (table_id >= current_.size()) current_.resize(table_id + 1, kNone);
  size_t& current = current_[table_id];
  if (current == kNone) current = open_block(table_id, 0);
  Block* b = (*out_)[current].get();
  const size_t before = b->data.size();
  uint64_t mask = 0;
  int64_t min_time = INT64_MAX, max_time = INT64_MIN;
  if (!encoder.end_row(b->data, mask, min_time, max_time)) return false;
  if (mask != b->column_mask) {
    if (b->rows == 0) {
      b->column_mask = mask;
    } else {
      // Another column set: move the tuple to the block of (table, mask).
      size_t target = kNone;
      for (size_t i = 0; i < out_->size(); ++i) {
        if ((*out_)[i]->table_id == table_id && (*out_)[i]->column_mask == mask) target = i;
      }
      if (target == kNone) target = open_block(table_id, mask);
      Block& t = *(*out_)[target];
      b = (*out_)[current].get();
      t.data.insert(t.data.end(), b->data.begin() + static_cast<std::ptrdiff_t>(before), b->data.end());
      b->data.resize(before);
      current = target;
      b = &t;
    }
  }
  ++b->rows;
  if (min_time < b->min_time) b->min_time = min_time;
  if (max_time > b->max_time) b->max_time = max_time;
  return true;
}

void RowBlocks::finish() {
  size_t kept = 0;
  for (size_t i = 0; i < out_->size(); ++i) {
    if ((*out_)[i]->rows > 0) (*out_)[kept++] = std::move((*out_)[i]);
  }
  out_->resize(kept);
}

}  // namespace sluice
