#include "ingest/http/auth.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <algorithm>
#include <cmath>

#include "ingest/http/http_util.h"

namespace sluice {
namespace {

std::array<uint8_t, 32> sha256(std::string_view text) {
  std::array<uint8_t, 32> digest{};
  unsigned int length = 0;
  if (EVP_Digest(text.data(), text.size(), digest.data(), &length, EVP_sha256(), nullptr) != 1 || length != 32) {
    // Only on a broken OpenSSL installation; a zero digest matches no configured token.
    digest.fill(0);
  }
  return digest;
}

bool from_hex(std::string_view hex, std::array<uint8_t, 32>& out) {
  if (hex.size() != 64) return false;
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  for (size_t i = 0; i < 32; ++i) {
    int hi = nibble(hex[2 * i]), lo = nibble(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return false;
    out[i] = static_cast<uint8_t>(hi << 4 | lo);
  }
  return true;
}

// Standard base64 (RFC 4648 §4), padding optional; false on any other character.
bool base64_decode(std::string_view in, std::string& out) {
  out.clear();
  while (!in.empty() && in.back() == '=') in.remove_suffix(1);
  uint32_t acc = 0;
  int bits = 0;
  for (char c : in) {
    int v;
    if (c >= 'A' && c <= 'Z') v = c - 'A';
    else if (c >= 'a' && c <= 'z') v = c - 'a' + 26;
    else if (c >= '0' && c <= '9') v = c - '0' + 52;
    else if (c == '+') v = 62;
    else if (c == '/') v = 63;
    else return false;
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xff));
    }
  }
  return bits < 6;  // a single leftover sextet is not valid base64
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool scheme_is(std::string_view header, std::string_view scheme, std::string_view& rest) {
  if (header.size() <= scheme.size() || (header[scheme.size()] != ' ' && header[scheme.size()] != '\t')) return false;
  for (size_t i = 0; i < scheme.size(); ++i) {
    char a = header[i], b = scheme[i];
    if (a >= 'A' && a <= 'Z') a = static_cast<char>(a - 'A' + 'a');
    if (b >= 'A' && b <= 'Z') b = static_cast<char>(b - 'A' + 'a');
    if (a != b) return false;
  }
  rest = trim(header.substr(scheme.size() + 1));
  return true;
}

}  // namespace

std::string sha256_hex(std::string_view text) {
  static constexpr char kHex[] = "0123456789abcdef";
  const auto digest = sha256(text);
  std::string out;
  out.reserve(64);
  for (uint8_t b : digest) {
    out.push_back(kHex[b >> 4]);
    out.push_back(kHex[b & 15]);
  }
  return out;
}

TokenBucket::TokenBucket(double rate, double burst, Clock::time_point now)
    : rate_(rate), burst_(std::max(1.0, burst)), tokens_(std::max(1.0, burst)), last_(now) {}

bool TokenBucket::try_take(Clock::time_point now, unsigned& retry_after_s) {
  std::lock_guard lock(mutex_);
  if (now > last_) {
    tokens_ = std::min(burst_, tokens_ + std::chrono::duration<double>(now - last_).count() * rate_);
    last_ = now;
  }
  if (tokens_ >= 1.0) {
    tokens_ -= 1.0;
    return true;
  }
  const double wait = (1.0 - tokens_) / rate_;
  retry_after_s = static_cast<unsigned>(std::clamp(std::ceil(wait), 1.0, 86400.0));
  return false;
}

AuthTable::AuthTable(const AuthConfig& config, const AuthTable* previous) {
  tokens_.reserve(config.tokens.size());
  for (const auto& tc : config.tokens) {
    AuthToken t;
    t.name = tc.name;
    if (!from_hex(tc.sha256, t.digest)) continue;  // load_config rejects these already
    for (const auto& p : tc.tables) {
      if (p == "*") t.scope.all = true;
      t.scope.patterns.push_back(p);
    }
    if (tc.max_requests_per_second > 0) {
      const double burst = tc.burst > 0 ? tc.burst : std::max(1.0, tc.max_requests_per_second);
      if (previous) {
        for (const auto& old : previous->tokens_) {
          if (old.name == t.name && old.bucket && old.bucket->rate() == tc.max_requests_per_second &&
              old.bucket->burst() == std::max(1.0, burst)) {
            t.bucket = old.bucket;
          }
        }
      }
      if (!t.bucket) t.bucket = std::make_shared<TokenBucket>(tc.max_requests_per_second, burst);
    }
    tokens_.push_back(std::move(t));
  }
}

const AuthToken* AuthTable::find(std::string_view token) const {
  const auto digest = sha256(token);
  const AuthToken* match = nullptr;
  for (const auto& t : tokens_) {
    // No early exit: every entry is compared whatever matched before.
    const bool equal = CRYPTO_memcmp(digest.data(), t.digest.data(), digest.size()) == 0;
    if (equal) match = &t;
  }
  return match;
}

CredentialStatus extract_credential(std::string_view authorization, std::string_view query,
                                    bool allow_query_password, std::string& out) {
  out.clear();
  authorization = trim(authorization);
  if (!authorization.empty()) {
    std::string_view rest;
    if (scheme_is(authorization, "Bearer", rest) || scheme_is(authorization, "Token", rest)) {
      if (rest.empty()) return CredentialStatus::malformed;
      out.assign(rest);
      return CredentialStatus::found;
    }
    if (scheme_is(authorization, "Basic", rest)) {
      std::string decoded;
      if (!base64_decode(rest, decoded)) return CredentialStatus::malformed;
      const auto colon = decoded.find(':');
      if (colon == std::string::npos || colon + 1 == decoded.size()) return CredentialStatus::malformed;
      out.assign(decoded, colon + 1);
      return CredentialStatus::found;
    }
    return CredentialStatus::malformed;
  }
  if (allow_query_password && query_param(query, "p", out) && !out.empty()) return CredentialStatus::found;
  out.clear();
  return CredentialStatus::none;
}

}  // namespace sluice
