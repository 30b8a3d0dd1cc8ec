// metrics/registry.h — counters for the hot path and Prometheus text exposition.
//
//   IO thread i ──► IngestShard[i] (single writer: relaxed load+store, no lock prefix, no sharing)
//   writers, batcher, listeners keep their own Stats structs (atomics, per batch / per event)
//                                   │ at scrape time only
//   /metrics ──► Registry::render() ── sums shards + runs collectors ──► prometheus::TextSerializer
//
// Label sets are bounded: per table (configured, fixed at start), per listener, per reason — never
// per device or per sender.
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <prometheus/metric_family.h>

namespace sluice::metrics {

// A counter with exactly one writing thread; readers on other threads see a recent value.
class ShardCounter {
 public:
  void add(uint64_t n = 1) { v_.store(v_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed); }
  uint64_t get() const { return v_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> v_{0};
};

enum class RejectReason : uint8_t { invalid_value, unknown_column, missing_column, malformed, too_many_rows, forbidden, count_ };
const char* reject_reason_name(RejectReason r);

struct TableIngestCounters {
  ShardCounter rows_received;   // rows parsed from bodies/datagrams (accepted + rejected)
  ShardCounter rows_accepted;   // rows encoded and handed to the ring
  ShardCounter rows_rejected[static_cast<int>(RejectReason::count_)];
  ShardCounter bytes_received;  // body/datagram bytes after decompression
};

// Datagrams one UDP listener lost in this IO thread, per cause (kernel drops are the listener's own).
struct UdpListenerDrops {
  ShardCounter malformed;  // not parseable: all its rows lost
  ShardCounter ring_full;  // the ring had no room (or sluice was stopping)
};

// Everything one IO thread counts. alignas keeps two shards off one cache line.
struct alignas(64) IngestShard {
  explicit IngestShard(size_t tables) : tables(tables) {}
  std::vector<TableIngestCounters> tables;
  ShardCounter http_ring_full;        // requests answered 429: ring full
  ShardCounter http_database_down;    // requests answered 503: ring full and no writer connected
  ShardCounter http_bad_body;         // requests answered 400: unparseable body
  ShardCounter http_unknown_table;    // requests answered 404
  ShardCounter udp_datagrams;         // datagrams handed to a parser
  ShardCounter udp_malformed;         // datagrams with unparseable JSON (all rows lost)
  ShardCounter udp_ring_full;         // datagrams dropped: ring full
  std::deque<UdpListenerDrops> udp_listeners;  // per UDP listener (Registry::set_udp_listeners); also in the two above
};

// A deque: family() hands out references that must stay valid while more families are added.
using Families = std::deque<prometheus::MetricFamily>;

// Helpers to build families in collectors.
prometheus::MetricFamily& family(Families& out, const std::string& name, const std::string& help,
                                 prometheus::MetricType type);
void add_value(prometheus::MetricFamily& f, std::map<std::string, std::string> labels, double value);
// A cumulative histogram from bucket upper bounds and per-bucket (non-cumulative) counts.
void add_histogram(prometheus::MetricFamily& f, std::map<std::string, std::string> labels,
                   const std::vector<double>& bounds, const std::vector<uint64_t>& counts, double sum);

class Registry {
 public:
  Registry(std::vector<std::string> table_names, int shards);

  IngestShard& shard(int i) { return *shards_[static_cast<size_t>(i)]; }
  int shard_count() const { return static_cast<int>(shards_.size()); }
  const std::vector<std::string>& table_names() const { return table_names_; }

  // Collectors run at scrape time (under a lock; they must not block for long).
  using Collector = std::function<void(Families&)>;
  void add_collector(Collector c);

  // Names the UDP listeners (their listen address), before the IO threads run: every shard gets
  // a UdpListenerDrops per listener, and sluice_udp_datagrams_dropped_total is exported per
  // listener and cause (malformed, ring_full, and kernel from `kernel_drops(listener index)`).
  // Without listeners it carries only the cause label (per-thread totals).
  void set_udp_listeners(std::vector<std::string> names, std::function<uint64_t(size_t)> kernel_drops);

  Families collect() const;
  std::string render() const;  // Prometheus text format 0.0.4

 private:
  std::vector<std::string> table_names_;
  std::vector<std::unique_ptr<IngestShard>> shards_;
  mutable std::mutex mutex_;
  std::vector<Collector> collectors_;
  std::vector<std::string> udp_listener_names_;
  std::function<uint64_t(size_t)> udp_kernel_drops_;
};

}  // namespace sluice::metrics
