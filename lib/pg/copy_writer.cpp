// pg/copy_writer.cpp — writer threads, binary COPY streaming, failure classification.
#include "pg/copy_writer.h"

#include <libpq-fe.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <climits>
#include <map>
#include <random>
#include <utility>

#include "pg/connection.h"

namespace sluice::pg {

using Clock = std::chrono::steady_clock;

namespace {

constexpr auto kIdleCheckInterval = std::chrono::seconds(1);  // idle writers probe their socket
constexpr auto kFailureLogInterval = std::chrono::seconds(10);
constexpr size_t kMaxPutCopyChunk = size_t{1} << 30;          // PQputCopyData takes an int length

int sqlstate_class_index(std::string_view sqlstate) {
  auto digit = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'Z') return c - 'A' + 10;
    if (c >= 'a' && c <= 'z') return c - 'a' + 10;
    return -1;
  };
  if (sqlstate.size() < 2) return -1;
  const int a = digit(sqlstate[0]), b = digit(sqlstate[1]);
  return a < 0 || b < 0 ? -1 : a * 36 + b;
}

// libpq messages span lines ("...\n\tThis probably means..."): one line for logs and acks.
std::string trimmed(std::string s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    if (c == '\n' || c == '\t' || c == '\r') c = ' ';
    if (c == ' ' && (out.empty() || out.back() == ' ')) continue;
    out.push_back(c);
  }
  while (!out.empty() && out.back() == ' ') out.pop_back();
  return out;
}

// What one COPY attempt came to.
struct CopyOutcome {
  bool committed = false;
  bool answered = false;  // the server answered (committed or a server-side error)
  CopyFailureKind kind = CopyFailureKind::connection;
  std::string sqlstate;
  std::string message;    // "SQLSTATE: message (detail) [context]"
};

CopyOutcome failure_from(PGconn* conn, const PGresult* r) {
  CopyOutcome out;
  const bool broken = PQstatus(conn) == CONNECTION_BAD;
  const char* state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : nullptr;
  out.sqlstate = state ? state : "08006";  // no SQLSTATE: the client side lost the connection
  out.kind = (broken || !state) ? CopyFailureKind::connection : classify_sqlstate(out.sqlstate);
  out.answered = state != nullptr && !broken;
  std::string text = trimmed(error_message(conn, r));
  if (r) {
    if (const char* ctx = PQresultErrorField(r, PG_DIAG_CONTEXT)) {
      text += " [";
      text += trimmed(ctx);
      text += "]";
    }
  }
  out.message = out.sqlstate + ": " + text;
  return out;
}

// One COPY of blocks[0..n) over a healthy connection. Streams each block's bytes as they are.
CopyOutcome run_copy(PGconn* conn, const std::string& sql, const BlockPtr* blocks, size_t n) {
  {
    Result start(PQexec(conn, sql.c_str()));
    if (!start || PQresultStatus(start.get()) != PGRES_COPY_IN) return failure_from(conn, start.get());
  }
  bool sent = PQputCopyData(conn, kCopyBinaryHeader, sizeof kCopyBinaryHeader) == 1;
  for (size_t i = 0; sent && i < n; ++i) {
    const std::vector<char>& data = blocks[i]->data;
    for (size_t off = 0; sent && off < data.size();) {
      const size_t chunk = std::min(data.size() - off, kMaxPutCopyChunk);
      sent = PQputCopyData(conn, data.data() + off, static_cast<int>(chunk)) == 1;
      off += chunk;
    }
  }
  if (sent) sent = PQputCopyData(conn, kCopyBinaryTrailer, sizeof kCopyBinaryTrailer) == 1;
  // When a send failed (the server already reported an error, or the socket broke) this aborts
  // the COPY; the server's own error, if any, arrives below.
  PQputCopyEnd(conn, sent ? nullptr : "sluice: COPY data could not be sent");

  Result error;
  bool committed = false;
  for (int guard = 0; guard < 64; ++guard) {
    Result r(PQgetResult(conn));
    if (!r) break;
    const ExecStatusType st = PQresultStatus(r.get());
    if (st == PGRES_COMMAND_OK) {
      committed = true;
    } else if (st == PGRES_COPY_IN) {
      PQputCopyEnd(conn, "sluice: unexpected COPY state");  // never leave the COPY open
    } else if (!error) {
      error = std::move(r);
    }
  }
  if (error) return failure_from(conn, error.get());
  if (committed) {
    CopyOutcome ok;
    ok.committed = true;
    ok.answered = true;
    return ok;
  }
  return failure_from(conn, nullptr);
}

}  // namespace

