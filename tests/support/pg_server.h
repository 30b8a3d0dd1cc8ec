// tests/support/pg_server.h — a real, throw-away PostgreSQL 15 server for integration tests.
//
// start(): finds the PostgreSQL 15 binaries (/usr/lib/postgresql/15/bin), creates a temporary
// data directory, runs initdb, and starts the server on a free loopback port with its socket in
// that directory. As root it runs everything as the `postgres` user through `runuser` (PostgreSQL
// refuses to run as root). stop() (also the destructor) shuts it down and removes the directory.
// Each test binary starts its own server, so ctest can run binaries in parallel.
#pragma once

#include <string>

namespace sluice::test {

class PgServer {
 public:
  PgServer() = default;
  ~PgServer();
  PgServer(const PgServer&) = delete;
  PgServer& operator=(const PgServer&) = delete;

  // Throws std::runtime_error with the server log's tail when the server does not come up.
  void start();
  void stop();
  // Fast shutdown and start again on the same port and data (for outage tests).
  void restart();
  void stop_keep_data();  // stop the server but keep the data dir (start_again() brings it back)
  void start_again();

  bool running() const { return running_; }
  int port() const { return port_; }
  // URL of a database, e.g. postgresql://postgres@127.0.0.1:PORT/NAME
  std::string url(const std::string& database = "postgres") const;
  // CREATE DATABASE name (drops it first if it exists); returns its URL.
  std::string create_database(const std::string& name);
  // Runs psql -v ON_ERROR_STOP=1 against a database with the given SQL; throws on failure.
  std::string psql(const std::string& database, const std::string& sql) const;

 private:
  std::string bin_dir_;
  std::string dir_;      // temporary folder: data/, socket, log
  int port_ = 0;
  bool running_ = false;
  bool as_postgres_ = false;  // running as root: commands go through runuser -u postgres
};

// The one server shared by all tests of a binary, started on first use (gtest Environment-style).
PgServer& shared_pg_server();

// A free TCP port on 127.0.0.1 (bind to port 0, read it back, close).
int free_tcp_port();

}  // namespace sluice::test
