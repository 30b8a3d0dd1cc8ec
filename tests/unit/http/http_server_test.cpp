#include "ingest/http/http_server.h"

#include <gtest/gtest.h>

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include "http_test_client.h"
#include "test_zlib.h"

namespace sluice {
namespace {

using namespace std::chrono_literals;
using test::HttpClient;
using test::Response;
namespace net = boost::asio;
namespace http = boost::beast::http;

struct Seen {
  std::string target, table, content_type, precision, ack_mode, client, body;
  std::size_t body_capacity = 0;
  std::thread::id thread;
};

// Records every request; answers 200 {"n":<index>,"table":"<table>"} unless `respond` says
// otherwise; calls done() at once or, with `delay`, later from a timer on the same io_context.
class FakeHandler : public WriteHandler {
 public:
  explicit FakeHandler(net::io_context& io) : io_(io) {}

  void handle(const WriteRequest& request, std::function<void(WriteResponse)> done) override {
    Seen seen{std::string(request.target),       std::string(request.table),
              std::string(request.content_type), std::string(request.precision),
              std::string(request.ack_mode),     std::string(request.client),
              *request.body,                     request.body->capacity(),
              std::this_thread::get_id()};
    std::size_t index;
    {
      std::lock_guard lock(mu_);
      index = seen_.size();
      seen_.push_back(seen);
    }
    WriteResponse response;
    response.body = "{\"n\":" + std::to_string(index) + ",\"table\":\"" + seen.table + "\"}";
    if (respond) response = respond(seen);
    auto delay = delay_for ? delay_for(index) : 0ms;
    if (delay == 0ms) {
      done(std::move(response));
      return;
    }
    // The body must stay untouched until done(): check it again just before completing.
    auto timer = std::make_shared<net::steady_timer>(io_, delay);
    std::string* body = request.body;
    timer->async_wait([this, timer, body, expected = seen.body, done = std::move(done),
                       response = std::move(response)](boost::system::error_code) mutable {
      if (*body != expected) body_changed_.fetch_add(1);
      done(std::move(response));
    });
  }

  std::vector<Seen> seen() {
    std::lock_guard lock(mu_);
    return seen_;
  }
  std::size_t count() {
    std::lock_guard lock(mu_);
    return seen_.size();
  }
  int body_changed() const { return body_changed_.load(); }

  std::function<WriteResponse(const Seen&)> respond;                  // set before start
  std::function<std::chrono::milliseconds(std::size_t)> delay_for;  // set before start

 private:
  net::io_context& io_;
  std::mutex mu_;
  std::vector<Seen> seen_;
  std::atomic<int> body_changed_{0};
};

class HttpServerTest : public ::testing::Test {
 protected:
  void start(HttpLimits limits = {}) {
    server_ = std::make_unique<HttpServer>(std::vector<net::io_context*>{&io_}, "127.0.0.1:0",
                                           limits, std::vector<WriteHandler*>{&handler_});
    server_->start();
    ASSERT_NE(server_->port(), 0);
    thread_ = std::thread([this] {
      io_thread_ = std::this_thread::get_id();
      io_.run();
    });
  }

  void TearDown() override {
    if (server_) server_->stop_accepting();
    work_.reset();
    io_.stop();
    if (thread_.joinable()) thread_.join();
    server_.reset();
  }

  unsigned short port() const { return server_->port(); }
  const HttpServer::Stats& stats() const { return server_->stats(); }

  // Polls `condition` for up to two seconds.
  static bool eventually(const std::function<bool()>& condition) {
    for (int i = 0; i < 200; ++i) {
      if (condition()) return true;
      std::this_thread::sleep_for(10ms);
    }
    return condition();
  }

