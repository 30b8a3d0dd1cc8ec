// pg/resolver_service.cpp — see resolver_service.h.
#include "pg/resolver_service.h"

#include <chrono>
#include <cstdlib>
#include <optional>
#include <stdexcept>
#include <unordered_map>

#include <spdlog/spdlog.h>

#include "pg/connection.h"

namespace sluice::pg {

namespace {

// A failed statement: `unavailable` when the connection is gone, else a per-key failure.
struct StatementError {
  bool connection_lost = false;
  std::string message;
};

// A lookup or create that hangs (locks) must not hold the misses of every sender for ever.
constexpr const char* kSessionSettings = "SET statement_timeout = '30s'; SET lock_timeout = '10s'";

int64_t steady_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace

struct ResolverService::Impl {
  std::optional<Connection> conn;
  struct Entry {
    ResolveStatus status;
    std::string value;
    int64_t expires_ns = 0;  // negative entries
  };
  std::vector<std::unordered_map<std::string, Entry>> cache;  // by resolver
  std::vector<std::optional<std::string>> parts;

  // Runs one statement with the key parts as text parameters; on success returns the first column of
  // the first row (nullopt when no row or NULL) and the affected row count.
  bool exec(const std::string& sql, const std::vector<std::optional<std::string>>& params,
            std::optional<std::string>& value, uint64_t& affected, StatementError& err) {
    std::vector<const char*> values;
    values.reserve(params.size());
    for (const auto& p : params) values.push_back(p ? p->c_str() : nullptr);
    Result r(PQexecParams(conn->get(), sql.c_str(), static_cast<int>(values.size()), nullptr, values.data(),
                          nullptr, nullptr, 0));
    const auto st = r ? PQresultStatus(r.get()) : PGRES_FATAL_ERROR;
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
      // Transient: connection gone, timeouts/cancels (57), lock not available, serialization and
      // deadlocks (40), resources (53): the key is not cached and the sender retries (503).
      const std::string state = sqlstate_of(r.get());
      err.connection_lost = PQstatus(conn->get()) != CONNECTION_OK || state.rfind("08", 0) == 0 ||
                            state.rfind("57", 0) == 0 || state.rfind("40", 0) == 0 || state.rfind("53", 0) == 0 ||
                            state == "55P03";
      err.message = error_message(conn->get(), r.get());
      return false;
    }
    value.reset();
    if (st == PGRES_TUPLES_OK && PQntuples(r.get()) > 0 && PQnfields(r.get()) > 0 && !PQgetisnull(r.get(), 0, 0)) {
      value = std::string(PQgetvalue(r.get(), 0, 0), static_cast<size_t>(PQgetlength(r.get(), 0, 0)));
    }
    const char* tuples = PQcmdTuples(r.get());
    affected = tuples && *tuples ? std::strtoull(tuples, nullptr, 10) : 0;
    return true;
  }

  bool simple(const char* sql, StatementError& err) {
    std::optional<std::string> v;
    uint64_t n = 0;
    return exec(sql, {}, v, n, err);
  }
};

void ResolverService::check() {
  Connection conn(url_, "sluiced resolver check");
  std::string problems;
  for (const Resolver& r : set_.resolvers()) {
    for (const std::string* sql : {&r.lookup_sql, &r.create_sql}) {
      if (sql->empty()) continue;
      // PREPARE checks syntax, names and types, and that every $n has a type (is used).
      Result res(PQprepare(conn.get(), "", sql->c_str(), 0, nullptr));
      std::string error;
      if (!res || PQresultStatus(res.get()) != PGRES_COMMAND_OK) {
        error = error_message(conn.get(), res.get());
      } else {
        Result d(PQdescribePrepared(conn.get(), ""));
        const int params = d ? PQnparams(d.get()) : -1;
        if (params != static_cast<int>(r.keys.size())) {
          error = "uses " + std::to_string(params) + " parameters for " + std::to_string(r.keys.size()) + " keys";
        } else if (sql == &r.lookup_sql && PQnfields(d.get()) < 1) {
          error = "returns no column";
        }
      }
      if (!error.empty()) {
        if (!problems.empty()) problems += "\n";
        problems += "resolver \"" + r.name + "\": " + (sql == &r.lookup_sql ? "lookup" : "create") + " SQL: " + error;
      }
    }
  }
  if (!problems.empty()) throw std::runtime_error(problems);
}

ResolverService::ResolverService(std::string url, const ResolverSet& set)
    : url_(std::move(url)), set_(set), impl_(std::make_unique<Impl>()) {
  for (size_t i = 0; i < set.resolvers().size(); ++i) counters_.push_back(std::make_unique<Counters>());
  impl_->cache.resize(set.resolvers().size());
}

ResolverService::~ResolverService() { stop(); }

void ResolverService::start() {
  if (thread_.joinable()) return;
  thread_ = std::thread([this] { run(); });
}

void ResolverService::stop() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  std::deque<Job> left;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    left.swap(queue_);
    stopped_ = true;  // from now on submit() answers at once
  }
  for (Job& job : left) {
    std::vector<ResolveResult> results;
    for (KeyMiss& m : job.misses) {
      ResolveResult r;
      r.resolver = m.resolver;
      r.key = std::move(m.key);
      r.status = ResolveStatus::unavailable;
      r.message = "sluice is stopping";
      results.push_back(std::move(r));
    }
    job.callback(std::move(results));
  }
}

