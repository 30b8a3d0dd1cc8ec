#include "daemon/daemon.h"

#include <signal.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <future>
#include <memory>
#include <thread>
#include <vector>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <spdlog/spdlog.h>

#ifdef SLUICE_HAVE_SYSTEMD
#include <systemd/sd-daemon.h>
#endif

#include "batch/batcher.h"
#include "catalog/catalog.h"
#include "daemon/collectors.h"
#include "ingest/http/admin_server.h"
#include "ingest/http/http_server.h"
#include "ingest/http_write_service.h"
#include "ingest/ingest_context.h"
#include "ingest/udp/udp_listener.h"
#include "ingest/udp_ingest.h"
#include "metrics/registry.h"
#include "pg/connection.h"
#include "pg/copy_writer.h"
#include "policy/policy_manager.h"

namespace sluice {
namespace {

using namespace std::chrono_literals;
using WorkGuard = boost::asio::executor_work_guard<boost::asio::io_context::executor_type>;

void notify_systemd(const char* state) {
#ifdef SLUICE_HAVE_SYSTEMD
  sd_notify(0, state);
#else
  (void)state;
#endif
}

// Blocks the stop signals in every thread (call before starting any) and waits for one of them on
// a dedicated thread.
class SignalWatcher {
 public:
  SignalWatcher() {
    sigemptyset(&set_);
    sigaddset(&set_, SIGTERM);
    sigaddset(&set_, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set_, nullptr);
    thread_ = std::thread([this] {
      int sig = 0;
      while (sigwait(&set_, &sig) == 0) {
        if (sig == SIGTERM || sig == SIGINT) break;
      }
      {
        std::lock_guard<std::mutex> lock(mutex_);
        signal_ = sig;
      }
      cv_.notify_all();
    });
  }
  ~SignalWatcher() {
    if (!stopped()) {
      // Wake the sigwait thread so it can be joined.
      pthread_kill(thread_.native_handle(), SIGTERM);
    }
    thread_.join();
  }
  bool stopped() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return signal_ != 0;
  }
  // Waits up to `d`; true when a stop signal arrived.
  template <typename Duration>
  bool wait_for(Duration d) {
    std::unique_lock<std::mutex> lock(mutex_);
    return cv_.wait_for(lock, d, [this] { return signal_ != 0; });
  }
  int signal() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return signal_;
  }

 private:
  sigset_t set_;
  std::thread thread_;
  mutable std::mutex mutex_;
  std::condition_variable cv_;
  int signal_ = 0;
};

// What the admin listener shows. It starts before the database is reachable (so /healthz answers
// and /readyz says "not ready" while sluice waits), and the pieces it reports on are attached once
// they exist and detached before they are destroyed — under a mutex, since scrapes run on the
// admin thread.
class AdminView {
 public:
  void attach(const metrics::Registry* registry, const pg::WriterPool* writers) {
    std::lock_guard<std::mutex> lock(mutex_);
    registry_ = registry;
    writers_ = writers;
  }
  void detach() { attach(nullptr, nullptr); }
  void set_stopping() { stopping_ = true; }
  bool ready() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return !stopping_ && writers_ && writers_->connected();
  }
  std::string render() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return registry_ ? registry_->render() : std::string();
  }

 private:
  mutable std::mutex mutex_;
  const metrics::Registry* registry_ = nullptr;
  const pg::WriterPool* writers_ = nullptr;
  std::atomic<bool> stopping_{false};
};

// Runs the admin listener on its own thread; stops it when destroyed (also on a start-up error).
class AdminRunner {
 public:
  AdminRunner(const AdminConfig& config, AdminView& view) {
    if (!config.enabled) return;
    AdminCallbacks cb;
    cb.ready = [&view] { return view.ready(); };
    cb.render_metrics = [&view] { return view.render(); };
    server_ = std::make_unique<AdminServer>(io_, config.listen, cb);
    server_->start();
    thread_ = std::thread([this] { io_.run(); });
    spdlog::info("event=listening kind=admin address={}", config.listen);
  }
  ~AdminRunner() {
    if (!server_) return;
    server_->stop();
    io_.stop();
    thread_.join();
  }

 private:
  boost::asio::io_context io_{1};
  std::unique_ptr<AdminServer> server_;
  std::thread thread_;
};

// Detaches the view when the pieces it shows go away (declared after them: destroyed before them).
struct AdminAttachment {
  AdminView& view;
  ~AdminAttachment() { view.detach(); }
};