  net::io_context io_;
  net::executor_work_guard<net::io_context::executor_type> work_ = net::make_work_guard(io_);
  FakeHandler handler_{io_};
  std::unique_ptr<HttpServer> server_;
  std::thread thread_;
  std::thread::id io_thread_;
};

TEST_F(HttpServerTest, PostReachesTheHandlerWithDecodedFields) {
  start();
  HttpClient client(port());
  auto req = HttpClient::post("/v1/write/flux.mg%5Fmeter_readings?x=1&precision=ms",
                              "{\"a\":1}\n", "application/x-ndjson");
  req.set("X-Sluice-Ack", "commit");
  Response res = client.request(req);
  EXPECT_EQ(res.result_int(), 200u);
  EXPECT_EQ(res.body(), R"({"n":0,"table":"flux.mg_meter_readings"})");
  EXPECT_EQ(res[http::field::content_type], "application/json");
  EXPECT_EQ(res[http::field::server], "sluice");
  EXPECT_TRUE(res.keep_alive());
  EXPECT_EQ(res.count(http::field::retry_after), 0u);

  auto seen = handler_.seen();
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].target, "/v1/write/flux.mg%5Fmeter_readings?x=1&precision=ms");
  EXPECT_EQ(seen[0].table, "flux.mg_meter_readings");
  EXPECT_EQ(seen[0].precision, "ms");
  EXPECT_EQ(seen[0].content_type, "application/x-ndjson");
  EXPECT_EQ(seen[0].ack_mode, "commit");
  EXPECT_EQ(seen[0].body, "{\"a\":1}\n");
  EXPECT_EQ(seen[0].client.rfind("127.0.0.1:", 0), 0u) << seen[0].client;
  EXPECT_EQ(seen[0].thread, io_thread_);
  EXPECT_EQ(stats().requests_2xx.load(), 1u);
  EXPECT_EQ(stats().accepted_connections.load(), 1u);
  EXPECT_EQ(server_->connections(), 1u);
}

TEST_F(HttpServerTest, AbsentPrecisionAndAckAreEmpty) {
  start();
  HttpClient client(port());
  Response res = client.request(HttpClient::post("/v1/write/sensor_readings", "x"));
  EXPECT_EQ(res.result_int(), 200u);
  auto seen = handler_.seen();
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].precision, "");
  EXPECT_EQ(seen[0].ack_mode, "");
  EXPECT_EQ(seen[0].content_type, "application/json");
}

TEST_F(HttpServerTest, DeferredDoneAndKeepAliveServeRequestsInOrder) {
  handler_.delay_for = [](std::size_t i) { return std::chrono::milliseconds(i % 2 == 0 ? 30 : 5); };
  start();
  HttpClient client(port());
  for (int i = 0; i < 4; ++i) {
    Response res =
        client.request(HttpClient::post("/v1/write/t" + std::to_string(i), std::string(100 + i, 'x')));
    EXPECT_EQ(res.result_int(), 200u);
    EXPECT_EQ(res.body(), "{\"n\":" + std::to_string(i) + ",\"table\":\"t" + std::to_string(i) + "\"}");
  }
  auto seen = handler_.seen();
  ASSERT_EQ(seen.size(), 4u);
  for (int i = 0; i < 4; ++i) EXPECT_EQ(seen[i].body.size(), 100u + i);
  EXPECT_EQ(handler_.body_changed(), 0);
  EXPECT_EQ(stats().accepted_connections.load(), 1u);
}

TEST_F(HttpServerTest, PipelinedRequestsAreAnsweredInOrder) {
  // The first request takes longest; its response must still come first.
  handler_.delay_for = [](std::size_t i) { return std::chrono::milliseconds(i == 0 ? 80 : i == 1 ? 0 : 20); };
  start();
  HttpClient client(port());
  std::string wire;
  for (int i = 0; i < 3; ++i) {
    std::string body = "body" + std::to_string(i);
    wire += "POST /v1/write/p" + std::to_string(i) + " HTTP/1.1\r\nHost: x\r\nContent-Length: " +
            std::to_string(body.size()) + "\r\n\r\n" + body;
  }
  client.send_raw(wire);
  for (int i = 0; i < 3; ++i) {
    Response res = client.read_response();
    EXPECT_EQ(res.body(), "{\"n\":" + std::to_string(i) + ",\"table\":\"p" + std::to_string(i) + "\"}");
  }
  auto seen = handler_.seen();
  ASSERT_EQ(seen.size(), 3u);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(seen[i].body, "body" + std::to_string(i));
  EXPECT_EQ(handler_.body_changed(), 0);
}

