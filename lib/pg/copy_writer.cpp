// pg/copy_writer.cpp — writer threads, binary COPY streaming, failure classification.
#include "pg/copy_writer.h"

#include <pthread.h>

#include <libpq-fe.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <climits>
#include <cstdlib>
#include <functional>
#include <map>
#include <random>
#include <set>
#include <utility>

#include "pg/connection.h"
#include "pg/tuple_decode.h"

namespace sluice::pg {

using Clock = std::chrono::steady_clock;

namespace {

constexpr auto kFailureLogInterval = std::chrono::seconds(10);
constexpr auto kInDoubtPoll = std::chrono::milliseconds(100);  // asking again for an in-doubt COPY's outcome
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

// One COPY over a healthy connection: the header, every part's bytes as they are, the trailer.
// With `xid` (autocommit only): "SELECT txid_current(); COPY ..." goes as ONE simple Query, which
// PostgreSQL runs as one implicit transaction, and *xid is that transaction's id (0 until it came
// back). If the connection breaks before the answer, txid_status(*xid) on a new connection tells
// whether the server committed the rows (WriterPool::resolve_in_doubt) — at no extra round trip.
CopyOutcome run_copy(PGconn* conn, const std::string& sql, const std::vector<std::string_view>& parts,
                     int64_t* xid = nullptr) {
  if (xid == nullptr) {
    Result start(PQexec(conn, sql.c_str()));
    if (!start || PQresultStatus(start.get()) != PGRES_COPY_IN) return failure_from(conn, start.get());
  } else {
    *xid = 0;
    if (PQsendQuery(conn, ("SELECT txid_current(); " + sql).c_str()) != 1) return failure_from(conn, nullptr);
    Result first(PQgetResult(conn));
    if (first && PQresultStatus(first.get()) == PGRES_TUPLES_OK && PQntuples(first.get()) == 1) {
      *xid = std::strtoll(PQgetvalue(first.get(), 0, 0), nullptr, 10);
      first = Result(PQgetResult(conn));
    }
    if (!first || PQresultStatus(first.get()) != PGRES_COPY_IN) {
      CopyOutcome out = failure_from(conn, first.get());
      while (Result rest{PQgetResult(conn)}) {  // drain to ReadyForQuery
        if (PQresultStatus(rest.get()) == PGRES_COPY_IN) PQputCopyEnd(conn, "sluice: unexpected COPY state");
      }
      return out;
    }
  }
  bool sent = PQputCopyData(conn, kCopyBinaryHeader, sizeof kCopyBinaryHeader) == 1;
  for (size_t i = 0; sent && i < parts.size(); ++i) {
    const std::string_view data = parts[i];
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

// A command (or several, ';'-separated) without rows to stream; committed = it succeeded.
CopyOutcome run_command(PGconn* conn, const std::string& sql) {
  Result r(PQexec(conn, sql.c_str()));
  const ExecStatusType st = r ? PQresultStatus(r.get()) : PGRES_FATAL_ERROR;
  if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
    CopyOutcome ok;
    ok.committed = true;
    ok.answered = true;
    return ok;
  }
  return failure_from(conn, r.get());
}

// Best effort: leave no transaction open on a connection that is still usable.
void rollback(PGconn* conn) {
  if (conn && PQstatus(conn) == CONNECTION_OK && PQtransactionStatus(conn) != PQTRANS_IDLE) {
    Result r(PQexec(conn, "ROLLBACK"));
  }
}

void ignore_notice(void*, const char*) {}

// The byte ranges of spans[lo, hi), adjacent tuples of one block merged into one part.
void parts_of(const std::vector<BlockPtr>& blocks, const std::vector<TupleSpan>& spans, size_t lo, size_t hi,
              std::vector<std::string_view>& out) {
  out.clear();
  for (size_t i = lo; i < hi; ++i) {
    const TupleSpan& t = spans[i];
    const char* p = blocks[t.block]->data.data() + t.offset;
    if (!out.empty() && out.back().data() + out.back().size() == p) {
      out.back() = std::string_view(out.back().data(), out.back().size() + t.size);
    } else {
      out.emplace_back(p, t.size);
    }
  }
}

// "SQLSTATE: text" → "text".
std::string without_sqlstate(const std::string& message, const std::string& sqlstate) {
  const std::string prefix = sqlstate + ": ";
  return message.rfind(prefix, 0) == 0 ? message.substr(prefix.size()) : message;
}

}  // namespace

CopyFailureKind classify_sqlstate(std::string_view s) {
  if (s.size() < 5) return CopyFailureKind::connection;
  const std::string_view cls = s.substr(0, 2);
  if (cls == "08") return CopyFailureKind::connection;  // connection exception
  if (cls == "53") return CopyFailureKind::connection;  // insufficient resources: disk full, out of memory, too many connections
  if (s == "57P01" || s == "57P02" || s == "57P03") return CopyFailureKind::connection;  // shutdown, crash, cannot connect now
  if (s == "57014") return CopyFailureKind::connection;  // query canceled (statement_timeout, pg_cancel_backend)
  if (s == "40001" || s == "40P01") return CopyFailureKind::connection;  // serialization failure, deadlock
  if (s == "55P03") return CopyFailureKind::connection;  // lock not available
  if (cls == "22" || cls == "23") return CopyFailureKind::row_level;  // data exception, integrity
  return CopyFailureKind::other;
}

bool parse_conflict_mode(std::string_view text, ConflictMode& out) {
  if (text == "error") out = ConflictMode::error;
  else if (text == "ignore") out = ConflictMode::ignore;
  else if (text == "update") out = ConflictMode::update;
  else return false;
  return true;
}

// ---- stats -------------------------------------------------------------------------------------

WriterStats::WriterStats(size_t tables)
    : committed_rows(tables), committed_bytes(tables), committed_batches(tables),
      failed_rows(tables), failed_blocks(tables), dead_letter_rows(tables) {}

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
  // Conflict rules: staging tables created on this connection (cleared on reconnect), the key
  // columns of each table (from pg_index, kept across reconnects), statements per (table, mask).
  std::set<uint32_t> stages_created;
  std::map<uint32_t, std::vector<std::string>> conflict_keys;
  std::map<std::pair<uint32_t, uint64_t>, std::pair<std::string, std::string>> stage_sql;  // COPY, merge
  int transient_failures = 0;  // consecutive retry-the-batch errors on a live connection

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
  if (out.split_part) return;  // its sibling parts run on other writers right now
  for (auto it = queue_.begin(); it != queue_.end() && out.rows < options_.merge_max_rows;) {
    if (it->split_part || it->table_id != out.table_id || it->column_mask != out.column_mask) {
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

// Nothing else to do and writers waiting: give them a share of this batch now (they would only
// sit idle until the next one). Under load the queue is rarely empty when a writer takes a batch,
// so batches stay whole and merge instead.
void WriterPool::split_for_waiting(Batch& out) {
  if (options_.split_min_rows == 0 || options_.null_sink || out.split_part || !queue_.empty()) return;
  const int waiting = waiting_connected_.load(std::memory_order_acquire);
  if (waiting <= 0 || out.rows < 2 * static_cast<uint64_t>(options_.split_min_rows)) return;
  if (out.table_id >= catalog_.tables.size()) return;
  // Only where the rows' order between the parts cannot change the outcome (TableSchema::row_order).
  const TableSchema& table = catalog_.tables[out.table_id];
  std::vector<int> key_fields;
  if (table.row_order == RowOrder::fixed) return;
  if (table.row_order == RowOrder::keyed) {
    key_fields = table.order_key_fields(out.column_mask);
    if (key_fields.empty()) return;
  }
  std::vector<Batch> rest = split_batch(out, static_cast<size_t>(waiting) + 1, options_.split_min_rows,
                                        table.row_order == RowOrder::keyed ? &key_fields : nullptr);
  if (rest.empty()) return;
  stats_.idle_splits.fetch_add(1, std::memory_order_relaxed);
  for (Batch& part : rest) {
    queue_.push_back(std::move(part));
    not_empty_.notify_one();
  }
}

bool WriterPool::idle() const {
  return waiting_connected_.load(std::memory_order_acquire) > 0 &&
         stats_.queue_depth.load(std::memory_order_relaxed) == 0;
}

void WriterPool::set_idle_doorbell(Doorbell* doorbell) {
  std::lock_guard<std::mutex> lock(mutex_);
  idle_doorbell_ = doorbell;
}

WriterPool::PopResult WriterPool::pop(Batch& out, Clock::time_point wait_until, bool connected) {
  std::unique_lock<std::mutex> lock(mutex_);
  for (;;) {
    if (!queue_.empty()) {
      out = std::move(queue_.front());
      queue_.pop_front();
      merge_queued(out);
      split_for_waiting(out);
      stats_.queue_depth.store(static_cast<int64_t>(queue_.size()), std::memory_order_relaxed);
      not_full_.notify_one();
      return PopResult::batch;
    }
    if (stopping_.load(std::memory_order_relaxed)) return PopResult::done;
    if (connected) {
      waiting_connected_.fetch_add(1, std::memory_order_release);
      if (idle_doorbell_ != nullptr) idle_doorbell_->became_idle();  // idle() may have just become true
    }
    const auto status = not_empty_.wait_until(lock, wait_until);
    if (connected) waiting_connected_.fetch_sub(1, std::memory_order_release);
    if (status == std::cv_status::timeout && queue_.empty() && !stopping_.load(std::memory_order_relaxed)) {
      return PopResult::idle;
    }
  }
}

void WriterPool::run(Writer& w) {
  pthread_setname_np(pthread_self(), ("sluice-writer-" + std::to_string(w.index)).substr(0, 15).c_str());
  if (options_.null_sink) {
    stats_.connected_writers.fetch_add(1, std::memory_order_relaxed);
    for (;;) {
      Batch batch;
      const PopResult got = pop(batch, Clock::now() + options_.idle_check_interval, true);
      if (got == PopResult::done) break;
      if (got == PopResult::batch) discard_batch(batch);
    }
    stats_.connected_writers.fetch_sub(1, std::memory_order_relaxed);
    return;
  }
  try_connect(w);  // on this thread, so start() never waits for the database
  for (;;) {
    auto wait_until = Clock::now() + options_.idle_check_interval;
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

void WriterPool::discard_batch(Batch& batch) {
  uint64_t rows = 0, bytes = 0;
  int64_t min_time = INT64_MAX, max_time = INT64_MIN;
  for (const auto& b : batch.blocks) {
    rows += b->rows;
    bytes += b->data.size();
    min_time = std::min(min_time, b->min_time);
    max_time = std::max(max_time, b->max_time);
  }
  if (batch.table_id < catalog_.tables.size()) {
    stats_.committed_rows[batch.table_id].fetch_add(rows, std::memory_order_relaxed);
    stats_.committed_bytes[batch.table_id].fetch_add(bytes, std::memory_order_relaxed);
    stats_.committed_batches[batch.table_id].fetch_add(1, std::memory_order_relaxed);
    if (options_.on_commit && min_time <= max_time) options_.on_commit(batch.table_id, min_time, max_time);
  }
  for (auto& b : batch.blocks) {
    if (b->ack) b->ack->complete(AckOutcome::committed, b->rows);
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
    PQsetNoticeProcessor(c, ignore_notice, nullptr);  // no NOTICE lines on stderr
    w.conn = c;
    w.stages_created.clear();
    stats_.connected_writers.fetch_add(1, std::memory_order_relaxed);
    if (w.had_trouble) {
      stats_.reconnects.fetch_add(1, std::memory_order_relaxed);
      spdlog::info("event=db_reconnected writer={} database=\"{}\" failed_attempts={}", w.index,
                   redact_url(options_.url), w.failed_attempts);
    } else if (!w.connected_once) {
      spdlog::debug("event=db_connected writer={} database=\"{}\"", w.index, redact_url(options_.url));
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
    spdlog::warn("event=db_connect_failed writer={} database=\"{}\" error=\"{}\" retry_backoff_max_ms={}", w.index,
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
    spdlog::warn("event=db_connection_lost writer={} database=\"{}\" error=\"{}\"", w.index, redact_url(options_.url), why);
    w.down_logged = true;
  }
}

WriterPool::InDoubt WriterPool::resolve_in_doubt(Writer& w, int64_t xid, int pid) {
  const std::string x = std::to_string(xid);
  const char* params[2] = {x.c_str(), nullptr};
  Result r(PQexecParams(w.conn, "SELECT txid_status($1::bigint)", 1, nullptr, params, nullptr, nullptr, 0));
  if (!r || PQresultStatus(r.get()) != PGRES_TUPLES_OK || PQntuples(r.get()) != 1) {
    if (!w.ok()) return InDoubt::unresolved;
    // A server-side error (e.g. an id from the future after a restore): it cannot be told. Writing
    // again risks a duplicate, not a loss.
    stats_.in_doubt_written_again.fetch_add(1, std::memory_order_relaxed);
    spdlog::warn("event=commit_in_doubt writer={} xid={} result=unknown action=write_again error=\"{}\"", w.index, xid,
                 trimmed(error_message(w.conn, r.get())));
    return InDoubt::not_committed;
  }
  const std::string status = PQgetisnull(r.get(), 0, 0) ? "" : PQgetvalue(r.get(), 0, 0);
  if (status == "committed") {
    stats_.in_doubt_committed.fetch_add(1, std::memory_order_relaxed);
    spdlog::warn("event=commit_in_doubt writer={} xid={} result=committed action=acknowledge", w.index, xid);
    return InDoubt::committed;
  }
  if (status == "in progress") {
    // The old backend has not noticed the broken connection yet (it may wait for COPY data until a
    // TCP timeout): end it, but only while it still runs that transaction (pids are reused).
    // Errors (no permission) are ignored: the backend ends by itself in time.
    const std::string p = std::to_string(pid);
    params[1] = p.c_str();
    Result t(PQexecParams(w.conn,
                          "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid = $2::int "
                          "AND backend_xid::text = ($1::bigint % 4294967296)::text",
                          2, nullptr, params, nullptr, nullptr, 0));
    return InDoubt::unresolved;
  }
  stats_.in_doubt_written_again.fetch_add(1, std::memory_order_relaxed);
  spdlog::warn("event=commit_in_doubt writer={} xid={} result={} action=write_again", w.index, xid,
               status.empty() ? "unknown" : status);
  return InDoubt::not_committed;
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

namespace {

// The conflict key of a table: its primary key, else its first plain unique index; empty when none.
// Returns false when the query failed (out = the failure).
bool load_conflict_key(PGconn* conn, const TableSchema& table, std::vector<std::string>& key, CopyOutcome& out) {
  static const char* kSql =
      "SELECT a.attname FROM pg_index i "
      "CROSS JOIN LATERAL unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord) "
      "JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum "
      "WHERE i.indexrelid = (SELECT indexrelid FROM pg_index WHERE indrelid = $1::regclass "
      "AND (indisprimary OR indisunique) AND indpred IS NULL AND indexprs IS NULL "
      "ORDER BY indisprimary DESC, indexrelid LIMIT 1) ORDER BY k.ord";
  const char* params[1] = {table.quoted.c_str()};
  Result r(PQexecParams(conn, kSql, 1, nullptr, params, nullptr, nullptr, 0));
  if (!r || PQresultStatus(r.get()) != PGRES_TUPLES_OK) {
    out = failure_from(conn, r.get());
    return false;
  }
  key.clear();
  for (int i = 0; i < PQntuples(r.get()); ++i) key.emplace_back(PQgetvalue(r.get(), i, 0));
  return true;
}

}  // namespace

void WriterPool::write_batch(Writer& w, Batch& batch) {
  auto& blocks = batch.blocks;
  const uint32_t table_id = batch.table_id;
  const bool known_table = table_id < catalog_.tables.size();

  auto resolve_spooled = [&](const BlockPtr& b) {
    if (b->spool_id && options_.on_spool_resolved) options_.on_spool_resolved(b->spool_id);
  };
  auto log_failure = [&](uint64_t block_count, uint64_t rows, const std::string& what, const std::string& message) {
    const auto now = Clock::now();
    if (now - w.last_failure_log >= kFailureLogInterval) {
      spdlog::warn("event=batch_failed writer={} outcome=\"{}\" table={} blocks={} rows={} error=\"{}\" "
                   "earlier_failures_not_logged={}", w.index, what,
                   known_table ? catalog_.tables[table_id].config_name : std::to_string(table_id),
                   block_count, rows, message, w.failures_not_logged);
      w.last_failure_log = now;
      w.failures_not_logged = 0;
    } else {
      ++w.failures_not_logged;
    }
  };
  auto note_commit = [&](uint64_t rows, uint64_t bytes) {
    stats_.committed_rows[table_id].fetch_add(rows, std::memory_order_relaxed);
    stats_.committed_bytes[table_id].fetch_add(bytes, std::memory_order_relaxed);
    stats_.committed_batches[table_id].fetch_add(1, std::memory_order_relaxed);
    int64_t min_time = INT64_MAX, max_time = INT64_MIN;
    for (const auto& b : blocks) {
      min_time = std::min(min_time, b->min_time);
      max_time = std::max(max_time, b->max_time);
    }
    if (options_.on_commit && min_time <= max_time) options_.on_commit(table_id, min_time, max_time);
  };
  auto commit_all = [&] {
    uint64_t rows = 0, bytes = 0;
    for (const auto& b : blocks) {
      rows += b->rows;
      bytes += b->data.size();
    }
    note_commit(rows, bytes);
    for (auto& b : blocks) {
      if (b->ack) b->ack->complete(AckOutcome::committed, b->rows);
      resolve_spooled(b);
    }
  };
  auto fail_all = [&](const std::string& message) {
    uint64_t rows = 0;
    for (const auto& b : blocks) rows += b->rows;
    if (known_table) {
      stats_.failed_rows[table_id].fetch_add(rows, std::memory_order_relaxed);
      stats_.failed_blocks[table_id].fetch_add(blocks.size(), std::memory_order_relaxed);
    }
    log_failure(blocks.size(), rows, "the database refused a batch of", message);
    for (auto& b : blocks) {
      if (b->ack) b->ack->complete(AckOutcome::failed, 0, message);
      resolve_spooled(b);
    }
  };
  auto shut_all = [&] {
    stats_.shutdown_blocks.fetch_add(blocks.size(), std::memory_order_relaxed);
    for (auto& b : blocks) {
      if (b->ack) b->ack->complete(AckOutcome::shutdown, 0, "sluice stopped while the database was unreachable");
    }
  };
  auto observe = [&](Clock::time_point t0, const CopyOutcome& out) {
    if (out.answered) {
      const double seconds = std::chrono::duration<double>(Clock::now() - t0).count();
      size_t bucket = 0;
      while (bucket < WriterStats::kCopyBuckets.size() && seconds > WriterStats::kCopyBuckets[bucket]) ++bucket;
      stats_.copy_buckets[bucket].fetch_add(1, std::memory_order_relaxed);
      stats_.copy_count.fetch_add(1, std::memory_order_relaxed);
      stats_.copy_micros_sum.fetch_add(static_cast<uint64_t>(seconds * 1e6), std::memory_order_relaxed);
    }
    if (!out.committed) {
      const int cls = sqlstate_class_index(out.sqlstate);
      stats_.failures_by_class[static_cast<size_t>(cls < 0 ? 8 : cls)].fetch_add(1, std::memory_order_relaxed);
    }
  };
  // After a retry-the-batch failure: reconnect when the connection broke, else (deadlock, disk
  // full, ...) back off on the live connection, doubling from reconnect_min up to reconnect_max.
  auto pause_before_retry = [&](const CopyOutcome& out) {
    stats_.retried_batches.fetch_add(1, std::memory_order_relaxed);
    if (!w.ok() || !out.answered) {
      w.transient_failures = 0;
      drop_connection(w, out.message);
      return;
    }
    rollback(w.conn);
    const int64_t min_ms = std::max<int64_t>(1, options_.reconnect_min.count());
    const int64_t max_ms = std::max<int64_t>(min_ms, options_.reconnect_max.count());
    int64_t delay = min_ms;
    for (int i = 0; i < w.transient_failures && delay < max_ms; ++i) delay *= 2;
    ++w.transient_failures;
    w.next_connect_at = Clock::now() + std::chrono::milliseconds(std::min(delay, max_ms));
    wait_for_retry(w);
  };

  if (blocks.empty()) return;
  if (!known_table) {
    fail_all("unknown table id " + std::to_string(table_id));
    return;
  }
  const TableSchema& table = catalog_.tables[table_id];
  const uint64_t mask = batch.column_mask;
  const ConflictMode mode = table_id < options_.conflict.size() ? options_.conflict[table_id] : ConflictMode::error;
  const std::string& copy_sql = w.sql_for(table, mask);

  // Conflict rules: the staging table of this connection and the statements for this mask.
  const std::pair<std::string, std::string>* stage = nullptr;
  auto prepare_stage = [&](CopyOutcome& out) -> bool {
    const std::string stage_name = "pg_temp.sluice_stage_" + std::to_string(table_id);
    if (!w.conflict_keys.count(table_id)) {
      std::vector<std::string> key;
      if (!load_conflict_key(w.conn, table, key, out)) return false;
      w.conflict_keys[table_id] = std::move(key);
    }
    out.committed = true;
    if (!w.stages_created.count(table_id)) {
      out = run_command(w.conn, "CREATE TEMP TABLE IF NOT EXISTS sluice_stage_" + std::to_string(table_id) +
                                    " ON COMMIT DELETE ROWS AS SELECT * FROM " + table.quoted + " WITH NO DATA");
      if (!out.committed) return false;
      w.stages_created.insert(table_id);
    }
    auto [it, inserted] = w.stage_sql.try_emplace({table_id, mask});
    if (inserted) {
      const std::string list = table.copy_column_list(mask);           // ("a","b")
      const std::string cols = list.substr(1, list.size() - 2);         // "a","b"
      const auto& key = w.conflict_keys[table_id];
      std::string key_list, set_list;
      bool key_in_list = !key.empty();
      for (const auto& k : key) {
        key_list += (key_list.empty() ? "" : ",") + quote_ident(k);
        const int ci = table.find(k);
        if (ci < 0 || (table.columns[ci].omit_bit >= 0 && !(mask & (uint64_t{1} << table.columns[ci].omit_bit)))) {
          key_in_list = false;
        }
      }
      for (const Column& c : table.columns) {
        if (c.omit_bit >= 0 && !(mask & (uint64_t{1} << c.omit_bit))) continue;
        if (std::find(key.begin(), key.end(), c.name) != key.end()) continue;
        set_list += (set_list.empty() ? "" : ",") + quote_ident(c.name) + "=EXCLUDED." + quote_ident(c.name);
      }
      std::string merge = "INSERT INTO " + table.quoted + " " + list + " SELECT ";
      if (mode == ConflictMode::update && key_in_list && !set_list.empty()) {
        // One row per key (the last sent wins): DO UPDATE may not touch a row twice.
        merge += "DISTINCT ON (" + key_list + ") " + cols + " FROM " + stage_name + " ORDER BY " + key_list +
                 ", ctid DESC ON CONFLICT (" + key_list + ") DO UPDATE SET " + set_list;
      } else if (mode == ConflictMode::update && !key.empty() && !set_list.empty()) {
        merge += cols + " FROM " + stage_name + " ON CONFLICT (" + key_list + ") DO UPDATE SET " + set_list;
      } else {
        merge += cols + " FROM " + stage_name + " ON CONFLICT DO NOTHING";
      }
      merge += "; DELETE FROM " + stage_name;
      it->second = {"COPY " + stage_name + " " + list + " FROM STDIN (FORMAT binary)", std::move(merge)};
    }
    stage = &it->second;
    return true;
  };
  // Writes the given tuples into the table (direct COPY, or stage + merge), inside whatever
  // transaction is open.
  auto write_rows = [&](const std::vector<std::string_view>& parts, int64_t* xid = nullptr) -> CopyOutcome {
    const auto t0 = Clock::now();
    CopyOutcome out;
    if (mode == ConflictMode::error) {
      out = run_copy(w.conn, copy_sql, parts, xid);
    } else if (prepare_stage(out)) {
      out = run_copy(w.conn, stage->first, parts);
      if (out.committed) out = run_command(w.conn, stage->second);
    }
    observe(t0, out);
    return out;
  };

  // Spooled blocks and blocks with an Idempotency-Key: inside the open transaction, record their
  // spool ids / "key#index" tokens; a block whose id or token is there already was committed by an
  // earlier transaction (a replay after a crash, a retried request): it leaves the batch.
  const bool spooled = std::any_of(blocks.begin(), blocks.end(), [](const BlockPtr& b) {
    return b->spool_id != 0 || b->idempotency_key != nullptr;
  });
  const std::string claim_sql = "INSERT INTO " + quote_ident(options_.spool_ids_table) +
                                " (record_id) SELECT unnest($1::bigint[]) ON CONFLICT DO NOTHING RETURNING record_id";
  const std::string claim_key_sql = "INSERT INTO " + quote_ident(options_.idempotency_table) +
                                    " (idempotency_key) SELECT unnest($1::text[]) ON CONFLICT DO NOTHING "
                                    "RETURNING idempotency_key";
  auto token_of = [](const Block& b) { return *b.idempotency_key + "#" + std::to_string(b.idempotency_index); };
  auto claim_spool_ids = [&](CopyOutcome& out) -> bool {
    std::string ids = "{", keys = "{";
    for (const auto& b : blocks) {
      if (b->spool_id) {
        if (ids.size() > 1) ids += ',';
        ids += std::to_string(static_cast<int64_t>(b->spool_id));
      }
      if (b->idempotency_key) {
        if (keys.size() > 1) keys += ',';
        keys += '"';
        for (char c : token_of(*b)) {
          if (c == '"' || c == '\\') keys += '\\';
          keys += c;
        }
        keys += '"';
      }
    }
    ids += '}';
    keys += '}';
    out = CopyOutcome{};
    out.committed = out.answered = true;
    std::set<uint64_t> fresh;
    std::set<std::string> fresh_keys;
    for (int pass = 0; pass < 2; ++pass) {
      const std::string& arr = pass == 0 ? ids : keys;
      if (arr.size() == 2) continue;
      const char* params[1] = {arr.c_str()};
      Result r(PQexecParams(w.conn, (pass == 0 ? claim_sql : claim_key_sql).c_str(), 1, nullptr, params, nullptr,
                            nullptr, 0));
      if (!r || PQresultStatus(r.get()) != PGRES_TUPLES_OK) {
        out = failure_from(w.conn, r.get());
        return false;
      }
      for (int i = 0; i < PQntuples(r.get()); ++i) {
        if (pass == 0) fresh.insert(static_cast<uint64_t>(std::strtoll(PQgetvalue(r.get(), i, 0), nullptr, 10)));
        else fresh_keys.insert(PQgetvalue(r.get(), i, 0));
      }
    }
    // Each fresh id / token admits ONE block: a batch may hold two blocks with the same token (a
    // retried request merged with the replay of its first attempt from the spool). Spooled blocks
    // claim first, so the copy that survives a crash is the one written.
    std::vector<uint8_t> skip(blocks.size(), 0);  // bit 0: id taken, bit 1: token taken
    for (int spooled_pass = 1; spooled_pass >= 0; --spooled_pass) {
      for (size_t i = 0; i < blocks.size(); ++i) {
        const Block& b = *blocks[i];
        if ((b.spool_id != 0) != (spooled_pass == 1)) continue;
        const bool old_id = b.spool_id && fresh.erase(b.spool_id) == 0;
        const bool old_key = b.idempotency_key && fresh_keys.erase(token_of(b)) == 0;
        skip[i] = static_cast<uint8_t>((old_id ? 1 : 0) | (old_key ? 2 : 0));
      }
    }
    std::vector<BlockPtr> keep;
    for (size_t i = 0; i < blocks.size(); ++i) {
      BlockPtr& b = blocks[i];
      if (skip[i] == 0) {
        keep.push_back(std::move(b));
        continue;
      }
      const bool old_id = (skip[i] & 1) != 0;
      const bool old_key = (skip[i] & 2) != 0;
      if (old_id) stats_.spool_duplicates_skipped.fetch_add(1, std::memory_order_relaxed);
      if (old_key) {
        stats_.idempotent_blocks_skipped.fetch_add(1, std::memory_order_relaxed);
        stats_.idempotent_rows_skipped.fetch_add(b->rows, std::memory_order_relaxed);
      }
      if (b->ack) b->ack->complete(AckOutcome::committed, b->rows);
      resolve_spooled(b);
    }
    blocks.swap(keep);
    return true;
  };

  // 1. The whole batch in one go (autocommit COPY, or one transaction when staged or spooled),
  //    retried over connection loss and transient server errors.
  std::vector<std::string_view> parts;
  auto rebuild_parts = [&] {
    parts.clear();
    for (const auto& b : blocks) parts.emplace_back(b->data.data(), b->data.size());
  };
  rebuild_parts();
  CopyOutcome outcome;
  // An autocommit COPY whose answer was lost with the connection: its transaction id and backend.
  // Until resolve_in_doubt() knows whether the server committed it, the batch is neither written
  // again nor spilled (either could store its rows twice).
  int64_t doubt_xid = 0;
  int doubt_pid = 0;
  for (;;) {
    if (options_.spill && !w.ok() && doubt_xid == 0) {
      if (w.conn) drop_connection(w, trimmed(PQerrorMessage(w.conn)));
      if (Clock::now() >= w.next_connect_at) try_connect(w);
      if (!w.ok() && options_.spill(blocks)) {
        stats_.spilled_batches.fetch_add(1, std::memory_order_relaxed);
        return;
      }
    }
    if (stop_deadline_passed() || !ensure_connected(w)) {
      shut_all();
      return;
    }
    if (doubt_xid != 0) {
      const InDoubt verdict = resolve_in_doubt(w, doubt_xid, doubt_pid);
      if (verdict == InDoubt::unresolved) {  // the connection broke again (ensure_connected above
        if (w.ok()) {                          // reconnects), or the old backend still runs: ask again
          w.next_connect_at = Clock::now() + kInDoubtPoll;
          wait_for_retry(w);
        }
        continue;
      }
      doubt_xid = 0;
      if (verdict == InDoubt::committed) {
        outcome = CopyOutcome{};
        outcome.committed = outcome.answered = true;
        break;
      }
    }
    if (mode == ConflictMode::error && !spooled) {
      int64_t xid = 0;
      const int pid = PQbackendPID(w.conn);
      outcome = write_rows(parts, &xid);
      if (!outcome.committed && !outcome.answered && xid != 0) {
        doubt_xid = xid;
        doubt_pid = pid;
        stats_.commits_in_doubt.fetch_add(1, std::memory_order_relaxed);
      }
    } else if (mode == ConflictMode::error) {
      outcome = run_command(w.conn, "BEGIN");
      if (outcome.committed && claim_spool_ids(outcome)) {
        rebuild_parts();
        if (!blocks.empty()) outcome = write_rows(parts);
      }
      if (outcome.committed) outcome = run_command(w.conn, "COMMIT");
      if (!outcome.committed) rollback(w.conn);
    } else if (prepare_stage(outcome)) {  // outside the transaction: a rollback keeps the stage
      outcome = run_command(w.conn, "BEGIN");
      if (outcome.committed && spooled && claim_spool_ids(outcome)) rebuild_parts();
      if (outcome.committed && !blocks.empty()) outcome = write_rows(parts);
      if (outcome.committed) outcome = run_command(w.conn, "COMMIT");
      if (!outcome.committed) rollback(w.conn);
    }
    if (outcome.committed || outcome.kind != CopyFailureKind::connection) break;
    pause_before_retry(outcome);
  }
  if (outcome.committed) {
    w.transient_failures = 0;
    if (!blocks.empty()) commit_all();
    if (spooled) prune_spool_ids(w);
    return;
  }
  if (outcome.kind != CopyFailureKind::row_level) {
    fail_all(outcome.message);
    return;
  }

  // 2. Bad-row isolation (see the header): one transaction, bisection under savepoints, dead
  //    letters, commit.
  std::vector<TupleSpan> spans;
  for (size_t i = 0; i < blocks.size(); ++i) {
    if (!split_tuples(blocks[i]->data, static_cast<uint32_t>(i), spans)) {
      fail_all("malformed encoded block (sluice bug): " + outcome.message);
      return;
    }
  }
  stats_.split_batches.fetch_add(1, std::memory_order_relaxed);
  struct DeadRow {
    size_t span;
    std::string sqlstate, message;
  };
  std::vector<DeadRow> dead;
  CopyOutcome abort_reason;  // why an isolation pass stopped
  std::vector<std::string_view> piece;

  // Tuples [lo, hi): `known` = this exact range already failed with it; `presumed` = the parent
  // failed and its left half went through clean, so this half must fail too (not run again).
  std::function<bool(size_t, size_t, const CopyOutcome*, bool)> bisect =
      [&](size_t lo, size_t hi, const CopyOutcome* known, bool presumed) -> bool {
    CopyOutcome local;
    const CopyOutcome* failed = known;
    if (!failed && !(presumed && hi - lo > 1)) {
      local = run_command(w.conn, "SAVEPOINT sluice_isolate");
      if (!local.committed) {
        abort_reason = local;
        return false;
      }
      parts_of(blocks, spans, lo, hi, piece);
      stats_.isolation_copies.fetch_add(1, std::memory_order_relaxed);
      local = write_rows(piece);
      if (local.committed) {
        local = run_command(w.conn, "RELEASE SAVEPOINT sluice_isolate");
        if (!local.committed) {
          abort_reason = local;
          return false;
        }
        return true;
      }
      if (local.kind != CopyFailureKind::row_level) {
        abort_reason = local;
        return false;
      }
      CopyOutcome back = run_command(w.conn, "ROLLBACK TO SAVEPOINT sluice_isolate; RELEASE SAVEPOINT sluice_isolate");
      if (!back.committed) {
        abort_reason = back;
        return false;
      }
      failed = &local;
    }
    if (hi - lo == 1) {
      if (!failed) return bisect(lo, hi, nullptr, false);  // presumed single row: run it for its error
      dead.push_back(DeadRow{lo, failed->sqlstate, without_sqlstate(failed->message, failed->sqlstate)});
      return true;
    }
    const size_t mid = lo + (hi - lo) / 2;
    const size_t dead_before = dead.size();
    if (!bisect(lo, mid, nullptr, false)) return false;
    return bisect(mid, hi, nullptr, dead.size() == dead_before);
  };

  const std::string ins_prefix = "INSERT INTO " + quote_ident(options_.dead_letter_table) +
                                 " (table_name, row_data, sqlstate, message) VALUES ";
  auto insert_dead_letters = [&]() -> CopyOutcome {
    constexpr size_t kPerStatement = 1000;  // 4 parameters each, far below the 65535 limit
    CopyOutcome out;
    out.committed = true;
    out.answered = true;
    std::vector<std::string> values;
    for (size_t first = 0; first < dead.size(); first += kPerStatement) {
      const size_t last = std::min(dead.size(), first + kPerStatement);
      std::string sql = ins_prefix;
      values.clear();
      for (size_t i = first; i < last; ++i) {
        const size_t n = values.size();
        sql += (i == first ? "" : ",");
        sql += "($" + std::to_string(n + 1) + ",$" + std::to_string(n + 2) + "::jsonb,$" +
               std::to_string(n + 3) + ",$" + std::to_string(n + 4) + ")";
        const TupleSpan& t = spans[dead[i].span];
        values.push_back(table.config_name);
        values.push_back(tuple_to_json(table, mask, blocks[t.block]->data.data() + t.offset, t.size));
        values.push_back(dead[i].sqlstate);
        values.push_back(dead[i].message);
      }
      std::vector<const char*> params;
      for (const auto& v : values) params.push_back(v.c_str());
      Result r(PQexecParams(w.conn, sql.c_str(), static_cast<int>(params.size()), nullptr, params.data(), nullptr,
                            nullptr, 0));
      if (!r || PQresultStatus(r.get()) != PGRES_COMMAND_OK) return failure_from(w.conn, r.get());
    }
    return out;
  };

  for (;;) {
    if (stop_deadline_passed() || !ensure_connected(w)) {
      shut_all();
      return;
    }
    dead.clear();
    abort_reason = CopyOutcome{};
    bool dead_letter_failed = false;
    CopyOutcome step;
    step.committed = true;
    if (mode != ConflictMode::error) prepare_stage(step);
    if (step.committed) step = run_command(w.conn, "BEGIN");
    bool ok = step.committed;
    bool respanned = false;
    if (ok && spooled) {
      const size_t before = blocks.size();
      ok = claim_spool_ids(step);
      if (ok && blocks.size() != before) {
        respanned = true;
        spans.clear();
        for (size_t i = 0; i < blocks.size(); ++i) split_tuples(blocks[i]->data, static_cast<uint32_t>(i), spans);
      }
    }
    if (!ok) abort_reason = step;
    if (ok && !spans.empty()) {
      ok = respanned ? bisect(0, spans.size(), nullptr, false)
                     : bisect(0, spans.size(), spans.size() == 1 ? &outcome : nullptr, spans.size() > 1);
    }
    if (ok) {
      step = insert_dead_letters();
      if (!step.committed) {
        ok = false;
        abort_reason = step;
        dead_letter_failed = w.ok() && step.answered;
      }
    }
    if (ok) {
      step = run_command(w.conn, "COMMIT");
      if (!step.committed) {
        ok = false;
        abort_reason = step;
      }
    }
    if (ok) break;
    rollback(w.conn);
    if (dead_letter_failed) {
      // Never drop: the batch (good rows included, they were rolled back) is retried later.
      stats_.dead_letter_failures.fetch_add(1, std::memory_order_relaxed);
      log_failure(blocks.size(), batch.rows, "cannot store rejected rows of", abort_reason.message + " (retrying)");
      CopyOutcome as_transient = abort_reason;
      as_transient.answered = true;
      pause_before_retry(as_transient);
      continue;
    }
    if (abort_reason.kind == CopyFailureKind::connection) {
      pause_before_retry(abort_reason);
      continue;
    }
    fail_all(abort_reason.message);
    return;
  }
  w.transient_failures = 0;

  // 3. Acks: a block with dead-lettered rows is `failed` with its good rows counted.
  std::vector<uint32_t> dead_in_block(blocks.size(), 0);
  std::vector<const DeadRow*> first_dead(blocks.size(), nullptr);
  for (const DeadRow& d : dead) {
    const uint32_t b = spans[d.span].block;
    if (dead_in_block[b]++ == 0) first_dead[b] = &d;
  }
  uint64_t good_rows = 0, bytes = 0;
  for (const auto& b : blocks) bytes += b->data.size();
  for (size_t i = 0; i < blocks.size(); ++i) good_rows += blocks[i]->rows - dead_in_block[i];
  note_commit(good_rows, bytes);
  uint64_t failed_blocks = 0;
  for (size_t i = 0; i < blocks.size(); ++i) {
    const uint32_t n = dead_in_block[i];
    resolve_spooled(blocks[i]);
    if (n == 0) {
      if (blocks[i]->ack) blocks[i]->ack->complete(AckOutcome::committed, blocks[i]->rows);
      continue;
    }
    ++failed_blocks;
    if (blocks[i]->ack) {
      blocks[i]->ack->complete(AckOutcome::dead_lettered, blocks[i]->rows - n,
                               std::to_string(n) + " row(s) refused by the database and stored in " +
                                   options_.dead_letter_table + ": " + first_dead[i]->sqlstate + ": " +
                                   first_dead[i]->message);
    }
  }
  stats_.failed_rows[table_id].fetch_add(dead.size(), std::memory_order_relaxed);
  stats_.failed_blocks[table_id].fetch_add(failed_blocks, std::memory_order_relaxed);
  stats_.dead_letter_rows[table_id].fetch_add(dead.size(), std::memory_order_relaxed);
  if (!dead.empty()) {
    log_failure(failed_blocks, dead.size(), "rows refused and dead-lettered for",
                dead.front().sqlstate + ": " + dead.front().message);
  }
}

// Deletes the ids of spool records that no segment holds any more (they can never be replayed)
// and the idempotency tokens older than the TTL.
void WriterPool::prune_spool_ids(Writer& w) {
  if (!w.ok()) return;
  const int64_t now = Clock::now().time_since_epoch().count();
  int64_t last = last_prune_ns_.load(std::memory_order_relaxed);
  const int64_t interval = std::chrono::duration_cast<std::chrono::nanoseconds>(options_.spool_prune_interval).count();
  if (now - last < interval || !last_prune_ns_.compare_exchange_strong(last, now)) return;
  if (options_.spool_low_water) {
    const std::string low = std::to_string(static_cast<int64_t>(options_.spool_low_water()));
    const std::string sql = "DELETE FROM " + quote_ident(options_.spool_ids_table) + " WHERE record_id < $1::bigint";
    const char* params[1] = {low.c_str()};
    Result r(PQexecParams(w.conn, sql.c_str(), 1, nullptr, params, nullptr, nullptr, 0));
    (void)r;  // best effort: retried at the next interval
  }
  const std::string ttl = std::to_string(options_.idempotency_ttl.count());
  const std::string sql = "DELETE FROM " + quote_ident(options_.idempotency_table) +
                          " WHERE created_at < now() - make_interval(secs => $1::double precision)";
  const char* params[1] = {ttl.c_str()};
  Result r(PQexecParams(w.conn, sql.c_str(), 1, nullptr, params, nullptr, nullptr, 0));
  (void)r;
}

}  // namespace sluice::pg
