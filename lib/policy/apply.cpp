#include "policy/apply.h"

#include <spdlog/spdlog.h>

namespace sluice::policy {
namespace {

bool connection_lost(pg::Connection& conn) { return PQstatus(conn.get()) != CONNECTION_OK; }

}  // namespace

ApplyReport apply_plan(pg::Connection& conn, const Plan& plan) {
  ApplyReport rep;
  rep.skipped = plan.skipped();
  if (plan.pending() == 0) return rep;
  pg::Result lock = conn.query("SELECT pg_try_advisory_lock(" + std::to_string(kPolicyLockKey) + ")");
  if (std::string(PQgetvalue(lock.get(), 0, 0)) != "t") {
    rep.lock_busy = true;
    return rep;
  }
  for (const auto& t : plan.tables) {
    bool table_failed = false;
    for (const auto& s : t.steps) {
      if (s.skipped) continue;
      if (table_failed) {
        ++rep.not_attempted;
        continue;
      }
      StepResult r;
      r.table = s.table;
      r.description = s.description;
      try {
        if (s.non_transactional) {
          conn.exec(s.sql);
        } else {
          conn.exec("BEGIN");
          try {
            conn.exec(s.sql);
            conn.exec("COMMIT");
          } catch (const pg::PgError&) {
            if (!connection_lost(conn)) {
              try {
                conn.exec("ROLLBACK");
              } catch (const pg::PgError&) {
              }
            }
            throw;
          }
        }
        r.ok = true;
        ++rep.applied;
        spdlog::info("event=policy_step_applied table={} step=\"{}\"", s.table, s.description);
      } catch (const pg::PgError& e) {
        if (connection_lost(conn)) throw;
        r.ok = false;
        r.error = e.what();
        ++rep.failed;
        table_failed = true;
        spdlog::warn("event=policy_step_failed table={} step=\"{}\" error=\"{}\"", s.table, s.description, e.what());
      }
      rep.results.push_back(std::move(r));
    }
  }
  try {
    conn.exec("SELECT pg_advisory_unlock(" + std::to_string(kPolicyLockKey) + ")");
  } catch (const pg::PgError&) {
    if (connection_lost(conn)) throw;
  }
  return rep;
}

std::string ApplyReport::format() const {
  if (lock_busy) return "another sluiced is applying policies on this database (advisory lock busy): nothing done\n";
  std::string out;
  for (const auto& r : results) {
    out += (r.ok ? "applied  " : "FAILED   ") + r.table + ": " + r.description + "\n";
    if (!r.ok) out += "         error: " + r.error + "\n";
  }
  if (applied == 0 && failed == 0) {
    out += "no changes";
  } else {
    out += std::to_string(applied) + " applied, " + std::to_string(failed) + " failed";
    if (not_attempted) out += ", " + std::to_string(not_attempted) + " not attempted after a failure";
  }
  if (skipped) out += ", " + std::to_string(skipped) + " skipped (see plan)";
  out += "\n";
  return out;
}

}  // namespace sluice::policy
