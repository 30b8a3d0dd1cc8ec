// spool/spool.cpp — segment files, the group-commit thread, the start-up scan.
#include "spool/spool.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>
#include <zlib.h>

#include <cerrno>
#include <algorithm>
#include <cstring>
#include <stdexcept>

#include <spdlog/spdlog.h>

namespace sluice::spool {
namespace {

int64_t wall_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

void put32(char* p, uint32_t v) { std::memcpy(p, &v, 4); }
void put64(char* p, uint64_t v) { std::memcpy(p, &v, 8); }
uint32_t get32(const char* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}
uint64_t get64(const char* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
  return v;
}

bool mkdirs(const std::string& path) {
  if (path.empty()) return true;
  struct stat st;
  if (::stat(path.c_str(), &st) == 0) return S_ISDIR(st.st_mode);
  const auto slash = path.find_last_of('/');
  if (slash != std::string::npos && slash > 0 && !mkdirs(path.substr(0, slash))) return false;
  return ::mkdir(path.c_str(), 0750) == 0 || errno == EEXIST;
}

void fsync_dir(const std::string& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
}

bool write_all(int fd, const char* p, size_t n) {
  while (n > 0) {
    const ssize_t w = ::write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    p += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

// A valid record header + payload at data[pos]; length out.
bool valid_at(const std::string& data, size_t pos, uint32_t& length, uint64_t& id, int64_t& written_us) {
  if (data.size() - pos < kRecordHeaderBytes) return false;
  const char* h = data.data() + pos;
  if (get32(h) != kRecordMagic) return false;
  length = get32(h + 4);
  if (length > data.size() - pos - kRecordHeaderBytes) return false;
  id = get64(h + 8);
  written_us = static_cast<int64_t>(get64(h + 16));
  return get32(h + 24) == record_crc(id, length, written_us, h + kRecordHeaderBytes);
}

}  // namespace

uint32_t record_crc(uint64_t id, uint32_t length, int64_t written_us, const char* payload) {
  char head[20];
  put64(head, id);
  put32(head + 8, length);
  put64(head + 12, static_cast<uint64_t>(written_us));
  uLong crc = crc32(0L, Z_NULL, 0);
  crc = crc32(crc, reinterpret_cast<const Bytef*>(head), sizeof head);
  crc = crc32(crc, reinterpret_cast<const Bytef*>(payload), length);
  return static_cast<uint32_t>(crc);
}

Spool::Spool(SpoolOptions options) : options_(std::move(options)) {}

Spool::~Spool() { close(); }

std::string Spool::segment_path(uint64_t first_id) const {
  char name[32];
  std::snprintf(name, sizeof name, "%020llu.seg", static_cast<unsigned long long>(first_id));
  return options_.dir + "/" + name;
}

void Spool::open() {
  std::lock_guard<std::mutex> lock(mutex_);
  if (opened_) return;
  if (!mkdirs(options_.dir)) {
    throw std::runtime_error("spool.dir \"" + options_.dir + "\": cannot create the directory: " + std::strerror(errno));
  }
  DIR* d = ::opendir(options_.dir.c_str());
  if (!d) throw std::runtime_error("spool.dir \"" + options_.dir + "\": cannot read: " + std::strerror(errno));
  std::vector<uint64_t> found;
  while (dirent* e = ::readdir(d)) {
    const std::string name = e->d_name;
    if (name.size() != 24 || name.compare(20, 4, ".seg") != 0) continue;
    if (name.find_first_not_of("0123456789") != 20) continue;
    found.push_back(std::stoull(name.substr(0, 20)));
  }
  ::closedir(d);
  std::sort(found.begin(), found.end());
  uint64_t max_id = 0;
  for (uint64_t first : found) scan_segment(first, max_id);
  next_id_ = std::max<uint64_t>(max_id + 1, static_cast<uint64_t>(wall_us()));
  update_oldest();
  opened_ = true;
  thread_ = std::thread([this] { run(); });
  if (!pending_.empty() || stats_.corrupt_records.load() > 0) {
    spdlog::info("event=spool_opened dir={} segments={} records_to_replay={} corrupt_records_skipped={}",
                 options_.dir, segments_.size(), pending_.size(), stats_.corrupt_records.load());
  }
}

void Spool::scan_segment(uint64_t first_id, uint64_t& max_id) {
  const std::string path = segment_path(first_id);
  std::string data;
  {
    const int fd = ::open(path.c_str(), O_RDONLY);
    if (fd < 0) throw std::runtime_error("spool segment " + path + ": cannot open: " + std::strerror(errno));
    struct stat st;
    ::fstat(fd, &st);
    data.resize(static_cast<size_t>(st.st_size));
    size_t got = 0;
    while (got < data.size()) {
      const ssize_t r = ::pread(fd, data.data() + got, data.size() - got, static_cast<off_t>(got));
      if (r <= 0) break;
      got += static_cast<size_t>(r);
    }
    ::close(fd);
    data.resize(got);
  }
  Segment seg;
  seg.bytes = data.size();
  size_t pos = 0;
  uint64_t corrupt = 0;
  while (pos < data.size()) {
    uint32_t length;
    uint64_t id;
    int64_t written;
    if (valid_at(data, pos, length, id, written)) {
      Pending p;
      p.segment = first_id;
      p.offset = pos;
      p.length = length;
      p.written_us = written;
      p.parked = true;
      p.durable = true;
      if (pending_.emplace(id, p).second) ++seg.pending;
      max_id = std::max(max_id, id);
      pos += kRecordHeaderBytes + length;
      continue;
    }
    // A damaged or torn record: skip to the next position where a whole valid record starts.
    ++corrupt;
    size_t next = pos + 1;
    for (; next < data.size(); ++next) {
      if (data[next] != 'S' || !valid_at(data, next, length, id, written)) continue;
      break;
    }
    pos = next;
  }
  if (corrupt) {
    stats_.corrupt_records.fetch_add(corrupt, std::memory_order_relaxed);
    spdlog::warn("event=spool_corrupt_records segment={} skipped_regions={}", path, corrupt);
  }
  if (seg.pending == 0) {
    ::unlink(path.c_str());
    return;
  }
  segments_[first_id] = seg;
  total_bytes_ += seg.bytes;
  stats_.bytes.store(total_bytes_, std::memory_order_relaxed);
  stats_.segments.store(segments_.size(), std::memory_order_relaxed);
  stats_.pending_records.store(pending_.size(), std::memory_order_relaxed);
}

void Spool::close() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!opened_ || closing_) return;
    closing_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  if (active_fd_ >= 0) {
    ::close(active_fd_);
    active_fd_ = -1;
  }
}

bool Spool::has_room(size_t payload_bytes) const {
  std::lock_guard<std::mutex> lock(mutex_);
  const bool room = total_bytes_ + kRecordHeaderBytes + payload_bytes <= options_.max_bytes;
  if (!room) full_.store(true, std::memory_order_relaxed);
  return room;
}

uint64_t Spool::append(std::string payload, bool parked, Durable on_durable) {
  const uint64_t size = kRecordHeaderBytes + payload.size();
  uint64_t id = 0;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!opened_ || closing_ || payload.size() > UINT32_MAX || total_bytes_ + size > options_.max_bytes) {
      stats_.refused_records.fetch_add(1, std::memory_order_relaxed);
      if (opened_ && !closing_) full_.store(true, std::memory_order_relaxed);
      return 0;
    }
    id = next_id_++;
    Pending p;
    p.length = static_cast<uint32_t>(payload.size());
    p.written_us = wall_us();
    p.parked = parked;
    pending_.emplace(id, p);
    total_bytes_ += size;
    queue_.push_back(Queued{id, p.written_us, std::move(payload), std::move(on_durable)});
    stats_.pending_records.store(pending_.size(), std::memory_order_relaxed);
  }
  cv_.notify_one();
  return id;
}

