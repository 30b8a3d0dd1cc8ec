// ingest/http_write_service.h — POST /v1/write/{table}: JSON rows in, JSON verdict out.
//
//   body ─► JsonRowParser ─► blocks (good rows) + errors (bad rows, with index and reason)
//        ─► ring (all blocks or none: 429 when it is full)
//        ─► answer: ack "committed" (default) after the writer's COMMIT; "accepted" at once
//
// Status codes: 200 every row stored; 400 some or all rows rejected (the good ones are still
// stored; the body lists the bad ones), or the body is not JSON (with the byte offset); 404 unknown
// table; 429 ring full / 503 ring full while the database is down (Retry-After from
// the drain rate: ingest/backpressure.h); 503 shutting down, or the spool is full (spooled acks; any
// ack while the database is unreachable), with Retry-After; 500 the database refused the rows;
// 504 the commit did not happen within http.ack_timeout_ms (the rows may still be committed later).
#pragma once

#include <chrono>

#include "config/config.h"
#include "ingest/ingest_context.h"
#include "ingest/write_handler.h"

namespace sluice {

// committed: after the COMMIT; spooled: after the rows are fsynced to the disk spool; accepted:
// once they are in the ring (README "Delivery"). Empty text → committed.
enum class AckMode : uint8_t { committed, accepted, spooled };
bool parse_ack_mode(std::string_view text, AckMode& out);

class HttpWriteService : public WriteHandler {
 public:
  HttpWriteService(IngestContext& context, const HttpConfig& config);
  void handle(const WriteRequest& request, std::function<void(WriteResponse)> done) override;
  // SIGHUP reload: the live request settings (max_rows_per_request, ack_timeout_ms, default_precision).
  // Call on the service's IO thread (post it there); requests already started keep the old ones.
  void apply_live_settings(const HttpConfig& config);

 private:
  // `round` counts the parses of this request that waited for resolver keys (at most kMaxResolveRounds).
  void handle_round(const WriteRequest& request, std::function<void(WriteResponse)> done, int round);
  IngestContext& ctx_;
  EpochPrecision default_precision_;
  size_t max_rows_;
  std::chrono::milliseconds ack_timeout_;
  AckMode default_ack_ = AckMode::committed;  // http.ack
};

// The JSON verdict body: {"accepted":N,"rejected":M,"errors":[{"row":i,"column":"c","message":"m"}]}
std::string verdict_json(uint64_t accepted, uint64_t rejected, const std::vector<RowError>& errors,
                         std::string_view error = {});
std::string json_escape(std::string_view s);

}  // namespace sluice
