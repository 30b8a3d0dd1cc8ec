// ingest/write_handler.h — the seam between the network listeners and the ingest pipeline.
//
//   HttpServer session ── WriteRequest ──► WriteHandler::handle ── parse/map/encode ──► ring
//        ▲                                        │ (after commit, or at once on error)
//        └──────────── done(WriteResponse) ◄──────┘  always invoked on the session's IO thread
//
//   UdpListener ── recvmmsg batch ──► DatagramHandler::on_datagram (one call per datagram)
//
// There is one WriteHandler and one DatagramHandler per IO thread; they are only ever called
// from that thread, so they may keep per-thread parsers, encoders and buffers without locks.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "config/security.h"  // table_pattern_matches

namespace sluice {

// The tables a bearer token may write (auth.tokens[].tables): names, "schema.*" or "*".
struct TableScope {
  std::vector<std::string> patterns;
  bool all = false;  // "*" among the patterns
  bool allows(std::string_view table) const {
    if (all) return true;
    for (const auto& p : patterns) {
      if (table_pattern_matches(p, table)) return true;
    }
    return false;
  }
};

// Which endpoint a request came in on: the JSON rows API or an InfluxDB line protocol one.
enum class WriteApi : uint8_t { json, influx_v1, influx_v2 };

struct WriteRequest {
  WriteApi api = WriteApi::json;  // json: POST /v1/write/{table}; influx_v1: POST /write; influx_v2: POST /api/v2/write
  std::string_view target;        // the request target as sent (path + query), for errors
  std::string_view table;         // {table} of /v1/write/{table}, percent-decoded
  std::string_view content_type;  // e.g. "application/json", "application/x-ndjson"
  std::string_view precision;     // the `precision` query parameter, empty when absent
  std::string_view ack_mode;      // the X-Sluice-Ack header, empty when absent (issue 5)
  std::string_view idempotency_key;  // the Idempotency-Key header, empty when absent
  std::string_view client;        // peer address, for logs
  std::string_view db, rp;        // influx_v1 query parameters (accepted, not used for routing)
  std::string_view org, bucket;   // influx_v2 query parameters (accepted, not used for routing)
  // The (already gunzipped) body. The handler may grow its capacity (for parser padding) and
  // may keep using it until done() has been called; the session does not touch it until then.
  std::string* body = nullptr;
  // The tables the request's token may write; null when auth is off or the token may write any
  // table. HttpServer checks /v1/write/{table} itself; line protocol handlers check each line.
  const TableScope* scope = nullptr;
};

struct WriteResponse {
  unsigned status = 200;
  std::string body;               // JSON
  unsigned retry_after_s = 0;     // > 0 adds a Retry-After header (429/503)
};

class WriteHandler {
 public:
  virtual ~WriteHandler() = default;
  // Must call done exactly once, now or later, on the IO thread that called handle().
  virtual void handle(const WriteRequest& request, std::function<void(WriteResponse)> done) = 0;
};

class DatagramHandler {
 public:
  virtual ~DatagramHandler() = default;
  // `data` is valid for the call only; `capacity` >= size + 64 so parsers may read past the end.
  virtual void on_datagram(const char* data, std::size_t size, std::size_t capacity) = 0;
};

}  // namespace sluice