TEST_F(HttpServerTest, ChunkedBodyIsDelivered) {
  start();
  HttpClient client(port());
  client.send_raw(
      "POST /v1/write/c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
      "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n");
  Response res = client.read_response();
  EXPECT_EQ(res.result_int(), 200u);
  auto seen = handler_.seen();
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].body, "hello world");
}

TEST_F(HttpServerTest, GzipAndDeflateBodiesAreInflated) {
  start();
  std::string plain;
  for (int i = 0; i < 5000; ++i) plain += "{\"ts\":" + std::to_string(i) + ",\"kw\":3.25}\n";
  HttpClient client(port());
  auto gz = HttpClient::post("/v1/write/g", test::compress(plain, test::Wrap::gzip));
  gz.set(http::field::content_encoding, "gzip");
  EXPECT_EQ(client.request(gz).result_int(), 200u);
  auto zl = HttpClient::post("/v1/write/g", test::compress(plain, test::Wrap::zlib));
  zl.set(http::field::content_encoding, "deflate");
  EXPECT_EQ(client.request(zl).result_int(), 200u);
  auto raw = HttpClient::post("/v1/write/g", test::compress(plain, test::Wrap::raw));
  raw.set(http::field::content_encoding, "deflate");
  EXPECT_EQ(client.request(raw).result_int(), 200u);
  auto seen = handler_.seen();
  ASSERT_EQ(seen.size(), 3u);
  for (auto& s : seen) EXPECT_EQ(s.body, plain);
  EXPECT_EQ(stats().gzip_errors.load(), 0u);
}

TEST_F(HttpServerTest, BadGzipIs400AndTheConnectionStaysUsable) {
  start();
  HttpClient client(port());
  auto req = HttpClient::post("/v1/write/g", "this is not gzip");
  req.set(http::field::content_encoding, "gzip");
  Response res = client.request(req);
  EXPECT_EQ(res.result_int(), 400u);
  EXPECT_EQ(res.body().rfind("{\"error\":\"invalid gzip body: ", 0), 0u) << res.body();
  EXPECT_EQ(stats().gzip_errors.load(), 1u);
  EXPECT_EQ(handler_.count(), 0u);
  Response next = client.request(HttpClient::post("/v1/write/g", "plain"));
  EXPECT_EQ(next.result_int(), 200u);
  EXPECT_EQ(handler_.count(), 1u);
}

TEST_F(HttpServerTest, DeclaredBodyTooLargeIs413BeforeTheBodyIsRead) {
  HttpLimits limits;
  limits.max_body_bytes = 1000;
  start(limits);
  HttpClient client(port());
  // Only the header is sent: the answer must not wait for the 5000 declared bytes.
  client.send_raw("POST /v1/write/t HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n");
  Response res = client.read_response();
  EXPECT_EQ(res.result_int(), 413u);
  EXPECT_EQ(res.body(), R"({"error":"body exceeds 1000 bytes"})");
  EXPECT_FALSE(res.keep_alive());
  EXPECT_TRUE(client.wait_closed());
  EXPECT_EQ(stats().body_too_large.load(), 1u);
  EXPECT_EQ(stats().requests_4xx.load(), 1u);
  EXPECT_EQ(handler_.count(), 0u);
}

TEST_F(HttpServerTest, ExactlyTheLimitIsAccepted) {
  HttpLimits limits;
  limits.max_body_bytes = 1000;
  start(limits);
  HttpClient client(port());
  EXPECT_EQ(client.request(HttpClient::post("/v1/write/t", std::string(1000, 'a'))).result_int(), 200u);
  EXPECT_EQ(client.request(HttpClient::post("/v1/write/t", std::string(1001, 'a'))).result_int(), 413u);
}

