// ingest/http/admin_server.h — the admin listener: liveness, readiness and Prometheus metrics.
//
//   GET /healthz ─► 200 "ok"
//   GET /readyz  ─► callbacks.ready() ? 200 "ready" : 503 "not ready"
//   GET /metrics ─► 200 text/plain; version=0.0.4 ─ body from callbacks.render_metrics()
//   anything else ─► 404 "not found" (405 for a non-GET on a known path)
//
// A small Beast server on one io_context (its own thread, separate from the ingest IO threads):
// keep-alive, 10 s to read a request, 60 s idle, 8 KiB header / 4 KiB body limits, at most 64
// connections. Callbacks run on that io_context's thread.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <string>

namespace boost::asio {
class io_context;
}

namespace sluice {

struct AdminCallbacks {
  std::function<bool()> ready;                  // empty = always ready
  std::function<std::string()> render_metrics;  // empty = empty body
  // GET /loglevel → the current level; PUT /loglevel with the level as body sets it (until the next
  // reload or restart). set_log_level returns "" or what is wrong. Both empty = 404.
  std::function<std::string()> log_level;
  std::function<std::string(const std::string&)> set_log_level;
};

class AdminServer {
 public:
  // The io_context must outlive the server.
  AdminServer(boost::asio::io_context& io, std::string listen_address, AdminCallbacks callbacks);
  ~AdminServer();
  AdminServer(const AdminServer&) = delete;
  AdminServer& operator=(const AdminServer&) = delete;

  // Throws std::runtime_error naming the address if it cannot bind/listen.
  void start();
  // Closes the acceptor and every admin connection (on the io_context's thread). Thread-safe.
  void stop();
  unsigned short port() const { return port_; }

  struct State;

 private:
  std::string listen_address_;
  unsigned short port_ = 0;
  std::shared_ptr<State> state_;
};

}  // namespace sluice
