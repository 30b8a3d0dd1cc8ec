#include "ingest/http/admin_server.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>

#include "http_test_client.h"

namespace sluice {
namespace {

using test::HttpClient;
using test::Response;
namespace net = boost::asio;
namespace http = boost::beast::http;

class AdminServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    AdminCallbacks callbacks;
    callbacks.ready = [this] { return ready_.load(); };
    callbacks.render_metrics = [this] {
      ++renders_;
      return std::string("# TYPE sluice_up gauge\nsluice_up 1\n");
    };
    callbacks.log_level = [this] { return level_; };
    callbacks.set_log_level = [this](const std::string& l) {
      if (l != "debug" && l != "info") return "\"" + l + "\" is not a level";
      level_ = l;
      return std::string();
    };
    server_ = std::make_unique<AdminServer>(io_, "127.0.0.1:0", callbacks);
    server_->start();
    thread_ = std::thread([this] { io_.run(); });
  }
  void TearDown() override {
    server_->stop();
    work_.reset();
    io_.stop();
    thread_.join();
    server_.reset();
  }

  static http::request<http::string_body> get(std::string target) {
    http::request<http::string_body> req{http::verb::get, target, 11};
    req.set(http::field::host, "x");
    return req;
  }

  std::atomic<bool> ready_{false};
  std::atomic<int> renders_{0};
  std::string level_ = "info";  // admin thread only (and the test after its answers)
  net::io_context io_;
  net::executor_work_guard<net::io_context::executor_type> work_ = net::make_work_guard(io_);
  std::unique_ptr<AdminServer> server_;
  std::thread thread_;
};

TEST_F(AdminServerTest, Healthz) {
  HttpClient client(server_->port());
  Response res = client.request(get("/healthz"));
  EXPECT_EQ(res.result_int(), 200u);
  EXPECT_EQ(res.body(), "ok");
}

TEST_F(AdminServerTest, ReadyzFollowsTheCallback) {
  HttpClient client(server_->port());
  Response not_ready = client.request(get("/readyz"));
  EXPECT_EQ(not_ready.result_int(), 503u);
  EXPECT_EQ(not_ready.body(), "not ready");
  ready_ = true;
  Response ready = client.request(get("/readyz"));  // same keep-alive connection
  EXPECT_EQ(ready.result_int(), 200u);
  EXPECT_EQ(ready.body(), "ready");
}

TEST_F(AdminServerTest, MetricsHasThePrometheusContentType) {
  HttpClient client(server_->port());
  Response res = client.request(get("/metrics"));
  EXPECT_EQ(res.result_int(), 200u);
  EXPECT_EQ(res[http::field::content_type], "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_EQ(res.body(), "# TYPE sluice_up gauge\nsluice_up 1\n");
  EXPECT_EQ(renders_.load(), 1);
}

TEST_F(AdminServerTest, OthersAre404And405) {
  HttpClient client(server_->port());
  EXPECT_EQ(client.request(get("/")).result_int(), 404u);
  EXPECT_EQ(client.request(get("/v1/write/t")).result_int(), 404u);
  auto post = HttpClient::post("/metrics", "x");
  EXPECT_EQ(client.request(post).result_int(), 405u);
}

TEST_F(AdminServerTest, LogLevelIsReadAndSetThroughTheCallbacks) {
  HttpClient client(server_->port());
  Response res = client.request(get("/loglevel"));
  EXPECT_EQ(res.result_int(), 200u);
  EXPECT_EQ(res.body(), "info\n");
  http::request<http::string_body> put{http::verb::put, "/loglevel", 11};
  put.set(http::field::host, "x");
  put.body() = "debug\n";
  put.prepare_payload();
  res = client.request(put);
  EXPECT_EQ(res.result_int(), 200u);
  EXPECT_EQ(res.body(), "debug\n");
  EXPECT_EQ(level_, "debug");
  put.body() = "loud";
  put.prepare_payload();
  res = client.request(put);
  EXPECT_EQ(res.result_int(), 400u);
  EXPECT_EQ(res.body(), "\"loud\" is not a level\n");
  EXPECT_EQ(level_, "debug");
  EXPECT_EQ(client.request(HttpClient::post("/loglevel", "x")).result_int(), 405u);
}

TEST_F(AdminServerTest, StopClosesConnections) {
  HttpClient client(server_->port());
  EXPECT_EQ(client.request(get("/healthz")).result_int(), 200u);
  server_->stop();
  EXPECT_TRUE(client.wait_closed());
}

TEST(AdminServerStart, BindFailureNamesTheAddress) {
  net::io_context io;
  net::ip::tcp::acceptor holder(io, net::ip::tcp::endpoint(net::ip::make_address("127.0.0.1"), 0));
  std::string address = "127.0.0.1:" + std::to_string(holder.local_endpoint().port());
  AdminServer server(io, address, {});
  try {
    server.start();
    FAIL() << "start() succeeded on a taken port";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find(address), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace sluice