CopyFailureKind classify_sqlstate(std::string_view s) {
  if (s.size() < 5) return CopyFailureKind::connection;
  const std::string_view cls = s.substr(0, 2);
  if (cls == "08") return CopyFailureKind::connection;  // connection exception
  if (s == "57P01" || s == "57P02" || s == "57P03" || s == "53300") return CopyFailureKind::connection;
  if (cls == "22" || cls == "23") return CopyFailureKind::row_level;  // data exception, integrity
  return CopyFailureKind::other;
}

// ---- stats -------------------------------------------------------------------------------------

WriterStats::WriterStats(size_t tables)
    : committed_rows(tables), committed_bytes(tables), committed_batches(tables),
      failed_rows(tables), failed_blocks(tables) {}

uint64_t WriterStats::failures(std::string_view sqlstate_class) const {
  const int i = sqlstate_class_index(sqlstate_class);
  return i < 0 ? 0 : failures_by_class[static_cast<size_t>(i)].load(std::memory_order_relaxed);
}

// ---- writer state ------------------------------------------------------------------------------

struct WriterPool::Writer {
  int index = 0;
  PGconn* conn = nullptr;
  bool connected_once = false;
  bool had_trouble = false;   // a loss or failed attempt since the last good connection
  bool down_logged = false;   // this outage was logged already
  int failed_attempts = 0;    // consecutive failed connection attempts
  Clock::time_point next_connect_at{};
  std::minstd_rand rng;
  std::map<std::pair<uint32_t, uint64_t>, std::string> copy_sql;  // (table, mask) → COPY statement
  Clock::time_point last_failure_log{};
  uint64_t failures_not_logged = 0;

  bool ok() const { return conn && PQstatus(conn) == CONNECTION_OK; }

  const std::string& sql_for(const TableSchema& table, uint64_t mask) {
    auto [it, inserted] = copy_sql.try_emplace({table.id, mask});
    if (inserted) {
      it->second = "COPY " + table.quoted + " " + table.copy_column_list(mask) +
                   " FROM STDIN (FORMAT binary)";
    }
    return it->second;
  }

  ~Writer() {
    if (conn) PQfinish(conn);
  }
};

// ---- pool --------------------------------------------------------------------------------------

WriterPool::WriterPool(const Catalog& catalog, WriterOptions options)
    : catalog_(catalog), options_(std::move(options)), stats_(catalog.tables.size()) {
  // Create spdlog's registry here, on one thread, rather than lazily from several writer threads
  // at once (ThreadSanitizer cannot see the guard inside the uninstrumented libspdlog).
  spdlog::default_logger_raw();
}

WriterPool::~WriterPool() { stop(); }

void WriterPool::start() {
  std::lock_guard<std::mutex> lock(mutex_);
  if (started_ || closed_) return;
  started_ = true;
  const int n = std::max(1, options_.connections);
  for (int i = 0; i < n; ++i) {
    auto w = std::make_unique<Writer>();
    w->index = i;
    w->rng.seed(static_cast<unsigned>(Clock::now().time_since_epoch().count()) + 7919u * i);
    writers_.push_back(std::move(w));
  }
  for (auto& w : writers_) threads_.emplace_back([this, wp = w.get()] { run(*wp); });
}

bool WriterPool::push(Batch&& batch) {
  const size_t cap = std::max<size_t>(1, options_.queue_batches);
  std::unique_lock<std::mutex> lock(mutex_);
  not_full_.wait(lock, [&] { return closed_ || queue_.size() < cap; });
  if (closed_) return false;  // batch untouched: the caller still owns its blocks
  queue_.push_back(std::move(batch));
  stats_.queue_depth.store(static_cast<int64_t>(queue_.size()), std::memory_order_relaxed);
  not_empty_.notify_one();
  return true;
}

