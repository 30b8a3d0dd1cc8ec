// bench/insert_bench.cpp — the alternatives to sluice a user would write: INSERT clients with libpq.
//
//   sluice-insert-bench --db URL --table QUOTED_TABLE --columns "c1,c2,..." --csv rows.csv
//                       [--rows-per-statement K] [--connections C]
//
//   rows.csv (header-less, sluice-gen-rows) ─► C contiguous slices ─► C threads, one connection each
//     K = 1     : PREPARE  INSERT INTO t (cols) VALUES ($1, ..., $n)        one row per statement
//     K = 1000  : PREPARE  INSERT INTO t (cols) VALUES ($1..$n), ..., (..)  K rows per statement
//   Autocommit (each statement its own transaction, as such clients do), text parameters typed by
//   the server from the columns, statements prepared once per connection (and once more for the
//   last, shorter statement of a slice). This is the fair version of a hand-written loop: no
//   string-built SQL, no per-row parse/plan.
//
// Prints one line: rows=… statements=… seconds=… rows_per_s=…; exit status 1 on any failed
// statement (the first error is printed).
#include <libpq-fe.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace {

[[noreturn]] void die(const std::string& why) {
  std::fprintf(stderr, "sluice-insert-bench: %s\n", why.c_str());
  std::exit(2);
}

// Splits one generated CSV line (no quoting: generated values have no commas or quotes).
void split(const std::string& line, std::vector<std::string>& out) {
  out.clear();
  size_t pos = 0;
  for (;;) {
    const size_t comma = line.find(',', pos);
    out.push_back(line.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos));
    if (comma == std::string::npos) break;
    pos = comma + 1;
  }
}

std::string insert_sql(const std::string& table, const std::string& columns, size_t ncols, size_t rows) {
  std::string sql = "INSERT INTO " + table + " (" + columns + ") VALUES ";
  size_t p = 1;
  for (size_t r = 0; r < rows; ++r) {
    sql += r ? ",(" : "(";
    for (size_t c = 0; c < ncols; ++c) {
      if (c) sql += ',';
      sql += '$' + std::to_string(p++);
    }
    sql += ')';
  }
  return sql;
}

}  // namespace

int main(int argc, char** argv) {
  std::string db, table, columns, csv;
  size_t per_statement = 1;
  int connections = 4;
  for (int i = 1; i < argc; ++i) {
    const std::string k = argv[i];
    if (i + 1 >= argc) die("missing value for " + k);
    const std::string v = argv[++i];
    if (k == "--db") db = v;
    else if (k == "--table") table = v;
    else if (k == "--columns") columns = v;
    else if (k == "--csv") csv = v;
    else if (k == "--rows-per-statement") per_statement = std::strtoull(v.c_str(), nullptr, 10);
    else if (k == "--connections") connections = std::atoi(v.c_str());
    else die("unknown option " + k);
  }
  if (db.empty() || table.empty() || columns.empty() || csv.empty()) {
    die("usage: sluice-insert-bench --db URL --table T --columns c1,c2 --csv FILE [--rows-per-statement K] [--connections C]");
  }
  if (per_statement < 1 || per_statement > 65535) die("--rows-per-statement must be within 1..65535");
  if (connections < 1) die("--connections must be at least 1");
  std::vector<std::string> names;
  split(columns, names);
  const size_t ncols = names.size();
  if (per_statement * ncols > 65535) die("--rows-per-statement × columns exceeds PostgreSQL's 65535 parameters");

  std::vector<std::vector<std::string>> rows;
  {
    std::ifstream in(csv);
    if (!in) die("cannot read " + csv);
    std::string line;
    std::vector<std::string> fields;
    while (std::getline(in, line)) {
      if (line.empty()) continue;
      split(line, fields);
      if (fields.size() != ncols) die(csv + ": a line has " + std::to_string(fields.size()) + " fields, expected " + std::to_string(ncols));
      rows.push_back(fields);
    }
  }

  std::atomic<uint64_t> statements{0}, failed{0};
  std::mutex error_mutex;
  std::string first_error;
  const auto t0 = std::chrono::steady_clock::now();
  std::vector<std::thread> threads;
  for (int c = 0; c < connections; ++c) {
    threads.emplace_back([&, c] {
      const size_t begin = rows.size() * static_cast<size_t>(c) / static_cast<size_t>(connections);
      const size_t end = rows.size() * static_cast<size_t>(c + 1) / static_cast<size_t>(connections);
      PGconn* conn = PQconnectdb(db.c_str());
      auto fail = [&](const std::string& what) {
        failed++;
        std::lock_guard<std::mutex> lock(error_mutex);
        if (first_error.empty()) first_error = what;
      };
      if (PQstatus(conn) != CONNECTION_OK) {
        fail(PQerrorMessage(conn));
        PQfinish(conn);
        return;
      }
      std::vector<std::string> prepared;  // names, by row count
      std::vector<const char*> params;
      for (size_t r = begin; r < end;) {
        const size_t k = std::min(per_statement, end - r);
        const std::string name = "ins" + std::to_string(k);
        if (std::find(prepared.begin(), prepared.end(), name) == prepared.end()) {
          PGresult* p = PQprepare(conn, name.c_str(), insert_sql(table, columns, ncols, k).c_str(), 0, nullptr);
          if (PQresultStatus(p) != PGRES_COMMAND_OK) {
            fail(PQresultErrorMessage(p));
            PQclear(p);
            break;
          }
          PQclear(p);
          prepared.push_back(name);
        }
        params.clear();
        for (size_t i = r; i < r + k; ++i) {
          for (const auto& v : rows[i]) params.push_back(v.c_str());
        }
        PGresult* res = PQexecPrepared(conn, name.c_str(), static_cast<int>(params.size()), params.data(), nullptr,
                                       nullptr, 0);
        statements++;
        if (PQresultStatus(res) != PGRES_COMMAND_OK) {
          fail(PQresultErrorMessage(res));
          PQclear(res);
          break;
        }
        PQclear(res);
        r += k;
      }
      PQfinish(conn);
    });
  }
  for (auto& t : threads) t.join();
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("rows=%zu statements=%llu seconds=%.3f rows_per_s=%.0f\n", rows.size(),
              static_cast<unsigned long long>(statements.load()), secs, static_cast<double>(rows.size()) / secs);
  if (failed.load() != 0) {
    std::fprintf(stderr, "sluice-insert-bench: %llu connection(s) failed; first error: %s\n",
                 static_cast<unsigned long long>(failed.load()), first_error.c_str());
    return 1;
  }
  return 0;
}
