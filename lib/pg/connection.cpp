#include "pg/connection.h"

#include <regex>

namespace sluice::pg {

Connection::Connection(const std::string& url, std::string_view application_name) {
  const std::string app(application_name);
  const char* keys[] = {"dbname", "application_name", "fallback_application_name", nullptr};
  const char* values[] = {url.c_str(), app.c_str(), "sluiced", nullptr};
  // expand_dbname=1: the URL or conninfo string in "dbname" is expanded; later keys override it.
  conn_ = PQconnectdbParams(keys, values, 1);
  if (!conn_ || PQstatus(conn_) != CONNECTION_OK) {
    std::string message = "cannot connect to " + redact_url(url) + ": " +
                          (conn_ ? PQerrorMessage(conn_) : "out of memory");
    while (!message.empty() && (message.back() == '\n' || message.back() == ' ')) message.pop_back();
    if (conn_) PQfinish(conn_);
    conn_ = nullptr;
    throw PgError(message, "08001");
  }
}

Connection& Connection::operator=(Connection&& other) noexcept {
  if (this != &other) {
    if (conn_) PQfinish(conn_);
    conn_ = other.conn_;
    other.conn_ = nullptr;
  }
  return *this;
}

Connection::~Connection() {
  if (conn_) PQfinish(conn_);
}

void Connection::exec(const std::string& sql) {
  Result r(PQexec(conn_, sql.c_str()));
  const auto st = r ? PQresultStatus(r.get()) : PGRES_FATAL_ERROR;
  if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
    throw PgError(error_message(conn_, r.get()), sqlstate_of(r.get()));
  }
}

Result Connection::query(const std::string& sql, const std::vector<std::string>& params) {
  std::vector<const char*> values;
  values.reserve(params.size());
  for (const auto& p : params) values.push_back(p.c_str());
  Result r(PQexecParams(conn_, sql.c_str(), static_cast<int>(values.size()), nullptr,
                        values.data(), nullptr, nullptr, 0));
  const auto st = r ? PQresultStatus(r.get()) : PGRES_FATAL_ERROR;
  if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
    throw PgError(error_message(conn_, r.get()), sqlstate_of(r.get()));
  }
  return r;
}

std::string error_message(PGconn* conn, const PGresult* r) {
  std::string m;
  if (r) {
    const char* primary = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
    if (primary) {
      m = primary;
      if (const char* detail = PQresultErrorField(r, PG_DIAG_MESSAGE_DETAIL)) {
        m += " (";
        m += detail;
        m += ")";
      }
    } else {
      m = PQresultErrorMessage(r);
    }
  }
  if (m.empty() && conn) m = PQerrorMessage(conn);
  while (!m.empty() && (m.back() == '\n' || m.back() == ' ')) m.pop_back();
  if (m.empty()) m = "unknown database error";
  return m;
}

std::string sqlstate_of(const PGresult* r) {
  if (!r) return "08006";  // no result at all: the connection failed
  const char* s = PQresultErrorField(r, PG_DIAG_SQLSTATE);
  return s ? s : "";
}

std::string quote_ident(std::string_view name) {
  std::string out;
  out.reserve(name.size() + 2);
  out.push_back('"');
  for (char c : name) {
    if (c == '"') out.push_back('"');
    out.push_back(c);
  }
  out.push_back('"');
  return out;
}

std::string quote_literal(std::string_view text) {
  std::string out;
  out.reserve(text.size() + 2);
  out.push_back('\'');
  for (char c : text) {
    if (c == '\'') out.push_back('\'');
    out.push_back(c);
  }
  out.push_back('\'');
  return out;
}

std::string redact_url(std::string_view url) {
  std::string s(url);
  // postgresql://user:secret@host → postgresql://user:***@host (up to the last '@' of the
  // authority: an unencoded '@' in the password must not leave its tail behind)
  static const std::regex uri_password(R"(^(postgres(?:ql)?://[^:/@]*:)[^/]*@)");
  s = std::regex_replace(s, uri_password, "$1***@");
  // key=value conninfo (password=secret, password='a \'b') and URI query (?password=secret&…)
  static const std::regex kv_password(R"((password\s*=\s*)('(?:[^'\\]|\\.)*'|[^\s&]+))", std::regex::icase);
  s = std::regex_replace(s, kv_password, "$1***");
  return s;
}

}  // namespace sluice::pg