TEST_F(HttpServerTest, ChunkedBodyTooLargeIs413) {
  HttpLimits limits;
  limits.max_body_bytes = 1000;
  start(limits);
  HttpClient client(port());
  std::string chunk(600, 'x');
  client.send_raw("POST /v1/write/t HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                  "258\r\n" + chunk + "\r\n258\r\n" + chunk + "\r\n0\r\n\r\n");
  Response res = client.read_response();
  EXPECT_EQ(res.result_int(), 413u);
  EXPECT_EQ(res.body(), R"({"error":"body exceeds 1000 bytes"})");
  EXPECT_TRUE(client.wait_closed());
  EXPECT_EQ(stats().body_too_large.load(), 1u);
  EXPECT_EQ(handler_.count(), 0u);
}

TEST_F(HttpServerTest, InflatedBodyTooLargeIs413) {
  HttpLimits limits;
  limits.max_body_bytes = 64 << 10;
  start(limits);
  HttpClient client(port());
  auto bomb = test::compress(std::string(16 << 20, '0'));  // 16 MiB of zeros, ~16 KiB compressed
  ASSERT_LT(bomb.size(), limits.max_body_bytes);
  auto req = HttpClient::post("/v1/write/t", bomb);
  req.set(http::field::content_encoding, "gzip");
  Response res = client.request(req);
  EXPECT_EQ(res.result_int(), 413u);
  EXPECT_EQ(res.body(), R"({"error":"body exceeds 65536 bytes"})");
  EXPECT_TRUE(client.wait_closed());
  EXPECT_EQ(stats().body_too_large.load(), 1u);
  EXPECT_EQ(handler_.count(), 0u);
}

TEST_F(HttpServerTest, NotFoundMethodNotAllowedAndHealth) {
  start();
  HttpClient client(port());
  auto get = [](std::string target) {
    http::request<http::string_body> req{http::verb::get, target, 11};
    req.set(http::field::host, "x");
    return req;
  };
  Response nf = client.request(get("/nope"));
  EXPECT_EQ(nf.result_int(), 404u);
  EXPECT_EQ(nf.body(), R"({"error":"not found"})");
  EXPECT_EQ(nf[http::field::content_type], "application/json");

  Response not_allowed = client.request(get("/v1/write/t"));
  EXPECT_EQ(not_allowed.result_int(), 405u);
  EXPECT_EQ(not_allowed[http::field::allow], "POST");

  EXPECT_EQ(client.request(HttpClient::post("/v1/write/", "x")).result_int(), 404u);
  EXPECT_EQ(client.request(HttpClient::post("/v1/write", "x")).result_int(), 404u);
  EXPECT_EQ(client.request(HttpClient::post("/v1/write/a/b", "x")).result_int(), 404u);
  EXPECT_EQ(client.request(HttpClient::post("/v1/writes/a", "x")).result_int(), 404u);
  EXPECT_EQ(client.request(HttpClient::post("/v1/write/bad%zz", "x")).result_int(), 400u);

  Response health = client.request(get("/v1/health"));
  EXPECT_EQ(health.result_int(), 200u);
  EXPECT_EQ(health.body(), R"({"status":"ok"})");
  EXPECT_EQ(client.request(HttpClient::post("/v1/health", "x")).result_int(), 405u);

  EXPECT_EQ(handler_.count(), 0u);
  EXPECT_EQ(stats().requests_4xx.load(), 8u);
  EXPECT_EQ(stats().requests_2xx.load(), 1u);
  EXPECT_EQ(stats().accepted_connections.load(), 1u);  // all on one keep-alive connection
}

TEST_F(HttpServerTest, RejectedRequestWithALargeBodyClosesTheConnection) {
  start();
  HttpClient client(port());
  // Small bodies of rejected requests are skipped (keep-alive, as above); a large one is not read.
  Response res = client.request(HttpClient::post("/nope", std::string(200 << 10, 'x')));
  EXPECT_EQ(res.result_int(), 404u);
  EXPECT_FALSE(res.keep_alive());
  EXPECT_TRUE(client.wait_closed());
}

TEST_F(HttpServerTest, UnknownContentEncodingIs415) {
  start();
  HttpClient client(port());
  auto req = HttpClient::post("/v1/write/t", "x");
  req.set(http::field::content_encoding, "br");
  Response res = client.request(req);
  EXPECT_EQ(res.result_int(), 415u);
  EXPECT_EQ(res.body(), R"({"error":"unsupported Content-Encoding: br"})");
  EXPECT_EQ(stats().unsupported_encoding.load(), 1u);
  EXPECT_EQ(handler_.count(), 0u);
}

TEST_F(HttpServerTest, HeaderTooLargeIs431) {
  HttpLimits limits;
  limits.max_header_bytes = 1024;
  start(limits);
  HttpClient client(port());
  auto req = HttpClient::post("/v1/write/t", "x");
  req.set("X-Padding", std::string(2000, 'p'));
  Response res = client.request(req);
  EXPECT_EQ(res.result_int(), 431u);
  EXPECT_EQ(res.body(), R"({"error":"request header exceeds 1024 bytes"})");
  EXPECT_TRUE(client.wait_closed());
  EXPECT_EQ(stats().bad_requests.load(), 1u);
}

TEST_F(HttpServerTest, MalformedRequestIs400) {
  start();
  HttpClient client(port());
  client.send_raw("THIS IS NOT HTTP\r\n\r\n");
  Response res = client.read_response();
  EXPECT_EQ(res.result_int(), 400u);
  EXPECT_TRUE(client.wait_closed());
  EXPECT_EQ(stats().bad_requests.load(), 1u);
}

TEST_F(HttpServerTest, HeaderTimeoutClosesASilentConnection) {
  HttpLimits limits;
  limits.header_timeout = 150ms;
  start(limits);
  auto t0 = std::chrono::steady_clock::now();
  HttpClient silent(port());
  HttpClient partial(port());
  partial.send_raw("POST /v1/write/t HTTP/1.1\r\nHost:");
  EXPECT_TRUE(silent.wait_closed());
  EXPECT_TRUE(partial.wait_closed());
  auto elapsed = std::chrono::steady_clock::now() - t0;
  EXPECT_GE(elapsed, 140ms);
  EXPECT_LT(elapsed, 2000ms);
  EXPECT_TRUE(eventually([&] { return stats().timeouts.load() == 2; }));
  EXPECT_TRUE(eventually([&] { return server_->connections() == 0; }));
}

TEST_F(HttpServerTest, BodyTimeoutClosesAStalledUpload) {
  HttpLimits limits;
  limits.body_timeout = 150ms;
  start(limits);
  HttpClient client(port());
  client.send_raw("POST /v1/write/t HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nonly part");
  EXPECT_TRUE(client.wait_closed());
  EXPECT_TRUE(eventually([&] { return stats().timeouts.load() == 1; }));
  EXPECT_EQ(handler_.count(), 0u);
}

TEST_F(HttpServerTest, IdleKeepAliveConnectionIsClosed) {
  HttpLimits limits;
  limits.idle_timeout = 150ms;
  start(limits);
  HttpClient client(port());
  EXPECT_EQ(client.request(HttpClient::post("/v1/write/t", "x")).result_int(), 200u);
  auto t0 = std::chrono::steady_clock::now();
  EXPECT_TRUE(client.wait_closed());
  EXPECT_GE(std::chrono::steady_clock::now() - t0, 100ms);
  EXPECT_EQ(stats().timeouts.load(), 0u);  // an idle close is not a timeout
  EXPECT_TRUE(eventually([&] { return server_->connections() == 0; }));
}

TEST_F(HttpServerTest, ConnectionCapAnswers503WithRetryAfter) {
  HttpLimits limits;
  limits.max_connections = 1;
  start(limits);
  HttpClient first(port());
  EXPECT_EQ(first.request(HttpClient::post("/v1/write/t", "x")).result_int(), 200u);
  EXPECT_EQ(server_->connections(), 1u);

  HttpClient second(port());
  Response res = second.read_response();
  EXPECT_EQ(res.result_int(), 503u);
  EXPECT_EQ(res[http::field::retry_after], "1");
  EXPECT_EQ(res.body(), R"({"error":"too many connections"})");
  EXPECT_FALSE(res.keep_alive());
  EXPECT_TRUE(second.wait_closed());
  EXPECT_EQ(stats().rejected_connections.load(), 1u);
  EXPECT_EQ(server_->connections(), 1u);

  // The admitted connection is unaffected.
  EXPECT_EQ(first.request(HttpClient::post("/v1/write/t", "y")).result_int(), 200u);
  EXPECT_EQ(handler_.count(), 2u);
}

TEST_F(HttpServerTest, RetryAfterAndStatusComeFromTheHandler) {
  handler_.respond = [](const Seen&) {
    WriteResponse r;
    r.status = 429;
    r.body = R"({"error":"ring full"})";
    r.retry_after_s = 7;
    return r;
  };
  start();
  HttpClient client(port());
  Response res = client.request(HttpClient::post("/v1/write/t", "x"));
  EXPECT_EQ(res.result_int(), 429u);
  EXPECT_EQ(res[http::field::retry_after], "7");
  EXPECT_EQ(res.body(), R"({"error":"ring full"})");
  EXPECT_TRUE(res.keep_alive());
  EXPECT_EQ(stats().requests_4xx.load(), 1u);
}

TEST_F(HttpServerTest, Http10WithoutKeepAliveIsClosed) {
  start();
  HttpClient client(port());
  client.send_raw("POST /v1/write/t HTTP/1.0\r\nContent-Length: 1\r\n\r\nx");
  Response res = client.read_response();
  EXPECT_EQ(res.result_int(), 200u);
  EXPECT_FALSE(res.keep_alive());
  EXPECT_TRUE(client.wait_closed());
}

TEST_F(HttpServerTest, ExpectContinueGetsAnInterimResponse) {
  start();
  HttpClient client(port());
  client.send_raw("POST /v1/write/t HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
                  "Expect: 100-continue\r\n\r\n");
  Response interim = client.read_response();
  EXPECT_EQ(interim.result_int(), 100u);
  client.send_raw("12345");
  Response res = client.read_response();
  EXPECT_EQ(res.result_int(), 200u);
  auto seen = handler_.seen();
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].body, "12345");
}