void WriterPool::stop() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (stopped_) return;
    stopped_ = true;
    closed_ = true;
    stop_deadline_ = Clock::now() + options_.stop_timeout;
    stopping_.store(true, std::memory_order_release);
  }
  not_full_.notify_all();
  not_empty_.notify_all();
  wake_.notify_all();
  for (auto& t : threads_) t.join();
  threads_.clear();

  // Only without start(): nobody took these batches.
  std::deque<Batch> left;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    left.swap(queue_);
    stats_.queue_depth.store(0, std::memory_order_relaxed);
  }
  for (Batch& b : left) {
    for (BlockPtr& block : b.blocks) {
      stats_.shutdown_blocks.fetch_add(1, std::memory_order_relaxed);
      if (block->ack) block->ack->complete(AckOutcome::shutdown, 0, "sluice stopped before the rows were written");
    }
  }
}

bool WriterPool::connected() const {
  return stats_.connected_writers.load(std::memory_order_relaxed) > 0;
}

bool WriterPool::stop_deadline_passed() const {
  // stop_deadline_ is written before stopping_ is released, so it is visible here.
  return stopping_.load(std::memory_order_acquire) && Clock::now() >= stop_deadline_;
}

// Batches of the same table and columns that queued up while every writer was busy go out in
// the same COPY: one commit instead of several (group commit), in queue order.
void WriterPool::merge_queued(Batch& out) {
  for (auto it = queue_.begin(); it != queue_.end() && out.rows < options_.merge_max_rows;) {
    if (it->table_id != out.table_id || it->column_mask != out.column_mask) {
      ++it;
      continue;
    }
    out.rows += it->rows;
    out.bytes += it->bytes;
    out.min_time = std::min(out.min_time, it->min_time);
    out.max_time = std::max(out.max_time, it->max_time);
    for (auto& b : it->blocks) out.blocks.push_back(std::move(b));
    it = queue_.erase(it);
  }
}

bool WriterPool::idle() const {
  return waiting_connected_.load(std::memory_order_acquire) > 0 &&
         stats_.queue_depth.load(std::memory_order_relaxed) == 0;
}

WriterPool::PopResult WriterPool::pop(Batch& out, Clock::time_point wait_until, bool connected) {
  std::unique_lock<std::mutex> lock(mutex_);
  for (;;) {
    if (!queue_.empty()) {
      out = std::move(queue_.front());
      queue_.pop_front();
      merge_queued(out);
      stats_.queue_depth.store(static_cast<int64_t>(queue_.size()), std::memory_order_relaxed);
      not_full_.notify_one();
      return PopResult::batch;
    }
    if (stopping_.load(std::memory_order_relaxed)) return PopResult::done;
    if (connected) waiting_connected_.fetch_add(1, std::memory_order_release);
    const auto status = not_empty_.wait_until(lock, wait_until);
    if (connected) waiting_connected_.fetch_sub(1, std::memory_order_release);
    if (status == std::cv_status::timeout && queue_.empty() && !stopping_.load(std::memory_order_relaxed)) {
      return PopResult::idle;
    }
  }
}

void WriterPool::run(Writer& w) {
  try_connect(w);  // on this thread, so start() never waits for the database
  for (;;) {
    auto wait_until = Clock::now() + kIdleCheckInterval;
    if (!w.conn) wait_until = std::min(wait_until, std::max(w.next_connect_at, Clock::now()));
    Batch batch;
    const PopResult got = pop(batch, wait_until, w.conn != nullptr);
    if (got == PopResult::done) break;
    if (got == PopResult::batch) {
      write_batch(w, batch);
      continue;
    }
    // Idle: notice a connection the server closed (for /readyz), or retry connecting.
    if (w.conn) {
      if (PQconsumeInput(w.conn) == 0 || PQstatus(w.conn) == CONNECTION_BAD) {
        drop_connection(w, trimmed(PQerrorMessage(w.conn)));
      }
    } else if (Clock::now() >= w.next_connect_at) {
      try_connect(w);
    }
  }
  if (w.conn) {
    PQfinish(w.conn);
    w.conn = nullptr;
    stats_.connected_writers.fetch_sub(1, std::memory_order_relaxed);
  }
}