void Spool::commit(uint64_t id) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = pending_.find(id);
  if (it == pending_.end()) return;
  stats_.committed_records.fetch_add(1, std::memory_order_relaxed);
  if (!it->second.durable) {
    // Not written yet: the spool thread drops it from its segment's count when it writes it.
    it->second.parked = false;
    it->second.segment = UINT64_MAX;  // marker: committed before written
    return;
  }
  auto seg = segments_.find(it->second.segment);
  if (seg != segments_.end() && seg->second.pending > 0) --seg->second.pending;
  pending_.erase(it);
  stats_.pending_records.store(pending_.size(), std::memory_order_relaxed);
  delete_finished_segments();
  update_oldest();
}

void Spool::delete_finished_segments() {
  for (auto it = segments_.begin(); it != segments_.end();) {
    if (it->second.pending != 0 || it->second.writing || it->first == active_segment_) {
      ++it;
      continue;
    }
    ::unlink(segment_path(it->first).c_str());
    total_bytes_ -= std::min(total_bytes_, it->second.bytes);
    full_.store(false, std::memory_order_relaxed);
    it = segments_.erase(it);
  }
  stats_.bytes.store(total_bytes_, std::memory_order_relaxed);
  stats_.segments.store(segments_.size(), std::memory_order_relaxed);
}

