// daemon/reloader.h — SIGHUP: re-read the config file, validate it, apply what can change live.
//
//   SIGHUP ─► signal thread ─► Reloader::reload()
//               load_config(file)  + checks against the loaded catalog (line protocol mappers, UDP tables)
//                 │ invalid: every problem logged, the running config stays entirely   → result="invalid"
//                 ▼ valid
//               plan_reload(running, new)          (config/reload.h)
//                 ├─ live: log level, batch limits (Batcher::set_limits), HTTP limits
//                 │        (HttpServer::set_limits), rows per request / ack timeout / default
//                 │        precision (posted to each IO thread's write services), reload hooks
//                 └─ restart: logged by name, the running value kept                  → result="applied"
//
// systemd: RELOADING=1 before, READY=1 after (whatever the result). Metrics:
// sluice_config_reloads_total{result="applied|invalid"}, sluice_config_last_reload_success_timestamp_seconds
// (start-up counts as the first successful load, as in Prometheus).
#pragma once

#include <atomic>
#include <functional>
#include <mutex>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>

#include "config/config.h"

namespace sluice {

class Batcher;
class HttpServer;
class HttpWriteService;
class InfluxWriteService;
struct Catalog;
namespace metrics {
class Registry;
}

struct LivePieces {
  Batcher* batcher = nullptr;
  HttpServer* http = nullptr;                             // null when http.enabled is false
  const Catalog* catalog = nullptr;
  std::vector<boost::asio::io_context*> ios;              // IO thread i runs ios[i]
  std::vector<HttpWriteService*> http_services;           // [i] lives on ios[i]
  std::vector<InfluxWriteService*> influx_services;       // [i] lives on ios[i]; empty without measurements
  std::function<void(const std::string&)> notify;         // sd_notify; may be empty
};

class Reloader {
 public:
  Reloader(const Config& running, LivePieces pieces);

  // Reloads running().source. Never throws; true when the new config was applied.
  bool reload();
  void register_metrics(metrics::Registry& registry);
  Config running() const;

  // Problems of `next` that only the running daemon can see (its catalog); empty when none.
  static std::vector<std::string> check_against_catalog(const Config& running, const Config& next, const Catalog& catalog);

 private:
  void apply(const Config& next);

  mutable std::mutex mutex_;  // running_; reload() is serialised by it too
  Config running_;
  LivePieces pieces_;
  std::atomic<uint64_t> applied_{0};
  std::atomic<uint64_t> invalid_{0};
  std::atomic<double> last_success_s_{0};
};

}  // namespace sluice