bool WriterPool::try_connect(Writer& w) {
  const std::string timeout = std::to_string(std::max<long long>(1, options_.connect_timeout.count()));
  // Keywords before "dbname" are defaults the URL may override; application_name after it wins.
  const char* keys[] = {"connect_timeout", "keepalives", "keepalives_idle", "keepalives_interval",
                        "keepalives_count", "dbname", "application_name", nullptr};
  const char* values[] = {timeout.c_str(), "1", "30", "10", "3", options_.url.c_str(),
                          options_.application_name.c_str(), nullptr};
  PGconn* c = PQconnectdbParams(keys, values, 1);
  if (c && PQstatus(c) == CONNECTION_OK) {
    w.conn = c;
    stats_.connected_writers.fetch_add(1, std::memory_order_relaxed);
    if (w.had_trouble) {
      stats_.reconnects.fetch_add(1, std::memory_order_relaxed);
      spdlog::info("writer {}: connected to {} again after {} failed attempt(s)", w.index,
                   redact_url(options_.url), w.failed_attempts);
    } else if (!w.connected_once) {
      spdlog::debug("writer {}: connected to {}", w.index, redact_url(options_.url));
    }
    w.connected_once = true;
    w.had_trouble = false;
    w.down_logged = false;
    w.failed_attempts = 0;
    return true;
  }
  const std::string why = c ? trimmed(PQerrorMessage(c)) : "out of memory";
  if (c) PQfinish(c);
  stats_.connect_failures.fetch_add(1, std::memory_order_relaxed);
  w.had_trouble = true;
  ++w.failed_attempts;
  // Capped exponential backoff, jittered to 50-100% so writers do not reconnect in lock step.
  const int64_t min_ms = std::max<int64_t>(1, options_.reconnect_min.count());
  const int64_t max_ms = std::max<int64_t>(min_ms, options_.reconnect_max.count());
  int64_t delay = min_ms;
  for (int i = 1; i < w.failed_attempts && delay < max_ms; ++i) delay *= 2;
  delay = std::min(delay, max_ms);
  std::uniform_int_distribution<int64_t> jitter(delay / 2, delay);
  w.next_connect_at = Clock::now() + std::chrono::milliseconds(jitter(w.rng));
  if (!w.down_logged) {
    spdlog::warn("writer {}: cannot connect to {}: {} (retrying, backoff up to {} ms)", w.index,
                 redact_url(options_.url), why, max_ms);
    w.down_logged = true;
  }
  return false;
}

void WriterPool::drop_connection(Writer& w, const std::string& why) {
  if (!w.conn) return;
  PQfinish(w.conn);
  w.conn = nullptr;
  stats_.connected_writers.fetch_sub(1, std::memory_order_relaxed);
  stats_.connection_losses.fetch_add(1, std::memory_order_relaxed);
  w.had_trouble = true;
  w.next_connect_at = Clock::now();  // the first reconnect is immediate, then backoff
  if (!w.down_logged) {
    spdlog::warn("writer {}: lost connection to {}: {}", w.index, redact_url(options_.url), why);
    w.down_logged = true;
  }
}

void WriterPool::wait_for_retry(Writer& w) {
  std::unique_lock<std::mutex> lock(mutex_);
  const bool was_stopping = stopping_.load(std::memory_order_relaxed);
  auto until = w.next_connect_at;
  if (was_stopping) until = std::min(until, stop_deadline_);
  wake_.wait_until(lock, until, [&] { return stopping_.load(std::memory_order_relaxed) != was_stopping; });
}

bool WriterPool::ensure_connected(Writer& w) {
  for (;;) {
    if (w.ok()) return true;
    if (w.conn) drop_connection(w, trimmed(PQerrorMessage(w.conn)));
    if (stop_deadline_passed()) return false;
    if (Clock::now() < w.next_connect_at) {
      wait_for_retry(w);
      continue;
    }
    try_connect(w);
  }
}