TEST_F(HttpServerTest, SetLimitsAppliesToNewRequests) {
  start();
  HttpClient client(port());
  EXPECT_EQ(client.request(HttpClient::post("/v1/write/t", std::string(2000, 'a'))).result_int(), 200u);
  HttpLimits limits;
  limits.max_body_bytes = 100;
  server_->set_limits(limits);
  EXPECT_EQ(server_->limits().max_body_bytes, 100u);
  HttpClient fresh(port());
  Response res = fresh.request(HttpClient::post("/v1/write/t", std::string(2000, 'a')));
  EXPECT_EQ(res.result_int(), 413u);
  EXPECT_EQ(res.body(), R"({"error":"body exceeds 100 bytes"})");
}

TEST_F(HttpServerTest, StopAcceptingFinishesInFlightRequestsAndClosesIdleOnes) {
  handler_.delay_for = [](std::size_t i) { return i == 1 ? 200ms : 0ms; };
  start();
  HttpClient idle(port());
  EXPECT_EQ(idle.request(HttpClient::post("/v1/write/t", "a")).result_int(), 200u);
  HttpClient busy(port());
  http::write(busy.socket(), HttpClient::post("/v1/write/t", "b"));
  ASSERT_TRUE(eventually([&] { return handler_.count() == 2; }));

  server_->stop_accepting();
  EXPECT_TRUE(idle.wait_closed());  // closed promptly, not after idle_timeout
  Response res = busy.read_response();  // done() runs after stop_accepting and still answers
  EXPECT_EQ(res.result_int(), 200u);
  EXPECT_EQ(res.body(), R"({"n":1,"table":"t"})");
  EXPECT_FALSE(res.keep_alive());
  EXPECT_TRUE(busy.wait_closed());
  EXPECT_TRUE(eventually([&] { return server_->connections() == 0; }));

  // The acceptor is closed: new connections are refused.
  EXPECT_THROW(HttpClient late(port()), boost::system::system_error);
}

