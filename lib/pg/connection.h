// pg/connection.h — a thin RAII owner of one libpq connection.
//
// Start-up code uses exec()/query() which throw PgError; the data plane (writers) uses the raw
// PGconn* and SQLSTATE-based classification and never throws.
#pragma once

#include <libpq-fe.h>

#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace sluice::pg {

class PgError : public std::runtime_error {
 public:
  PgError(std::string message, std::string sqlstate)
      : std::runtime_error(std::move(message)), sqlstate_(std::move(sqlstate)) {}
  const std::string& sqlstate() const { return sqlstate_; }

 private:
  std::string sqlstate_;
};

struct ResultDeleter {
  void operator()(PGresult* r) const { PQclear(r); }
};
using Result = std::unique_ptr<PGresult, ResultDeleter>;

class Connection {
 public:
  Connection() = default;
  // Connects (blocking); throws PgError naming the target without its password.
  explicit Connection(const std::string& url, std::string_view application_name = "sluiced");
  Connection(Connection&& other) noexcept : conn_(other.conn_) { other.conn_ = nullptr; }
  Connection& operator=(Connection&& other) noexcept;
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;
  ~Connection();

  PGconn* get() const { return conn_; }
  bool ok() const { return conn_ && PQstatus(conn_) == CONNECTION_OK; }

  // Runs SQL (may hold several statements); throws PgError on failure.
  void exec(const std::string& sql);
  // Runs a parameterised query (text params, text results); throws PgError on failure.
  Result query(const std::string& sql, const std::vector<std::string>& params = {});

 private:
  PGconn* conn_ = nullptr;
};

// Error text + SQLSTATE of a failed result (or of the connection when r is null).
std::string error_message(PGconn* conn, const PGresult* r);
std::string sqlstate_of(const PGresult* r);

// Quotes an SQL identifier: name → "name", with embedded quotes doubled.
std::string quote_ident(std::string_view name);
// Quotes an SQL string literal: text → 'text', with embedded quotes doubled.
std::string quote_literal(std::string_view text);
// Removes the password from a connection URL/conninfo for log lines.
std::string redact_url(std::string_view url);

}  // namespace sluice::pg
