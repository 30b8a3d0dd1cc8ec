// split_batch / tuple_offset: cutting a batch between writers that wait for work. The parts must
// hold every tuple exactly once and in order, cut only at tuple boundaries, never cut a block
// whose id names its rows (spool id, Idempotency-Key), and keep the request's Ack waiting for
// every piece.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "batch/batch.h"

namespace sluice {
namespace {

void put16(std::vector<char>& out, int16_t v) {
  out.push_back(static_cast<char>((v >> 8) & 0xff));
  out.push_back(static_cast<char>(v & 0xff));
}
void put32(std::vector<char>& out, int32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<char>((v >> shift) & 0xff));
}

// Tuple i: (int4 i, NULL, text of i % 7 + 1 characters). Returns the offset after each tuple.
std::vector<size_t> append_tuples(std::vector<char>& out, uint32_t first, uint32_t count) {
  std::vector<size_t> ends;
  for (uint32_t i = first; i < first + count; ++i) {
    put16(out, 3);
    put32(out, 4);
    put32(out, static_cast<int32_t>(i));
    put32(out, -1);
    const std::string text(i % 7 + 1, static_cast<char>('a' + i % 26));
    put32(out, static_cast<int32_t>(text.size()));
    out.insert(out.end(), text.begin(), text.end());
    ends.push_back(out.size());
  }
  return ends;
}

// The first int4 of every tuple in `data`, in order.
std::vector<uint32_t> tuple_ids(const std::vector<char>& data) {
  std::vector<uint32_t> ids;
  size_t pos = 0;
  while (pos < data.size()) {
    const size_t next = tuple_offset(data.data() + pos, data.size() - pos, 1);
    EXPECT_NE(next, SIZE_MAX);
    if (next == SIZE_MAX) break;
    uint32_t id = 0;
    for (int k = 0; k < 4; ++k) id = (id << 8) | static_cast<unsigned char>(data[pos + 6 + k]);
    ids.push_back(id);
    pos += next;
  }
  return ids;
}

// An Ack that counts its callbacks and keeps the last result.
struct AckProbe {
  int calls = 0;
  AckResult seen;
  std::shared_ptr<Ack> make(uint32_t blocks) {
    return Ack::make(blocks, [this](const AckResult& r) {
      ++calls;
      seen = r;
    });
  }
};

BlockPtr make_block(uint32_t first, uint32_t rows, std::shared_ptr<Ack> ack = nullptr, int64_t time = 0) {
  auto b = std::make_unique<Block>();
  b->table_id = 3;
  b->column_mask = 5;
  b->rows = rows;
  b->min_time = time;
  b->max_time = time + rows;
  append_tuples(b->data, first, rows);
  b->ack = std::move(ack);
  return b;
}

Batch make_batch(std::vector<BlockPtr> blocks) {
  Batch batch;
  batch.table_id = 3;
  batch.column_mask = 5;
  batch.trigger = FlushTrigger::idle;
  for (auto& b : blocks) {
    batch.rows += b->rows;
    batch.bytes += b->data.size();
    batch.min_time = std::min(batch.min_time, b->min_time);
    batch.max_time = std::max(batch.max_time, b->max_time);
    batch.blocks.push_back(std::move(b));
  }
  return batch;
}

// Every part's tuple ids, concatenated in part order, and checks on each part's counters.
std::vector<uint32_t> all_ids(const Batch& first, const std::vector<Batch>& rest) {
  std::vector<uint32_t> ids;
  auto add = [&](const Batch& part) {
    uint64_t rows = 0, bytes = 0;
    for (const auto& b : part.blocks) {
      const auto block_ids = tuple_ids(b->data);
      EXPECT_EQ(block_ids.size(), b->rows);
      ids.insert(ids.end(), block_ids.begin(), block_ids.end());
      rows += b->rows;
      bytes += b->data.size();
      EXPECT_EQ(b->table_id, 3u);
      EXPECT_EQ(b->column_mask, 5u);
    }
    EXPECT_EQ(part.rows, rows);
    EXPECT_EQ(part.bytes, bytes);
    EXPECT_EQ(part.table_id, 3u);
    EXPECT_EQ(part.column_mask, 5u);
    EXPECT_EQ(part.trigger, FlushTrigger::idle);
  };
  add(first);
  for (const auto& part : rest) add(part);
  return ids;
}

std::vector<uint32_t> iota_ids(uint32_t n) {
  std::vector<uint32_t> ids(n);
  for (uint32_t i = 0; i < n; ++i) ids[i] = i;
  return ids;
}

TEST(TupleOffset, WalksTuplesWithNullsAndStopsAtMalformedData) {
  std::vector<char> data;
  const auto ends = append_tuples(data, 0, 20);
  auto offset = [](const std::vector<char>& d, uint32_t rows) { return tuple_offset(d.data(), d.size(), rows); };
  EXPECT_EQ(offset(data, 0), 0u);
  for (uint32_t r = 1; r <= 20; ++r) EXPECT_EQ(offset(data, r), ends[r - 1]) << r;
  EXPECT_EQ(offset(data, 21), SIZE_MAX);  // fewer tuples than asked for

  std::vector<char> truncated(data.begin(), data.end() - 1);
  EXPECT_EQ(offset(truncated, 19), ends[18]);
  EXPECT_EQ(offset(truncated, 20), SIZE_MAX);

  std::vector<char> trailer;
  put16(trailer, -1);  // the COPY file trailer is not a tuple
  EXPECT_EQ(offset(trailer, 1), SIZE_MAX);

  std::vector<char> bad_length;
  put16(bad_length, 1);
  put32(bad_length, -2);
  EXPECT_EQ(offset(bad_length, 1), SIZE_MAX);

  std::vector<char> too_long;
  put16(too_long, 1);
  put32(too_long, 100);
  too_long.resize(too_long.size() + 99);
  EXPECT_EQ(offset(too_long, 1), SIZE_MAX);
}

TEST(SplitBatch, CutsOneBlockInHalvesAndTheAckWaitsForBoth) {
  AckProbe probe;
  auto ack = probe.make(1);
  std::vector<BlockPtr> blocks;
  blocks.push_back(make_block(0, 1000, ack, 100));
  Batch batch = make_batch(std::move(blocks));
  const size_t bytes = batch.bytes;

  std::vector<Batch> rest = split_batch(batch, 2, 500);
  ASSERT_EQ(rest.size(), 1u);
  EXPECT_EQ(batch.rows, 500u);
  EXPECT_EQ(rest[0].rows, 500u);
  EXPECT_EQ(batch.bytes + rest[0].bytes, bytes);
  EXPECT_TRUE(batch.split_part);
  EXPECT_TRUE(rest[0].split_part);
  EXPECT_EQ(all_ids(batch, rest), iota_ids(1000));
  // A cut block keeps the whole time range (a superset of its rows' range).
  EXPECT_EQ(rest[0].min_time, 100);
  EXPECT_EQ(rest[0].max_time, 1100);
  ASSERT_EQ(rest[0].blocks.size(), 1u);
  EXPECT_EQ(rest[0].blocks[0]->ack, ack);

  batch.blocks[0]->ack->complete(AckOutcome::committed, batch.blocks[0]->rows);
  EXPECT_EQ(probe.calls, 0) << "the Ack must wait for the second half";
  rest[0].blocks[0]->ack->complete(AckOutcome::committed, rest[0].blocks[0]->rows);
  EXPECT_EQ(probe.calls, 1);
  EXPECT_EQ(probe.seen.rows_committed, 1000u);
  EXPECT_EQ(probe.seen.outcome, AckOutcome::committed);
}

TEST(SplitBatch, MovesWholeBlocksWhenTheyFitThePartsAndKeepsOrder) {
  std::vector<BlockPtr> blocks;
  std::vector<const Block*> originals;
  for (uint32_t i = 0; i < 4; ++i) {
    blocks.push_back(make_block(i * 250, 250));
    originals.push_back(blocks.back().get());
  }
  Batch batch = make_batch(std::move(blocks));
  std::vector<Batch> rest = split_batch(batch, 2, 200);
  ASSERT_EQ(rest.size(), 1u);
  ASSERT_EQ(batch.blocks.size(), 2u);
  ASSERT_EQ(rest[0].blocks.size(), 2u);
  EXPECT_EQ(batch.blocks[0].get(), originals[0]);
  EXPECT_EQ(batch.blocks[1].get(), originals[1]);
  EXPECT_EQ(rest[0].blocks[0].get(), originals[2]);
  EXPECT_EQ(rest[0].blocks[1].get(), originals[3]);
  EXPECT_EQ(all_ids(batch, rest), iota_ids(1000));
}

TEST(SplitBatch, ThreePartsOfUnevenBlocks) {
  std::vector<BlockPtr> blocks;
  blocks.push_back(make_block(0, 100));
  blocks.push_back(make_block(100, 700));
  blocks.push_back(make_block(800, 200));
  Batch batch = make_batch(std::move(blocks));
  std::vector<Batch> rest = split_batch(batch, 3, 100);
  ASSERT_EQ(rest.size(), 2u);
  EXPECT_EQ(batch.rows, 333u);
  EXPECT_EQ(rest[0].rows, 333u);
  EXPECT_EQ(rest[1].rows, 334u);
  EXPECT_EQ(all_ids(batch, rest), iota_ids(1000));
}

TEST(SplitBatch, SmallBatchesAreLeftWhole) {
  std::vector<BlockPtr> blocks;
  blocks.push_back(make_block(0, 999));
  Batch batch = make_batch(std::move(blocks));
  const size_t bytes = batch.bytes;
  EXPECT_TRUE(split_batch(batch, 2, 500).empty());  // two parts would be below 500 rows
  EXPECT_TRUE(split_batch(batch, 1, 1).empty());
  EXPECT_EQ(batch.rows, 999u);
  EXPECT_EQ(batch.bytes, bytes);
  EXPECT_EQ(batch.blocks.size(), 1u);
  EXPECT_FALSE(batch.split_part);

  // Fewer parts than asked for when rows / min_rows allows only those.
  std::vector<BlockPtr> more;
  more.push_back(make_block(0, 1000));
  Batch big = make_batch(std::move(more));
  EXPECT_EQ(split_batch(big, 8, 400).size(), 1u);  // 1000 / 400 = 2 parts
  EXPECT_EQ(big.rows, 500u);
}

TEST(SplitBatch, NeverCutsBlocksThatAnIdNames) {
  // A spooled block or one of a request with an Idempotency-Key goes whole to the part that holds
  // most of its rows.
  for (int kind = 0; kind < 2; ++kind) {
    std::vector<BlockPtr> blocks;
    blocks.push_back(make_block(0, 300));
    blocks.push_back(make_block(300, 600));
    if (kind == 0) {
      blocks.back()->spool_id = 42;
    } else {
      blocks.back()->idempotency_key = std::make_shared<const std::string>("key");
    }
    blocks.push_back(make_block(900, 300));
    const Block* named = blocks[1].get();
    Batch batch = make_batch(std::move(blocks));
    std::vector<Batch> rest = split_batch(batch, 2, 100);
    ASSERT_EQ(rest.size(), 1u) << kind;
    // Boundary at 600: the named block (rows 300-899) holds 300 rows on each side, so it stays
    // with the first part.
    ASSERT_EQ(batch.blocks.size(), 2u) << kind;
    EXPECT_EQ(batch.blocks[1].get(), named) << kind;
    EXPECT_EQ(named->rows, 600u) << kind;
    EXPECT_EQ(rest[0].rows, 300u) << kind;
    EXPECT_EQ(all_ids(batch, rest), iota_ids(1200)) << kind;
  }
  // One named block and nothing else: nothing to split.
  std::vector<BlockPtr> blocks;
  blocks.push_back(make_block(0, 1000));
  blocks.back()->spool_id = 7;
  Batch batch = make_batch(std::move(blocks));
  EXPECT_TRUE(split_batch(batch, 2, 100).empty());
  EXPECT_EQ(batch.rows, 1000u);
  EXPECT_FALSE(batch.split_part);
}

TEST(SplitBatch, ABlockWhoseTuplesDoNotMatchItsRowCountIsNotCut) {
  for (const uint32_t claimed : {1200u, 800u}) {  // more, then fewer tuples than it holds
    std::vector<BlockPtr> blocks;
    blocks.push_back(make_block(0, 1000));
    blocks.back()->rows = claimed;
    Batch batch = make_batch(std::move(blocks));
    EXPECT_TRUE(split_batch(batch, 2, 100).empty()) << claimed;
    EXPECT_EQ(batch.rows, claimed);
    ASSERT_EQ(batch.blocks.size(), 1u);
    EXPECT_EQ(tuple_ids(batch.blocks[0]->data), iota_ids(1000));
  }
}

// Tuple id -> its key (field 2, the text), as the keyed split sees it.
std::string key_of(uint32_t id) { return std::string(id % 7 + 1, static_cast<char>('a' + id % 26)); }

TEST(SplitBatchByKey, RowsWithEqualKeysStayInOnePartInTheirOrder) {
  AckProbe probe;
  auto ack = probe.make(2);
  std::vector<BlockPtr> blocks;
  blocks.push_back(make_block(0, 700, ack));
  blocks.push_back(make_block(700, 500, ack));
  blocks.push_back(make_block(1200, 300));  // another request's block without an Ack (UDP)
  Batch batch = make_batch(std::move(blocks));
  const size_t bytes = batch.bytes;
  const std::vector<int> key = {2};
  std::vector<Batch> rest = split_batch(batch, 2, 100, &key);
  ASSERT_EQ(rest.size(), 1u);
  EXPECT_TRUE(batch.split_part);
  EXPECT_TRUE(rest[0].split_part);
  EXPECT_EQ(batch.bytes + rest[0].bytes, bytes);
  EXPECT_EQ(batch.rows + rest[0].rows, 1500u);
  EXPECT_GT(batch.rows, 300u);  // 26 x 7 keys: about even
  EXPECT_GT(rest[0].rows, 300u);

  // Every id once; each key in one part only; within a part, ids in their original order.
  std::map<std::string, int> part_of_key;
  std::vector<int> seen_ids(1500, 0);
  int part_index = 0;
  for (const Batch* part : {&batch, &rest[0]}) {
    std::vector<uint32_t> ids;
    for (const auto& b : part->blocks) {
      const auto block_ids = tuple_ids(b->data);
      EXPECT_EQ(block_ids.size(), b->rows);
      ids.insert(ids.end(), block_ids.begin(), block_ids.end());
    }
    std::map<std::string, uint32_t> last;
    for (uint32_t id : ids) {
      ASSERT_LT(id, 1500u);
      ++seen_ids[id];
      const std::string k = key_of(id);
      auto [it, fresh] = part_of_key.emplace(k, part_index);
      EXPECT_EQ(it->second, part_index) << "key " << k << " in two parts";
      if (last.count(k)) EXPECT_LT(last[k], id) << "key " << k << " out of order";
      last[k] = id;
    }
    ++part_index;
  }
  for (uint32_t id = 0; id < 1500; ++id) EXPECT_EQ(seen_ids[id], 1) << id;

  // The request's Ack now waits for its pieces: complete every piece that carries it.
  for (const Batch* part : {&batch, &rest[0]}) {
    for (const auto& b : part->blocks) {
      if (b->ack) b->ack->complete(AckOutcome::committed, b->rows);
    }
  }
  EXPECT_EQ(probe.calls, 1);
  EXPECT_EQ(probe.seen.rows_committed, 1200u);
}

TEST(SplitBatchByKey, NothingIsSplitWhenItMayNotOrCannotBe) {
  const std::vector<int> key = {2};
  // A spooled block: its id names its rows.
  {
    std::vector<BlockPtr> blocks;
    blocks.push_back(make_block(0, 600));
    blocks.push_back(make_block(600, 600));
    blocks.back()->spool_id = 9;
    Batch batch = make_batch(std::move(blocks));
    EXPECT_TRUE(split_batch(batch, 2, 100, &key).empty());
    EXPECT_EQ(all_ids(batch, {}), iota_ids(1200));
    EXPECT_FALSE(batch.split_part);
  }
  // Every key equal (field 1 is NULL in every tuple): one part only.
  {
    std::vector<BlockPtr> blocks;
    blocks.push_back(make_block(0, 1000));
    Batch batch = make_batch(std::move(blocks));
    const std::vector<int> null_key = {1};
    EXPECT_TRUE(split_batch(batch, 2, 100, &null_key).empty());
    ASSERT_EQ(batch.blocks.size(), 1u);
    EXPECT_EQ(all_ids(batch, {}), iota_ids(1000));
  }
  // A block whose tuples do not match its row count.
  {
    std::vector<BlockPtr> blocks;
    blocks.push_back(make_block(0, 1000));
    blocks.push_back(make_block(1000, 1000));
    blocks.back()->rows = 999;
    Batch batch = make_batch(std::move(blocks));
    EXPECT_TRUE(split_batch(batch, 2, 100, &key).empty());
    ASSERT_EQ(batch.blocks.size(), 2u);
    EXPECT_EQ(batch.rows, 1999u);
    EXPECT_EQ(tuple_ids(batch.blocks[0]->data), iota_ids(1000));
  }
}

}  // namespace
}  // namespace sluice
