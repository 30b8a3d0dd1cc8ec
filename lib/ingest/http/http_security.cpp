#include "ingest/http/http_security.h"

#include "ingest/http/auth.h"

namespace sluice {

HttpLimits http_limits(const HttpConfig& http) {
  HttpLimits l;
  l.max_body_bytes = http.max_body_bytes;
  l.max_header_bytes = http.max_header_bytes;
  l.header_timeout = std::chrono::milliseconds(http.header_timeout_ms);
  l.body_timeout = std::chrono::milliseconds(http.body_timeout_ms);
  l.idle_timeout = std::chrono::milliseconds(http.idle_timeout_ms);
  l.max_connections = http.max_connections;
  l.max_connections_per_client = http.max_connections_per_client;
  return l;
}

void apply_http_security(HttpServer& server, const Config& config) {
  server.set_limits(http_limits(config.http));
  auto previous = server.auth();
  server.set_auth(std::make_shared<const AuthTable>(config.auth, previous.get()));
}

}  // namespace sluice
