#include "pg/migrate.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <stdexcept>

namespace sluice::pg {
namespace {

namespace fs = std::filesystem;

bool is_digit(char c) { return c >= '0' && c <= '9'; }

bool is_name_char(char c) {
  return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == '-' ||
         c == '.';
}

// "NNN_name.sql" → version; returns -1 when the name does not have that shape.
int parse_version(const std::string& file_name) {
  constexpr std::string_view kExt = ".sql";
  if (file_name.size() <= kExt.size() || !file_name.ends_with(kExt)) return -1;
  const std::string_view stem(file_name.data(), file_name.size() - kExt.size());
  std::size_t digits = 0;
  while (digits < stem.size() && is_digit(stem[digits])) ++digits;
  if (digits == 0 || digits > 9) return -1;
  if (digits + 1 >= stem.size() || stem[digits] != '_') return -1;
  for (std::size_t i = digits + 1; i < stem.size(); ++i) {
    if (!is_name_char(stem[i])) return -1;
  }
  return std::stoi(std::string(stem.substr(0, digits)));
}

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read migration " + path.string());
  std::ostringstream out;
  out << in.rdbuf();
  if (in.bad()) throw std::runtime_error("cannot read migration " + path.string());
  return out.str();
}

// Holds the migration advisory lock for the life of the scope; unlocking never throws.
class AdvisoryLock {
 public:
  explicit AdvisoryLock(Connection& conn) : conn_(conn) {
    conn_.query("SELECT pg_advisory_lock($1::bigint)", {std::to_string(kMigrationLockKey)});
  }
  ~AdvisoryLock() {
    if (!conn_.ok()) return;  // a lost session has released the lock already
    try {
      if (PQtransactionStatus(conn_.get()) == PQTRANS_INERROR ||
          PQtransactionStatus(conn_.get()) == PQTRANS_INTRANS) {
        conn_.exec("ROLLBACK");
      }
      conn_.query("SELECT pg_advisory_unlock($1::bigint)", {std::to_string(kMigrationLockKey)});
    } catch (const std::exception& e) {
      spdlog::warn("event=migration_unlock_failed error=\"{}\"", e.what());
    }
  }
  AdvisoryLock(const AdvisoryLock&) = delete;
  AdvisoryLock& operator=(const AdvisoryLock&) = delete;

 private:
  Connection& conn_;
};

// Switches the session's client_encoding to UTF8 for the life of the scope, then restores it.
class Utf8ClientEncoding {
 public:
  explicit Utf8ClientEncoding(Connection& conn)
      : conn_(conn), previous_(pg_encoding_to_char(PQclientEncoding(conn.get()))) {
    if (PQsetClientEncoding(conn_.get(), "UTF8") != 0) {
      throw PgError("migrate: cannot set client_encoding to UTF8: " + error_message(conn_.get(), nullptr),
                    "22021");
    }
  }
  ~Utf8ClientEncoding() {
    if (conn_.ok() && previous_ != "UTF8") PQsetClientEncoding(conn_.get(), previous_.c_str());
  }
  Utf8ClientEncoding(const Utf8ClientEncoding&) = delete;
  Utf8ClientEncoding& operator=(const Utf8ClientEncoding&) = delete;

 private:
  Connection& conn_;
  std::string previous_;
};

void rollback_quietly(Connection& conn) {
  if (!conn.ok() || PQtransactionStatus(conn.get()) == PQTRANS_IDLE) return;
  try {
    conn.exec("ROLLBACK");
  } catch (const std::exception&) {
  }
}

void apply_one(Connection& conn, const MigrationFile& file) {
  try {
    conn.exec("BEGIN");
    conn.exec(file.sql);
    conn.query(std::string("INSERT INTO ") + kMigrationLedgerTable +
                   " (version, name, checksum) VALUES ($1::int, $2, $3)",
               {std::to_string(file.version), file.name, file.checksum});
    conn.exec("COMMIT");
  } catch (const PgError& e) {
    rollback_quietly(conn);
    throw PgError("migration " + file.name + " failed and was rolled back: " + e.what(),
                  e.sqlstate());
  }
}

}  // namespace

