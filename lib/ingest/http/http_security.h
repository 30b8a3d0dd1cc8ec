// ingest/http/http_security.h — the part of the Config the HTTP listener can take live.
//
//   Config ──► http_limits()            ──► HttpServer::set_limits   (sizes, timeouts, connection caps)
//          └─► AuthTable(config.auth)   ──► HttpServer::set_auth     (tokens, scopes, rate limits)
//
// apply_http_security() is what start-up calls and what a SIGHUP reload calls with the new,
// validated Config: both setters are thread-safe and take effect for the next request (limits,
// tokens) or the next accept (connection caps); requests in flight finish under the old values.
// TLS settings and the listen address are fixed at start (a restart applies them).
#pragma once

#include "config/config.h"
#include "ingest/http/http_server.h"

namespace sluice {

HttpLimits http_limits(const HttpConfig& http);

// Sets limits and tokens from `config`. Rate-limit buckets of tokens whose name, rate and burst are
// unchanged carry over, so a reload does not refill them.
void apply_http_security(HttpServer& server, const Config& config);

}  // namespace sluice
