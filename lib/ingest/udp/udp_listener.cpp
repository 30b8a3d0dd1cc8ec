#include "ingest/udp/udp_listener.h"

#include <linux/sock_diag.h>  // SK_MEMINFO_*
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/udp.hpp>
#include <boost/asio/post.hpp>

#include "ingest/http/listen_address.h"

namespace sluice {

namespace net = boost::asio;
using udp = net::ip::udp;

namespace {
constexpr std::size_t kPadding = 64;               // readable bytes past every datagram
constexpr std::size_t kControlBytes = 64;          // room for the SO_RXQ_OVFL cmsg
constexpr int kMaxBatchesPerWakeup = 16;           // then yield to other work on the io_context
using ReusePort = net::detail::socket_option::boolean<SOL_SOCKET, SO_REUSEPORT>;
}  // namespace

struct UdpListener::Impl : std::enable_shared_from_this<UdpListener::Impl> {
  Impl(net::io_context& io_context, UdpOptions opts, DatagramHandler& h)
      : io(io_context), options(std::move(opts)), handler(h), socket(io_context) {
    options.batch = std::clamp(options.batch, 1, 1024);
    options.max_datagram_bytes = std::clamp<std::size_t>(options.max_datagram_bytes, 1, 65535);
  }

  void allocate() {
    const std::size_t vlen = static_cast<std::size_t>(options.batch);
    slot_capacity = options.max_datagram_bytes + kPadding;
    buffers = std::make_unique<char[]>(vlen * slot_capacity);
    control = std::make_unique<char[]>(vlen * kControlBytes);
    if (!options.allow.empty()) sources.assign(vlen, sockaddr_storage{});
    iovecs.assign(vlen, iovec{});
    messages.assign(vlen, mmsghdr{});
    for (std::size_t i = 0; i < vlen; ++i) {
      iovecs[i].iov_base = buffers.get() + i * slot_capacity;
      iovecs[i].iov_len = options.max_datagram_bytes;
      auto& header = messages[i].msg_hdr;
      header.msg_iov = &iovecs[i];
      header.msg_iovlen = 1;
      header.msg_control = control.get() + i * kControlBytes;
      if (!sources.empty()) header.msg_name = &sources[i];
    }
  }

  void wait() {
    socket.async_wait(udp::socket::wait_read,
                      [self = shared_from_this()](const boost::system::error_code& ec) {
                        if (ec || self->stopped) return;
                        self->drain();
                      });
  }

  void note_drops(msghdr& header) {
    for (cmsghdr* c = CMSG_FIRSTHDR(&header); c != nullptr; c = CMSG_NXTHDR(&header, c)) {
      if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SO_RXQ_OVFL &&
          c->cmsg_len >= CMSG_LEN(sizeof(std::uint32_t))) {
        std::uint32_t dropped;
        std::memcpy(&dropped, CMSG_DATA(c), sizeof dropped);
        // The kernel reports the socket's cumulative drop count at the datagram's enqueue time.
        advance_drops(dropped);
      }
    }
  }

  // The socket's cumulative drop count (sk_drops, wrapping at 2^32) from a datagram's SO_RXQ_OVFL
  // or from SO_MEMINFO: counts the part not yet counted. A datagram queued before the last
  // SO_MEMINFO read carries an older (smaller) count, which is ignored.
  void advance_drops(std::uint32_t dropped) {
    const auto ahead = static_cast<std::int32_t>(dropped - last_drop_count);
    if (ahead > 0) {
      kernel_drops_delta += static_cast<std::uint32_t>(ahead);
      last_drop_count = dropped;
    }
  }

  // With the queue drained: drops that happened after the last datagram read are reported by
  // SO_RXQ_OVFL only with the next datagram, which may not come for a long time (or ever); read the
  // counter itself so that every drop is counted once the queue is empty.
  void sync_drops(int fd) {
    std::uint32_t info[SK_MEMINFO_VARS] = {};
    socklen_t length = sizeof info;
    if (::getsockopt(fd, SOL_SOCKET, SO_MEMINFO, info, &length) != 0 ||
        length < (SK_MEMINFO_DROPS + 1) * sizeof(std::uint32_t)) {
      return;  // not supported: the drops of the last burst are counted with the next datagram
    }
    kernel_drops_delta = 0;
    advance_drops(info[SK_MEMINFO_DROPS]);
    if (kernel_drops_delta) stats.kernel_drops.fetch_add(kernel_drops_delta, std::memory_order_relaxed);
  }

  bool allowed(const sockaddr_storage& source, socklen_t length) const {
    if (length < sizeof(sockaddr_in)) return false;
    for (const auto& network : options.allow) {
      if (network.contains(reinterpret_cast<const sockaddr*>(&source))) return true;
    }
    return false;
  }

