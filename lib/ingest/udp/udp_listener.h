// ingest/udp/udp_listener.h — a UDP socket drained with recvmmsg into pre-allocated buffers.
//
//   socket (non-blocking, SO_RCVBUF[FORCE], SO_RXQ_OVFL, SO_REUSEPORT)
//     ── async_wait(read) ──► recvmmsg(MSG_DONTWAIT) × up to 16 batches of `batch` datagrams
//     ── DatagramHandler::on_datagram(data, size, capacity = max_datagram_bytes + 64) per datagram
//     ── EAGAIN: read the drop counter (SO_MEMINFO), wait again │ still busy after 16 batches: post
//        to let the io_context breathe
//
// One listener lives on one io_context (one IO thread) and calls its handler only there. Buffers,
// mmsghdr/iovec arrays and control buffers are allocated once at start(). Truncated datagrams
// (larger than max_datagram_bytes) are counted, not handed on; kernel drops (socket buffer full)
// are read from the SO_RXQ_OVFL control message of each datagram and, whenever the queue is empty,
// from SO_MEMINFO (the drops after the last datagram read are then counted at once, not only with
// the next datagram that arrives). With an `allow` list, datagrams from other source
// addresses are dropped before the handler and counted (not_allowed). Nothing is logged per packet.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "config/security.h"
#include "ingest/write_handler.h"

namespace boost::asio {
class io_context;
}

namespace sluice {

struct UdpOptions {
  std::string listen;                    // "host:port"
  std::size_t max_datagram_bytes = 65535;
  int batch = 64;                        // recvmmsg vlen
  int recv_buffer_bytes = 8 << 20;       // SO_RCVBUF (SO_RCVBUFFORCE when root)
  bool reuse_port = true;                // SO_REUSEPORT: one listener per IO thread on one port
  std::vector<Cidr> allow;               // accepted source networks; empty = any
};

class UdpListener {
 public:
  struct Stats {
    std::atomic<std::uint64_t> datagrams_received{0};  // handed to the handler
    std::atomic<std::uint64_t> bytes_received{0};      // of those
    std::atomic<std::uint64_t> truncated{0};           // MSG_TRUNC: larger than max_datagram_bytes
    std::atomic<std::uint64_t> kernel_drops{0};        // socket receive queue overflow (SO_RXQ_OVFL, SO_MEMINFO)
    std::atomic<std::uint64_t> recv_errors{0};
    std::atomic<std::uint64_t> batches{0};             // recvmmsg calls that returned datagrams
    std::atomic<std::uint64_t> not_allowed{0};         // source outside options.allow, dropped
  };

  // The io_context and handler must outlive the listener.
  UdpListener(boost::asio::io_context& io, UdpOptions options, DatagramHandler& handler);
  ~UdpListener();
  UdpListener(const UdpListener&) = delete;
  UdpListener& operator=(const UdpListener&) = delete;

  // Binds and starts receiving once the io_context runs. Throws std::runtime_error naming the
  // address if it cannot bind.
  void start();
  // Closes the socket on the io_context's thread; the handler is not called afterwards. Thread-safe.
  void stop();
  unsigned short port() const;
  // SO_RCVBUF as the kernel reports it after start() (the kernel doubles the requested value).
  int effective_recv_buffer_bytes() const;
  const Stats& stats() const;

  struct Impl;

 private:
  std::shared_ptr<Impl> impl_;
};

}  // namespace sluice