TEST_F(HttpServerTest, DoneAfterThePeerLeftIsDropped) {
  handler_.delay_for = [](std::size_t) { return 100ms; };
  start();
  {
    HttpClient client(port());
    http::write(client.socket(), HttpClient::post("/v1/write/t", "x"));
    ASSERT_TRUE(eventually([&] { return handler_.count() == 1; }));
  }  // client gone before done()
  EXPECT_TRUE(eventually([&] { return server_->connections() == 0; }));
  HttpClient next(port());
  EXPECT_EQ(next.request(HttpClient::post("/v1/write/t", "y")).result_int(), 200u);
}

TEST(HttpServerStart, BindFailureNamesTheAddress) {
  net::io_context io;
  FakeHandler handler(io);
  HttpServer first({&io}, "127.0.0.1:0", {}, {&handler});
  first.start();
  // A plain socket (no SO_REUSEPORT) holding a port makes bind fail.
  net::ip::tcp::acceptor holder(io, net::ip::tcp::endpoint(net::ip::make_address("127.0.0.1"), 0));
  std::string address = "127.0.0.1:" + std::to_string(holder.local_endpoint().port());
  HttpServer second({&io}, address, {}, {&handler});
  try {
    second.start();
    FAIL() << "start() succeeded on a taken port";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find(address), std::string::npos) << e.what();
  }
  EXPECT_THROW(HttpServer({&io}, "127.0.0.1:0", {}, {}), std::invalid_argument);
}