// Connects and loads the catalog, retrying while the database is unreachable. A catalog that
// loads but is wrong (missing table, unsupported column type) is fatal at once.
bool load_catalog_with_retry(const Config& config, SignalWatcher& signals, Catalog& out) {
  std::vector<TableSpec> specs;
  for (const auto& t : config.tables) specs.push_back({t.name, t.time_column});
  auto delay = 250ms;
  for (int attempt = 1;; ++attempt) {
    try {
      pg::Connection conn(config.database.url, "sluiced catalog");
      out = load_catalog(conn.get(), specs);
      return true;
    } catch (const pg::PgError& e) {
      if (e.sqlstate() != "08001" && e.sqlstate().rfind("08", 0) != 0 && e.sqlstate() != "57P03") throw;
      if (attempt == 1 || (attempt & (attempt - 1)) == 0) {
        spdlog::warn("event=db_unreachable attempt={} error=\"{}\" retry_in_ms={}", attempt, e.what(), delay.count());
      }
    }
    if (signals.wait_for(delay)) return false;
    delay = std::min<std::chrono::milliseconds>(delay * 2, 5000ms);
  }
}

}  // namespace

int run_daemon(const Config& config) {
  spdlog::set_level(spdlog::level::from_str(config.log.level));
  SignalWatcher signals;

  spdlog::info("event=starting version={} database=\"{}\" tables={}", SLUICE_VERSION,
               pg::redact_url(config.database.url), config.tables.size());
  AdminView admin_view;
  AdminRunner admin(config.admin, admin_view);
  Catalog catalog;
  if (!load_catalog_with_retry(config, signals, catalog)) {
    spdlog::info("event=stopped_before_ready");
    return 0;
  }
  for (const auto& t : catalog.tables) {
    spdlog::info("event=table_loaded table={} columns={} time_column={}", t.config_name, t.columns.size(),
                 t.time_column >= 0 ? t.columns[t.time_column].name : "-");
  }

  const int io_threads = config.pipeline.io_threads;
  std::vector<std::string> table_names;
  for (const auto& t : catalog.tables) table_names.push_back(t.config_name);
  metrics::Registry registry(table_names, io_threads);

  // Rings, IO contexts and per-thread ingest state.
  std::vector<std::unique_ptr<BlockRing>> rings;
  std::vector<std::unique_ptr<boost::asio::io_context>> ios;
  std::vector<std::unique_ptr<IngestContext>> contexts;
  std::vector<std::unique_ptr<HttpWriteService>> http_services;
  for (int i = 0; i < io_threads; ++i) {
    rings.push_back(std::make_unique<BlockRing>(config.pipeline.ring_capacity));
    ios.push_back(std::make_unique<boost::asio::io_context>(1));
    contexts.push_back(std::make_unique<IngestContext>(*ios.back(), *rings.back(), registry.shard(i), catalog,
                                                       config.http.max_errors_reported));
    http_services.push_back(std::make_unique<HttpWriteService>(*contexts.back(), config.http));
  }

  // Policy manager (lib/policy): reconciles the timeseries blocks at start and every
  // policy.reconcile_interval on its own connection and thread; never on the ingest path. The
  // writers tell it the time range of every commit (late data → aggregate refresh, partitions).
  std::unique_ptr<policy::PolicyManager> policies;
  if (config.policy.enabled) {
    auto popts = policy::policy_options_from_config(config);
    if (!popts.desired.empty()) policies = std::make_unique<policy::PolicyManager>(std::move(popts));
  }

  // Writers and batcher.
  pg::WriterOptions wopts;
  if (policies) {
    wopts.on_commit = [&catalog, p = policies.get()](uint32_t table_id, int64_t min_time, int64_t max_time) {
      p->note_committed_range(catalog.tables[table_id].config_name, min_time, max_time);
    };
  }
  wopts.url = config.database.url;
  wopts.connections = config.database.connections;
  wopts.queue_batches = config.pipeline.writer_queue_batches;
  pg::WriterPool writers(catalog, wopts);
  std::vector<BlockRing*> ring_ptrs;
  for (auto& r : rings) ring_ptrs.push_back(r.get());
  BatchLimits limits;
  limits.max_rows = config.batch.max_rows;
  limits.max_bytes = config.batch.max_bytes;
  limits.max_age = std::chrono::milliseconds(config.batch.max_age_ms);
  Batcher batcher(ring_ptrs, limits, writers);
  writers.start();
  batcher.start();

  // Listeners.
  std::unique_ptr<HttpServer> http;
  if (config.http.enabled) {
    HttpLimits hl;
    hl.max_body_bytes = config.http.max_body_bytes;
    hl.max_header_bytes = config.http.max_header_bytes;
    hl.header_timeout = std::chrono::milliseconds(config.http.header_timeout_ms);
    hl.body_timeout = std::chrono::milliseconds(config.http.body_timeout_ms);
    hl.idle_timeout = std::chrono::milliseconds(config.http.idle_timeout_ms);
    hl.max_connections = config.http.max_connections;
    std::vector<boost::asio::io_context*> io_ptrs;
    std::vector<WriteHandler*> handlers;
    for (int i = 0; i < io_threads; ++i) {
      io_ptrs.push_back(ios[i].get());
      handlers.push_back(http_services[i].get());
    }
    http = std::make_unique<HttpServer>(io_ptrs, config.http.listen, hl, handlers);
    http->start();
    spdlog::info("event=listening kind=http address={}", config.http.listen);
  }

  std::vector<std::unique_ptr<UdpIngest>> udp_ingests;
  std::vector<std::unique_ptr<UdpListener>> udp_listeners;
  for (size_t u = 0; u < config.udp.size(); ++u) {
    const auto& uc = config.udp[u];
    const int thread = static_cast<int>(u % static_cast<size_t>(io_threads));
    EpochPrecision precision = EpochPrecision::s;
    parse_epoch_precision(uc.precision, precision);
    const TableSchema* table = catalog.find(uc.table);
    udp_ingests.push_back(std::make_unique<UdpIngest>(*contexts[thread], *table, precision));
    UdpOptions uo;
    uo.listen = uc.listen;
    uo.max_datagram_bytes = uc.max_datagram_bytes;
    uo.recv_buffer_bytes = uc.recv_buffer_bytes;
    udp_listeners.push_back(std::make_unique<UdpListener>(*ios[thread], uo, *udp_ingests.back()));
    udp_listeners.back()->start();
    spdlog::info("event=listening kind=udp address={} table={}", uc.listen, uc.table);
  }

  // Ring occupancy and the components' own stats at scrape time.
  registry.add_collector([&](metrics::Families& out) {
    auto& occ = metrics::family(out, "sluice_ring_blocks", "Encoded blocks waiting in each IO thread's ring.",
                                prometheus::MetricType::Gauge);
    auto& cap = metrics::family(out, "sluice_ring_capacity_blocks", "Capacity of each IO thread's ring.",
                                prometheus::MetricType::Gauge);
    for (size_t i = 0; i < rings.size(); ++i) {
      metrics::add_value(occ, {{"thread", std::to_string(i)}}, static_cast<double>(rings[i]->size_approx()));
      metrics::add_value(cap, {{"thread", std::to_string(i)}}, static_cast<double>(rings[i]->capacity()));
    }
  });
  add_component_collectors(registry, catalog, batcher, writers, http.get(), udp_listeners, config.udp);

  if (policies) {
    policies->register_metrics(registry);
    policies->start();
    spdlog::info("event=policy_manager_started reconcile_interval_s={}", config.policy.reconcile_interval_s);
  }

  // IO threads.
  std::vector<WorkGuard> guards;
  std::vector<std::thread> threads;
  for (auto& io : ios) {
    guards.emplace_back(io->get_executor());
    threads.emplace_back([io = io.get()] { io->run(); });
  }

  // From here the admin listener reports metrics and readiness.
  admin_view.attach(&registry, &writers);
  AdminAttachment admin_attachment{admin_view};

  notify_systemd("READY=1");
  spdlog::info("event=ready io_threads={} writer_connections={}", io_threads, config.database.connections);

  signals.wait_for(std::chrono::hours(24 * 365 * 100));
  admin_view.set_stopping();
  notify_systemd("STOPPING=1");
  spdlog::info("event=stopping signal={}", signals.signal());

  // 1. No new connections or datagrams.
  if (http) http->stop_accepting();
  for (size_t u = 0; u < udp_listeners.size(); ++u) {
    std::promise<void> done;
    boost::asio::post(*ios[u % ios.size()], [&] {
      udp_listeners[u]->stop();
      done.set_value();
    });
    done.get_future().wait();
  }
  // 2. Every IO thread stops pushing (requests arriving now get 503); after this the rings have
  //    no producer, so the batcher may drain them completely.
  for (size_t i = 0; i < ios.size(); ++i) {
    std::promise<void> done;
    boost::asio::post(*ios[i], [&] {
      contexts[i]->set_closing();
      done.set_value();
    });
    done.get_future().wait();
  }
  // 3. Drain, flush, commit; acks post the answers to the IO threads, which are still running.
  batcher.stop_and_drain();
  writers.stop();
  if (policies) policies->stop();
  // 4. Let sessions write their answers, then stop the IO threads.
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  while (http && http->connections() > 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(10ms);
  }
  guards.clear();
  for (auto& io : ios) io->stop();
  for (auto& t : threads) t.join();
  spdlog::info("event=stopped");
  return 0;
}

}  // namespace sluice
