#include "ingest/ingest_context.h"

#include <boost/asio/post.hpp>

#include "spool/spool.h"

namespace sluice {

IngestContext::IngestContext(boost::asio::io_context& io, BlockRing& ring, metrics::IngestShard& counters,
                             const Catalog& catalog, size_t max_errors_reported)
    : io_(io), ring_(ring), counters_(counters), catalog_(catalog), json_parser_(max_errors_reported) {
  for (const auto& t : catalog.tables) encoders_.push_back(std::make_unique<RowEncoder>(t));
}

void IngestContext::set_resolvers(std::unique_ptr<ThreadResolvers> resolvers, KeyResolverService* service) {
  resolvers_ = std::move(resolvers);
  resolver_service_ = service;
  json_parser_.set_resolvers(resolvers_.get());
  if (line_mapper_) line_mapper_->set_resolvers(resolvers_.get());
}

bool IngestContext::resolve_misses(std::function<void(const std::string& unavailable)> resume) {
  if (!resolvers_ || !resolvers_->has_misses()) return false;
  std::vector<KeyMiss> misses = resolvers_->take_misses();
  if (!resolver_service_) {
    resume("no resolver service");
    return true;
  }
  resolver_service_->submit(std::move(misses), [this, resume = std::move(resume)](std::vector<ResolveResult> results) {
    boost::asio::post(io_, [this, resume = std::move(resume), results = std::move(results)] {
      resolvers_->apply(results, resolvers_->now_ns());
      std::string unavailable;
      for (const auto& r : results) {
        if (r.status == ResolveStatus::unavailable) {
          unavailable = "resolver: " + r.message;
          break;
        }
      }
      resume(unavailable);
    });
  });
  return true;
}

BackpressureAdvice IngestContext::refuse_ring_full() {
  BackpressureAdvice a;
  if (backpressure_) a = backpressure_->when_full();
  if (a.status == 503) {
    counters_.http_database_down.add();
  } else {
    counters_.http_ring_full.add();
  }
  return a;
}

bool IngestContext::cannot_store(size_t bytes) const {
  if (!spool_ || !database_up_ || database_up_()) return false;
  return !spool_->writable() || spool_->full() || !spool_->has_room(bytes);
}

unsigned IngestContext::begin_idempotent(std::string_view header, std::shared_ptr<const std::string>& key,
                                         std::function<void(WriteResponse)>& done, std::string& error) {
  if (header.empty()) return 0;
  if (!valid_idempotency_key(header)) {
    error = "invalid Idempotency-Key (1 to 200 printable ASCII characters, no spaces)";
    return 400;
  }
  key = std::make_shared<const std::string>(header);
  if (!idempotency_gate_) return 0;
  if (!idempotency_gate_->try_enter(header)) {
    error = "a request with this Idempotency-Key is still being processed; retry after it was answered";
    key.reset();
    return 409;
  }
  done = [gate = idempotency_gate_, key, inner = std::move(done)](WriteResponse r) {
    gate->leave(*key);
    inner(std::move(r));
  };
  return 0;
}

void IngestContext::tag_idempotent(std::vector<BlockPtr>& blocks, const std::shared_ptr<const std::string>& key) {
  if (!key) return;
  for (size_t i = 0; i < blocks.size(); ++i) {
    blocks[i]->idempotency_key = key;
    blocks[i]->idempotency_index = static_cast<uint32_t>(i);
  }
}

void IngestContext::push_all(std::vector<BlockPtr>& blocks) {
  for (auto& b : blocks) {
    // Cannot fail: the caller checked has_room_for() and this thread is the only producer.
    const bool pushed = ring_.try_push(std::move(b));
    (void)pushed;
  }
  // Wake the batcher if it sleeps and wants pushes (a writer waits), or the ring is half full.
  if (!blocks.empty() && doorbell_ != nullptr) doorbell_->pushed(ring_.size_approx() * 2 >= ring_.capacity());
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
