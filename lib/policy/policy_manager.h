// policy/policy_manager.h — the daemon's policy thread: keeps the database matching the `timeseries`
// blocks, watches TimescaleDB's policy jobs, and refreshes aggregates after late data.
//
//   writers (after COMMIT) ── note_committed_range(table, min, max) ──► pending ranges per table
//                               (mutex, O(1), coalesced: min/max union; no allocation, no SQL)
//   policy thread (own libpq connection, ticks every second, never touches the ingest path):
//     at start and every policy.reconcile_interval:
//        plan_database → apply_plan (advisory lock; lock_timeout 5 s so DDL never queues behind COPY)
//        TimescaleDB: read_job_health → metrics, log a failing job once, drive_jobs: CALL run_job(id)
//     every tick:
//        late data → TimescaleDB: CALL refresh_continuous_aggregate(view, lo, hi) for the part of a
//                    committed range older than the aggregate's refresh window (bucket-aligned)
//                    plain PostgreSQL: DELETE + INSERT of the changed buckets of each summary table,
//                    and an early reconcile when rows landed outside the prepared partitions
//                    (coalesced per aggregate; at most one refresh per policy.late_refresh_min_interval)
//        plain PostgreSQL: the summary tables' own refresh policies (window, every schedule_interval)
//
// Thread-safety: note_committed_range() from any thread; status()/collect() from any thread;
// run_once()/process_late_data()/run_scheduled_refreshes() are what the thread calls, public so
// tests can drive them on their own connection. Never throws out of the thread.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "config/config.h"
#include "metrics/registry.h"
#include "pg/connection.h"
#include "policy/apply.h"
#include "policy/job_health.h"
#include "policy/model.h"

namespace sluice::policy {

struct PolicyManagerOptions {
  std::string database_url;
  std::vector<DesiredTable> desired;
  PolicySettings settings;
  int lock_timeout_ms = 5000;
};
PolicyManagerOptions policy_options_from_config(const Config& config);

struct PolicyStatus {
  PolicyMode mode = PolicyMode::unsupported;
  std::string mode_summary;
  bool connected = false;
  int64_t reconciles = 0;
  int64_t reconcile_errors = 0;     // database errors during a pass (not failed steps)
  int64_t steps_applied = 0;
  int64_t steps_failed = 0;
  int64_t steps_skipped = 0;        // skipped steps of the last plan (destructive / unavailable)
  int64_t steps_pending = 0;        // steps still pending after the last pass
  double last_reconcile_unix = 0;
  std::vector<JobHealth> jobs;
  std::map<std::string, int64_t> jobs_driven;  // "label|kind" → CALL run_job count
  int64_t job_drive_failures = 0;
  std::map<std::string, int64_t> refreshes;    // aggregate → refreshes after late data / schedule
  int64_t refresh_failures = 0;
  std::map<std::string, int64_t> default_partition_rows;  // table → rows in its DEFAULT partition
};

class PolicyManager {
 public:
  explicit PolicyManager(PolicyManagerOptions options);
  ~PolicyManager();
  PolicyManager(const PolicyManager&) = delete;
  PolicyManager& operator=(const PolicyManager&) = delete;

  void start();  // the thread: connects (retrying), reconciles at once, then as described above
  void stop();   // wakes and joins the thread

  // Writers call this after COMMIT with the committed rows' time range (pg microseconds, inclusive).
  // `table` is the config name. Cheap and thread-safe; unknown tables are ignored.
  void note_committed_range(std::string_view table, int64_t min_pg_us, int64_t max_pg_us);

  // Registers the Prometheus families (see README "Metrics").
  void register_metrics(metrics::Registry& registry);
  void collect(metrics::Families& out) const;
  PolicyStatus status() const;

  // One reconcile pass (plan, apply, job health, drive_jobs) on conn (prepared by the caller with
  // prepare_session). Returns the apply report. Throws pg::PgError when the connection fails.
  ApplyReport run_once(pg::Connection& conn, int64_t now_pg_us);
  // Refreshes what the pending committed ranges invalidated (rate limited unless force).
  void process_late_data(pg::Connection& conn, int64_t now_pg_us, bool force = false);
  // Plain PostgreSQL: runs the summary tables' refresh policies that are due.
  void run_scheduled_refreshes(pg::Connection& conn, int64_t now_pg_us);

 private:
  struct Range {
    int64_t lo = 0;
    int64_t hi = 0;
    bool set = false;
    void add(int64_t a, int64_t b) {
      if (!set) {
        lo = a;
        hi = b;
        set = true;
      } else {
        lo = std::min(lo, a);
        hi = std::max(hi, b);
      }
    }
  };
  struct AggregateState {
    size_t table = 0;               // index into options_.desired
    size_t cagg = 0;                // index into its continuous_aggregates
    QualifiedName view;
    Range backlog;                  // bucket-aligned range waiting for a refresh
    int64_t last_refresh_pg = INT64_MIN;
    std::vector<int64_t> next_policy_run;  // fallback: per refresh policy
  };

  void thread_main();
  void refresh_aggregate(pg::Connection& conn, AggregateState& a, int64_t now_pg_us, const char* cause);

  PolicyManagerOptions options_;
  std::vector<std::pair<std::string, size_t>> table_index_;  // sorted config name → desired index

  mutable std::mutex pending_mutex_;
  std::vector<Range> pending_;      // per desired table

  std::vector<AggregateState> aggregates_;  // only the policy thread (or a test) touches these
  std::map<int, int64_t> failure_logged_;   // job id → total_failures already logged
  std::map<int, int64_t> driven_at_pg_;     // job id → when sluice last ran it
  PolicyMode mode_ = PolicyMode::unsupported;
  bool reconcile_soon_ = false;
  std::vector<std::vector<Partition>> known_partitions_;  // fallback, per desired table

  mutable std::mutex status_mutex_;
  PolicyStatus status_;

  std::mutex wake_mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace sluice::policy
