// ingest/http/auth.h — bearer tokens for the ingest listener: who may write, where, how often.
//
//   Config.auth ──► AuthTable (immutable; swapped whole by HttpServer::set_auth, read once per request)
//
//   request ── extract_credential(Authorization | ?p=) ──► token text
//           ── AuthTable::find: SHA-256, compared in constant time with every configured hash
//              ├─ none / no match ─► 401 (+ WWW-Authenticate)
//              ├─ AuthToken::scope.allows(table)? no ─► 403 (line protocol: per line, see README)
//              └─ TokenBucket::try_take? no ─► 429 + Retry-After
//
// Tokens are only ever held as SHA-256 digests; a token's text lives in the request buffer only and
// is never logged. Token buckets are shared by every IO thread (one small mutex each); a reload keeps
// the bucket of a token whose name, rate and burst are unchanged, so reloading is no way around a limit.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "config/security.h"
#include "ingest/write_handler.h"

namespace sluice {

// Lower-case hex SHA-256 of `text` (what `sluiced hash-token` prints and auth.tokens[].sha256 holds).
std::string sha256_hex(std::string_view text);

class TokenBucket {
 public:
  using Clock = std::chrono::steady_clock;
  // rate: tokens per second (> 0); burst: bucket size (>= 1). Starts full.
  TokenBucket(double rate, double burst, Clock::time_point now = Clock::now());
  // Takes one token; false when empty, with retry_after_s = whole seconds until one is available (>= 1).
  bool try_take(Clock::time_point now, unsigned& retry_after_s);
  double rate() const { return rate_; }
  double burst() const { return burst_; }

 private:
  std::mutex mutex_;
  const double rate_, burst_;
  double tokens_;
  Clock::time_point last_;
};

struct AuthToken {
  std::string name;                    // config name: safe for logs and (bounded) metric labels
  std::array<uint8_t, 32> digest{};    // SHA-256 of the token
  TableScope scope;
  std::shared_ptr<TokenBucket> bucket;  // null: no rate limit
};

class AuthTable {
 public:
  // `previous` (may be null): buckets of tokens with the same name, rate and burst are kept.
  explicit AuthTable(const AuthConfig& config, const AuthTable* previous = nullptr);
  bool enabled() const { return !tokens_.empty(); }
  // The token whose digest matches SHA-256(token), or null. Every configured digest is compared (in
  // constant time), so timing reveals neither which token matched nor how much of it did.
  const AuthToken* find(std::string_view token) const;
  const std::vector<AuthToken>& tokens() const { return tokens_; }

 private:
  std::vector<AuthToken> tokens_;
};

enum class CredentialStatus { none, found, malformed };

// The token a request carries, the ways InfluxDB clients send it:
//   Authorization: Bearer <token> | Token <token> (InfluxDB 2.x) | Basic base64(user:<token>) (1.x)
//   query ?p=<token> (InfluxDB 1.x, with u=<user>; only when allow_query_password)
// The user name is ignored. `out` receives the token (reused buffer).
CredentialStatus extract_credential(std::string_view authorization, std::string_view query,
                                    bool allow_query_password, std::string& out);

}  // namespace sluice
