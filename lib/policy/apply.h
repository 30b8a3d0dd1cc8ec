// policy/apply.h — executes a plan's steps in order on one connection.
//
//   pg_try_advisory_lock(kPolicyLockKey)      one applier per database (another sluiced: "busy")
//   for each table: for each step not skipped:
//       non_transactional → the statement alone, in autocommit (CALL refresh_continuous_aggregate)
//       otherwise         → BEGIN; <sql>; COMMIT   (ROLLBACK on error)
//     a failed step stops the remaining steps of its table (they build on it); other tables go on
//   pg_advisory_unlock
//
// Never throws for a step's failure (it is reported); throws pg::PgError only when the connection
// itself is lost.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "pg/connection.h"
#include "policy/model.h"

namespace sluice::policy {

// "sluice" + 0x0002 (migrations use 0x0001).
inline constexpr std::int64_t kPolicyLockKey = 0x736c756963650002;

struct StepResult {
  std::string table;
  std::string description;
  bool ok = false;
  std::string error;  // database message when !ok
};

struct ApplyReport {
  bool lock_busy = false;         // another applier holds the lock: nothing was done
  size_t applied = 0;
  size_t failed = 0;
  size_t skipped = 0;             // skipped steps of the plan (destructive / unavailable)
  size_t not_attempted = 0;       // steps after a failed one in the same table
  std::vector<StepResult> results;  // every attempted step, in order
  std::string format() const;     // one line per step and a summary ("no changes" when nothing to do)
};

ApplyReport apply_plan(pg::Connection& conn, const Plan& plan);

}  // namespace sluice::policy
