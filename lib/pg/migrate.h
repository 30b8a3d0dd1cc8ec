// pg/migrate.h — applies the numbered SQL migrations in sql/ to a database, once each.
//
//   sql/NNN_name.sql ──load_migrations──► [MigrationFile sorted by version, with checksums]
//        │
//        ▼ migrate(conn, dir)
//   pg_advisory_lock(kMigrationLockKey)            one migrator at a time per database
//   CREATE TABLE IF NOT EXISTS sluice_schema_migrations (version, name, checksum, applied_at)
//   verify: every file already in the ledger still has its recorded checksum (else throw)
//   for each pending file: BEGIN; <file>; INSERT ledger row; COMMIT   (all or nothing per file)
//   pg_advisory_unlock
//
// Start-up code only: everything here may throw (PgError from the database, std::runtime_error for
// files). Re-running is a no-op; an edited, already applied file is an error that names the file.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "pg/connection.h"

namespace sluice::pg {

// Session-level advisory lock key held while migrating ("sluice" + 0x0001).
inline constexpr std::int64_t kMigrationLockKey = 0x736c756963650001;
inline constexpr const char* kMigrationLedgerTable = "sluice_schema_migrations";

struct MigrationFile {
  int version = 0;       // NNN of NNN_name.sql
  std::string name;      // file name, e.g. "001_grid.sql"
  std::string path;      // full path
  std::string sql;       // file content
  std::string checksum;  // migration_checksum(sql)
};

// Reads every *.sql file of dir whose name is NNN_name.sql (digits, '_', then [A-Za-z0-9_-.]),
// sorted by version. Other files (README, ...) are ignored. Throws std::runtime_error when dir
// cannot be read, a .sql file has a bad name, or two files share a version.
std::vector<MigrationFile> load_migrations(const std::string& dir);

// Stable checksum of a migration's content: FNV-1a 64, as 16 lowercase hex digits.
std::string migration_checksum(std::string_view content);

struct MigrateReport {
  std::vector<std::string> applied;  // file names applied by this run, in order
  std::vector<std::string> skipped;  // file names already applied before this run
};

// Applies the pending migrations of dir on conn (see the diagram above). Throws PgError when the
// database rejects something (the failing file's migration is rolled back; the message names the
// file) and std::runtime_error for file problems or a changed checksum.
MigrateReport migrate(Connection& conn, const std::string& dir);

}  // namespace sluice::pg
