#include "policy/policy_manager.h"

#include <pthread.h>

#include <algorithm>
#include <chrono>

#include <spdlog/spdlog.h>

#include "core/pg_time.h"
#include "policy/introspect.h"
#include "policy/planner.h"
#include "policy/reconcile.h"
#include "policy/sql_text.h"

namespace sluice::policy {
namespace {

double pg_to_unix_seconds(int64_t pg_us) { return static_cast<double>(pg_micros_to_unix(pg_us)) / 1e6; }

bool connection_lost(pg::Connection& conn) { return !conn.get() || PQstatus(conn.get()) != CONNECTION_OK; }

}  // namespace

PolicyManagerOptions policy_options_from_config(const Config& config) {
  PolicyManagerOptions o;
  o.database_url = config.database.url;
  o.desired = desired_from_config(config);
  o.settings = config.policy;
  return o;
}

PolicyManager::PolicyManager(PolicyManagerOptions options) : options_(std::move(options)) {
  for (size_t i = 0; i < options_.desired.size(); ++i) table_index_.push_back({options_.desired[i].config_name, i});
  std::sort(table_index_.begin(), table_index_.end());
  pending_.resize(options_.desired.size());
  known_partitions_.resize(options_.desired.size());
  for (size_t t = 0; t < options_.desired.size(); ++t) {
    const auto& d = options_.desired[t];
    for (size_t c = 0; c < d.ts.continuous_aggregates.size(); ++c) {
      AggregateState a;
      a.table = t;
      a.cagg = c;
      a.view = split_name(d.ts.continuous_aggregates[c].name, d.table.schema);
      a.next_policy_run.assign(d.ts.continuous_aggregates[c].refresh_policies.size(), INT64_MIN);
      aggregates_.push_back(std::move(a));
    }
  }
}

PolicyManager::~PolicyManager() { stop(); }

void PolicyManager::start() {
  if (thread_.joinable() || options_.desired.empty()) return;
  thread_ = std::thread([this] { thread_main(); });
}

void PolicyManager::stop() {
  {
    std::lock_guard<std::mutex> lock(wake_mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void PolicyManager::note_committed_range(std::string_view table, int64_t min_pg_us, int64_t max_pg_us) {
  auto it = std::lower_bound(table_index_.begin(), table_index_.end(), table,
                             [](const std::pair<std::string, size_t>& e, std::string_view t) { return e.first < t; });
  if (it == table_index_.end() || it->first != table) return;
  if (max_pg_us < min_pg_us) std::swap(min_pg_us, max_pg_us);
  std::lock_guard<std::mutex> lock(pending_mutex_);
  pending_[it->second].add(min_pg_us, max_pg_us);
}

PolicyStatus PolicyManager::status() const {
  std::lock_guard<std::mutex> lock(status_mutex_);
  return status_;
}

void PolicyManager::register_metrics(metrics::Registry& registry) {
  registry.add_collector([this](metrics::Families& out) { collect(out); });
}

void PolicyManager::collect(metrics::Families& out) const {
  const PolicyStatus s = status();
  using prometheus::MetricType;
  auto& mode = metrics::family(out, "sluice_policy_mode", "Policy mode in use (1 for the active mode).", MetricType::Gauge);
  for (PolicyMode m : {PolicyMode::timescaledb, PolicyMode::timescaledb_apache, PolicyMode::plain_postgres, PolicyMode::unsupported}) {
    metrics::add_value(mode, {{"mode", mode_name(m)}}, s.connected && s.mode == m ? 1.0 : 0.0);
  }
  metrics::add_value(metrics::family(out, "sluice_policy_reconciles_total", "Reconcile passes run.", MetricType::Counter), {},
                     static_cast<double>(s.reconciles));
  metrics::add_value(metrics::family(out, "sluice_policy_reconcile_errors_total",
                                     "Reconcile passes cut short by a database error.", MetricType::Counter),
                     {}, static_cast<double>(s.reconcile_errors));
  auto& steps = metrics::family(out, "sluice_policy_steps_total", "Plan steps by outcome.", MetricType::Counter);
  metrics::add_value(steps, {{"outcome", "applied"}}, static_cast<double>(s.steps_applied));
  metrics::add_value(steps, {{"outcome", "failed"}}, static_cast<double>(s.steps_failed));
  auto& waiting = metrics::family(out, "sluice_policy_steps_waiting",
                                  "Steps of the last plan not applied: skipped (destructive or unavailable) or pending.",
                                  MetricType::Gauge);
  metrics::add_value(waiting, {{"state", "skipped"}}, static_cast<double>(s.steps_skipped));
  metrics::add_value(waiting, {{"state", "pending"}}, static_cast<double>(s.steps_pending));
  metrics::add_value(metrics::family(out, "sluice_policy_last_reconcile_timestamp_seconds",
                                     "When the last reconcile pass finished.", MetricType::Gauge),
                     {}, s.last_reconcile_unix);

  auto& last_ok = metrics::family(out, "sluice_policy_job_last_success_timestamp_seconds",
                                  "Last successful finish of each TimescaleDB policy job (0: never).", MetricType::Gauge);
  auto& failures = metrics::family(out, "sluice_policy_job_failures_total", "Failed runs of each TimescaleDB policy job.",
                                   MetricType::Counter);
  auto& next = metrics::family(out, "sluice_policy_job_next_start_timestamp_seconds",
                               "Next scheduled start of each TimescaleDB policy job (0: unknown).", MetricType::Gauge);
  auto& failing = metrics::family(out, "sluice_policy_job_failing", "1 when the job's last run failed.", MetricType::Gauge);
  for (const auto& j : s.jobs) {
    std::map<std::string, std::string> labels = {{"table", j.label}, {"kind", job_kind_name(j.kind)},
                                                 {"job_id", std::to_string(j.job_id)}};
    metrics::add_value(last_ok, labels, j.last_success_unix.value_or(0));
    metrics::add_value(failures, labels, static_cast<double>(j.total_failures));
    metrics::add_value(next, labels, j.next_start_unix.value_or(0));
    metrics::add_value(failing, labels, j.last_run_status == "Failed" ? 1.0 : 0.0);
  }
  auto& driven = metrics::family(out, "sluice_policy_jobs_driven_total",
                                 "Policy jobs run by sluice itself (drive_jobs).", MetricType::Counter);
  for (const auto& [key, n] : s.jobs_driven) {
    const auto bar = key.find('|');
    metrics::add_value(driven, {{"table", key.substr(0, bar)}, {"kind", key.substr(bar + 1)}}, static_cast<double>(n));
  }
  auto& refreshes = metrics::family(out, "sluice_policy_aggregate_refreshes_total",
                                    "Aggregate refreshes run by sluice (late data; summary tables).", MetricType::Counter);
  for (const auto& [name, n] : s.refreshes) metrics::add_value(refreshes, {{"aggregate", name}}, static_cast<double>(n));
  metrics::add_value(metrics::family(out, "sluice_policy_aggregate_refresh_failures_total",
                                     "Aggregate refreshes that failed (retried later).", MetricType::Counter),
                     {}, static_cast<double>(s.refresh_failures));
  auto& def = metrics::family(out, "sluice_policy_default_partition_rows",
                              "Rows waiting in a table's DEFAULT partition (plain PostgreSQL).", MetricType::Gauge);
  for (const auto& [t, n] : s.default_partition_rows) metrics::add_value(def, {{"table", t}}, static_cast<double>(n));
}

ApplyReport PolicyManager::run_once(pg::Connection& conn, int64_t now_pg_us) {
  ReconcileResult r = reconcile_database(conn, options_.desired, now_pg_us);
  mode_ = r.before.plan.mode.mode;
  if (r.report.applied > 0) spdlog::info("event=policy_applied applied={} failed={}", r.report.applied, r.report.failed);

  std::vector<JobHealth> jobs;
  std::map<std::string, int64_t> driven_now;
  int64_t drive_failures = 0;
  if (mode_ == PolicyMode::timescaledb) {
    jobs = read_job_health(conn);
    for (const auto& j : jobs) {
      if (j.last_run_status == "Failed" && failure_logged_[j.job_id] < j.total_failures) {
        spdlog::error("event=policy_job_failing job_id={} table={} kind={} failures={} error=\"{}\"", j.job_id, j.label,
                      job_kind_name(j.kind), j.total_failures, j.last_error);
        failure_logged_[j.job_id] = j.total_failures;
      }
    }
    if (options_.settings.drive_jobs) {
      const double now_unix = pg_to_unix_seconds(now_pg_us);
      for (const auto& j : jobs) {
        if (!job_needs_driving(j, now_unix, options_.settings.job_overdue_grace_s)) continue;
        // At most once per schedule interval (a database without background workers never updates
        // next_start, so sluice keeps its own record).
        auto last = driven_at_pg_.find(j.job_id);
        const int64_t every = std::max<int64_t>(j.schedule_interval.approx_micros(), 60LL * 1000000);
        if (last != driven_at_pg_.end() && now_pg_us - last->second < every) continue;
        driven_at_pg_[j.job_id] = now_pg_us;
        try {
          conn.exec("CALL run_job(" + std::to_string(j.job_id) + ")");
          ++driven_now[j.label + "|" + job_kind_name(j.kind)];
          spdlog::info("event=policy_job_driven job_id={} table={} kind={}", j.job_id, j.label, job_kind_name(j.kind));
        } catch (const pg::PgError& e) {
          if (connection_lost(conn)) throw;
          ++drive_failures;
          spdlog::warn("event=policy_job_drive_failed job_id={} table={} error=\"{}\"", j.job_id, j.label, e.what());
        }
      }
    }
  }
  std::map<std::string, int64_t> default_rows;
  if (mode_ == PolicyMode::plain_postgres) {
    for (size_t i = 0; i < options_.desired.size(); ++i) {
      auto it = r.after.actual.tables.find(options_.desired[i].table);
      if (it == r.after.actual.tables.end()) continue;
      known_partitions_[i] = it->second.partitions;
      if (it->second.relkind == 'p') default_rows[options_.desired[i].config_name] = it->second.default_rows;
    }
  }
  {
    std::lock_guard<std::mutex> lock(status_mutex_);
    status_.mode = mode_;
    status_.mode_summary = r.before.plan.mode.summary;
    status_.connected = true;
    ++status_.reconciles;
    status_.steps_applied += static_cast<int64_t>(r.report.applied);
    status_.steps_failed += static_cast<int64_t>(r.report.failed);
    status_.steps_skipped = static_cast<int64_t>(r.after.plan.skipped());
    status_.steps_pending = static_cast<int64_t>(r.after.plan.pending());
    status_.last_reconcile_unix = pg_to_unix_seconds(now_pg_us);
    status_.jobs = std::move(jobs);
    for (const auto& [k, n] : driven_now) status_.jobs_driven[k] += n;
    status_.job_drive_failures += drive_failures;
    status_.default_partition_rows = std::move(default_rows);
  }
  reconcile_soon_ = false;
  return r.report;
}

void PolicyManager::refresh_aggregate(pg::Connection& conn, AggregateState& a, int64_t now_pg_us, const char* cause) {
  const DesiredTable& d = options_.desired[a.table];
  const ContinuousAggregateConfig& c = d.ts.continuous_aggregates[a.cagg];
  const std::string label = label_of(a.view);
  try {
    if (mode_ == PolicyMode::timescaledb) {
      conn.exec(cagg_refresh_sql(a.view, a.backlog.lo, a.backlog.hi));
    } else {
      conn.exec("BEGIN");
      try {
        conn.exec(summary_refresh_sql(d, c, a.backlog.lo, a.backlog.hi));
        conn.exec("COMMIT");
      } catch (const pg::PgError&) {
        if (!connection_lost(conn)) conn.exec("ROLLBACK");
        throw;
      }
    }
    spdlog::debug("event=policy_aggregate_refreshed aggregate={} cause={} from=\"{}\" to=\"{}\"", label, cause,
                  format_pg_time(a.backlog.lo), format_pg_time(a.backlog.hi));
    a.backlog = Range{};
    a.last_refresh_pg = now_pg_us;
    std::lock_guard<std::mutex> lock(status_mutex_);
    ++status_.refreshes[label];
  } catch (const pg::PgError& e) {
    if (connection_lost(conn)) throw;
    a.last_refresh_pg = now_pg_us;  // retried after the rate-limit interval
    spdlog::warn("event=policy_aggregate_refresh_failed aggregate={} error=\"{}\"", label, e.what());
    std::lock_guard<std::mutex> lock(status_mutex_);
    ++status_.refresh_failures;
  }
}

void PolicyManager::process_late_data(pg::Connection& conn, int64_t now_pg_us, bool force) {
  std::vector<Range> taken(pending_.size());
  {
    std::lock_guard<std::mutex> lock(pending_mutex_);
    taken.swap(pending_);
    pending_.assign(taken.size(), Range{});
  }
  const bool timescale = mode_ == PolicyMode::timescaledb;
  const bool fallback = mode_ == PolicyMode::plain_postgres;
  for (size_t t = 0; t < taken.size(); ++t) {
    if (!taken[t].set) continue;
    const DesiredTable& d = options_.desired[t];
    if (fallback) {
      // Rows outside the prepared partitions went to DEFAULT: reconcile soon to give them their own.
      const Interval iv = partition_interval(d);
      for (int64_t b = bucket_floor(taken[t].lo, iv); b <= taken[t].hi; b = bucket_add(b, iv)) {
        const bool covered = std::any_of(known_partitions_[t].begin(), known_partitions_[t].end(), [&](const Partition& p) {
          return !p.is_default && p.bounded && p.lo <= b && bucket_add(b, iv) <= p.hi;
        });
        if (!covered) {
          reconcile_soon_ = true;
          break;
        }
      }
    }
    for (auto& a : aggregates_) {
      if (a.table != t) continue;
      const ContinuousAggregateConfig& c = d.ts.continuous_aggregates[a.cagg];
      int64_t upper = taken[t].hi;
      if (timescale) {
        // Only what the refresh policies will not reach: rows older than the widest window.
        std::optional<int64_t> window_start;
        bool unbounded = false;
        for (const auto& p : c.refresh_policies) {
          if (!p.start_offset) {
            unbounded = true;
            continue;
          }
          const int64_t s = add_interval(now_pg_us, *p.start_offset, -1);
          window_start = window_start ? std::min(*window_start, s) : s;
        }
        if (unbounded) continue;
        if (window_start) {
          if (taken[t].lo >= *window_start) continue;
          upper = std::min(upper, *window_start - 1);
        }
      } else if (!fallback) {
        continue;
      }
      const int64_t lo = bucket_floor(taken[t].lo, c.bucket_width);
      const int64_t hi = bucket_add(bucket_floor(upper, c.bucket_width), c.bucket_width);
      a.backlog.add(lo, hi);
    }
  }
  const int64_t min_gap = static_cast<int64_t>(options_.settings.late_refresh_min_interval_s) * 1000000;
  for (auto& a : aggregates_) {
    if (!a.backlog.set) continue;
    if (!force && a.last_refresh_pg != INT64_MIN && now_pg_us - a.last_refresh_pg < min_gap) continue;
    refresh_aggregate(conn, a, now_pg_us, "late_data");
  }
}

void PolicyManager::run_scheduled_refreshes(pg::Connection& conn, int64_t now_pg_us) {
  if (mode_ != PolicyMode::plain_postgres) return;
  for (auto& a : aggregates_) {
    const DesiredTable& d = options_.desired[a.table];
    const ContinuousAggregateConfig& c = d.ts.continuous_aggregates[a.cagg];
    for (size_t i = 0; i < c.refresh_policies.size(); ++i) {
      const RefreshPolicyConfig& p = c.refresh_policies[i];
      if (a.next_policy_run[i] == INT64_MIN) {
        // The summary table was filled when it was created: the first run is one interval later.
        a.next_policy_run[i] = add_interval(now_pg_us, p.schedule_interval);
        continue;
      }
      if (now_pg_us < a.next_policy_run[i]) continue;
      a.next_policy_run[i] = add_interval(now_pg_us, p.schedule_interval);
      const int64_t lo = p.start_offset ? bucket_floor(add_interval(now_pg_us, *p.start_offset, -1), c.bucket_width)
                                        : bucket_floor(add_interval(now_pg_us, Interval{1200, 0, 0}, -1), c.bucket_width);
      const int64_t end = p.end_offset ? add_interval(now_pg_us, *p.end_offset, -1) : now_pg_us;
      const int64_t hi = bucket_add(bucket_floor(end, c.bucket_width), c.bucket_width);
      if (hi <= lo) continue;
      a.backlog.add(lo, hi);
      refresh_aggregate(conn, a, now_pg_us, "schedule");
    }
  }
}

void PolicyManager::thread_main() {
  pthread_setname_np(pthread_self(), "sluice-policy");
  using namespace std::chrono_literals;
  std::unique_ptr<pg::Connection> conn;
  auto next_reconcile = std::chrono::steady_clock::now();
  auto next_connect = std::chrono::steady_clock::now();
  auto backoff = 1s;
  auto last_run = std::chrono::steady_clock::time_point{};
  while (true) {
    {
      std::unique_lock<std::mutex> lock(wake_mutex_);
      if (wake_.wait_for(lock, 1s, [this] { return stopping_; })) break;
    }
    const auto now = std::chrono::steady_clock::now();
    try {
      if (!conn || connection_lost(*conn)) {
        conn.reset();
        {
          std::lock_guard<std::mutex> lock(status_mutex_);
          status_.connected = false;
        }
        if (now < next_connect) continue;
        try {
          conn = std::make_unique<pg::Connection>(options_.database_url, "sluiced policy");
          prepare_session(*conn, options_.lock_timeout_ms);
          backoff = 1s;
          next_reconcile = now;
        } catch (const pg::PgError& e) {
          conn.reset();
          spdlog::warn("event=policy_db_unreachable error=\"{}\" retry_in_s={}", e.what(), backoff.count());
          next_connect = now + backoff;
          backoff = std::min<std::chrono::seconds>(backoff * 2, 60s);
          continue;
        }
      }
      const int64_t now_pg = now_pg_micros();
      if (now >= next_reconcile || (reconcile_soon_ && now - last_run >= 10s)) {
        last_run = now;
        const ApplyReport rep = run_once(*conn, now_pg);
        if (rep.lock_busy) spdlog::debug("event=policy_lock_busy");
        next_reconcile = std::chrono::steady_clock::now() + std::chrono::seconds(options_.settings.reconcile_interval_s);
      }
      process_late_data(*conn, now_pg);
      run_scheduled_refreshes(*conn, now_pg);
    } catch (const std::exception& e) {
      spdlog::warn("event=policy_pass_failed error=\"{}\"", e.what());
      {
        std::lock_guard<std::mutex> lock(status_mutex_);
        ++status_.reconcile_errors;
      }
      next_reconcile = std::chrono::steady_clock::now() + 30s;
      if (conn && connection_lost(*conn)) conn.reset();
    }
  }
}

}  // namespace sluice::policy
