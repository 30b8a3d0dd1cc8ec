#include "ingest/http/admin_server.h"

#include <chrono>
#include <list>
#include <optional>
#include <stdexcept>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "ingest/http/listen_address.h"

namespace sluice {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;

namespace {

constexpr auto kReadTimeout = std::chrono::seconds(10);
constexpr auto kIdleTimeout = std::chrono::seconds(60);
constexpr std::uint32_t kHeaderLimit = 8 << 10;
constexpr std::uint64_t kBodyLimit = 4 << 10;
constexpr std::size_t kMaxConnections = 64;
constexpr std::string_view kMetricsContentType = "text/plain; version=0.0.4; charset=utf-8";

class AdminSession;

}  // namespace

struct AdminServer::State : std::enable_shared_from_this<AdminServer::State> {
  State(net::io_context& io_context, AdminCallbacks cb)
      : io(io_context), acceptor(io_context), callbacks(std::move(cb)) {}

  void do_accept();
  void stop();

  net::io_context& io;
  tcp::acceptor acceptor;
  AdminCallbacks callbacks;
  std::list<std::weak_ptr<AdminSession>> sessions;  // this io_context's thread only
  bool stopped = false;
};

namespace {

class AdminSession : public std::enable_shared_from_this<AdminSession> {
 public:
  AdminSession(tcp::socket&& socket, std::shared_ptr<AdminServer::State> state)
      : stream_(std::move(socket)), state_(std::move(state)) {}

  ~AdminSession() {
    if (registered_) state_->sessions.erase(self_);
  }

  void start() {
    state_->sessions.push_front(weak_from_this());
    self_ = state_->sessions.begin();
    registered_ = true;
    read(kReadTimeout);
  }

  void close() {
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ec);
    stream_.close();
  }

 private:
  void read(std::chrono::seconds timeout) {
    parser_.emplace();
    parser_->header_limit(kHeaderLimit);
    parser_->body_limit(kBodyLimit);
    stream_.expires_after(timeout);
    http::async_read(stream_, buffer_, *parser_,
                     [self = shared_from_this()](beast::error_code ec, std::size_t) {
                       self->on_read(ec);
                     });
  }

  void on_read(beast::error_code ec) {
    if (ec) {
      close();
      return;
    }
    const auto& request = parser_->get();
    response_ = {};
    response_.version(request.version());
    response_.keep_alive(request.keep_alive() && !state_->stopped);
    response_.set(http::field::server, "sluice");
    response_.set(http::field::content_type, "text/plain; charset=utf-8");
    const auto target = request.target();
    const auto path = target.substr(0, target.find('?'));
    const bool known = path == "/healthz" || path == "/readyz" || path == "/metrics";
    if (known && request.method() != http::verb::get) {
      response_.result(http::status::method_not_allowed);
      response_.set(http::field::allow, "GET");
      response_.body() = "method not allowed";
    } else if (path == "/healthz") {
      response_.result(http::status::ok);
      response_.body() = "ok";
    } else if (path == "/readyz") {
      const bool ready = !state_->callbacks.ready || state_->callbacks.ready();
      response_.result(ready ? http::status::ok : http::status::service_unavailable);
      response_.body() = ready ? "ready" : "not ready";
    } else if (path == "/metrics") {
      response_.result(http::status::ok);
      response_.set(http::field::content_type, kMetricsContentType);
      if (state_->callbacks.render_metrics) response_.body() = state_->callbacks.render_metrics();
    } else if (path == "/loglevel" && state_->callbacks.log_level && state_->callbacks.set_log_level) {
      if (request.method() == http::verb::get) {
        response_.result(http::status::ok);
        response_.body() = state_->callbacks.log_level() + "\n";
      } else if (request.method() == http::verb::put) {
        std::string level = request.body();
        while (!level.empty() && (level.back() == '\n' || level.back() == '\r' || level.back() == ' ')) level.pop_back();
        const std::string problem = state_->callbacks.set_log_level(level);
        response_.result(problem.empty() ? http::status::ok : http::status::bad_request);
        response_.body() = (problem.empty() ? state_->callbacks.log_level() : problem) + "\n";
      } else {
        response_.result(http::status::method_not_allowed);
        response_.set(http::field::allow, "GET, PUT");
        response_.body() = "method not allowed";
      }
    } else {
      response_.result(http::status::not_found);
      response_.body() = "not found";
    }
    response_.prepare_payload();
    stream_.expires_after(kReadTimeout);
    http::async_write(stream_, response_,
                      [self = shared_from_this()](beast::error_code write_ec, std::size_t) {
                        self->on_write(write_ec);
                      });
  }

  void on_write(beast::error_code ec) {
    if (ec || !response_.keep_alive() || state_->stopped) {
      close();
      return;
    }
    read(kIdleTimeout);
  }

  beast::tcp_stream stream_;
  std::shared_ptr<AdminServer::State> state_;
  std::list<std::weak_ptr<AdminSession>>::iterator self_;
  bool registered_ = false;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  http::response<http::string_body> response_;
};

}  // namespace

void AdminServer::State::do_accept() {
  acceptor.async_accept([self = shared_from_this()](beast::error_code ec, tcp::socket socket) {
    if (self->stopped || ec == net::error::operation_aborted) return;
    if (!ec) {
      if (self->sessions.size() >= kMaxConnections) {
        beast::error_code ignored;
        socket.close(ignored);
      } else {
        std::make_shared<AdminSession>(std::move(socket), self)->start();
      }
    }
    self->do_accept();
  });
}

void AdminServer::State::stop() {
  stopped = true;
  beast::error_code ec;
  acceptor.close(ec);
  std::vector<std::shared_ptr<AdminSession>> live;
  for (auto& weak : sessions) {
    if (auto session = weak.lock()) live.push_back(std::move(session));
  }
  for (auto& session : live) session->close();
}

AdminServer::AdminServer(net::io_context& io, std::string listen_address, AdminCallbacks callbacks)
    : listen_address_(std::move(listen_address)),
      state_(std::make_shared<State>(io, std::move(callbacks))) {}

AdminServer::~AdminServer() { stop(); }

void AdminServer::start() {
  auto parsed = parse_listen_address(listen_address_);
  tcp::endpoint endpoint(resolve_listen_host(parsed.host), parsed.port);
  auto& acceptor = state_->acceptor;
  beast::error_code ec;
  auto fail = [&](const char* what) {
    return std::runtime_error("admin: cannot " + std::string(what) + " " + listen_address_ + ": " +
                              ec.message());
  };
  acceptor.open(endpoint.protocol(), ec);
  if (ec) throw fail("open a socket for");
  acceptor.set_option(net::socket_base::reuse_address(true), ec);
  if (ec) throw fail("set SO_REUSEADDR on");
  acceptor.bind(endpoint, ec);
  if (ec) throw fail("bind");
  acceptor.listen(net::socket_base::max_listen_connections, ec);
  if (ec) throw fail("listen on");
  port_ = acceptor.local_endpoint(ec).port();
  if (ec) throw fail("read the local port of");
  auto state = state_;
  net::post(state->io, [state] { state->do_accept(); });
}

void AdminServer::stop() {
  auto state = state_;
  net::post(state->io, [state] { state->stop(); });
}

}  // namespace sluice
