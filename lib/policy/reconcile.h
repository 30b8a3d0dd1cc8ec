// policy/reconcile.h — one plan (or plan + apply) pass over a database, as `sluiced policy plan|apply`
// and the daemon's PolicyManager run it.
//
//   prepare_session → detect → classify → introspect → make_plan(now) [→ apply_plan → plan again]
#pragma once

#include <cstdint>
#include <vector>

#include "pg/connection.h"
#include "policy/apply.h"
#include "policy/model.h"

namespace sluice::policy {

struct PlanResult {
  Detection detection;
  ActualState actual;
  Plan plan;
};

// The session must have been prepared (prepare_session). Throws pg::PgError on database errors.
PlanResult plan_database(pg::Connection& conn, const std::vector<DesiredTable>& desired, int64_t now_pg_us);

struct ReconcileResult {
  PlanResult before;
  ApplyReport report;
  PlanResult after;  // planned again after applying: pending() == 0 when converged
};
ReconcileResult reconcile_database(pg::Connection& conn, const std::vector<DesiredTable>& desired, int64_t now_pg_us);

// The wall clock as PostgreSQL microseconds since 2000-01-01 UTC.
int64_t now_pg_micros();

}  // namespace sluice::policy
