// ingest/ingest_context.h — everything one IO thread owns for parsing, encoding and handing off.
//
//   io_context (1 thread) ─┬─ HTTP sessions ──► HttpWriteService ─┐
//                          └─ UDP listeners ──► UdpIngest ────────┼─► parser + encoders ─► ring
//                                                                 │   (this thread only, no locks)
//                                                                 └─► IngestShard counters
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>

#include "catalog/catalog.h"
#include "catalog/resolver.h"
#include "catalog/row_encoder.h"
#include "ingest/backpressure.h"
#include "core/block.h"
#include "ingest/idempotency.h"
#include "ingest/parse/json_rows.h"
#include "ingest/parse/line_mapping.h"
#include "ingest/write_handler.h"
#include "metrics/registry.h"
#include "ring/doorbell.h"
#include "ring/spsc_ring.h"

namespace sluice {
namespace spool {
class Spool;
}

using BlockRing = SpscRing<BlockPtr>;

// A copy of a WriteRequest whose views point into its own strings, for a request parsed again after a
// wait for resolver keys (the body pointer is kept: the session keeps the body until done()).
struct OwnedWriteRequest {
  explicit OwnedWriteRequest(const WriteRequest& r)
      : target(r.target), table(r.table), content_type(r.content_type), precision(r.precision),
        ack_mode(r.ack_mode), client(r.client), db(r.db), rp(r.rp), org(r.org), bucket(r.bucket),
        idempotency_key(r.idempotency_key) {
    request.api = r.api;
    request.target = target;
    request.table = table;
    request.content_type = content_type;
    request.precision = precision;
    request.ack_mode = ack_mode;
    request.client = client;
    request.db = db;
    request.rp = rp;
    request.org = org;
    request.bucket = bucket;
    request.body = r.body;
    request.scope = r.scope;  // owned by the session's AuthTable snapshot, held until done() is called
    request.idempotency_key = idempotency_key;
  }
  OwnedWriteRequest(const OwnedWriteRequest&) = delete;
  OwnedWriteRequest& operator=(const OwnedWriteRequest&) = delete;
  std::string target, table, content_type, precision, ack_mode, client, db, rp, org, bucket, idempotency_key;
  WriteRequest request;
};

class IngestContext {
 public:
  IngestContext(boost::asio::io_context& io, BlockRing& ring, metrics::IngestShard& counters,
                const Catalog& catalog, size_t max_errors_reported);

  boost::asio::io_context& io() { return io_; }
  BlockRing& ring() { return ring_; }
  metrics::IngestShard& counters() { return counters_; }
  const Catalog& catalog() const { return catalog_; }
  JsonRowParser& json_parser() { return json_parser_; }
  RowEncoder& encoder(uint32_t table_id) { return *encoders_[table_id]; }
  JsonParseResult& scratch_result() { return result_; }
  std::vector<std::unique_ptr<RowEncoder>>& encoders() { return encoders_; }  // indexed like catalog.tables

  // The line protocol mapper of this thread (HTTP /write, /api/v2/write and UDP "line"); null when
  // no measurements are configured.
  LineMapper* line_mapper() { return line_mapper_.get(); }
  void set_line_mapper(std::unique_ptr<LineMapper> mapper) {
    line_mapper_ = std::move(mapper);
    if (line_mapper_ && resolvers_) line_mapper_->set_resolvers(resolvers_.get());
  }

  // Dimension resolvers of this thread (null when none are configured); also handed to the parsers.
  ThreadResolvers* resolvers() { return resolvers_.get(); }
  void set_resolvers(std::unique_ptr<ThreadResolvers> resolvers, KeyResolverService* service);
  // Call before a parse: forgets misses of an earlier parse that were not submitted.
  void clear_misses() {
    if (resolvers_) resolvers_->clear_misses();
  }
  // After a parse: when it recorded misses, submits them and returns true; `resume` then runs on this
  // thread once they are answered and stored in the caches, with an empty string, or with the reason
  // when the database could not be asked (answer 503; nothing was cached).
  bool resolve_misses(std::function<void(const std::string& unavailable)> resume);