TEST(HttpServerStart, ASecondServerOnTheSamePortIsRefused) {
  // Both would set SO_REUSEPORT; the second must not silently share the first one's port.
  net::io_context io;
  FakeHandler handler(io);
  HttpServer first({&io}, "127.0.0.1:0", {}, {&handler});
  first.start();
  const std::string address = "127.0.0.1:" + std::to_string(first.port());
  HttpServer second({&io}, address, {}, {&handler});
  try {
    second.start();
    FAIL() << "a second server bound " << address;
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("another"), std::string::npos) << e.what();
  }
}

TEST(HttpServerThreads, EachIoContextServesItsOwnConnections) {
  constexpr int kThreads = 2;
  std::vector<std::unique_ptr<net::io_context>> ios;
  std::vector<std::unique_ptr<FakeHandler>> handlers;
  std::vector<net::io_context*> io_ptrs;
  std::vector<WriteHandler*> handler_ptrs;
  for (int i = 0; i < kThreads; ++i) {
    ios.push_back(std::make_unique<net::io_context>());
    handlers.push_back(std::make_unique<FakeHandler>(*ios.back()));
    io_ptrs.push_back(ios.back().get());
    handler_ptrs.push_back(handlers.back().get());
  }
  HttpServer server(io_ptrs, "127.0.0.1:0", {}, handler_ptrs);
  server.start();
  std::vector<std::thread::id> thread_ids(kThreads);
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] {
      thread_ids[i] = std::this_thread::get_id();
      ios[i]->run();
    });
  }
  for (int c = 0; c < 16; ++c) {
    HttpClient client(server.port());
    for (int r = 0; r < 3; ++r) {
      EXPECT_EQ(client.request(HttpClient::post("/v1/write/t", "x")).result_int(), 200u);
    }
  }
  server.stop_accepting();
  for (auto& io : ios) io->stop();
  for (auto& t : threads) t.join();
  std::size_t total = 0;
  for (int i = 0; i < kThreads; ++i) {
    for (auto& s : handlers[i]->seen()) EXPECT_EQ(s.thread, thread_ids[i]);
    total += handlers[i]->count();
  }
  EXPECT_EQ(total, 48u);
  EXPECT_EQ(server.stats().requests_2xx.load(), 48u);
}

}  // namespace
}  // namespace sluice
