#include "ingest/http/http_util.h"
#include "ingest/http/listen_address.h"

#include <gtest/gtest.h>

namespace sluice {
namespace {

TEST(HttpUtil, SplitTarget) {
  auto a = split_target("/v1/write/t?precision=ms&x=1");
  EXPECT_EQ(a.path, "/v1/write/t");
  EXPECT_EQ(a.query, "precision=ms&x=1");
  auto b = split_target("/v1/write/t");
  EXPECT_EQ(b.path, "/v1/write/t");
  EXPECT_EQ(b.query, "");
}

TEST(HttpUtil, PercentDecode) {
  std::string out;
  ASSERT_TRUE(percent_decode("flux.mg%5Fmeter_readings", out));
  EXPECT_EQ(out, "flux.mg_meter_readings");
  ASSERT_TRUE(percent_decode("a+b%20c", out));
  EXPECT_EQ(out, "a+b c");
  ASSERT_TRUE(percent_decode("a+b", out, true));
  EXPECT_EQ(out, "a b");
  ASSERT_TRUE(percent_decode("%e2%82%AC", out));
  EXPECT_EQ(out, "\xe2\x82\xac");
  EXPECT_FALSE(percent_decode("abc%", out));
  EXPECT_FALSE(percent_decode("abc%4", out));
  EXPECT_FALSE(percent_decode("abc%zz", out));
}

TEST(HttpUtil, QueryParam) {
  std::string out;
  EXPECT_TRUE(query_param("precision=ms&x=1", "precision", out));
  EXPECT_EQ(out, "ms");
  EXPECT_TRUE(query_param("x=1&precision=u%73", "precision", out));
  EXPECT_EQ(out, "us");
  EXPECT_TRUE(query_param("precision", "precision", out));
  EXPECT_EQ(out, "");
  EXPECT_FALSE(query_param("x=1&precisionx=ms", "precision", out));
  EXPECT_EQ(out, "");
  EXPECT_FALSE(query_param("", "precision", out));
  EXPECT_FALSE(query_param("precision=%G1", "precision", out));
  EXPECT_EQ(out, "");
}

TEST(HttpUtil, JsonError) {
  EXPECT_EQ(json_error("not found"), R"({"error":"not found"})");
  EXPECT_EQ(json_error("a\"b\\c\n\x01"), R"({"error":"a\"b\\c\n\u0001"})");
}

TEST(HttpUtil, ContentEncoding) {
  EXPECT_EQ(classify_content_encoding(""), ContentEncoding::identity);
  EXPECT_EQ(classify_content_encoding("identity"), ContentEncoding::identity);
  EXPECT_EQ(classify_content_encoding(" GZip "), ContentEncoding::gzip);
  EXPECT_EQ(classify_content_encoding("x-gzip"), ContentEncoding::gzip);
  EXPECT_EQ(classify_content_encoding("deflate"), ContentEncoding::deflate);
  EXPECT_EQ(classify_content_encoding("br"), ContentEncoding::unsupported);
  EXPECT_EQ(classify_content_encoding("gzip, br"), ContentEncoding::unsupported);
}

TEST(ListenAddress, Parses) {
  auto a = parse_listen_address("127.0.0.1:8080");
  EXPECT_EQ(a.host, "127.0.0.1");
  EXPECT_EQ(a.port, 8080);
  auto b = parse_listen_address(":9000");
  EXPECT_EQ(b.host, "0.0.0.0");
  EXPECT_EQ(b.port, 9000);
  auto c = parse_listen_address("[::1]:0");
  EXPECT_EQ(c.host, "::1");
  EXPECT_EQ(c.port, 0);
  auto d = parse_listen_address("localhost:65535");
  EXPECT_EQ(d.host, "localhost");
  EXPECT_EQ(d.port, 65535);
}

TEST(ListenAddress, RejectsWithTheAddressInTheMessage) {
  for (const char* bad : {"8080", "host:", "host:x", "host:65536", "[::1:80", "[::1]80", "::1:80"}) {
    try {
      parse_listen_address(bad);
      ADD_FAILURE() << bad << " was accepted";
    } catch (const std::runtime_error& e) {
      EXPECT_NE(std::string(e.what()).find(bad), std::string::npos) << e.what();
    }
  }
}

TEST(ListenAddress, Resolves) {
  EXPECT_EQ(resolve_listen_host("127.0.0.1").to_string(), "127.0.0.1");
  EXPECT_EQ(resolve_listen_host("::1").to_string(), "::1");
  EXPECT_THROW(resolve_listen_host("no-such-host.invalid"), std::runtime_error);
}

}  // namespace
}  // namespace sluice