  // Once closing, no block is pushed any more (shutdown: the batcher may then drain the ring).
  bool closing() const { return closing_; }
  void set_closing() { closing_ = true; }

  // True when every block fits in the ring right now. Only this thread pushes, so room can only grow
  // between this check and the pushes that follow it.
  bool has_room_for(size_t blocks) const { return ring_.capacity() - ring_.size_approx() >= blocks; }

  // What a request that does not fit in the ring gets (ingest/backpressure.h): 429, or 503 while
  // the database is down, with a Retry-After. Without a Backpressure set: 429, Retry-After 1.
  // Counts the refusal (http_ring_full or http_database_down).
  BackpressureAdvice refuse_ring_full();
  void set_backpressure(Backpressure* backpressure) { backpressure_ = backpressure; }
  // The batcher's doorbell, rung after push_all() (set before the IO thread runs; null: none).
  void set_doorbell(Doorbell* doorbell) { doorbell_ = doorbell; }

  // Moves each block into the ring; call only after has_room_for(blocks.size()).
  void push_all(std::vector<BlockPtr>& blocks);

  // The disk spool (null when spool.enabled is false) and whether the database takes writes now
  // (README "Delivery"). Set once before the IO thread runs.
  spool::Spool* spool() const { return spool_; }
  void set_spool(spool::Spool* spool, std::function<bool()> database_up) {
    spool_ = spool;
    database_up_ = std::move(database_up);
  }
  // True when rows cannot be kept safely: the database is unreachable and the spool is full or
  // unwritable (HTTP 503 + Retry-After). Always false without a spool.
  bool cannot_store(size_t bytes) const;

  // Idempotency-Key requests in flight (shared by every IO thread; null: no 409 check).
  IdempotencyGate* idempotency_gate() const { return idempotency_gate_; }
  void set_idempotency_gate(IdempotencyGate* gate) { idempotency_gate_ = gate; }
  // For the write services: validates the request's Idempotency-Key and enters the gate. Returns
  // 0 to go on (then `key` is set when there is one, and `done` is wrapped to leave the gate when
  // it answers), else the status to answer (400 invalid key, 409 in flight) with `error` set.
  unsigned begin_idempotent(std::string_view header, std::shared_ptr<const std::string>& key,
                            std::function<void(WriteResponse)>& done, std::string& error);
  // Tags every block with the key and its index in the request (no-op when key is null).
  static void tag_idempotent(std::vector<BlockPtr>& blocks, const std::shared_ptr<const std::string>& key);

  // Counts a parse result into the per-table counters.
  void count(uint32_t table_id, size_t body_bytes, const JsonParseResult& r);
  static void count_rejects(metrics::TableIngestCounters& c, const JsonParseResult& r);

  // Counts a line protocol result, whose rows may go to several tables: accepted rows per block's
  // table; the body bytes and the rejected lines (whose table is not known) to the first block's
  // table, else to `fallback_table_id`.
  void count_lines(size_t body_bytes, const LineParseResult& r, uint32_t fallback_table_id = 0);

 private:
  boost::asio::io_context& io_;
  BlockRing& ring_;
  metrics::IngestShard& counters_;
  const Catalog& catalog_;
  JsonRowParser json_parser_;
  std::vector<std::unique_ptr<RowEncoder>> encoders_;
  JsonParseResult result_;
  std::unique_ptr<LineMapper> line_mapper_;
  std::unique_ptr<ThreadResolvers> resolvers_;
  KeyResolverService* resolver_service_ = nullptr;
  bool closing_ = false;
  Backpressure* backpressure_ = nullptr;
  Doorbell* doorbell_ = nullptr;
  spool::Spool* spool_ = nullptr;
  IdempotencyGate* idempotency_gate_ = nullptr;
  std::function<bool()> database_up_;
};

}  // namespace sluice
