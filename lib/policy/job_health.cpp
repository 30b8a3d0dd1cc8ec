#include "policy/job_health.h"

#include <cstdlib>

namespace sluice::policy {

std::string label_of(const QualifiedName& n) { return n.schema == "public" || n.schema.empty() ? n.name : n.text(); }

std::vector<JobHealth> read_job_health(pg::Connection& conn) {
  pg::Result r = conn.query(
      "SELECT j.job_id, j.proc_name, coalesce(j.hypertable_schema, ''), coalesce(j.hypertable_name, ''), j.scheduled, "
      "j.schedule_interval::text, coalesce(s.last_run_status, ''), extract(epoch from s.last_successful_finish), "
      "extract(epoch from coalesce(s.next_start, j.next_start)), coalesce(s.total_runs, 0), coalesce(s.total_failures, 0) "
      "FROM timescaledb_information.jobs j LEFT JOIN timescaledb_information.job_stats s ON s.job_id = j.job_id "
      "WHERE j.proc_name IN ('policy_compression', 'policy_retention', 'policy_refresh_continuous_aggregate') "
      "ORDER BY j.job_id");
  std::vector<JobHealth> out;
  for (int i = 0; i < PQntuples(r.get()); ++i) {
    auto val = [&](int c) { return std::string(PQgetvalue(r.get(), i, c)); };
    auto null = [&](int c) { return PQgetisnull(r.get(), i, c) != 0; };
    JobHealth j;
    j.job_id = std::atoi(val(0).c_str());
    const std::string proc = val(1);
    j.kind = proc == "policy_compression" ? JobKind::compression
             : proc == "policy_retention" ? JobKind::retention
                                          : JobKind::refresh;
    j.label = label_of({val(2), val(3)});
    j.scheduled = val(4) == "t";
    parse_interval(val(5), j.schedule_interval);
    j.last_run_status = val(6);
    if (!null(7)) j.last_success_unix = std::atof(val(7).c_str());
    if (!null(8)) j.next_start_unix = std::atof(val(8).c_str());
    j.total_runs = std::atoll(val(9).c_str());
    j.total_failures = std::atoll(val(10).c_str());
    out.push_back(std::move(j));
  }
  for (auto& j : out) {
    if (j.last_run_status != "Failed") continue;
    try {
      pg::Result e = conn.query("SELECT err_message FROM timescaledb_information.job_errors WHERE job_id = $1 "
                                "ORDER BY finish_time DESC NULLS LAST LIMIT 1",
                                {std::to_string(j.job_id)});
      if (PQntuples(e.get()) > 0 && !PQgetisnull(e.get(), 0, 0)) j.last_error = PQgetvalue(e.get(), 0, 0);
    } catch (const pg::PgError&) {
      if (PQstatus(conn.get()) != CONNECTION_OK) throw;
    }
  }
  return out;
}

bool job_needs_driving(const JobHealth& j, double now_unix, double grace_s) {
  if (!j.scheduled) return false;
  if (j.last_run_status == "Failed") return true;
  if (j.next_start_unix) return *j.next_start_unix + grace_s < now_unix;
  return !j.last_success_unix;
}

}  // namespace sluice::policy
