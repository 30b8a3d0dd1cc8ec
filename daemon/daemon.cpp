#include "daemon/daemon.h"

#include <pthread.h>
#include <signal.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <string>
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
#include "daemon/resolver_metrics.h"
#include "daemon/logging.h"
#include "daemon/reloader.h"
#include "daemon/delivery.h"
#include "ingest/http/admin_server.h"
#include "ingest/http/http_security.h"
#include "ingest/http/http_server.h"
#include "ingest/http_write_service.h"
#include "ingest/influx_write_service.h"
#include "ingest/ingest_context.h"
#include "ingest/udp/udp_listener.h"
#include "ingest/udp_ingest.h"
#include "metrics/registry.h"
#include "pg/connection.h"
#include "pg/copy_writer.h"
#include "pg/resolver_service.h"
#include "policy/policy_manager.h"

namespace sluice {
namespace {

using namespace std::chrono_literals;
using WorkGuard = boost::asio::executor_work_guard<boost::asio::io_context::executor_type>;

// systemd notifications (no-ops without NOTIFY_SOCKET or without libsystemd): READY=1, STOPPING=1,
// WATCHDOG=1 and STATUS= lines that `systemctl status sluiced` shows.
void notify_systemd(const std::string& state) {
#ifdef SLUICE_HAVE_SYSTEMD
  sd_notify(0, state.c_str());
#else
  (void)state;
#endif
}

void set_status(const std::string& status) { notify_systemd("STATUS=" + status); }

// The watchdog interval systemd asks for (WatchdogSec=, WATCHDOG_USEC for this pid), 0 when none.
uint64_t watchdog_usec() {
  uint64_t usec = 0;
#ifdef SLUICE_HAVE_SYSTEMD
  if (sd_watchdog_enabled(0, &usec) <= 0) usec = 0;
#endif
  return usec;
}

// Names the calling thread (15 characters at most) for ps -L, top -H and gdb.
void name_thread(const std::string& name) { pthread_setname_np(pthread_self(), name.substr(0, 15).c_str()); }

// Blocks the stop signals in every thread (call before starting any) and waits for one of them on
// a dedicated thread.
class SignalWatcher {
 public:
  SignalWatcher() {
    sigemptyset(&set_);
    sigaddset(&set_, SIGTERM);
    sigaddset(&set_, SIGINT);
    sigaddset(&set_, SIGHUP);  // systemd's ExecReload; must not terminate the daemon
    pthread_sigmask(SIG_BLOCK, &set_, nullptr);
    thread_ = std::thread([this] {
      name_thread("sluice-signal");
      int sig = 0;
      while (sigwait(&set_, &sig) == 0) {
        if (sig == SIGTERM || sig == SIGINT) break;
        if (sig == SIGHUP) {
          std::lock_guard<std::mutex> lock(reload_mutex_);
          if (reload_) {
            reload_();
          } else {
            spdlog::warn("event=reload_requested signal=SIGHUP result=ignored reason=\"not ready yet\"");
          }
        }
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
  // What SIGHUP runs (on the signal thread); empty = logged and ignored. Clearing it waits for a
  // reload in progress.
  void set_reload_handler(std::function<void()> handler) {
    std::lock_guard<std::mutex> lock(reload_mutex_);
    reload_ = std::move(handler);
  }

 private:
  std::mutex reload_mutex_;
  std::function<void()> reload_;
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
  // Set once start-up is over and SIGHUP reloads are handled: /readyz never says ready before a
  // reload would be applied.
  void set_started() { started_ = true; }
  void set_stopping() { stopping_ = true; }
  bool ready() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return started_ && !stopping_ && writers_ && writers_->connected();
  }
  std::string render() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return registry_ ? registry_->render() : std::string();
  }

 private:
  mutable std::mutex mutex_;
  const metrics::Registry* registry_ = nullptr;
  const pg::WriterPool* writers_ = nullptr;
  std::atomic<bool> started_{false};
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
    // GET/PUT /loglevel: the level until the next reload (which sets log.level again) or restart.
    cb.log_level = [] {
      const auto name = spdlog::level::to_string_view(spdlog::get_level());
      return std::string(name.data(), name.size());
    };
    cb.set_log_level = [](const std::string& level) -> std::string {
      static const char* const kLevels[] = {"trace", "debug", "info", "warn", "error", "critical", "off"};
      for (const char* l : kLevels) {
        if (level == l) {
          spdlog::set_level(spdlog::level::from_str(level));
          spdlog::warn("event=log_level_changed source=admin level={}", level);
          return {};
        }
      }
      return "\"" + level + "\" is not one of trace, debug, info, warn, error, critical, off";
    };
    server_ = std::make_unique<AdminServer>(io_, config.listen, cb);
    server_->start();
    thread_ = std::thread([this] {
      name_thread("sluice-admin");
      io_.run();
    });
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
      set_status(attempt == 1 ? "connecting to the database" : "waiting for the database (attempt " + std::to_string(attempt) + ")");
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

  spdlog::info("event=starting version={} database=\"{}\" database_url_source=\"{}\" tables={} log_sink={}", SLUICE_VERSION,
               pg::redact_url(config.database.url), config.database.url_source, config.tables.size(), log_sink_name());
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
  // InfluxDB line protocol (HTTP /write, /api/v2/write; UDP "line"): one LineMapper per IO thread. A
  // mapping naming a missing table or column throws here: a start-up error (exit 1).
  std::vector<std::unique_ptr<InfluxWriteService>> influx_services;
  if (!config.measurements.empty()) {
    const auto mappings = measurement_mappings(config.measurements);
    for (int i = 0; i < io_threads; ++i) {
      contexts[i]->set_line_mapper(std::make_unique<LineMapper>(catalog, mappings, config.http.max_errors_reported));
      influx_services.push_back(std::make_unique<InfluxWriteService>(*contexts[i], config.http));
    }
    spdlog::info("event=line_protocol_mapped measurements={}", config.measurements.size());
  }

  // Dimension resolvers (catalog/resolver.h): one set, a cache per IO thread, one service thread with
  // its own connection for the misses. A resolver naming a missing table or column throws here.
  std::vector<ResolverConfig> resolver_specs;
  for (const auto& t : config.tables) resolver_specs.insert(resolver_specs.end(), t.resolvers.begin(), t.resolvers.end());
  const ResolverSet resolver_set(catalog, resolver_specs);
  std::unique_ptr<pg::ResolverService> resolver_service;
  if (!resolver_set.empty()) {
    resolver_service = std::make_unique<pg::ResolverService>(config.database.url, resolver_set);
    resolver_service->check();  // a bad lookup_sql/create_sql is a start-up error
    for (auto& ctx : contexts) {
      ctx->set_resolvers(std::make_unique<ThreadResolvers>(resolver_set, catalog.tables.size()), resolver_service.get());
    }
    resolver_service->start();
    add_resolver_collector(registry, resolver_set, *resolver_service, contexts);
    spdlog::info("event=resolvers_started resolvers={}", resolver_set.resolvers().size());
  }

  // Policy manager (lib/policy): reconciles the timeseries blocks at start and every
  // policy.reconcile_interval on its own connection and thread; never on the ingest path. The
  // writers tell it the time range of every commit (late data → aggregate refresh, partitions).
  std::unique_ptr<policy::PolicyManager> policies;
  if (config.policy.enabled) {
    auto popts = policy::policy_options_from_config(config);
    if (!popts.desired.empty()) policies = std::make_unique<policy::PolicyManager>(std::move(popts));
  }

  // The disk spool (README "Delivery"): opened before the writers, replayed once they connect.
  std::unique_ptr<SpoolDelivery> delivery;
  if (config.spool.enabled) {
    check_delivery_tables(config.database.url);
    delivery = std::make_unique<SpoolDelivery>(config.spool, catalog);
  }

  // Writers and batcher.
  IdempotencyGate idempotency_gate;  // Idempotency-Key requests in flight (all IO threads)
  pg::WriterOptions wopts;
  wopts.idempotency_ttl = std::chrono::seconds(config.http.idempotency_ttl_s);
  if (delivery) delivery->wire(wopts);
  if (policies) {
    wopts.on_commit = [&catalog, p = policies.get()](uint32_t table_id, int64_t min_time, int64_t max_time) {
      p->note_committed_range(catalog.tables[table_id].config_name, min_time, max_time);
    };
  }
  wopts.url = config.database.url;
  wopts.connections = config.database.connections;
  wopts.queue_batches = config.pipeline.writer_queue_batches;
  wopts.split_min_rows = static_cast<uint32_t>(config.batch.split_min_rows);
  wopts.null_sink = config.pipeline.sink == "null";
  if (wopts.null_sink) {
    spdlog::warn("pipeline.sink is \"null\": rows are parsed, encoded and acked as committed but NOT written to the database");
  }
  for (const auto& t : config.tables) {  // catalog.tables[i] comes from config.tables[i]
    pg::ConflictMode mode = pg::ConflictMode::error;
    pg::parse_conflict_mode(t.conflict, mode);
    wopts.conflict.push_back(mode);
  }
  pg::WriterPool writers(catalog, wopts);
  // A full ring answers 429 with a Retry-After from the drain rate, or 503 while no writer is
  // connected (ingest/backpressure.h). Drained = rows the writers are done with; backlog =
  // rows accepted by the IO threads and not drained yet.
  BackpressureOptions bp_options;
  bp_options.outage_s = static_cast<unsigned>(
      std::max<int64_t>(1, std::chrono::duration_cast<std::chrono::seconds>(wopts.reconnect_max).count()));
  Backpressure backpressure(
      [&registry, &writers] {
        DeliverySample s;
        const auto& ws = writers.stats();
        for (size_t t = 0; t < ws.committed_rows.size(); ++t) {
          s.drained_rows += ws.committed_rows[t].load(std::memory_order_relaxed) +
                            ws.failed_rows[t].load(std::memory_order_relaxed);
        }
        uint64_t accepted = 0;
        for (int i = 0; i < registry.shard_count(); ++i) {
          for (const auto& c : registry.shard(i).tables) accepted += c.rows_accepted.get();
        }
        s.backlog_rows = accepted > s.drained_rows ? accepted - s.drained_rows : 0;
        s.database_up = writers.connected();
        return s;
      },
      bp_options);
  for (auto& c : contexts) c->set_backpressure(&backpressure);
  std::vector<BlockRing*> ring_ptrs;
  for (auto& r : rings) ring_ptrs.push_back(r.get());
  BatchLimits limits;
  limits.max_rows = config.batch.max_rows;
  limits.max_bytes = config.batch.max_bytes;
  limits.max_age = std::chrono::milliseconds(config.batch.max_age_ms);
  Batcher batcher(ring_ptrs, limits, writers);
  for (auto& ctx : contexts) ctx->set_doorbell(&batcher.doorbell());
  if (delivery) {
    for (auto& ctx : contexts) ctx->set_spool(&delivery->spool(), [&writers] { return writers.connected(); });
  }
  for (auto& ctx : contexts) ctx->set_idempotency_gate(&idempotency_gate);
  writers.start();
  batcher.start();
  if (delivery) delivery->start_replay(writers, static_cast<uint32_t>(config.batch.max_rows));

  // Listeners.
  std::unique_ptr<HttpServer> http;
  if (config.http.enabled) {
    const HttpLimits hl = http_limits(config.http);
    std::vector<boost::asio::io_context*> io_ptrs;
    std::vector<WriteHandler*> handlers;
    for (int i = 0; i < io_threads; ++i) {
      io_ptrs.push_back(ios[i].get());
      handlers.push_back(http_services[i].get());
    }
    http = std::make_unique<HttpServer>(io_ptrs, config.http.listen, hl, handlers);
    if (config.http.tls.enabled) http->set_tls(config.http.tls);
    // Limits (incl. max_connections_per_client) and tokens. SIGHUP reload: call
    // apply_http_security(*http, new_config) with the new, validated config (thread-safe).
    apply_http_security(*http, config);
    if (!influx_services.empty()) {
      std::vector<WriteHandler*> line_handlers;
      for (auto& s : influx_services) line_handlers.push_back(s.get());
      http->enable_line_protocol(line_handlers, SLUICE_VERSION);
    }
    http->start();
    spdlog::info("event=listening kind=http address={} tls={} client_cert={} tokens={}", config.http.listen,
                 config.http.tls.enabled ? "on" : "off",
                 !config.http.tls.enabled || config.http.tls.client_ca_file.empty() ? "off"
                 : config.http.tls.require_client_cert ? "required" : "optional",
                 config.auth.tokens.size());
  }

  std::vector<std::unique_ptr<DatagramHandler>> udp_ingests;
  std::vector<std::unique_ptr<UdpListener>> udp_listeners;
  {
    // sluice_udp_datagrams_dropped_total{listener, cause}: set before the IO threads run.
    std::vector<std::string> names;
    for (const auto& uc : config.udp) names.push_back(uc.listen);
    registry.set_udp_listeners(std::move(names), [&udp_listeners](size_t i) -> uint64_t {
      return i < udp_listeners.size() ? udp_listeners[i]->stats().kernel_drops.load(std::memory_order_relaxed) : 0;
    });
  }
  for (size_t u = 0; u < config.udp.size(); ++u) {
    const auto& uc = config.udp[u];
    const int thread = static_cast<int>(u % static_cast<size_t>(io_threads));
    EpochPrecision precision = EpochPrecision::s;
    parse_epoch_precision(uc.precision, precision);
    if (uc.format == "line") {
      udp_ingests.push_back(std::make_unique<UdpLineIngest>(*contexts[thread], precision, static_cast<int>(u)));
    } else {
      const TableSchema* table = catalog.find(uc.table);
      udp_ingests.push_back(std::make_unique<UdpIngest>(*contexts[thread], *table, precision, static_cast<int>(u)));
    }
    UdpOptions uo;
    uo.listen = uc.listen;
    uo.max_datagram_bytes = uc.max_datagram_bytes;
    uo.recv_buffer_bytes = uc.recv_buffer_bytes;
    uo.allow = uc.allow;
    udp_listeners.push_back(std::make_unique<UdpListener>(*ios[thread], uo, *udp_ingests.back()));
    udp_listeners.back()->start();
    spdlog::info("event=listening kind=udp address={} format={} table={}", uc.listen, uc.format,
                 uc.format == "line" ? "(measurements)" : uc.table);
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
  if (delivery) delivery->register_metrics(registry, writers);
  register_idempotency_metrics(registry, writers);

  if (policies) {
    policies->register_metrics(registry);
    policies->start();
    spdlog::info("event=policy_manager_started reconcile_interval_s={}", config.policy.reconcile_interval_s);
  }

  // IO threads.
  std::vector<WorkGuard> guards;
  std::vector<std::thread> threads;
  for (size_t i = 0; i < ios.size(); ++i) {
    guards.emplace_back(ios[i]->get_executor());
    threads.emplace_back([io = ios[i].get(), i] {
      name_thread("sluice-io-" + std::to_string(i));
      io->run();
    });
  }

  // SIGHUP: reload the config file (daemon/reloader.h); from READY=1 until the shutdown starts.
  LivePieces live;
  live.batcher = &batcher;
  live.http = http.get();
  live.catalog = &catalog;
  for (size_t i = 0; i < ios.size(); ++i) {
    live.ios.push_back(ios[i].get());
    live.http_services.push_back(http_services[i].get());
  }
  for (auto& s : influx_services) live.influx_services.push_back(s.get());
  live.notify = notify_systemd;
  Reloader reloader(config, std::move(live));
  reloader.register_metrics(registry);
  register_logging_metrics(registry);
  struct ReloadRegistration {
    SignalWatcher& signals;
    ~ReloadRegistration() { signals.set_reload_handler(nullptr); }
  } reload_registration{signals};

  // From here the admin listener reports metrics and readiness.
  admin_view.attach(&registry, &writers);
  AdminAttachment admin_attachment{admin_view};

  // READY=1 means what /readyz means: at least one writer connected (they connect on their own
  // threads). Waits as long as it takes; a stop signal meanwhile goes to the normal shutdown.
  if (!writers.connected()) set_status("connecting the writers");
  while (!writers.connected() && !signals.wait_for(20ms)) {
  }
  if (!signals.stopped()) {
    // Reloads first, then /readyz, then READY=1: whoever sees either may send SIGHUP at once.
    signals.set_reload_handler([&reloader] { reloader.reload(); });
    admin_view.set_started();
    notify_systemd("READY=1\nSTATUS=ready: " + std::to_string(catalog.tables.size()) + " tables, " +
                   std::to_string(io_threads) + " io threads, " + std::to_string(config.database.connections) +
                   " writer connections");
    spdlog::info("event=ready io_threads={} writer_connections={}", io_threads, config.database.connections);
  }

  // The main thread now only pets systemd's watchdog (WatchdogSec=): every half interval it sends
  // WATCHDOG=1, but only when every IO thread ran the probe posted the tick before — a stuck IO
  // thread stops the pings and systemd restarts sluiced. A database outage is not a reason: the
  // writers reconnect on their own.
  // (probes_done lives until the IO threads are joined: a posted probe may run during shutdown.)
  const uint64_t wd_usec = watchdog_usec();
  std::vector<std::unique_ptr<std::atomic<uint64_t>>> probes_done;
  if (wd_usec == 0) {
    signals.wait_for(std::chrono::hours(24 * 365 * 100));
  } else {
    spdlog::info("event=watchdog_enabled interval_ms={}", wd_usec / 1000);
    for (size_t i = 0; i < ios.size(); ++i) probes_done.push_back(std::make_unique<std::atomic<uint64_t>>(0));
    uint64_t probes_sent = 0;
    bool stalled_logged = false;
    while (!signals.wait_for(std::chrono::microseconds(wd_usec / 2))) {
      int stalled = -1;
      for (size_t i = 0; i < ios.size(); ++i) {
        if (probes_done[i]->load(std::memory_order_acquire) != probes_sent) stalled = static_cast<int>(i);
      }
      if (stalled < 0) {
        notify_systemd("WATCHDOG=1");
        stalled_logged = false;
        ++probes_sent;
        for (size_t i = 0; i < ios.size(); ++i) {
          boost::asio::post(*ios[i], [done = probes_done[i].get()] { done->fetch_add(1, std::memory_order_release); });
        }
      } else if (!stalled_logged) {
        spdlog::error("event=watchdog_withheld reason=io_thread_stalled thread={}", stalled);
        set_status("io thread " + std::to_string(stalled) + " stalled: watchdog withheld");
        stalled_logged = true;
      }
    }
  }
  admin_view.set_stopping();
  notify_systemd("STOPPING=1\nSTATUS=stopping: draining the rings and committing pending batches");
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
  // 2b. Requests and datagrams waiting for resolver keys are answered "unavailable" (503).
  if (resolver_service) resolver_service->stop();
  // 3. Drain, flush, commit; acks post the answers to the IO threads, which are still running.
  if (delivery) delivery->stop_replay();
  batcher.stop_and_drain();
  writers.stop();
  if (delivery) delivery->close();  // after the writers: they may still spill
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
