// Config of the security settings: http.tls, auth.tokens, udp[].allow (config/security.h).
#include <netinet/in.h>
#include <arpa/inet.h>

#include <algorithm>
#include <cstdlib>

#include <gtest/gtest.h>

#include "config/config.h"

namespace sluice {
namespace {

const std::string kHash = std::string(64, 'a');

std::string with(const std::string& extra) {
  return R"({"database": {"url": "postgresql://u@h/db"}, "tables": [{"name": "sensor_readings"}, {"name": "flux.mg_meter_readings"}])" +
         (extra.empty() ? std::string() : ", " + extra) + "}";
}

std::vector<std::string> problems(const std::string& text) {
  try {
    parse_config(text, "test.json");
  } catch (const ConfigError& e) {
    return e.problems();
  }
  return {};
}

bool has(const std::vector<std::string>& ps, const std::string& needle) {
  return std::any_of(ps.begin(), ps.end(), [&](const std::string& p) { return p.find(needle) != std::string::npos; });
}

std::string all(const std::vector<std::string>& ps) {
  std::string s;
  for (const auto& p : ps) s += p + "\n";
  return s;
}

TEST(SecurityConfig, DefaultsAreOpenAndPlain) {
  const Config c = parse_config(with(""), "t.json");
  EXPECT_FALSE(c.http.tls.enabled);
  EXPECT_EQ(c.http.max_connections_per_client, 0u);
  EXPECT_TRUE(c.auth.tokens.empty());
}

TEST(SecurityConfig, TokensAreParsed) {
  const Config c = parse_config(with(R"("auth": {"tokens": [
      {"name": "meters", "sha256": ")" + kHash + R"(", "tables": ["flux.*", "sensor_readings"],
       "max_requests_per_second": 50, "burst": 100},
      {"name": "admin", "sha256": ")" + std::string(64, 'b') + R"(", "tables": ["*"]}]},
      "http": {"max_connections_per_client": 8})"), "t.json");
  ASSERT_EQ(c.auth.tokens.size(), 2u);
  EXPECT_EQ(c.auth.tokens[0].name, "meters");
  EXPECT_EQ(c.auth.tokens[0].tables, (std::vector<std::string>{"flux.*", "sensor_readings"}));
  EXPECT_EQ(c.auth.tokens[0].max_requests_per_second, 50);
  EXPECT_EQ(c.auth.tokens[0].burst, 100);
  EXPECT_EQ(c.auth.tokens[1].max_requests_per_second, 0);
  EXPECT_EQ(c.http.max_connections_per_client, 8u);
}

TEST(SecurityConfig, TokenProblemsNameTheirPath) {
  auto ps = problems(with(R"("auth": {"tokens": [
      {"name": "a", "sha256": "s3cret-token", "tables": ["nope", "x*y"]},
      {"name": "a", "sha256": ")" + kHash + R"(", "tables": [], "burst": 5, "color": 1},
      {"sha256": ")" + kHash + R"(", "tables": ["*"], "max_requests_per_second": -1}]})"));
  EXPECT_TRUE(has(ps, "auth.tokens[0].sha256: expected 64 lower-case hex digits")) << all(ps);
  EXPECT_FALSE(has(ps, "s3cret-token")) << "a pasted token must not be echoed: " << all(ps);
  EXPECT_TRUE(has(ps, "auth.tokens[0].tables[0]: \"nope\" matches no table listed in tables")) << all(ps);
  EXPECT_TRUE(has(ps, "auth.tokens[0].tables[1]: \"x*y\" is not a table name")) << all(ps);
  EXPECT_TRUE(has(ps, "auth.tokens[1].name: token name \"a\" is used twice")) << all(ps);
  EXPECT_TRUE(has(ps, "auth.tokens[1].tables: expected a non-empty array")) << all(ps);
  EXPECT_TRUE(has(ps, "auth.tokens[1].burst: needs max_requests_per_second")) << all(ps);
  EXPECT_TRUE(has(ps, "auth.tokens[1].color: unknown setting")) << all(ps);
  EXPECT_TRUE(has(ps, "auth.tokens[2].name: required")) << all(ps);
  EXPECT_TRUE(has(ps, "auth.tokens[2].sha256: the same token hash is listed twice")) << all(ps);
  EXPECT_TRUE(has(ps, "auth.tokens[2].max_requests_per_second: expected a number")) << all(ps);
}

TEST(SecurityConfig, TlsNeedsReadableFilesAndACaForRequiredClientCerts) {
  auto ps = problems(with(R"("http": {"tls": {"cert_file": "/nonexistent/cert.pem", "require_client_cert": true}})"));
  EXPECT_TRUE(has(ps, "http.tls.cert_file: \"/nonexistent/cert.pem\" cannot be read")) << all(ps);
  EXPECT_TRUE(has(ps, "http.tls.key_file: required")) << all(ps);
  EXPECT_TRUE(has(ps, "http.tls.require_client_cert: needs client_ca_file")) << all(ps);
  ps = problems(with(R"("http": {"tls": "yes"})"));
  EXPECT_TRUE(has(ps, "http.tls: expected an object")) << all(ps);
  const std::string src = SLUICE_SOURCE_DIR;  // any readable file will do for the check
  const Config c = parse_config(with(R"("http": {"tls": {"cert_file": ")" + src + R"(/README.md", "key_file": ")" + src +
                                     R"(/README.md", "client_ca_file": ")" + src + R"(/README.md"}})"), "t.json");
  EXPECT_TRUE(c.http.tls.enabled);
  EXPECT_FALSE(c.http.tls.require_client_cert);
}