void WriterPool::write_batch(Writer& w, Batch& batch) {
  auto& blocks = batch.blocks;
  const uint32_t table_id = batch.table_id;
  const bool known_table = table_id < catalog_.tables.size();

  auto commit = [&](size_t from, size_t to) {
    uint64_t rows = 0, bytes = 0;
    for (size_t i = from; i < to; ++i) {
      rows += blocks[i]->rows;
      bytes += blocks[i]->data.size();
    }
    stats_.committed_rows[table_id].fetch_add(rows, std::memory_order_relaxed);
    stats_.committed_bytes[table_id].fetch_add(bytes, std::memory_order_relaxed);
    stats_.committed_batches[table_id].fetch_add(1, std::memory_order_relaxed);
    int64_t min_time = INT64_MAX, max_time = INT64_MIN;
    for (size_t i = from; i < to; ++i) {
      min_time = std::min(min_time, blocks[i]->min_time);
      max_time = std::max(max_time, blocks[i]->max_time);
      if (blocks[i]->ack) blocks[i]->ack->complete(AckOutcome::committed, blocks[i]->rows);
    }
    if (options_.on_commit && min_time <= max_time) options_.on_commit(table_id, min_time, max_time);
  };
  auto fail = [&](size_t from, size_t to, const std::string& message) {
    uint64_t rows = 0;
    for (size_t i = from; i < to; ++i) rows += blocks[i]->rows;
    if (known_table) {
      stats_.failed_rows[table_id].fetch_add(rows, std::memory_order_relaxed);
      stats_.failed_blocks[table_id].fetch_add(to - from, std::memory_order_relaxed);
    }
    const auto now = Clock::now();
    if (now - w.last_failure_log >= kFailureLogInterval) {
      spdlog::warn("writer {}: COPY into {} refused {} block(s), {} row(s): {}{}", w.index,
                   known_table ? catalog_.tables[table_id].config_name : std::to_string(table_id),
                   to - from, rows, message,
                   w.failures_not_logged ? " (+" + std::to_string(w.failures_not_logged) +
                                               " earlier failures not logged)"
                                         : std::string());
      w.last_failure_log = now;
      w.failures_not_logged = 0;
    } else {
      ++w.failures_not_logged;
    }
    for (size_t i = from; i < to; ++i) {
      if (blocks[i]->ack) blocks[i]->ack->complete(AckOutcome::failed, 0, message);
    }
  };
  auto shut = [&](size_t from, size_t to) {
    stats_.shutdown_blocks.fetch_add(to - from, std::memory_order_relaxed);
    for (size_t i = from; i < to; ++i) {
      if (blocks[i]->ack) {
        blocks[i]->ack->complete(AckOutcome::shutdown, 0,
                                 "sluice stopped while the database was unreachable");
      }
    }
  };

  if (blocks.empty()) return;
  if (!known_table) {
    fail(0, blocks.size(), "unknown table id " + std::to_string(table_id));
    return;
  }
  const std::string& sql = w.sql_for(catalog_.tables[table_id], batch.column_mask);

  // One COPY of blocks[from, to), repeated over connection failures until the server answers.
  // Returns false when stop() gave up on an unreachable database.
  auto copy = [&](size_t from, size_t to, CopyOutcome& out) -> bool {
    for (bool first = true;; first = false) {
      if (!ensure_connected(w)) return false;
      if (!first) stats_.retried_batches.fetch_add(1, std::memory_order_relaxed);
      const auto t0 = Clock::now();
      out = run_copy(w.conn, sql, blocks.data() + from, to - from);
      if (out.answered) {
        const double seconds = std::chrono::duration<double>(Clock::now() - t0).count();
        size_t bucket = 0;
        while (bucket < WriterStats::kCopyBuckets.size() && seconds > WriterStats::kCopyBuckets[bucket]) {
          ++bucket;
        }
        stats_.copy_buckets[bucket].fetch_add(1, std::memory_order_relaxed);
        stats_.copy_count.fetch_add(1, std::memory_order_relaxed);
        stats_.copy_micros_sum.fetch_add(static_cast<uint64_t>(seconds * 1e6), std::memory_order_relaxed);
      }
      if (out.committed) return true;
      const int cls = sqlstate_class_index(out.sqlstate);
      stats_.failures_by_class[static_cast<size_t>(cls < 0 ? 8 : cls)].fetch_add(1, std::memory_order_relaxed);
      if (out.kind != CopyFailureKind::connection) return true;
      drop_connection(w, out.message);
    }
  };

  CopyOutcome outcome;
  if (!copy(0, blocks.size(), outcome)) {
    shut(0, blocks.size());
    return;
  }
  if (outcome.committed) {
    commit(0, blocks.size());
    return;
  }
  if (outcome.kind != CopyFailureKind::row_level || blocks.size() == 1) {
    fail(0, blocks.size(), outcome.message);
    return;
  }
  // A row-level error: find the blocks that hold the bad rows, commit the others.
  stats_.split_batches.fetch_add(1, std::memory_order_relaxed);
  for (size_t i = 0; i < blocks.size(); ++i) {
    CopyOutcome one;
    if (!copy(i, i + 1, one)) {
      shut(i, i + 1);
    } else if (one.committed) {
      commit(i, i + 1);
    } else {
      fail(i, i + 1, one.message);
    }
  }
}

}  // namespace sluice::pg
