// ingest/influx_write_service.h — POST /write (InfluxDB 1.x) and /api/v2/write (2.x): line protocol in,
// InfluxDB-shaped answers out.
//
//   body ─► LineMapper (this thread's, from `measurements`) ─► blocks per table + errors (line numbers)
//        ─► ring (all blocks or none: 429 when it is full)
//        ─► answer: ack "committed" (default, X-Sluice-Ack) after the writer's COMMIT; "accepted" at once
//
// Answers: 204 (no body) every line was written; 400 {"code":"invalid","message":"partial write: W lines
// written, N lines rejected; first: …","line":<first bad line>,"errors":[{"line":L,"message":"line L: …"}]}
// when some or all lines were refused (the good ones are stored, as InfluxDB 3 / Cloud do), or a bad
// precision / empty body; 429 ring full, 503 ring full while the database is down
// (Retry-After from the drain rate: ingest/backpressure.h), 503 shutting down (Retry-After: 1); 500 the database refused
// the rows; 504 no commit within http.ack_timeout_ms. Error bodies are {"code":…,"message":…}.
// Precision: v1 n|ns|u|us|ms|s (m and h are refused with 400), v2 ns|us|ms|s; default ns.
// db/rp/org/bucket and Authorization are accepted and not used (measurements alone pick tables).
#pragma once

#include <chrono>
#include <vector>

#include "config/config.h"
#include "ingest/ingest_context.h"
#include "ingest/parse/line_mapping.h"
#include "ingest/http_write_service.h"  // AckMode
#include "ingest/write_handler.h"

namespace sluice {

// The `measurements` config entries as LineMapper mappings.
std::vector<MeasurementMapping> measurement_mappings(const std::vector<MeasurementConfig>& configs);

// Parses the `precision` query parameter of an InfluxDB write; empty → ns. False for anything else
// (including v1's "m" and "h", which sluice does not support).
bool parse_influx_precision(WriteApi api, std::string_view text, EpochPrecision& out);

class InfluxWriteService : public WriteHandler {
 public:
  // context.line_mapper() must be set (else every request is answered 404).
  InfluxWriteService(IngestContext& context, const HttpConfig& config);
  void handle(const WriteRequest& request, std::function<void(WriteResponse)> done) override;
  // SIGHUP reload: the live request settings (max_rows_per_request, ack_timeout_ms).
  // Call on the service's IO thread (post it there); requests already started keep the old ones.
  void apply_live_settings(const HttpConfig& config);

 private:
  // `round` counts the parses of this request that waited for resolver keys (at most kMaxResolveRounds).
  void handle_round(const WriteRequest& request, std::function<void(WriteResponse)> done, int round);
  IngestContext& ctx_;
  size_t max_rows_;
  std::chrono::milliseconds ack_timeout_;
  std::vector<char> allowed_tables_;  // the request token's scope over the catalog (reused)
  AckMode default_ack_ = AckMode::committed;  // http.ack
};

// {"code":"invalid","message":…,"line":first,"errors":[…]} for a result with rejected lines.
std::string influx_partial_write_json(const LineParseResult& result, uint64_t written);
// {"code":code,"message":message}
std::string influx_error_json(std::string_view code, std::string_view message);

}  // namespace sluice
