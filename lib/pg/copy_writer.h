// pg/copy_writer.h — the writer pool: streams batches into PostgreSQL with binary COPY.
//
//   Batcher ── push(Batch) ──► bounded queue ──► writer thread 1..N (one libpq connection each)
//              (blocks when full:                    │
//               back-pressure)                        ▼
//     SELECT txid_current(); COPY <table> (<columns of mask>) FROM STDIN (FORMAT binary)
//       19-byte header · every block's tuples as-is (one PQputCopyData each) · int16 -1 trailer
//                                                     │  one simple query: one implicit transaction
//                                                     ▼  per COPY, whose id comes back first
//     committed ──► Ack::complete(committed, rows) for every block
//     retry-the-batch (08xxx, 57P01-57P03, 40001, 40P01, 53xxx, 55P03, 57014, no result) ──►
//         reconnect with capped jittered backoff, retry the same batch (never dropped). When the
//         connection broke with no answer (the COPY may have committed), first txid_status(id) on
//         the new connection: committed ──► ack, not written again; aborted ──► retry; in progress
//         ──► end the old backend (pg_terminate_backend, if it still runs that transaction), ask again
//     row-level (22xxx data, 23xxx integrity) ──► bad-row isolation, in ONE transaction:
//         BEGIN · bisect the batch's tuples (SAVEPOINT · COPY half · RELEASE | ROLLBACK TO, recurse
//         into a failing half down to single rows) · INSERT the rejected rows into
//         sluice_dead_letter (row decoded to JSON, SQLSTATE, message) · COMMIT.
//         Good rows and dead letters commit together or not at all; a failed dead-letter insert
//         retries the whole batch later. COPYs: about 2 · bad rows · log2(rows).
//         A block with dead-lettered rows is acked `failed` ("N row(s) refused by the database and
//         stored in sluice_dead_letter: SQLSTATE: message") with rows_committed = its good rows.
//     anything else (42xxx schema, ...) ──► every block's ack gets `failed`
//   Tables with a conflict rule (ignore | update) go through a per-connection temporary staging
//   table instead: BEGIN · COPY sluice_stage_<id> · INSERT INTO <table> SELECT ... FROM the stage
//   ON CONFLICT (key) DO NOTHING | DO UPDATE SET <non-key> = EXCLUDED.<non-key> · DELETE the stage ·
//   COMMIT. The key is the table's primary key, else its first unique index (read from pg_index
//   once per connection).
//
// stop() accepts no more batches, lets the writers finish the queue, and joins them. While the
// database stays unreachable during stop, writers keep retrying for up to stop_timeout, then
// complete what is left with AckOutcome::shutdown. Connection loss and recovery are logged once
// per transition; failures are counted in Stats (read by the metrics exposition), never logged
// per row.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "batch/batch.h"
#include "catalog/catalog.h"

