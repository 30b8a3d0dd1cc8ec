// tests/unit/http/http_test_client.h — a blocking HTTP client for the listener tests: Beast
// messages or raw bytes over one TCP connection, with a receive timeout so a broken server fails
// the test instead of hanging it.
#pragma once

#include <sys/socket.h>
#include <sys/time.h>

#include <chrono>
#include <string>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

namespace sluice::test {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;

using Response = http::response<http::string_body>;

class HttpClient {
 public:
  explicit HttpClient(unsigned short port, std::chrono::milliseconds receive_timeout =
                                               std::chrono::milliseconds(5000))
      : socket_(io_) {
    socket_.connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), port));
    timeval tv{};
    tv.tv_sec = receive_timeout.count() / 1000;
    tv.tv_usec = (receive_timeout.count() % 1000) * 1000;
    ::setsockopt(socket_.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  }

  static http::request<http::string_body> post(std::string target, std::string body,
                                               std::string content_type = "application/json") {
    http::request<http::string_body> req{http::verb::post, target, 11};
    req.set(http::field::host, "localhost");
    req.set(http::field::content_type, content_type);
    req.body() = std::move(body);
    req.prepare_payload();
    return req;
  }

  Response request(http::request<http::string_body> req) {
    http::write(socket_, req);
    return read_response();
  }

  void send_raw(std::string_view bytes) { net::write(socket_, net::buffer(bytes.data(), bytes.size())); }

  Response read_response() {
    Response res;
    http::read(socket_, buffer_, res);
    return res;
  }

  // Reads until the server closes; returns true on a clean close (EOF or reset), false when
  // data arrived instead or the receive timeout expired.
  bool wait_closed() {
    char scratch[4096];
    for (;;) {
      boost::system::error_code ec;
      std::size_t n = socket_.read_some(net::buffer(scratch), ec);
      if (ec == net::error::eof || ec == net::error::connection_reset) return true;
      if (ec) return false;
      if (n > 0) return false;
    }
  }

  tcp::socket& socket() { return socket_; }

 private:
  net::io_context io_;
  tcp::socket socket_;
  beast::flat_buffer buffer_;
};

}  // namespace sluice::test