  void drain() {
    const int fd = socket.native_handle();
    const unsigned vlen = static_cast<unsigned>(options.batch);
    for (int round = 0; round < kMaxBatchesPerWakeup; ++round) {
      for (unsigned i = 0; i < vlen; ++i) {
        messages[i].msg_hdr.msg_controllen = kControlBytes;
        if (!sources.empty()) messages[i].msg_hdr.msg_namelen = sizeof(sockaddr_storage);
        messages[i].msg_hdr.msg_flags = 0;
        messages[i].msg_len = 0;
      }
      int n = ::recvmmsg(fd, messages.data(), vlen, MSG_DONTWAIT, nullptr);
      if (n < 0) {
        if (errno == EINTR) continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK) {
          stats.recv_errors.fetch_add(1, std::memory_order_relaxed);
        } else {
          sync_drops(fd);
        }
        wait();
        return;
      }
      std::uint64_t received = 0, bytes = 0, truncated = 0, not_allowed = 0;
      kernel_drops_delta = 0;
      for (int i = 0; i < n; ++i) {
        auto& message = messages[static_cast<std::size_t>(i)];
        if (message.msg_hdr.msg_controllen > 0) note_drops(message.msg_hdr);
        if (message.msg_hdr.msg_flags & MSG_TRUNC) {
          ++truncated;
          continue;
        }
        if (!sources.empty() && !allowed(sources[static_cast<std::size_t>(i)], message.msg_hdr.msg_namelen)) {
          ++not_allowed;
          continue;
        }
        ++received;
        bytes += message.msg_len;
        handler.on_datagram(static_cast<const char*>(iovecs[static_cast<std::size_t>(i)].iov_base),
                            message.msg_len, slot_capacity);
      }
      stats.batches.fetch_add(1, std::memory_order_relaxed);
      if (received) {
        stats.datagrams_received.fetch_add(received, std::memory_order_relaxed);
        stats.bytes_received.fetch_add(bytes, std::memory_order_relaxed);
      }
      if (truncated) stats.truncated.fetch_add(truncated, std::memory_order_relaxed);
      if (not_allowed) stats.not_allowed.fetch_add(not_allowed, std::memory_order_relaxed);
      if (kernel_drops_delta) {
        stats.kernel_drops.fetch_add(kernel_drops_delta, std::memory_order_relaxed);
      }
      if (stopped) return;  // the handler stopped us
    }
    // Still busy: let other handlers on this io_context run before draining on.
    net::post(io, [self = shared_from_this()] {
      if (!self->stopped) self->drain();
    });
  }

  void close() {
    stopped = true;
    boost::system::error_code ec;
    socket.close(ec);
  }

  net::io_context& io;
  UdpOptions options;
  DatagramHandler& handler;
  udp::socket socket;
  Stats stats;
  unsigned short port = 0;
  int effective_recv_buffer = 0;
  bool started = false;
  bool stopped = false;  // io_context thread only (after start)

  std::size_t slot_capacity = 0;
  std::unique_ptr<char[]> buffers;
  std::unique_ptr<char[]> control;
  std::vector<iovec> iovecs;
  std::vector<mmsghdr> messages;
  std::vector<sockaddr_storage> sources;  // source addresses; allocated only with an allow list
  std::uint32_t last_drop_count = 0;
  std::uint64_t kernel_drops_delta = 0;
};

UdpListener::UdpListener(net::io_context& io, UdpOptions options, DatagramHandler& handler)
    : impl_(std::make_shared<Impl>(io, std::move(options), handler)) {}

UdpListener::~UdpListener() { stop(); }

void UdpListener::start() {
  auto& impl = *impl_;
  const std::string& address = impl.options.listen;
  auto parsed = parse_listen_address(address);
  udp::endpoint endpoint(resolve_listen_host(parsed.host), parsed.port);
  boost::system::error_code ec;
  auto fail = [&](const std::string& what) {
    return std::runtime_error("udp: cannot " + what + " " + address + ": " + ec.message());
  };
  impl.socket.open(endpoint.protocol(), ec);
  if (ec) throw fail("open a socket for");
  if (impl.options.reuse_port) {
    impl.socket.set_option(ReusePort(true), ec);
    if (ec) throw fail("set SO_REUSEPORT on");
  }
  impl.socket.bind(endpoint, ec);
  if (ec) throw fail("bind");
  impl.socket.non_blocking(true, ec);
  if (ec) throw fail("make non-blocking the socket of");
  impl.port = impl.socket.local_endpoint(ec).port();
  if (ec) throw fail("read the local port of");

  const int fd = impl.socket.native_handle();
  int size = impl.options.recv_buffer_bytes;
  if (size > 0) {
    // SO_RCVBUFFORCE ignores net.core.rmem_max but needs CAP_NET_ADMIN; fall back to SO_RCVBUF.
    if (::setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof size) != 0) {
      ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
    }
  }
  int effective = 0;
  socklen_t len = sizeof effective;
  if (::getsockopt(fd, SOL_SOCKET, SO_RCVBUF, &effective, &len) == 0) {
    impl.effective_recv_buffer = effective;
  }
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_RXQ_OVFL, &one, sizeof one);  // best effort: drops stay 0

  impl.allocate();
  impl.started = true;
  auto self = impl_;
  net::post(impl.io, [self] {
    if (!self->stopped) self->drain();
  });
}

void UdpListener::stop() {
  auto self = impl_;
  net::post(self->io, [self] { self->close(); });
}

unsigned short UdpListener::port() const { return impl_->port; }

int UdpListener::effective_recv_buffer_bytes() const { return impl_->effective_recv_buffer; }

const UdpListener::Stats& UdpListener::stats() const { return impl_->stats; }

}  // namespace sluice
