// spool/spool.h — the disk spool: append-only segment files of checksummed records.
//
//   append(payload) ──► queue ──► spool thread: write every queued record · ONE fdatasync ──► on_durable(ok)
//        │ (id now)                 (group commit: all appends that queued meanwhile share the sync)
//        ▼
//   <dir>/<first id, 20 digits>.seg   [record][record]...   rotated at segment_bytes
//   record = magic "SLSP" · u32 payload length · u64 id · i64 wall-clock µs · u32 crc32(id..payload) · payload
//
//   commit(id)  — the record's rows are in the database (or finally refused): once every record of
//                 a segment that is no longer written to is committed, the file is deleted.
//   take_parked() — records nobody holds in memory (everything found at open(), and records
//                 appended with `parked`): read back from disk, in id order, for replay.
//
// open() scans every segment: a torn tail (crash mid-write) or a damaged record (flipped byte) fails
// its checksum and is skipped — the scan resynchronises on the next valid record — and counted in
// Stats::corrupt_records; it is never handed out. New records always go to a fresh segment.
// Record ids grow for ever: at open the next id is max(last id found + 1, wall clock µs), so an id
// is never reused across restarts (as long as fewer than a million records a second are written on
// average). Size bound: append() refuses (returns 0) when the files would exceed max_bytes.
// Thread-safe; on_durable runs on the spool thread and must only hand off.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace sluice::spool {

struct SpoolOptions {
  std::string dir = "spool";                       // created when missing
  uint64_t max_bytes = uint64_t{1} << 30;          // all segment files together
  uint64_t segment_bytes = uint64_t{64} << 20;     // rotate after this many bytes
  std::chrono::microseconds group_commit_wait{0};  // linger before a sync to gather more appends
  bool fsync = true;                               // false only for tests
};

struct SpoolStats {
  std::atomic<uint64_t> bytes{0};             // size of all segment files
  std::atomic<uint64_t> segments{0};
  std::atomic<uint64_t> pending_records{0};   // appended (or found at open) and not yet committed
  std::atomic<uint64_t> appended_records{0};
  std::atomic<uint64_t> refused_records{0};   // append() refused: full or unwritable
  std::atomic<uint64_t> committed_records{0};
  std::atomic<uint64_t> replayed_records{0};  // handed out by take_parked()
  std::atomic<uint64_t> corrupt_records{0};   // damaged/torn regions skipped (at open or on read-back)
  std::atomic<uint64_t> syncs{0};             // fdatasync calls (group commits)
  std::atomic<uint64_t> write_errors{0};
  std::atomic<int64_t> oldest_pending_us{0};  // wall-clock µs of the oldest pending record, 0 = none
};

struct SpoolRecord {
  uint64_t id = 0;
  int64_t written_us = 0;
  std::string payload;
};

inline constexpr uint32_t kRecordMagic = 0x50534c53;  // "SLSP" little-endian
inline constexpr size_t kRecordHeaderBytes = 28;

class Spool {
 public:
  using Durable = std::function<void(bool ok)>;

  explicit Spool(SpoolOptions options);
  ~Spool();  // close(): waits for queued appends
  Spool(const Spool&) = delete;
  Spool& operator=(const Spool&) = delete;

  // Creates the directory, scans the segments, starts the spool thread. Throws std::runtime_error
  // (naming the path) when the directory cannot be created or read.
  void open();
  void close();

  // Queues a record; returns its id, or 0 when refused (closed, full, or the last write failed and
  // the disk is still unwritable). on_durable(true) once it is fsynced, (false) if the write failed
  // (the record is then not pending). parked: nobody keeps the rows in memory, take_parked() hands
  // the record out for replay.
  uint64_t append(std::string payload, bool parked, Durable on_durable);

  // The record's rows are stored (or finally refused). Unknown ids are ignored.
  void commit(uint64_t id);

  // Up to `max` parked records in id order, read back from disk and now held by the caller (who
  // must commit them, or park() them again when it gives up).
  std::vector<SpoolRecord> take_parked(size_t max);
  // Hands records back (e.g. the daemon stopped before they were written).
  void park(uint64_t id);
  size_t parked_count() const;

  // Whether an append of `payload_bytes` would fit right now. A "no" marks the spool full until
  // a segment is deleted (full()).
  bool has_room(size_t payload_bytes) const;
  bool full() const { return full_.load(std::memory_order_relaxed); }
  bool writable() const { return !write_failed_.load(std::memory_order_relaxed); }
  // Every id below this is committed and its segment deleted (for pruning the id table).
  uint64_t low_water() const;

  const SpoolStats& stats() const { return stats_; }
  const SpoolOptions& options() const { return options_; }

 private:
  struct Pending {  // one record not yet committed
    uint64_t segment = 0;   // first id of its segment (file name)
    uint64_t offset = 0;    // of the record header in that file
    uint32_t length = 0;
    int64_t written_us = 0;
    bool parked = false;
    bool durable = false;
  };
  struct Segment {
    uint64_t bytes = 0;
    uint64_t pending = 0;   // records not committed
    bool writing = false;   // created by the batch being written: not deletable yet
  };
  struct Queued {
    uint64_t id;
    int64_t written_us;
    std::string payload;
    Durable on_durable;
  };

  void run();
  std::string segment_path(uint64_t first_id) const;
  void scan_segment(uint64_t first_id, uint64_t& max_id);
  void delete_finished_segments();  // under mutex_
  void update_oldest();             // under mutex_
  bool read_record(const Pending& p, uint64_t id, SpoolRecord& out);

  const SpoolOptions options_;
  SpoolStats stats_;

  mutable std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<Queued> queue_;
  uint64_t queued_bytes_ = 0;
  std::map<uint64_t, Pending> pending_;   // by id
  std::map<uint64_t, Segment> segments_;  // by first id
  uint64_t next_id_ = 1;
  uint64_t total_bytes_ = 0;              // files + queued
  uint64_t active_segment_ = 0;           // 0 = none open
  int active_fd_ = -1;
  bool opened_ = false;
  bool closing_ = false;
  std::atomic<bool> write_failed_{false};
  mutable std::atomic<bool> full_{false};   // something was refused for lack of room since the last deletion
  std::thread thread_;
};

// crc32 (zlib) of the record's id, length, time and payload, as stored in its header.
uint32_t record_crc(uint64_t id, uint32_t length, int64_t written_us, const char* payload);

}  // namespace sluice::spool
