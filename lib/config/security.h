// config/security.h — the security settings: TLS of the HTTP listener, bearer tokens, UDP source networks.
//
//   http.tls {cert_file, key_file, client_ca_file, require_client_cert}   ──► TlsConfig
//   auth.tokens[] {name, sha256, tables, max_requests_per_second, burst}  ──► AuthConfig
//   udp[].allow ["10.0.0.0/8", "::1/128", "192.0.2.7"]                    ──► std::vector<Cidr>
//
// Parsed from config.cpp (parse_tls_config / parse_auth_config / parse_allow_list); every problem is
// reported with its JSON path like the rest of the config. Tokens are stored as the lower-case hex
// SHA-256 of the token (`sluiced hash-token`), never in plain text.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

struct sockaddr;

namespace sluice {

struct TlsConfig {
  bool enabled = false;              // true when the http.tls block is present
  std::string cert_file;             // PEM certificate chain (leaf first)
  std::string key_file;              // PEM private key (unencrypted)
  std::string client_ca_file;        // PEM CA bundle: client certificates are verified against it
  bool require_client_cert = false;  // reject a TLS handshake without a valid client certificate
};

struct TokenConfig {
  std::string name;                  // for logs and the config only; never the token itself
  std::string sha256;                // lower-case hex SHA-256 of the token (64 characters)
  std::vector<std::string> tables;   // "table", "schema.table", "schema.*" or "*"
  double max_requests_per_second = 0;  // 0: unlimited
  double burst = 0;                  // bucket size; 0: max(1, max_requests_per_second)
};

struct AuthConfig {
  std::vector<TokenConfig> tokens;   // empty: writes need no token
};

// An IPv4 or IPv6 network. IPv4 is stored as an IPv4-mapped IPv6 address (::ffff:a.b.c.d, prefix
// + 96), so one comparison serves both families and dual-stack sockets.
struct Cidr {
  std::array<uint8_t, 16> address{};
  unsigned prefix = 0;  // 0..128 (of the mapped form)
  bool contains(const std::array<uint8_t, 16>& mapped) const;
  bool contains(const sockaddr* address) const;  // AF_INET or AF_INET6; other families: false
};

// "10.0.0.0/8", "::1/128", "192.0.2.7" (a host). False with a message naming what is wrong
// (host bits set, prefix out of range, not an address).
bool parse_cidr(std::string_view text, Cidr& out, std::string& error);

// True when `table` (a config table name) is covered by one of the patterns:
// "*" (any), "schema.*" (any table of that schema), or the exact name.
bool table_pattern_matches(std::string_view pattern, std::string_view table);

// Parsers used by parse_config (config.cpp). `path` is the JSON path of the value.
void parse_tls_config(const nlohmann::json& value, const std::string& path, TlsConfig& out,
                      std::vector<std::string>& problems);
void parse_auth_config(const nlohmann::json& value, const std::string& path,
                       const std::vector<std::string>& table_names, AuthConfig& out,
                       std::vector<std::string>& problems);
void parse_allow_list(const nlohmann::json& value, const std::string& path, std::vector<Cidr>& out,
                      std::vector<std::string>& problems);

}  // namespace sluice