namespace sluice::pg {

// What a duplicate key does (config: tables[].conflict). error: direct COPY, a duplicate is a
// rejected row (dead letter); ignore: ON CONFLICT DO NOTHING; update: ON CONFLICT DO UPDATE of the
// non-key columns (the last of several rows with one key in a batch wins).
enum class ConflictMode : uint8_t { error, ignore, update };
// "error" | "ignore" | "update"; false for anything else (out untouched).
bool parse_conflict_mode(std::string_view text, ConflictMode& out);

struct WriterOptions {
  std::string url;                                   // libpq URL or conninfo
  int connections = 2;                               // writer threads, one connection each
  size_t queue_batches = 8;                          // push() blocks while this many are queued
  std::chrono::milliseconds reconnect_min{100};      // backoff after the first failed attempt ...
  std::chrono::milliseconds reconnect_max{5000};     // ... doubling up to this (each jittered to 50-100%)
  std::chrono::milliseconds stop_timeout{30000};     // stop(): how long to keep retrying a dead database
  std::chrono::seconds connect_timeout{5};           // libpq connect_timeout (the URL may override)
  // How often a writer with nothing to do leaves its wait to notice a connection the server closed
  // (for /readyz) or to retry connecting. While it does, it is not counted as waiting (no split).
  std::chrono::milliseconds idle_check_interval{1000};
  std::string application_name = "sluiced-writer";
  uint32_t merge_max_rows = 100000;                  // queued batches of one table are merged up to this
  // A batch taken while other connected writers wait and nothing else is queued is split between
  // them (split_batch), in parts of at least this many rows: at low load a body's COPY then runs
  // on several backends at once, which cuts the time to its acknowledgement. Only for tables
  // whose TableSchema::row_order allows it (by key when the table has unique indexes). 0: never.
  uint32_t split_min_rows = 500;
  std::vector<ConflictMode> conflict;                // per table id; missing entries are `error`
  std::string dead_letter_table = "sluice_dead_letter";  // created by sql/006_dead_letter.sql
  // Null sink (config pipeline.sink "null", for benchmarks): the writers never connect; each
  // batch is counted as committed (stats, on_commit) and its acks completed `committed` at once.
  // Everything before the writers (parse, map, encode, batching) is unchanged.
  bool null_sink = false;
  // Called on the writer thread after each commit with the table and the committed rows' time
  // range (PostgreSQL epoch microseconds; INT64_MAX/INT64_MIN when the table has no time column).
  // Must be cheap and must not block (the policy manager only records the range).
  std::function<void(uint32_t table_id, int64_t min_time, int64_t max_time)> on_commit;
  // Spooled blocks (Block::spool_id != 0): their ids go into this table (sql/007_delivery.sql) in
  // the same transaction as their rows — BEGIN · INSERT ids ON CONFLICT DO NOTHING · COPY the blocks
  // whose id was new · COMMIT — so a block replayed after a crash is never stored twice. Blocks
  // without a spool id keep the plain autocommit COPY.
  std::string spool_ids_table = "sluice_spool_committed";
  // Called on the writer thread once a spooled block is done for good (committed, already
  // committed earlier, dead-lettered or refused; not on shutdown). Must not block.
  std::function<void(uint64_t spool_id)> on_spool_resolved;
  // Ids below this are in no spool segment any more: their rows in spool_ids_table are deleted
  // (at most every spool_prune_interval, by a writer that just committed). Null: no pruning.
  std::function<uint64_t()> spool_low_water;
  std::chrono::milliseconds spool_prune_interval{10000};
  // Blocks of requests with an Idempotency-Key: "key#index" goes into this table in the same
  // transaction as the block's rows (like the spool ids); a block whose token is there already is
  // skipped and acked committed. Tokens older than the TTL are deleted (with the spool ids).
  std::string idempotency_table = "sluice_idempotency_keys";
  std::chrono::seconds idempotency_ttl{86400};
  // While the database is unreachable (no connection, and one attempt to connect failed): offered
  // the blocks of a batch instead of holding them in memory. Returns true when it took them all
  // (e.g. into the disk spool, to be replayed later); false to keep retrying them here. Null: the
  // writer always retries in memory.
  std::function<bool(std::vector<BlockPtr>& blocks)> spill;
};

// Counters of the pool. Everything is an atomic updated with relaxed ordering: read them at any
// time from any thread (values of different counters may be a moment apart).
struct WriterStats {
  // Upper bounds (seconds) of the COPY duration histogram buckets; one more bucket is +Inf.
  static constexpr std::array<double, 13> kCopyBuckets = {
      0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0};
  static constexpr size_t kSqlstateClasses = 36 * 36;  // two characters of [0-9A-Z]

  explicit WriterStats(size_t tables);

  // Per table, indexed by table id (Catalog::tables[i].id).
  std::vector<std::atomic<uint64_t>> committed_rows;
  std::vector<std::atomic<uint64_t>> committed_bytes;
  std::vector<std::atomic<uint64_t>> committed_batches;  // successful COPY statements
  std::vector<std::atomic<uint64_t>> failed_rows;        // rows of blocks acked `failed`
  std::vector<std::atomic<uint64_t>> failed_blocks;

  // COPY duration, every COPY that got an answer from the server (success or error).
  std::atomic<uint64_t> copy_count{0};
  std::atomic<uint64_t> copy_micros_sum{0};
  std::array<std::atomic<uint64_t>, kCopyBuckets.size() + 1> copy_buckets{};  // NOT cumulative
  double copy_seconds_sum() const { return copy_micros_sum.load(std::memory_order_relaxed) / 1e6; }

  // Failed COPY attempts by SQLSTATE class ("08", "22", "23", "42", ...); connection failures
  // without an SQLSTATE count as "08".
  std::array<std::atomic<uint64_t>, kSqlstateClasses> failures_by_class{};
  uint64_t failures(std::string_view sqlstate_class) const;
  // Calls f(std::string_view class, uint64_t count) for every class with a non-zero count.
  template <typename F>
  void for_each_failure_class(F&& f) const {
    static constexpr char kDigits[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";
    for (size_t i = 0; i < kSqlstateClasses; ++i) {
      const uint64_t n = failures_by_class[i].load(std::memory_order_relaxed);
      if (n == 0) continue;
      const char cls[2] = {kDigits[i / 36], kDigits[i % 36]};
      f(std::string_view(cls, 2), n);
    }
  }

  std::vector<std::atomic<uint64_t>> dead_letter_rows;  // rows stored in sluice_dead_letter (also in failed_rows)

  std::atomic<uint64_t> split_batches{0};       // batches that went through bad-row isolation
  std::atomic<uint64_t> isolation_copies{0};    // COPYs (or stage merges) run by the isolation
  std::atomic<uint64_t> dead_letter_failures{0};  // dead-letter inserts that failed (batch retried)
  std::atomic<uint64_t> retried_batches{0};     // COPY attempts repeated after a connection failure
  std::atomic<uint64_t> shutdown_blocks{0};     // blocks acked `shutdown` by stop()
  std::atomic<uint64_t> connection_losses{0};   // live connections that broke
  std::atomic<uint64_t> connect_failures{0};    // failed connection attempts
  std::atomic<uint64_t> reconnects{0};          // successful connections after a loss or failure
  std::atomic<int64_t> queue_depth{0};          // batches waiting in the queue
  std::atomic<int> connected_writers{0};        // writers holding a live connection
  std::atomic<uint64_t> spool_duplicates_skipped{0};  // replayed spool blocks already committed earlier
  std::atomic<uint64_t> spilled_batches{0};            // batches handed to WriterOptions::spill
  std::atomic<uint64_t> idempotent_blocks_skipped{0};  // blocks of a retried Idempotency-Key already stored
  std::atomic<uint64_t> idempotent_rows_skipped{0};    // their rows
  std::atomic<uint64_t> idle_splits{0};                // batches split between waiting writers
  std::atomic<uint64_t> commits_in_doubt{0};        // autocommit COPYs whose answer was lost with the connection
  std::atomic<uint64_t> in_doubt_committed{0};      // ... found committed (acknowledged, not written again)
  std::atomic<uint64_t> in_doubt_written_again{0};  // ... found aborted or not knowable (written again)
};

class WriterPool : public BatchSink {
 public:
  // The catalog must outlive the pool. Never throws on an unreachable database.
  WriterPool(const Catalog& catalog, WriterOptions options);
  ~WriterPool() override;  // stop() if still running
  WriterPool(const WriterPool&) = delete;
  WriterPool& operator=(const WriterPool&) = delete;

