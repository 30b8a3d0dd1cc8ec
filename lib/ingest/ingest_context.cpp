#include "ingest/ingest_context.h"

#include "spool/spool.h"

namespace sluice {

IngestContext::IngestContext(boost::asio::io_context& io, BlockRing& ring, metrics::IngestShard& counters,
                             const Catalog& catalog, size_t max_errors_reported)
    : io_(io), ring_(ring), counters_(counters), catalog_(catalog), json_parser_(max_errors_reported) {
  for (const auto& t : catalog.tables) encoders_.push_back(std::make_unique<RowEncoder>(t));
}

bool IngestContext::cannot_store(size_t bytes) const {
  if (!spool_ || !database_up_ || database_up_()) return false;
  return !spool_->writable() || !spool_->has_room(bytes);
}

void IngestContext::push_all(std::vector<BlockPtr>& blocks) {
  for (auto& b : blocks) {
    // Cannot fail: the caller checked has_room_for() and this thread is the only producer.
    const bool pushed = ring_.try_push(std::move(b));
    (void)pushed;
  }
  blocks.clear();
}

void IngestContext::count(uint32_t table_id, size_t body_bytes, const JsonParseResult& r) {
  auto& c = counters_.tables[table_id];
  c.bytes_received.add(body_bytes);
  c.rows_received.add(r.rows_accepted + r.rows_rejected);
  c.rows_accepted.add(r.rows_accepted);
  count_rejects(c, r);
}

// RejectKind and metrics::RejectReason list the same reasons in the same order.
static_assert(kRejectKinds == static_cast<size_t>(metrics::RejectReason::count_));

void IngestContext::count_rejects(metrics::TableIngestCounters& c, const JsonParseResult& r) {
  for (size_t k = 0; k < kRejectKinds; ++k) {
    if (r.rejected_by_kind[k] != 0) c.rows_rejected[k].add(r.rejected_by_kind[k]);
  }
}

void IngestContext::count_lines(size_t body_bytes, const LineParseResult& r, uint32_t fallback_table_id) {
  if (counters_.tables.empty()) return;
  const uint32_t main_table = r.blocks.empty() ? fallback_table_id : r.blocks.front()->table_id;
  uint64_t blocked_rows = 0;
  for (const auto& b : r.blocks) {
    auto& c = counters_.tables[b->table_id];
    c.rows_received.add(b->rows);
    c.rows_accepted.add(b->rows);
    blocked_rows += b->rows;
  }
  auto& c = counters_.tables[main_table];
  c.bytes_received.add(body_bytes);
  if (r.rows_accepted > blocked_rows) {  // not expected: every accepted row is in a block
    c.rows_received.add(r.rows_accepted - blocked_rows);
    c.rows_accepted.add(r.rows_accepted - blocked_rows);
  }
  if (r.rows_rejected == 0) return;
  // A rejected line may have no table (unknown measurement): it counts under the body's first table.
  c.rows_received.add(r.rows_rejected);
  count_rejects(c, r);
}

}  // namespace sluice