void ResolverService::submit(std::vector<KeyMiss> misses, Callback callback) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!stopped_) {
      queue_.push_back(Job{std::move(misses), std::move(callback)});
      cv_.notify_one();
      return;
    }
  }
  // Stopped: answer at once.
  std::vector<ResolveResult> results;
  for (KeyMiss& m : misses) {
    ResolveResult r;
    r.resolver = m.resolver;
    r.key = std::move(m.key);
    r.status = ResolveStatus::unavailable;
    r.message = "sluice is stopping";
    results.push_back(std::move(r));
  }
  callback(std::move(results));
}

void ResolverService::run() {
  for (;;) {
    Job job;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (stopping_) return;  // stop() answers what is left
      job = std::move(queue_.front());
      queue_.pop_front();
    }
    std::vector<ResolveResult> results;
    results.reserve(job.misses.size());
    for (const KeyMiss& m : job.misses) results.push_back(resolve(m));
    job.callback(std::move(results));
  }
}

ResolveResult ResolverService::resolve(const KeyMiss& miss) {
  ResolveResult out;
  out.resolver = miss.resolver;
  out.key = miss.key;
  if (miss.resolver >= set_.resolvers().size()) {
    out.status = ResolveStatus::failed;
    out.message = "internal error: no such resolver";
    return out;
  }
  const Resolver& r = set_.resolvers()[miss.resolver];
  Counters& counters = *counters_[miss.resolver];
  auto& cache = impl_->cache[miss.resolver];
  const int64_t now = steady_ns();
  if (auto it = cache.find(miss.key); it != cache.end()) {
    if (it->second.status == ResolveStatus::found || now < it->second.expires_ns) {
      out.status = it->second.status;
      (out.status == ResolveStatus::found ? out.value : out.message) = it->second.value;
      return out;
    }
    cache.erase(it);
  }
  auto remember = [&](ResolveResult& res) -> ResolveResult& {
    if (res.status == ResolveStatus::unavailable) {
      counters.errors.fetch_add(1, std::memory_order_relaxed);
      return res;
    }
    if (res.status == ResolveStatus::failed) counters.errors.fetch_add(1, std::memory_order_relaxed);
    if (cache.size() >= r.cache_size) cache.clear();
    Impl::Entry e{res.status, res.status == ResolveStatus::found ? res.value : res.message,
                  now + r.negative_ttl_ns};
    cache[res.key] = std::move(e);
    return res;
  };
  auto unavailable = [&](const std::string& message) -> ResolveResult& {
    out.status = ResolveStatus::unavailable;
    out.message = message;
    if (impl_->conn && PQstatus(impl_->conn->get()) == CONNECTION_OK &&
        PQtransactionStatus(impl_->conn->get()) != PQTRANS_IDLE) {
      StatementError ignored;
      impl_->simple("ROLLBACK", ignored);
    }
    if (impl_->conn && PQstatus(impl_->conn->get()) != CONNECTION_OK) impl_->conn.reset();
    return remember(out);
  };

  std::vector<std::optional<std::string>>& params = impl_->parts;
  if (!decode_key(miss.key, params) || params.size() != r.keys.size()) {
    out.status = ResolveStatus::failed;
    out.message = "internal error: malformed key";
    return remember(out);
  }
  if (!impl_->conn || !impl_->conn->ok()) {
    try {
      impl_->conn.emplace(url_, "sluiced resolver");
      impl_->conn->exec(kSessionSettings);
    } catch (const PgError& e) {
      impl_->conn.reset();
      return unavailable(std::string("database unavailable: ") + e.what());
    }
  }

  StatementError err;
  std::optional<std::string> value;
  uint64_t affected = 0;
  counters.lookups.fetch_add(1, std::memory_order_relaxed);
  if (!impl_->exec(r.lookup_sql, params, value, affected, err)) {
    if (err.connection_lost) return unavailable("database unavailable: " + err.message);
    out.status = ResolveStatus::failed;
    out.message = "lookup failed: " + err.message;
    return remember(out);
  }
  if (value) {
    out.status = ResolveStatus::found;
    out.value = std::move(*value);
    return remember(out);
  }
  if (r.unknown == UnknownKeyRule::reject) {
    out.status = ResolveStatus::unknown;
    return remember(out);
  }

  // Create: serialised per resolver across processes by a transaction-scoped advisory lock.
  auto fail = [&](const std::string& what) -> ResolveResult& {
    if (err.connection_lost) return unavailable("database unavailable: " + err.message);
    StatementError ignored;
    impl_->simple("ROLLBACK", ignored);
    out.status = ResolveStatus::failed;
    out.message = what + err.message;
    return remember(out);
  };
  if (!impl_->simple("BEGIN", err)) return fail("create failed: ");
  {
    std::optional<std::string> ignored_value;
    uint64_t n = 0;
    if (!impl_->exec("SELECT pg_advisory_xact_lock(hashtext($1))", {std::string("sluice resolver ") + r.name},
                     ignored_value, n, err)) {
      return fail("create failed: ");
    }
  }
  counters.lookups.fetch_add(1, std::memory_order_relaxed);
  if (!impl_->exec(r.lookup_sql, params, value, affected, err)) return fail("lookup failed: ");
  if (!value) {
    if (!impl_->exec(r.create_sql, params, value, affected, err)) return fail("create failed: ");
    if (affected > 0) counters.creates.fetch_add(affected, std::memory_order_relaxed);
    counters.lookups.fetch_add(1, std::memory_order_relaxed);
    if (!impl_->exec(r.lookup_sql, params, value, affected, err)) return fail("lookup failed: ");
  }
  if (!impl_->simple("COMMIT", err)) return fail("create failed: ");
  if (value) {
    out.status = ResolveStatus::found;
    out.value = std::move(*value);
  } else {
    out.status = ResolveStatus::unknown;  // the create inserted nothing the lookup finds
  }
  return remember(out);
}

}  // namespace sluice::pg
