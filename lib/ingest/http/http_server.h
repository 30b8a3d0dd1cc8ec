// ingest/http/http_server.h — the ingest HTTP/1.1 listener (Boost.Beast).
//
//   acceptor[i] (SO_REUSEPORT, io_contexts[i]) ──accept──► session, served only on io_contexts[i]
//
//   with set_tls(): TLS handshake first (header_timeout; client certificate verified against
//   client_ca_file, required with require_client_cert) — the session is a template on the stream
//   type, so plain TCP pays nothing for TLS
//   session: wait for bytes (idle_timeout; header_timeout for a new connection)
//        ─► read header (header_timeout, header_limit; Content-Length > max_body_bytes → 413)
//        ─► route: POST /v1/write/{table} | GET /v1/health | 404 | 405 | 415
//                  with enable_line_protocol(): POST /write (InfluxDB 1.x), POST /api/v2/write (2.x)
//                  → line_handlers[i]; GET|HEAD /ping → 204; GET /health → 200 (InfluxDB 2.x style)
//        ─► writes, when set_auth() holds tokens: token (ingest/http/auth.h) → 401 | 403 | 429
//        ─► read body (body_timeout, body_limit) ─► gunzip/inflate (bounded) ─► handlers[i]->handle()
//        ─► done(WriteResponse) on the same thread ─► write response ─► next request (keep-alive)
//
// One request is in flight per connection: the next one is not read before the response is
// written, so pipelined requests are answered in order. Per-session buffers (read buffer, body,
// inflated body) are reused across requests. Over max_connections a connection is answered 503
// (Retry-After: 1) and closed, as is one over max_connections_per_client from the same client IP
// address. /ping, /health and /v1/health never need a token. Every reject is counted in Stats; nothing is logged per request.
// The data plane never throws; start() throws std::runtime_error naming the address.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "config/security.h"
#include "ingest/write_handler.h"

namespace boost::asio {
class io_context;
}

namespace sluice {

struct HttpLimits {
  std::size_t max_body_bytes = 16 << 20;      // compressed and inflated
  std::size_t max_header_bytes = 16 << 10;
  std::chrono::milliseconds header_timeout{10000};  // a new connection's first header, or a
                                                    // header once its first byte arrived
  std::chrono::milliseconds body_timeout{60000};    // reading the body; also writing a response
  std::chrono::milliseconds idle_timeout{60000};    // keep-alive wait for the next request
  std::size_t max_connections = 1024;               // across all IO threads
  std::size_t max_connections_per_client = 0;       // per client IP address; 0 = unlimited
};

class AuthTable;

class HttpServer {
 public:
  struct Stats {
    std::atomic<std::uint64_t> requests_2xx{0};   // responses written, by status class
    std::atomic<std::uint64_t> requests_3xx{0};
    std::atomic<std::uint64_t> requests_4xx{0};
    std::atomic<std::uint64_t> requests_5xx{0};
    std::atomic<std::uint64_t> accepted_connections{0};
    std::atomic<std::uint64_t> rejected_connections{0};  // over max_connections (answered 503)
    std::atomic<std::uint64_t> accept_errors{0};         // e.g. EMFILE; accepting pauses 50 ms
    std::atomic<std::uint64_t> timeouts{0};              // header or body read timed out
    std::atomic<std::uint64_t> body_too_large{0};        // 413 (declared, chunked or inflated)
    std::atomic<std::uint64_t> bad_requests{0};          // malformed HTTP, header too large, bad target
    std::atomic<std::uint64_t> gzip_errors{0};           // 400 invalid gzip/deflate body
    std::atomic<std::uint64_t> unsupported_encoding{0};  // 415
    std::atomic<std::uint64_t> client_rejected_connections{0};  // over max_connections_per_client
    std::atomic<std::uint64_t> tls_handshake_failures{0};  // incl. a missing/invalid client certificate
    std::atomic<std::uint64_t> auth_missing{0};            // 401: no credential (or unparseable)
    std::atomic<std::uint64_t> auth_invalid{0};            // 401: a token that matches none
    std::atomic<std::uint64_t> auth_forbidden{0};          // 403: table outside the token's scope
    std::atomic<std::uint64_t> rate_limited{0};            // 429: the token's request rate exceeded
  };

  // handlers[i] serves io_contexts[i]; both vectors must have the same, non-zero size. The
  // io_contexts and handlers must outlive every session (stop the io_contexts before destroying
  // them). listen_address is "host:port" ("[v6]:port", ":port" = 0.0.0.0).
  HttpServer(std::vector<boost::asio::io_context*> io_contexts, std::string listen_address,
             HttpLimits limits, std::vector<WriteHandler*> handlers);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Call before start(): routes the InfluxDB endpoints (/write, /api/v2/write) to line_handlers[i]
  // (one per io_context) and answers /ping and /health as InfluxDB does, reporting `version`.
  // Without it those paths answer 404.
  void enable_line_protocol(std::vector<WriteHandler*> line_handlers, std::string version);

  // Call before start(): serve HTTPS. Loads the certificate chain, key and client CAs now; throws
  // std::runtime_error naming the file and OpenSSL's reason when one cannot be used.
  void set_tls(const TlsConfig& tls);
  bool tls() const;

  // Bearer tokens for the write endpoints. Null, or a table without tokens: writes are open.
  // Thread-safe; a request uses the table in force when its header was read (live reload).
  void set_auth(std::shared_ptr<const AuthTable> auth);
  std::shared_ptr<const AuthTable> auth() const;

  // Binds one SO_REUSEPORT acceptor per io_context and starts accepting once they run.
  // Throws std::runtime_error naming the address if it cannot bind/listen.
  void start();
  unsigned short port() const { return port_; }

  // Closes the acceptors (on their own threads) and closes idle keep-alive connections. Sessions
  // with a request in flight finish it; its response carries Connection: close. Thread-safe.
  void stop_accepting();

  // New limits apply to requests started afterwards (and max_connections to new accepts).
  void set_limits(HttpLimits limits);
  HttpLimits limits() const;

  std::size_t connections() const;
  const Stats& stats() const;

  struct State;  // shared with sessions, which may outlive the server object

 private:
  std::vector<boost::asio::io_context*> io_contexts_;
  std::vector<WriteHandler*> handlers_;
  std::vector<WriteHandler*> line_handlers_;  // empty: no InfluxDB endpoints
  std::string listen_address_;
  unsigned short port_ = 0;
  std::shared_ptr<State> state_;
  std::vector<std::shared_ptr<void>> listeners_;
};

}  // namespace sluice