void Spool::update_oldest() {
  int64_t oldest = 0;
  for (const auto& [id, p] : pending_) {
    if (p.durable) {
      oldest = p.written_us;
      break;
    }
  }
  stats_.oldest_pending_us.store(oldest, std::memory_order_relaxed);
}

uint64_t Spool::low_water() const {
  std::lock_guard<std::mutex> lock(mutex_);
  uint64_t low = next_id_;
  if (!segments_.empty()) low = std::min(low, segments_.begin()->first);
  if (!pending_.empty()) low = std::min(low, pending_.begin()->first);
  return low;
}

size_t Spool::parked_count() const {
  std::lock_guard<std::mutex> lock(mutex_);
  size_t n = 0;
  for (const auto& [id, p] : pending_) n += p.parked && p.durable;
  return n;
}

void Spool::park(uint64_t id) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = pending_.find(id);
  if (it != pending_.end() && it->second.segment != UINT64_MAX) it->second.parked = true;
}

bool Spool::read_record(const Pending& p, uint64_t id, SpoolRecord& out) {
  const std::string path = segment_path(p.segment);
  const int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) return false;
  std::string data(kRecordHeaderBytes + p.length, '\0');
  const ssize_t r = ::pread(fd, data.data(), data.size(), static_cast<off_t>(p.offset));
  ::close(fd);
  uint32_t length;
  uint64_t got_id;
  int64_t written;
  if (r != static_cast<ssize_t>(data.size()) || !valid_at(data, 0, length, got_id, written) || got_id != id) {
    return false;
  }
  out.id = id;
  out.written_us = written;
  out.payload.assign(data, kRecordHeaderBytes, length);
  return true;
}

std::vector<SpoolRecord> Spool::take_parked(size_t max) {
  std::vector<std::pair<uint64_t, Pending>> chosen;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    for (auto& [id, p] : pending_) {
      if (chosen.size() >= max) break;
      if (!p.parked || !p.durable) continue;
      p.parked = false;
      chosen.emplace_back(id, p);
    }
  }
  std::vector<SpoolRecord> out;
  out.reserve(chosen.size());
  for (const auto& [id, p] : chosen) {
    SpoolRecord rec;
    if (read_record(p, id, rec)) {
      out.push_back(std::move(rec));
      stats_.replayed_records.fetch_add(1, std::memory_order_relaxed);
    } else {
      // Damaged on disk since it was written: counted, never replayed as garbage.
      stats_.corrupt_records.fetch_add(1, std::memory_order_relaxed);
      commit(id);
    }
  }
  return out;
}

