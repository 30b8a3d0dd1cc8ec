#include "config/security.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <set>

#include <nlohmann/json.hpp>

namespace sluice {
namespace {

using nlohmann::json;

constexpr std::array<uint8_t, 12> kMappedPrefix = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

// Reports keys of `obj` not in `known` as unknown settings (a misspelt key is an error).
void check_keys(const json& obj, const std::string& path, std::initializer_list<const char*> known,
                std::vector<std::string>& problems) {
  for (auto it = obj.begin(); it != obj.end(); ++it) {
    bool found = false;
    for (const char* k : known) found = found || it.key() == k;
    if (!found) problems.push_back(path + "." + it.key() + ": unknown setting");
  }
}

bool read_string(const json& obj, const std::string& path, const char* key, std::string& out,
                 std::vector<std::string>& problems) {
  auto it = obj.find(key);
  if (it == obj.end()) return false;
  if (!it->is_string()) {
    problems.push_back(path + "." + key + ": expected a string");
    return false;
  }
  out = it->get<std::string>();
  return true;
}

void check_readable(const std::string& path, const std::string& file, std::vector<std::string>& problems) {
  if (::access(file.c_str(), R_OK) != 0) {
    problems.push_back(path + ": \"" + file + "\" cannot be read: " + std::strerror(errno));
  }
}

bool is_lower_hex(std::string_view s) {
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

}  // namespace

bool Cidr::contains(const std::array<uint8_t, 16>& mapped) const {
  const unsigned full = prefix / 8, rest = prefix % 8;
  if (std::memcmp(mapped.data(), address.data(), full) != 0) return false;
  if (rest == 0) return true;
  const uint8_t mask = static_cast<uint8_t>(0xff << (8 - rest));
  return (mapped[full] & mask) == (address[full] & mask);
}

bool Cidr::contains(const sockaddr* sa) const {
  std::array<uint8_t, 16> mapped{};
  if (sa->sa_family == AF_INET) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(sa);
    std::memcpy(mapped.data(), kMappedPrefix.data(), 12);
    std::memcpy(mapped.data() + 12, &in->sin_addr, 4);
  } else if (sa->sa_family == AF_INET6) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(sa);
    std::memcpy(mapped.data(), &in6->sin6_addr, 16);
  } else {
    return false;
  }
  return contains(mapped);
}

bool parse_cidr(std::string_view text, Cidr& out, std::string& error) {
  const auto slash = text.find('/');
  const std::string host(text.substr(0, slash));
  Cidr c;
  unsigned max_prefix = 0, offset = 0;
  in_addr v4{};
  if (host.find(':') == std::string::npos && ::inet_pton(AF_INET, host.c_str(), &v4) == 1) {
    std::memcpy(c.address.data(), kMappedPrefix.data(), 12);
    std::memcpy(c.address.data() + 12, &v4, 4);
    max_prefix = 32;
    offset = 96;
  } else if (::inet_pton(AF_INET6, host.c_str(), c.address.data()) == 1) {
    max_prefix = 128;
  } else {
    error = "\"" + host + "\" is not an IPv4 or IPv6 address";
    return false;
  }
  unsigned prefix = max_prefix;
  if (slash != std::string_view::npos) {
    std::string_view p = text.substr(slash + 1);
    if (p.empty() || p.size() > 3) {
      error = "prefix length \"" + std::string(p) + "\" is not a number 0.." + std::to_string(max_prefix);
      return false;
    }
    prefix = 0;
    for (char ch : p) {
      if (ch < '0' || ch > '9') {
        error = "prefix length \"" + std::string(p) + "\" is not a number 0.." + std::to_string(max_prefix);
        return false;
      }
      prefix = prefix * 10 + static_cast<unsigned>(ch - '0');
    }
    if (prefix > max_prefix) {
      error = "prefix length " + std::to_string(prefix) + " is larger than " + std::to_string(max_prefix);
      return false;
    }
  }
  c.prefix = prefix + offset;
  // Host bits set ("10.1.2.3/8") is almost always a typo for a different network: refuse it.
  Cidr network = c;
  for (unsigned bit = c.prefix; bit < 128; ++bit) network.address[bit / 8] &= static_cast<uint8_t>(~(0x80 >> (bit % 8)));
  if (network.address != c.address) {
    error = "\"" + std::string(text) + "\" has host bits set (did you mean a network address?)";
    return false;
  }
  out = c;
  return true;
}

bool table_pattern_matches(std::string_view pattern, std::string_view table) {
  if (pattern == "*") return true;
  if (pattern.size() >= 2 && pattern.ends_with(".*")) {
    const auto schema = pattern.substr(0, pattern.size() - 1);  // "flux."
    return table.size() > schema.size() && table.starts_with(schema);
  }
  return pattern == table;
}

void parse_tls_config(const json& value, const std::string& path, TlsConfig& out,
                      std::vector<std::string>& problems) {
  if (!value.is_object()) {
    problems.push_back(path + ": expected an object {cert_file, key_file, client_ca_file, require_client_cert}");
    return;
  }
  check_keys(value, path, {"cert_file", "key_file", "client_ca_file", "require_client_cert"}, problems);
  out.enabled = true;
  read_string(value, path, "cert_file", out.cert_file, problems);
  read_string(value, path, "key_file", out.key_file, problems);
  read_string(value, path, "client_ca_file", out.client_ca_file, problems);
  if (auto it = value.find("require_client_cert"); it != value.end()) {
    if (!it->is_boolean()) problems.push_back(path + ".require_client_cert: expected true or false");
    else out.require_client_cert = it->get<bool>();
  }
  if (out.cert_file.empty()) problems.push_back(path + ".cert_file: required (PEM certificate chain)");
  else check_readable(path + ".cert_file", out.cert_file, problems);
  if (out.key_file.empty()) problems.push_back(path + ".key_file: required (PEM private key)");
  else check_readable(path + ".key_file", out.key_file, problems);
  if (!out.client_ca_file.empty()) check_readable(path + ".client_ca_file", out.client_ca_file, problems);
  if (out.require_client_cert && out.client_ca_file.empty()) {
    problems.push_back(path + ".require_client_cert: needs client_ca_file (the CAs client certificates are verified against)");
  }
}

