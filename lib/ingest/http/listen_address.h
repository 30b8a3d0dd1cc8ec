// ingest/http/listen_address.h — parse and resolve "host:port" listen addresses (start-up only).
//
//   "0.0.0.0:8080" | "127.0.0.1:0" | "[::1]:9000" | ":8080" (all IPv4) | "localhost:8080"
//        └─ parse_listen_address ─► {host, port} ─► resolve_listen_host ─► boost::asio::ip::address
//
// Shared by the HTTP, admin and UDP listeners. Errors throw std::runtime_error naming the address.
#pragma once

#include <boost/asio/ip/address.hpp>
#include <string>
#include <string_view>

namespace sluice {

struct ListenAddress {
  std::string host;          // without brackets; "0.0.0.0" when the host part was empty
  unsigned short port = 0;
};

// Throws std::runtime_error on a missing/invalid port or an unbalanced bracket.
ListenAddress parse_listen_address(std::string_view text);

// Numeric addresses are used as they are; names are resolved (first result). Throws when unresolvable.
boost::asio::ip::address resolve_listen_host(const std::string& host);

}  // namespace sluice
