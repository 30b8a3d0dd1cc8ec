#include "ingest/http/listen_address.h"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <charconv>
#include <stdexcept>

namespace sluice {

ListenAddress parse_listen_address(std::string_view text) {
  auto fail = [&](const char* why) {
    return std::runtime_error("invalid listen address '" + std::string(text) + "': " + why);
  };
  ListenAddress out;
  std::string_view port_text;
  if (!text.empty() && text.front() == '[') {
    auto close = text.find(']');
    if (close == std::string_view::npos) throw fail("missing ']'");
    out.host = std::string(text.substr(1, close - 1));
    if (close + 1 >= text.size() || text[close + 1] != ':') throw fail("expected ':port' after ']'");
    port_text = text.substr(close + 2);
  } else {
    auto colon = text.rfind(':');
    if (colon == std::string_view::npos) throw fail("expected host:port");
    out.host = std::string(text.substr(0, colon));
    if (out.host.find(':') != std::string::npos) throw fail("IPv6 hosts must be written as [addr]:port");
    port_text = text.substr(colon + 1);
  }
  if (out.host.empty()) out.host = "0.0.0.0";
  unsigned value = 0;
  auto [ptr, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), value);
  if (port_text.empty() || ec != std::errc() || ptr != port_text.data() + port_text.size() ||
      value > 65535) {
    throw fail("port must be a number 0..65535");
  }
  out.port = static_cast<unsigned short>(value);
  return out;
}

boost::asio::ip::address resolve_listen_host(const std::string& host) {
  boost::system::error_code ec;
  auto addr = boost::asio::ip::make_address(host, ec);
  if (!ec) return addr;
  boost::asio::io_context io;
  boost::asio::ip::tcp::resolver resolver(io);
  auto results = resolver.resolve(host, "", ec);
  if (ec || results.empty()) {
    throw std::runtime_error("cannot resolve listen host '" + host + "': " +
                             (ec ? ec.message() : std::string("no addresses")));
  }
  return results.begin()->endpoint().address();
}

}  // namespace sluice
