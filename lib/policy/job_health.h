// policy/job_health.h — the health of TimescaleDB's policy jobs (compression, retention, continuous
// aggregate refresh), read from timescaledb_information.jobs ⋈ job_stats (+ job_errors).
//
//   read_job_health(conn) ──► [JobHealth]  ──► PolicyManager: metrics, "failing job" log lines,
//                                              drive_jobs (CALL run_job(id) for overdue/failing jobs)
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "pg/connection.h"
#include "policy/model.h"

namespace sluice::policy {

struct JobHealth {
  int job_id = 0;
  JobKind kind = JobKind::other;
  std::string label;                     // table (or aggregate) name: "observations", "flux.market_data"
  bool scheduled = true;
  Interval schedule_interval;
  std::string last_run_status;           // "Success", "Failed", "" (never ran)
  std::optional<double> last_success_unix;  // seconds since 1970
  std::optional<double> next_start_unix;
  int64_t total_runs = 0;
  int64_t total_failures = 0;
  std::string last_error;                // from job_errors when the last run failed ("" if unknown)
};

// Name used in metric labels and messages: "name" for schema public, else "schema.name".
std::string label_of(const QualifiedName& n);

// Every compression, retention and refresh job. Throws pg::PgError on database errors.
std::vector<JobHealth> read_job_health(pg::Connection& conn);

// Whether sluice should run the job itself (drive_jobs): it failed last time, it is overdue by
// more than grace, or it has never run and has no next start (no background worker runs it).
bool job_needs_driving(const JobHealth& j, double now_unix, double grace_s);

}  // namespace sluice::policy
