#include "policy/reconcile.h"

#include <chrono>

#include "core/pg_time.h"
#include "policy/introspect.h"
#include "policy/planner.h"

namespace sluice::policy {

PlanResult plan_database(pg::Connection& conn, const std::vector<DesiredTable>& desired, int64_t now_pg_us) {
  PlanResult r;
  r.detection = detect(conn);
  const ModeReport mode = classify(r.detection);
  r.actual = introspect(conn, desired, r.detection, mode.mode);
  r.plan = make_plan(desired, r.actual, now_pg_us);
  return r;
}

ReconcileResult reconcile_database(pg::Connection& conn, const std::vector<DesiredTable>& desired, int64_t now_pg_us) {
  ReconcileResult r;
  r.before = plan_database(conn, desired, now_pg_us);
  r.report = apply_plan(conn, r.before.plan);
  if (r.report.applied > 0 || r.report.failed > 0) {
    r.after = plan_database(conn, desired, now_pg_us);
  } else {
    r.after = r.before;
  }
  return r;
}

int64_t now_pg_micros() {
  const auto us = std::chrono::duration_cast<std::chrono::microseconds>(
                      std::chrono::system_clock::now().time_since_epoch())
                      .count();
  return unix_micros_to_pg(us);
}

}  // namespace sluice::policy