void parse_auth_config(const json& value, const std::string& path, const std::vector<std::string>& table_names,
                       AuthConfig& out, std::vector<std::string>& problems) {
  if (!value.is_object()) {
    problems.push_back(path + ": expected an object {\"tokens\": [...]}");
    return;
  }
  check_keys(value, path, {"tokens"}, problems);
  auto tokens = value.find("tokens");
  if (tokens == value.end()) return;
  if (!tokens->is_array()) {
    problems.push_back(path + ".tokens: expected an array of {name, sha256, tables}");
    return;
  }
  std::set<std::string> names, hashes;
  for (size_t i = 0; i < tokens->size(); ++i) {
    const std::string tp = path + ".tokens[" + std::to_string(i) + "]";
    const json& t = (*tokens)[i];
    if (!t.is_object()) {
      problems.push_back(tp + ": expected an object {name, sha256, tables}");
      continue;
    }
    check_keys(t, tp, {"name", "sha256", "tables", "max_requests_per_second", "burst"}, problems);
    TokenConfig tc;
    if (!read_string(t, tp, "name", tc.name, problems) || tc.name.empty()) {
      if (!t.contains("name") || tc.name.empty()) problems.push_back(tp + ".name: required");
    } else if (!names.insert(tc.name).second) {
      problems.push_back(tp + ".name: token name \"" + tc.name + "\" is used twice");
    }
    if (!read_string(t, tp, "sha256", tc.sha256, problems)) {
      if (!t.contains("sha256")) problems.push_back(tp + ".sha256: required (the output of `sluiced hash-token`)");
    } else if (tc.sha256.size() != 64 || !is_lower_hex(tc.sha256)) {
      // Never echo the value: someone may have pasted the token itself here.
      problems.push_back(tp + ".sha256: expected 64 lower-case hex digits (the output of `sluiced hash-token`; "
                         "not the token itself)");
    } else if (!hashes.insert(tc.sha256).second) {
      problems.push_back(tp + ".sha256: the same token hash is listed twice");
    }
    auto tables = t.find("tables");
    if (tables == t.end()) {
      problems.push_back(tp + ".tables: required (table names, \"schema.*\" or \"*\")");
    } else if (!tables->is_array() || tables->empty()) {
      problems.push_back(tp + ".tables: expected a non-empty array of table names, \"schema.*\" or \"*\"");
    } else {
      for (size_t j = 0; j < tables->size(); ++j) {
        const std::string tpath = tp + ".tables[" + std::to_string(j) + "]";
        const json& p = (*tables)[j];
        if (!p.is_string() || p.get<std::string>().empty()) {
          problems.push_back(tpath + ": expected a table name, \"schema.*\" or \"*\"");
          continue;
        }
        const std::string pattern = p.get<std::string>();
        bool matches_any = false;
        for (const auto& name : table_names) matches_any = matches_any || table_pattern_matches(pattern, name);
        const bool wildcard = pattern == "*" || pattern.ends_with(".*");
        if (!wildcard && pattern.find('*') != std::string::npos) {
          problems.push_back(tpath + ": \"" + pattern + "\" is not a table name, \"schema.*\" or \"*\"");
        } else if (!matches_any) {
          problems.push_back(tpath + ": \"" + pattern + "\" matches no table listed in tables");
        } else {
          tc.tables.push_back(pattern);
        }
      }
    }
    for (auto [key, target] : {std::pair<const char*, double*>{"max_requests_per_second", &tc.max_requests_per_second},
                               std::pair<const char*, double*>{"burst", &tc.burst}}) {
      auto it = t.find(key);
      if (it == t.end()) continue;
      if (!it->is_number() || !std::isfinite(it->get<double>()) || it->get<double>() < 0 ||
          it->get<double>() > 1e9) {
        problems.push_back(tp + "." + key + ": expected a number in [0, 1e9]");
        continue;
      }
      *target = it->get<double>();
    }
    if (tc.burst > 0 && tc.max_requests_per_second == 0) {
      problems.push_back(tp + ".burst: needs max_requests_per_second");
    }
    out.tokens.push_back(std::move(tc));
  }
}

void parse_allow_list(const json& value, const std::string& path, std::vector<Cidr>& out,
                      std::vector<std::string>& problems) {
  if (!value.is_array() || value.empty()) {
    problems.push_back(path + ": expected a non-empty array of networks, e.g. [\"10.0.0.0/8\", \"::1/128\"]");
    return;
  }
  for (size_t i = 0; i < value.size(); ++i) {
    const std::string p = path + "[" + std::to_string(i) + "]";
    if (!value[i].is_string()) {
      problems.push_back(p + ": expected a network such as \"10.0.0.0/8\"");
      continue;
    }
    Cidr c;
    std::string error;
    if (!parse_cidr(value[i].get<std::string>(), c, error)) {
      problems.push_back(p + ": " + error);
      continue;
    }
    out.push_back(c);
  }
}

}  // namespace sluice
