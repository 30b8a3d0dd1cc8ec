// Bearer tokens (ingest/http/auth.h): hashing, credential extraction, constant-time lookup, token
// buckets; and HttpServer answering 401/403/429, the per-client connection cap and live reload.
#include "ingest/http/auth.h"

#include <gtest/gtest.h>

#include <thread>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>

#include "http_test_client.h"
#include "ingest/http/http_security.h"
#include "ingest/http/http_server.h"

namespace sluice {
namespace {

using namespace std::chrono_literals;
using test::HttpClient;
using test::Response;
namespace net = boost::asio;
namespace http = boost::beast::http;

TEST(Sha256, KnownVectors) {
  EXPECT_EQ(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

TEST(ExtractCredential, EveryWayInfluxClientsSendIt) {
  std::string out;
  EXPECT_EQ(extract_credential("Bearer abc", "", false, out), CredentialStatus::found);
  EXPECT_EQ(out, "abc");
  EXPECT_EQ(extract_credential("Token  t0k3n ", "", false, out), CredentialStatus::found);
  EXPECT_EQ(out, "t0k3n");
  EXPECT_EQ(extract_credential("bearer lower", "", false, out), CredentialStatus::found);
  EXPECT_EQ(out, "lower");
  // Basic base64("user:pa:ss") — the password (everything after the first colon) is the token.
  EXPECT_EQ(extract_credential("Basic dXNlcjpwYTpzcw==", "", false, out), CredentialStatus::found);
  EXPECT_EQ(out, "pa:ss");
  EXPECT_EQ(extract_credential("", "db=x&u=me&p=s%2Fecret", true, out), CredentialStatus::found);
  EXPECT_EQ(out, "s/ecret");
  EXPECT_EQ(extract_credential("", "db=x&u=me&p=secret", false, out), CredentialStatus::none)
      << "?p= only on the InfluxDB 1.x endpoint";
  EXPECT_EQ(extract_credential("", "db=x", true, out), CredentialStatus::none);
  EXPECT_EQ(extract_credential("Bearer", "", false, out), CredentialStatus::malformed);
  EXPECT_EQ(extract_credential("Digest x", "", false, out), CredentialStatus::malformed);
  EXPECT_EQ(extract_credential("Basic !!!", "", false, out), CredentialStatus::malformed);
  EXPECT_EQ(extract_credential("Basic dXNlcg==", "", false, out), CredentialStatus::malformed) << "no colon";
  // The header wins over the query.
  EXPECT_EQ(extract_credential("Token h", "p=q", true, out), CredentialStatus::found);
  EXPECT_EQ(out, "h");
}

AuthConfig two_tokens(double rate = 0, double burst = 0) {
  AuthConfig c;
  c.tokens.push_back({"meters", sha256_hex("meter-token"), {"flux.*"}, rate, burst});
  c.tokens.push_back({"ops", sha256_hex("ops-token"), {"*"}, 0, 0});
  return c;
}

TEST(AuthTable, FindsByHashAndChecksScopes) {
  AuthTable table(two_tokens());
  ASSERT_TRUE(table.enabled());
  const AuthToken* m = table.find("meter-token");
  ASSERT_NE(m, nullptr);
  EXPECT_EQ(m->name, "meters");
  EXPECT_TRUE(m->scope.allows("flux.mg_meter_readings"));
  EXPECT_FALSE(m->scope.allows("sensor_readings"));
  const AuthToken* o = table.find("ops-token");
  ASSERT_NE(o, nullptr);
  EXPECT_TRUE(o->scope.all);
  EXPECT_EQ(table.find("meter-token "), nullptr);
  EXPECT_EQ(table.find(""), nullptr);
  EXPECT_EQ(table.find(sha256_hex("meter-token")), nullptr) << "the hash itself is not a token";
  EXPECT_FALSE(AuthTable(AuthConfig{}).enabled());
}

TEST(TokenBucket, BurstThenRateWithRetryAfter) {
  const auto t0 = TokenBucket::Clock::now();
  TokenBucket b(0.5, 2, t0);  // one request every 2 s, two at once
  unsigned retry = 0;
  EXPECT_TRUE(b.try_take(t0, retry));
  EXPECT_TRUE(b.try_take(t0, retry));
  EXPECT_FALSE(b.try_take(t0, retry));
  EXPECT_EQ(retry, 2u);
  EXPECT_FALSE(b.try_take(t0 + 1500ms, retry));
  EXPECT_EQ(retry, 1u);
  EXPECT_TRUE(b.try_take(t0 + 2000ms, retry));
  EXPECT_FALSE(b.try_take(t0 + 2000ms, retry));
  // Refill is capped at the burst.
  EXPECT_TRUE(b.try_take(t0 + 100s, retry));
  EXPECT_TRUE(b.try_take(t0 + 100s, retry));
  EXPECT_FALSE(b.try_take(t0 + 100s, retry));
}

TEST(TokenBucket, SharedByThreadsGrantsExactlyTheBurst) {
  const auto t0 = TokenBucket::Clock::now();
  TokenBucket b(1e-6, 1000, t0);  // no refill to speak of during the test
  std::atomic<int> granted{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      unsigned retry = 0;
      for (int i = 0; i < 500; ++i) {
        if (b.try_take(t0, retry)) granted.fetch_add(1);
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(granted.load(), 1000);
}

TEST(AuthTable, ReloadKeepsTheBucketOfAnUnchangedToken) {
  AuthTable first(two_tokens(1, 1));
  unsigned retry = 0;
  auto now = TokenBucket::Clock::now();
  ASSERT_TRUE(first.find("meter-token")->bucket->try_take(now, retry));
  AuthTable same(two_tokens(1, 1), &first);
  EXPECT_EQ(same.find("meter-token")->bucket, first.find("meter-token")->bucket);
  EXPECT_FALSE(same.find("meter-token")->bucket->try_take(now, retry)) << "a reload is no way around the limit";
  AuthTable changed(two_tokens(5, 5), &first);
  EXPECT_NE(changed.find("meter-token")->bucket, first.find("meter-token")->bucket);
  EXPECT_EQ(changed.find("ops-token")->bucket, nullptr);
}

class RecordingHandler : public WriteHandler {
 public:
  void handle(const WriteRequest& request, std::function<void(WriteResponse)> done) override {
    ++calls;
    WriteResponse r;
    r.body = "{\"table\":\"" + std::string(request.table) + "\",\"scoped\":" + (request.scope ? "true" : "false") + "}";
    done(std::move(r));
  }
  std::atomic<int> calls{0};
};

class HttpAuthTest : public ::testing::Test {
 protected:
  void start(const Config& config) {
    server_ = std::make_unique<HttpServer>(std::vector<net::io_context*>{&io_}, "127.0.0.1:0", http_limits(config.http),
                                           std::vector<WriteHandler*>{&handler_});
    server_->enable_line_protocol({&handler_}, "test");
    apply_http_security(*server_, config);
    server_->start();
    thread_ = std::thread([this] { io_.run(); });
  }
  void TearDown() override {
    if (server_) server_->stop_accepting();
    work_.reset();
    io_.stop();
    if (thread_.joinable()) thread_.join();
  }
  static Config config_with(AuthConfig auth) {
    Config c;
    c.auth = std::move(auth);
    return c;
  }
  Response post(const std::string& target, const std::string& authorization, const std::string& body = "x") {
    HttpClient client(server_->port());
    auto req = HttpClient::post(target, body, "text/plain");
    if (!authorization.empty()) req.set(http::field::authorization, authorization);
    return client.request(req);
  }

  net::io_context io_;
  net::executor_work_guard<net::io_context::executor_type> work_ = net::make_work_guard(io_);
  RecordingHandler handler_;
  std::unique_ptr<HttpServer> server_;
  std::thread thread_;
};

TEST_F(HttpAuthTest, EachOutcome) {
  start(config_with(two_tokens()));
  auto none = post("/v1/write/flux.x", "");
  EXPECT_EQ(none.result_int(), 401u);
  EXPECT_EQ(none[http::field::www_authenticate], "Bearer realm=\"sluice\"");
  EXPECT_EQ(post("/v1/write/flux.x", "Bearer wrong").result_int(), 401u);
  EXPECT_EQ(post("/v1/write/flux.x", "Digest abc").result_int(), 401u);
  auto forbidden = post("/v1/write/sensor_readings", "Bearer meter-token");
  EXPECT_EQ(forbidden.result_int(), 403u);
  EXPECT_EQ(forbidden.body(), R"({"error":"this token may not write table \"sensor_readings\""})");
  auto ok = post("/v1/write/flux.x", "Bearer meter-token");
  EXPECT_EQ(ok.result_int(), 200u) << ok.body();
  EXPECT_EQ(post("/v1/write/sensor_readings", "Bearer ops-token").body(),
            R"({"table":"sensor_readings","scoped":false})");
  // InfluxDB endpoints: Token (2.x), Basic and ?u=&p= (1.x); the scope goes to the line handler.
  EXPECT_EQ(post("/api/v2/write?org=o&bucket=b", "Token meter-token").body(), R"({"table":"","scoped":true})");
  EXPECT_EQ(post("/write?db=x", "Basic dXNlcjptZXRlci10b2tlbg==").result_int(), 200u);  // user:meter-token
  EXPECT_EQ(post("/write?db=x&u=user&p=meter-token", "").result_int(), 200u);
  auto influx401 = post("/api/v2/write?org=o&bucket=b", "Token nope");
  EXPECT_EQ(influx401.result_int(), 401u);
  EXPECT_EQ(influx401.body(), R"({"code":"unauthorized","message":"invalid token"})");
  // Open endpoints.
  HttpClient c(server_->port());
  http::request<http::string_body> ping{http::verb::get, "/ping", 11};
  EXPECT_EQ(c.request(ping).result_int(), 204u);
  http::request<http::string_body> health{http::verb::get, "/v1/health", 11};
  EXPECT_EQ(c.request(health).result_int(), 200u);

  const auto& s = server_->stats();
  EXPECT_EQ(s.auth_missing.load(), 2u);  // none + Digest
  EXPECT_EQ(s.auth_invalid.load(), 2u);
  EXPECT_EQ(s.auth_forbidden.load(), 1u);
  EXPECT_EQ(handler_.calls.load(), 5);
}

TEST_F(HttpAuthTest, RateLimitAnswers429WithRetryAfter) {
  start(config_with(two_tokens(0.5, 2)));
  HttpClient client(server_->port());
  auto req = HttpClient::post("/v1/write/flux.x", "x", "text/plain");
  req.set(http::field::authorization, "Bearer meter-token");
  EXPECT_EQ(client.request(req).result_int(), 200u);
  EXPECT_EQ(client.request(req).result_int(), 200u);
  Response limited = client.request(req);
  EXPECT_EQ(limited.result_int(), 429u);
  EXPECT_EQ(limited[http::field::retry_after], "2");
  EXPECT_TRUE(limited.keep_alive()) << "a small rejected body is drained, the connection stays";
  EXPECT_EQ(server_->stats().rate_limited.load(), 1u);
  // Another token has its own (no) limit.
  req.set(http::field::authorization, "Bearer ops-token");
  EXPECT_EQ(client.request(req).result_int(), 200u);
}

TEST_F(HttpAuthTest, ReloadReplacesTokensForTheNextRequest) {
  start(config_with(two_tokens()));
  HttpClient client(server_->port());
  auto req = HttpClient::post("/v1/write/flux.x", "x", "text/plain");
  req.set(http::field::authorization, "Bearer meter-token");
  EXPECT_EQ(client.request(req).result_int(), 200u);
  AuthConfig next;
  next.tokens.push_back({"new", sha256_hex("new-token"), {"*"}, 0, 0});
  apply_http_security(*server_, config_with(next));
  EXPECT_EQ(client.request(req).result_int(), 401u) << "the same keep-alive connection sees the new table";
  req.set(http::field::authorization, "Bearer new-token");
  EXPECT_EQ(client.request(req).result_int(), 200u);
  apply_http_security(*server_, config_with(AuthConfig{}));
  req.set(http::field::authorization, "");
  EXPECT_EQ(client.request(req).result_int(), 200u) << "no tokens: open";
}

TEST_F(HttpAuthTest, PerClientConnectionCap) {
  Config c;
  c.http.max_connections_per_client = 2;
  start(c);
  auto a = std::make_unique<HttpClient>(server_->port());
  HttpClient b(server_->port());
  EXPECT_EQ(a->request(HttpClient::post("/v1/write/t", "x")).result_int(), 200u);
  EXPECT_EQ(b.request(HttpClient::post("/v1/write/t", "x")).result_int(), 200u);
  HttpClient third(server_->port());
  Response res = third.read_response();
  EXPECT_EQ(res.result_int(), 503u);
  EXPECT_EQ(res.body(), R"({"error":"too many connections from this client"})");
  EXPECT_EQ(res[http::field::retry_after], "1");
  EXPECT_EQ(server_->stats().client_rejected_connections.load(), 1u);
  // A slot frees when a connection closes.
  a.reset();
  bool admitted = false;
  for (int i = 0; i < 100 && !admitted; ++i) {
    std::this_thread::sleep_for(20ms);
    if (server_->connections() < 2) {
      HttpClient again(server_->port());
      admitted = again.request(HttpClient::post("/v1/write/t", "x")).result_int() == 200u;
    }
  }
  EXPECT_TRUE(admitted);
}

TEST(HttpServerTls, BadFilesAreNamed) {
  net::io_context io;
  RecordingHandler h;
  HttpServer server({&io}, "127.0.0.1:0", HttpLimits{}, {&h});
  TlsConfig tls;
  tls.enabled = true;
  tls.cert_file = "/nonexistent/cert.pem";
  tls.key_file = "/nonexistent/key.pem";
  try {
    server.set_tls(tls);
    FAIL() << "expected an exception";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("cert_file) \"/nonexistent/cert.pem\""), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace sluice