TEST(SecurityConfig, UdpAllowListsAreCidrs) {
  auto ps = problems(with(R"("udp": [{"listen": "127.0.0.1:1", "table": "sensor_readings",
      "allow": ["10.0.0.0/8", "10.1.2.3/8", "300.1.1.1", "::1/129", "10.0.0.0/x", 5]},
      {"listen": "127.0.0.1:2", "table": "sensor_readings", "allow": []}])"));
  EXPECT_FALSE(has(ps, "udp[0].allow[0]")) << all(ps);
  EXPECT_TRUE(has(ps, "udp[0].allow[1]: \"10.1.2.3/8\" has host bits set")) << all(ps);
  EXPECT_TRUE(has(ps, "udp[0].allow[2]: \"300.1.1.1\" is not an IPv4 or IPv6 address")) << all(ps);
  EXPECT_TRUE(has(ps, "udp[0].allow[3]: prefix length 129 is larger than 128")) << all(ps);
  EXPECT_TRUE(has(ps, "udp[0].allow[4]: prefix length \"x\" is not a number")) << all(ps);
  EXPECT_TRUE(has(ps, "udp[0].allow[5]: expected a network")) << all(ps);
  EXPECT_TRUE(has(ps, "udp[1].allow: expected a non-empty array")) << all(ps);
}

sockaddr_in v4(const char* a) {
  sockaddr_in s{};
  s.sin_family = AF_INET;
  inet_pton(AF_INET, a, &s.sin_addr);
  return s;
}
sockaddr_in6 v6(const char* a) {
  sockaddr_in6 s{};
  s.sin6_family = AF_INET6;
  inet_pton(AF_INET6, a, &s.sin6_addr);
  return s;
}

TEST(Cidr, MatchesBothFamiliesAndMappedAddresses) {
  Cidr net;
  std::string error;
  ASSERT_TRUE(parse_cidr("10.0.0.0/8", net, error)) << error;
  auto a = v4("10.200.3.4"), b = v4("11.0.0.1");
  EXPECT_TRUE(net.contains(reinterpret_cast<sockaddr*>(&a)));
  EXPECT_FALSE(net.contains(reinterpret_cast<sockaddr*>(&b)));
  auto mapped = v6("::ffff:10.9.9.9"), plain6 = v6("2001:db8::1");
  EXPECT_TRUE(net.contains(reinterpret_cast<sockaddr*>(&mapped))) << "dual-stack sockets see IPv4 as mapped";
  EXPECT_FALSE(net.contains(reinterpret_cast<sockaddr*>(&plain6)));

  Cidr host;
  ASSERT_TRUE(parse_cidr("127.0.0.1", host, error));
  auto lo1 = v4("127.0.0.1"), lo2 = v4("127.0.0.2");
  EXPECT_TRUE(host.contains(reinterpret_cast<sockaddr*>(&lo1)));
  EXPECT_FALSE(host.contains(reinterpret_cast<sockaddr*>(&lo2)));

  Cidr net6;
  ASSERT_TRUE(parse_cidr("2001:db8::/33", net6, error)) << error;
  auto in6 = v6("2001:db8:7fff::1"), out6 = v6("2001:db8:8000::1");
  EXPECT_TRUE(net6.contains(reinterpret_cast<sockaddr*>(&in6)));
  EXPECT_FALSE(net6.contains(reinterpret_cast<sockaddr*>(&out6)));

  Cidr any;
  ASSERT_TRUE(parse_cidr("0.0.0.0/0", any, error));
  EXPECT_TRUE(any.contains(reinterpret_cast<sockaddr*>(&b)));
  EXPECT_FALSE(any.contains(reinterpret_cast<sockaddr*>(&plain6))) << "0.0.0.0/0 is IPv4 only";
}

TEST(TablePattern, ExactSchemaWildcardAndStar) {
  EXPECT_TRUE(table_pattern_matches("*", "anything"));
  EXPECT_TRUE(table_pattern_matches("flux.*", "flux.mg_meter_readings"));
  EXPECT_FALSE(table_pattern_matches("flux.*", "fluxx.mg"));
  EXPECT_FALSE(table_pattern_matches("flux.*", "sensor_readings"));
  EXPECT_TRUE(table_pattern_matches("sensor_readings", "sensor_readings"));
  EXPECT_FALSE(table_pattern_matches("sensor_readings", "sensor_readings2"));
}

}  // namespace
}  // namespace sluice

namespace sluice {
namespace {

TEST(SecurityConfig, AuthWithoutTablesIsNotAnUnknownSetting) {
  auto ps = problems(R"({"database": {"url": "postgresql://u@h/db"}, "auth": {"tokens": []}})");
  EXPECT_TRUE(has(ps, "tables: required")) << all(ps);
  EXPECT_FALSE(has(ps, "auth: unknown setting")) << all(ps);
}

}  // namespace
}  // namespace sluice