void Spool::run() {
  std::vector<Queued> batch;
  std::string buffer;
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(mutex_);
      cv_.wait_for(lock, std::chrono::seconds(1), [&] { return closing_ || !queue_.empty(); });
      if (queue_.empty()) {
        // Idle: a fully committed active segment is closed and deleted (keeps no file for ever).
        if (active_segment_ != 0) {
          auto it = segments_.find(active_segment_);
          if (it != segments_.end() && it->second.pending == 0) {
            ::close(active_fd_);
            active_fd_ = -1;
            active_segment_ = 0;
            delete_finished_segments();
          }
        }
        if (closing_) return;
        continue;
      }
    }
    if (options_.group_commit_wait.count() > 0) std::this_thread::sleep_for(options_.group_commit_wait);
    {
      std::lock_guard<std::mutex> lock(mutex_);
      batch.assign(std::make_move_iterator(queue_.begin()), std::make_move_iterator(queue_.end()));
      queue_.clear();
    }

    // Write every queued record (rotating as needed), then one fdatasync.
    bool ok = true;
    std::vector<int> to_close;  // rotated-out files: synced, then closed
    std::vector<std::pair<uint64_t, std::pair<uint64_t, uint64_t>>> placed;  // id → (segment, offset)
    std::map<uint64_t, uint64_t> seg_end;  // segment → its size after this batch
    uint64_t active = active_segment_;
    uint64_t active_bytes = 0;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (active) active_bytes = segments_[active].bytes;
    }
    buffer.clear();
    auto flush_buffer = [&] {
      if (ok && !buffer.empty() && !write_all(active_fd_, buffer.data(), buffer.size())) ok = false;
      buffer.clear();
    };
    for (const Queued& q : batch) {
      const uint64_t size = kRecordHeaderBytes + q.payload.size();
      if (!ok) break;
      if (active == 0 || (active_bytes > 0 && active_bytes + size > options_.segment_bytes)) {
        flush_buffer();
        if (active_fd_ >= 0) to_close.push_back(active_fd_);
        const std::string path = segment_path(q.id);
        active_fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
        if (active_fd_ < 0) {
          ok = false;
          active = 0;
          break;
        }
        fsync_dir(options_.dir);
        active = q.id;
        active_bytes = 0;
        std::lock_guard<std::mutex> lock(mutex_);
        Segment fresh;
        fresh.writing = true;
        segments_[active] = fresh;
        active_segment_ = active;
      }
      char head[kRecordHeaderBytes];
      put32(head, kRecordMagic);
      put32(head + 4, static_cast<uint32_t>(q.payload.size()));
      put64(head + 8, q.id);
      put64(head + 16, static_cast<uint64_t>(q.written_us));
      put32(head + 24, record_crc(q.id, static_cast<uint32_t>(q.payload.size()), q.written_us, q.payload.data()));
      placed.push_back({q.id, {active, active_bytes}});
      buffer.append(head, sizeof head);
      buffer.append(q.payload);
      active_bytes += size;
      seg_end[active] = active_bytes;
    }
    flush_buffer();
    for (int fd : to_close) {
      if (options_.fsync && ::fdatasync(fd) != 0) ok = false;
      ::close(fd);
    }
    if (ok && active_fd_ >= 0 && options_.fsync && ::fdatasync(active_fd_) != 0) ok = false;
    stats_.syncs.fetch_add(1, std::memory_order_relaxed);

    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (ok) {
        for (const auto& [id, where] : placed) {
          auto it = pending_.find(id);
          if (it == pending_.end()) continue;
          Segment& seg = segments_[where.first];
          if (it->second.segment == UINT64_MAX) {  // committed before it was written
            pending_.erase(it);
            continue;
          }
          it->second.segment = where.first;
          it->second.offset = where.second;
          it->second.durable = true;
          ++seg.pending;
        }
        for (const auto& [seg, end] : seg_end) segments_[seg].bytes = end;
        write_failed_.store(false, std::memory_order_relaxed);
        stats_.appended_records.fetch_add(batch.size(), std::memory_order_relaxed);
      } else {
        stats_.write_errors.fetch_add(1, std::memory_order_relaxed);
        write_failed_.store(true, std::memory_order_relaxed);
        for (const Queued& q : batch) {
          pending_.erase(q.id);
          total_bytes_ -= std::min<uint64_t>(total_bytes_, kRecordHeaderBytes + q.payload.size());
        }
        // Start over in a fresh file next time; what this one holds is scanned (and checked) at open.
        if (active_fd_ >= 0) ::close(active_fd_);
        active_fd_ = -1;
        active_segment_ = 0;
      }
      for (auto& [first, seg] : segments_) seg.writing = false;
      stats_.pending_records.store(pending_.size(), std::memory_order_relaxed);
      delete_finished_segments();
      update_oldest();
    }
    if (!ok) spdlog::error("event=spool_write_failed dir={} error=\"{}\"", options_.dir, std::strerror(errno));
    for (Queued& q : batch) {
      if (q.on_durable) q.on_durable(ok);
    }
    batch.clear();
  }
}

}  // namespace sluice::spool