  void start();                       // N writer threads; each connects on its own thread
  bool push(Batch&& batch) override;  // blocks while the queue is full; false after stop()
  // Finishes every queued batch, then joins (call after Batcher::stop_and_drain). Batches pushed
  // without start() are acked `shutdown`.
  void stop();
  bool connected() const;             // at least one writer has a live connection (/readyz)
  bool idle() const override;         // a connected writer waits for work and nothing is queued
  int waiting_writers() const { return waiting_connected_.load(std::memory_order_acquire); }
  void set_idle_doorbell(Doorbell* doorbell) override;  // rung when a connected writer starts waiting

  const WriterStats& stats() const { return stats_; }
  const WriterOptions& options() const { return options_; }

  // Opaque writer state (connection, backoff, cached COPY statements); defined in the .cpp.
  struct Writer;

 private:
  enum class PopResult { batch, idle, done };
  PopResult pop(Batch& out, std::chrono::steady_clock::time_point wait_until, bool connected);
  void run(Writer& w);
  void write_batch(Writer& w, Batch& batch);
  void discard_batch(Batch& batch);  // null sink
  bool stop_deadline_passed() const;
  void prune_spool_ids(Writer& w);
  void merge_queued(Batch& out);  // under mutex_
  void split_for_waiting(Batch& out);  // under mutex_
  bool ensure_connected(Writer& w);
  bool try_connect(Writer& w);
  void wait_for_retry(Writer& w);
  void drop_connection(Writer& w, const std::string& why);
  // An autocommit COPY (transaction `xid`, backend `pid`) whose answer was lost with the connection:
  // txid_status() on the live connection says whether the server committed it. `unresolved`: ask
  // again (the connection broke, or the old backend still runs the transaction and was told to end).
  enum class InDoubt { committed, not_committed, unresolved };
  InDoubt resolve_in_doubt(Writer& w, int64_t xid, int pid);

  const Catalog& catalog_;
  const WriterOptions options_;
  WriterStats stats_;

  mutable std::mutex mutex_;                // guards queue_, closed_, stop_deadline_, idle_doorbell_
  Doorbell* idle_doorbell_ = nullptr;
  std::condition_variable not_empty_;       // writers wait for batches (and for stop)
  std::condition_variable not_full_;        // push() waits for room
  std::condition_variable wake_;            // reconnect backoff waits; notified by stop()
  std::deque<Batch> queue_;
  bool closed_ = false;
  std::atomic<bool> stopping_{false};
  std::atomic<int> waiting_connected_{0};   // connected writers blocked in pop() on an empty queue
  std::chrono::steady_clock::time_point stop_deadline_{};
  bool started_ = false;
  bool stopped_ = false;
  std::atomic<int64_t> last_prune_ns_{0};   // steady clock of the last spool id prune

  std::vector<std::unique_ptr<Writer>> writers_;
  std::vector<std::thread> threads_;
};

// The 19-byte binary COPY header and the 2-byte trailer.
inline constexpr char kCopyBinaryHeader[19] = {'P', 'G', 'C', 'O', 'P', 'Y', '\n', '\377', '\r', '\n',
                                               '\0', 0, 0, 0, 0, 0, 0, 0, 0};
inline constexpr char kCopyBinaryTrailer[2] = {'\377', '\377'};

// How the writer reacts to a failed COPY, from its SQLSTATE.
// connection: reconnect/back off and retry the batch (also transient server states: serialization
// failure, deadlock, insufficient resources, lock not available, query canceled); row_level:
// isolate the bad rows; other: fail the batch.
enum class CopyFailureKind : uint8_t { connection, row_level, other };
CopyFailureKind classify_sqlstate(std::string_view sqlstate);

}  // namespace sluice::pg
