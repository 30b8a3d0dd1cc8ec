#include "batch/batch.h"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <memory>
#include <utility>

namespace sluice {

const char* flush_trigger_name(FlushTrigger t) {
  switch (t) {
    case FlushTrigger::rows: return "rows";
    case FlushTrigger::bytes: return "bytes";
    case FlushTrigger::age: return "age";
    case FlushTrigger::shutdown: return "shutdown";
    case FlushTrigger::idle: return "idle";
  }
  return "unknown";
}

size_t tuple_offset(const char* data, size_t size, uint32_t rows) {
  const auto* p = reinterpret_cast<const unsigned char*>(data);
  const size_t n = size;
  size_t pos = 0;
  for (uint32_t r = 0; r < rows; ++r) {
    if (n - pos < 2) return SIZE_MAX;
    const int fields = static_cast<int16_t>((p[pos] << 8) | p[pos + 1]);
    pos += 2;
    if (fields < 0) return SIZE_MAX;  // -1 is the file trailer, never inside a block
    for (int f = 0; f < fields; ++f) {
      if (n - pos < 4) return SIZE_MAX;
      const auto len = static_cast<int32_t>((uint32_t{p[pos]} << 24) | (uint32_t{p[pos + 1]} << 16) |
                                            (uint32_t{p[pos + 2]} << 8) | uint32_t{p[pos + 3]});
      pos += 4;
      if (len == -1) continue;  // NULL
      if (len < 0 || static_cast<size_t>(len) > n - pos) return SIZE_MAX;
      pos += static_cast<size_t>(len);
    }
  }
  return pos;
}

namespace {

// Cuts `b` after its first `keep` tuples (ending at byte `offset`); returns the rest as a new block
// of the same request.
BlockPtr cut_block(Block& b, uint32_t keep, size_t offset) {
  auto tail = std::make_unique<Block>();
  tail->table_id = b.table_id;
  tail->column_mask = b.column_mask;
  tail->rows = b.rows - keep;
  tail->min_time = b.min_time;
  tail->max_time = b.max_time;
  tail->data.assign(b.data.begin() + static_cast<std::ptrdiff_t>(offset), b.data.end());
  tail->ack = b.ack;
  if (tail->ack) tail->ack->add_pending(1);
  b.data.resize(offset);
  b.rows = keep;
  return tail;
}

void recount(Batch& b) {
  b.rows = 0;
  b.bytes = 0;
  b.min_time = INT64_MAX;
  b.max_time = INT64_MIN;
  for (const BlockPtr& block : b.blocks) {
    b.rows += block->rows;
    b.bytes += block->data.size();
    b.min_time = std::min(b.min_time, block->min_time);
    b.max_time = std::max(b.max_time, block->max_time);
  }
}

uint32_t be32(const unsigned char* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}

// Copies the tuples of `b` into pieces[part] (created on first use), the part picked by an FNV-1a
// hash of the key fields (ascending tuple positions). False when `b` does not parse as exactly
// b.rows tuples.
bool partition_block(const Block& b, const std::vector<int>& key_fields, std::vector<BlockPtr>& pieces) {
  constexpr uint64_t kPrime = 1099511628211ull;
  const auto* p = reinterpret_cast<const unsigned char*>(b.data.data());
  const size_t n = b.data.size();
  const size_t parts = pieces.size();
  size_t pos = 0;
  for (uint32_t r = 0; r < b.rows; ++r) {
    const size_t start = pos;
    if (n - pos < 2) return false;
    const int fields = static_cast<int16_t>((p[pos] << 8) | p[pos + 1]);
    pos += 2;
    if (fields < 0) return false;
    uint64_t h = 14695981039346656037ull;
    size_t next_key = 0;
    for (int f = 0; f < fields; ++f) {
      if (n - pos < 4) return false;
      const auto len = static_cast<int32_t>(be32(p + pos));
      pos += 4;
      const bool key = next_key < key_fields.size() && key_fields[next_key] == f;
      if (key) ++next_key;
      if (len == -1) {
        if (key) h = (h ^ 0x100) * kPrime;  // NULL: not the same as any byte string
        continue;
      }
      if (len < 0 || static_cast<size_t>(len) > n - pos) return false;
      if (key) {
        h = (h ^ static_cast<uint64_t>(len)) * kPrime;
        for (int32_t i = 0; i < len; ++i) h = (h ^ p[pos + static_cast<size_t>(i)]) * kPrime;
      }
      pos += static_cast<size_t>(len);
    }
    BlockPtr& piece = pieces[(h ^ (h >> 32)) % parts];
    if (!piece) {
      piece = std::make_unique<Block>();
      piece->table_id = b.table_id;
      piece->column_mask = b.column_mask;
      piece->min_time = b.min_time;
      piece->max_time = b.max_time;
      piece->ack = b.ack;
      piece->data.reserve(n / parts + n / 8);
    }
    piece->data.insert(piece->data.end(), p + start, p + pos);
    ++piece->rows;
  }
  return pos == n;
}

// RowOrder::keyed: every row to the part its key hashes to. Leaves `blocks` untouched and returns
// false when nothing may or can be split.
bool partition_by_key(std::vector<BlockPtr>& blocks, const std::vector<int>& key_fields,
                      std::vector<std::vector<BlockPtr>>& lists) {
  for (const BlockPtr& b : blocks) {
    if (b->spool_id != 0 || b->idempotency_key) return false;
  }
  std::vector<std::vector<BlockPtr>> pieces_of(blocks.size());
  std::vector<bool> used(lists.size(), false);
  for (size_t i = 0; i < blocks.size(); ++i) {
    pieces_of[i].resize(lists.size());
    if (!partition_block(*blocks[i], key_fields, pieces_of[i])) return false;
    for (size_t k = 0; k < lists.size(); ++k) used[k] = used[k] || pieces_of[i][k] != nullptr;
  }
  if (std::count(used.begin(), used.end(), true) < 2) return false;
  // Committed to the split: each block's Ack waits for every piece instead of the block.
  for (size_t i = 0; i < blocks.size(); ++i) {
    uint32_t pieces = 0;
    for (size_t k = 0; k < lists.size(); ++k) {
      if (!pieces_of[i][k]) continue;
      ++pieces;
      lists[k].push_back(std::move(pieces_of[i][k]));
    }
    if (blocks[i]->ack && pieces > 1) blocks[i]->ack->add_pending(pieces - 1);
  }
  blocks.clear();
  return true;
}

std::vector<Batch> gather_parts(Batch& batch, std::vector<std::vector<BlockPtr>>& lists);

}  // namespace

std::vector<Batch> split_batch(Batch& batch, size_t parts, uint32_t min_rows, const std::vector<int>* key_fields) {
  std::vector<Batch> rest;
  const uint64_t total = batch.rows;
  parts = std::min<size_t>(parts, total / std::max<uint32_t>(min_rows, 1));
  if (parts < 2 || batch.blocks.empty()) return rest;
  std::vector<std::vector<BlockPtr>> lists(parts);
  if (key_fields != nullptr) {
    if (!partition_by_key(batch.blocks, *key_fields, lists)) return rest;
    return gather_parts(batch, lists);
  }

  // Part k ends where the running row count reaches boundary(k).
  auto boundary = [&](size_t k) { return total * (k + 1) / parts; };
  size_t k = 0;
  uint64_t done = 0;
  for (BlockPtr& next : batch.blocks) {
    BlockPtr b = std::move(next);
    while (b) {
      while (k + 1 < parts && done >= boundary(k)) ++k;
      if (k + 1 == parts || done + b->rows <= boundary(k)) {
        done += b->rows;
        lists[k].push_back(std::move(b));
        break;
      }
      const uint64_t need = boundary(k) - done;  // 0 < need < b->rows
      if (b->spool_id == 0 && !b->idempotency_key) {
        const auto keep = static_cast<uint32_t>(need);
        const size_t size = b->data.size();
        const size_t offset = tuple_offset(b->data.data(), size, keep);
        if (offset != SIZE_MAX && offset < size &&
            tuple_offset(b->data.data() + offset, size - offset, b->rows - keep) == size - offset) {
          BlockPtr tail = cut_block(*b, keep, offset);
          done += need;
          lists[k].push_back(std::move(b));
          b = std::move(tail);
          continue;
        }
      }
      // Not cut: the whole block goes to the part that holds most of its rows.
      if (need * 2 < b->rows) ++k;
      done += b->rows;
      lists[k].push_back(std::move(b));
    }
  }
  batch.blocks.clear();
  return gather_parts(batch, lists);
}

namespace {

// `batch` gets the first non-empty list, each other one a Batch of its own (see split_batch).
std::vector<Batch> gather_parts(Batch& batch, std::vector<std::vector<BlockPtr>>& lists) {
  std::vector<Batch> rest;
  bool first = true;
  for (auto& list : lists) {
    if (list.empty()) continue;
    if (first) {
      batch.blocks = std::move(list);
      first = false;
      continue;
    }
    Batch part;
    part.table_id = batch.table_id;
    part.column_mask = batch.column_mask;
    part.trigger = batch.trigger;
    part.first_block_at = batch.first_block_at;
    part.blocks = std::move(list);
    part.split_part = true;
    recount(part);
    rest.push_back(std::move(part));
  }
  recount(batch);
  batch.split_part = !rest.empty();
  return rest;
}

}  // namespace

}  // namespace sluice
