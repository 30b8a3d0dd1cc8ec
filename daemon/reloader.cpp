#include "daemon/reloader.h"

#include <time.h>

#include <chrono>
#include <condition_variable>
#include <exception>
#include <memory>
#include <mutex>

#include <boost/asio/post.hpp>
#include <spdlog/spdlog.h>

#include "batch/batcher.h"
#include "catalog/catalog.h"
#include "config/reload.h"
#include "ingest/http/http_security.h"
#include "ingest/http/http_server.h"
#include "ingest/http_write_service.h"
#include "ingest/influx_write_service.h"
#include "ingest/parse/line_mapping.h"
#include "metrics/registry.h"

namespace sluice {
namespace {

double now_seconds() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::string quoted(std::string s) {
  for (auto& c : s) {
    if (c == '"') c = '\'';
    if (c == '\n') c = ' ';
  }
  return "\"" + s + "\"";
}

}  // namespace

Reloader::Reloader(const Config& running, LivePieces pieces)
    : running_(running), pieces_(std::move(pieces)), last_success_s_(now_seconds()) {}

Config Reloader::running() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return running_;
}

std::vector<std::string> Reloader::check_against_catalog(const Config& running, const Config& next,
                                                         const Catalog& catalog) {
  std::vector<std::string> problems;
  if (running.sections.count("tables") && next.sections.count("tables") &&
      running.sections.at("tables") != next.sections.at("tables")) {
    // New tables are only known to the database: they are checked at the restart they need anyway.
    return problems;
  }
  for (size_t i = 0; i < next.udp.size(); ++i) {
    if (next.udp[i].format != "line" && !catalog.find(next.udp[i].table)) {
      problems.push_back("udp[" + std::to_string(i) + "].table: \"" + next.udp[i].table + "\" is not in the catalog");
    }
  }
  if (!next.measurements.empty()) {
    try {
      LineMapper mapper(catalog, measurement_mappings(next.measurements), next.http.max_errors_reported);
    } catch (const std::exception& e) {
      problems.push_back(std::string("measurements: ") + e.what());
    }
  }
  return problems;
}

bool Reloader::reload() {
  std::lock_guard<std::mutex> lock(mutex_);
  const auto notify = [this](const std::string& s) {
    if (pieces_.notify) pieces_.notify(s);
  };
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  notify("RELOADING=1\nMONOTONIC_USEC=" + std::to_string(static_cast<uint64_t>(ts.tv_sec) * 1000000u +
                                                         static_cast<uint64_t>(ts.tv_nsec) / 1000u) +
         "\nSTATUS=reloading " + running_.source);
  spdlog::info("event=reload_requested signal=SIGHUP file={}", quoted(running_.source));

  std::vector<std::string> problems;
  Config next;
  try {
    next = load_config(running_.source);
    problems = check_against_catalog(running_, next, *pieces_.catalog);
  } catch (const ConfigError& e) {
    problems = e.problems();
    if (problems.empty()) problems.push_back(e.what());
  } catch (const std::exception& e) {
    problems.push_back(e.what());
  }
  if (!problems.empty()) {
    invalid_.fetch_add(1, std::memory_order_relaxed);
    for (const auto& p : problems) {
      spdlog::error("event=config_reload_problem file={} problem={}", quoted(running_.source), quoted(p));
    }
    spdlog::error("event=config_reload result=invalid problems={} action=\"kept the running config\"", problems.size());
    notify("READY=1\nSTATUS=ready; last reload invalid (" + std::to_string(problems.size()) +
           " problems), running config kept");
    return false;
  }

  const ReloadPlan plan = plan_reload(running_, next);
  for (const auto& r : plan.restart_required) {
    spdlog::warn("event=config_reload_needs_restart setting={} action=\"kept the running value; restart to apply\"", r);
  }
  for (const auto& c : plan.live_changes) spdlog::info("event=config_changed change={}", quoted(c));
  apply(next);
  // Logged once every change is in force, before the new log level (set last) may hide it.
  spdlog::info("event=config_reload result=applied changed={} needs_restart={}", plan.live_changes.size(),
               plan.restart_required.size());
  spdlog::set_level(spdlog::level::from_str(next.log.level));
  running_ = apply_live_settings(running_, next);
  applied_.fetch_add(1, std::memory_order_relaxed);
  last_success_s_.store(now_seconds(), std::memory_order_relaxed);
  notify("READY=1\nSTATUS=ready; config reloaded (" + std::to_string(plan.live_changes.size()) + " changed, " +
         std::to_string(plan.restart_required.size()) + " need a restart)");
  return true;
}

void Reloader::apply(const Config& next) {

  BatchLimits bl;
  bl.max_rows = next.batch.max_rows;
  bl.max_bytes = next.batch.max_bytes;
  bl.max_age = std::chrono::milliseconds(next.batch.max_age_ms);
  if (pieces_.batcher) pieces_.batcher->set_limits(bl);


  // HTTP limits (sizes, timeouts, both connection caps) and the security settings: tokens, scopes,
  // per-token rates (TLS files and udp[].allow need a restart; config/reload.cpp lists them so).
  if (pieces_.http) apply_http_security(*pieces_.http, next);

  // The write services belong to their IO thread: the new settings are posted there, and the
  // reload waits until every IO thread has taken them, so that "applied" (and READY=1, which ends
  // `systemctl reload`) means the next request sees them. A shared count outlives a wait that
  // times out (an IO thread stalled or already stopped).
  struct Pending {
    std::mutex mutex;
    std::condition_variable cv;
    size_t left = 0;
  };
  auto pending = std::make_shared<Pending>();
  pending->left = pieces_.ios.size();
  for (size_t i = 0; i < pieces_.ios.size(); ++i) {
    HttpWriteService* hs = i < pieces_.http_services.size() ? pieces_.http_services[i] : nullptr;
    InfluxWriteService* is = i < pieces_.influx_services.size() ? pieces_.influx_services[i] : nullptr;
    boost::asio::post(*pieces_.ios[i], [hs, is, http = next.http, pending] {
      if (hs) hs->apply_live_settings(http);
      if (is) is->apply_live_settings(http);
      std::lock_guard<std::mutex> lock(pending->mutex);
      if (--pending->left == 0) pending->cv.notify_all();
    });
  }
  std::unique_lock<std::mutex> lock(pending->mutex);
  if (!pending->cv.wait_for(lock, std::chrono::seconds(5), [&] { return pending->left == 0; })) {
    spdlog::warn("event=config_reload_slow io_threads_pending={} action=\"they apply the new settings when they run\"",
                 pending->left);
  }
}

void Reloader::register_metrics(metrics::Registry& registry) {
  registry.add_collector([this](metrics::Families& out) {
    auto& reloads = metrics::family(out, "sluice_config_reloads_total",
                                    "Config reloads (SIGHUP) by result: applied, or invalid (the running config kept).",
                                    prometheus::MetricType::Counter);
    metrics::add_value(reloads, {{"result", "applied"}}, static_cast<double>(applied_.load(std::memory_order_relaxed)));
    metrics::add_value(reloads, {{"result", "invalid"}}, static_cast<double>(invalid_.load(std::memory_order_relaxed)));
    auto& last = metrics::family(out, "sluice_config_last_reload_success_timestamp_seconds",
                                 "Unix time of the last successful config load (start-up or reload).",
                                 prometheus::MetricType::Gauge);
    metrics::add_value(last, {}, last_success_s_.load(std::memory_order_relaxed));
  });
}

}  // namespace sluice