std::string migration_checksum(std::string_view content) {
  std::uint64_t h = 0xcbf29ce484222325ULL;  // FNV-1a 64 offset basis
  for (unsigned char c : content) {
    h ^= c;
    h *= 0x100000001b3ULL;  // FNV 64 prime
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out(16, '0');
  for (int i = 15; i >= 0; --i) {
    out[static_cast<std::size_t>(i)] = kHex[h & 0xf];
    h >>= 4;
  }
  return out;
}

std::vector<MigrationFile> load_migrations(const std::string& dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    throw std::runtime_error("migrations directory " + dir + " does not exist or is not a directory");
  }
  std::vector<MigrationFile> files;
  for (const auto& entry : fs::directory_iterator(dir)) {
    const std::string file_name = entry.path().filename().string();
    if (!file_name.ends_with(".sql")) continue;
    if (!entry.is_regular_file()) {
      throw std::runtime_error("migration " + entry.path().string() + " is not a regular file");
    }
    const int version = parse_version(file_name);
    if (version < 0) {
      throw std::runtime_error("bad migration file name " + entry.path().string() +
                               " (expected NNN_name.sql, e.g. 001_grid.sql)");
    }
    MigrationFile f;
    f.version = version;
    f.name = file_name;
    f.path = entry.path().string();
    f.sql = read_file(entry.path());
    f.checksum = migration_checksum(f.sql);
    files.push_back(std::move(f));
  }
  std::sort(files.begin(), files.end(), [](const MigrationFile& a, const MigrationFile& b) {
    return a.version != b.version ? a.version < b.version : a.name < b.name;
  });
  for (std::size_t i = 1; i < files.size(); ++i) {
    if (files[i].version == files[i - 1].version) {
      throw std::runtime_error("migrations " + files[i - 1].name + " and " + files[i].name +
                               " in " + dir + " share version " +
                               std::to_string(files[i].version));
    }
  }
  return files;
}

MigrateReport migrate(Connection& conn, const std::string& dir) {
  // Files first: a bad directory fails before the database is touched.
  const std::vector<MigrationFile> files = load_migrations(dir);
  if (!conn.ok()) throw PgError("migrate: the database connection is not open", "08003");
  if (PQtransactionStatus(conn.get()) != PQTRANS_IDLE) {
    throw std::runtime_error("migrate: the connection is inside a transaction");
  }

  Utf8ClientEncoding utf8(conn);  // migration files are UTF-8 whatever the database encoding
  AdvisoryLock lock(conn);
  // client_min_messages: no "relation already exists, skipping" NOTICE on every run.
  conn.exec(std::string("BEGIN; SET LOCAL client_min_messages = warning; "
                        "CREATE TABLE IF NOT EXISTS ") +
            kMigrationLedgerTable +
            " (version int PRIMARY KEY, name text NOT NULL, checksum text NOT NULL,"
            " applied_at timestamptz NOT NULL DEFAULT now()); COMMIT");

  struct Applied {
    std::string name;
    std::string checksum;
  };
  std::map<int, Applied> applied;
  {
    Result r = conn.query(std::string("SELECT version, name, checksum FROM ") +
                          kMigrationLedgerTable + " ORDER BY version");
    for (int i = 0; i < PQntuples(r.get()); ++i) {
      applied[std::stoi(PQgetvalue(r.get(), i, 0))] = {PQgetvalue(r.get(), i, 1),
                                                       PQgetvalue(r.get(), i, 2)};
    }
  }

  // Verify the history before changing anything.
  for (const auto& f : files) {
    const auto it = applied.find(f.version);
    if (it != applied.end() && it->second.checksum != f.checksum) {
      throw std::runtime_error("migration " + f.path + " (version " + std::to_string(f.version) +
                               ") was already applied as " + it->second.name + " with checksum " +
                               it->second.checksum + " but the file's checksum is now " +
                               f.checksum + "; applied migrations must not be edited, add a new one");
    }
  }

  MigrateReport report;
  for (const auto& f : files) {
    if (applied.count(f.version) != 0) {
      report.skipped.push_back(f.name);
      continue;
    }
    apply_one(conn, f);
    spdlog::info("event=migration_applied file={} checksum={}", f.name, f.checksum);
    report.applied.push_back(f.name);
  }
  return report;
}

}  // namespace sluice::pg
