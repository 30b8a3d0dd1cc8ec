// ingest/udp_ingest.h — datagrams of NDJSON rows for one configured table, or of InfluxDB line protocol.
//
//   UdpListener (recvmmsg) ─► UdpIngest::on_datagram ─► JsonRowParser ─► ring (or counted drop)
//                          └► UdpLineIngest::on_datagram ─► LineMapper (measurements → tables) ─► ring
//
// UDP is fire-and-forget: nothing is acknowledged, and every loss is counted by cause
// (malformed datagram, rejected row, ring full) in the thread's IngestShard.
//
// Resolvers: a datagram whose rows need keys that are not cached yet is copied into a bounded queue
// (kMaxPendingDatagrams / kMaxPendingBytes per handler, at most kMaxResolveRounds - 1 waits; beyond, it is dropped and counted in
// sluice_resolver_udp_dropped_total) and parsed again once the resolver service has answered; other
// datagrams go on meanwhile.
// (malformed datagram, rejected row, ring full) in the thread's IngestShard, and per listener
// (IngestShard::udp_listeners[listener], when a listener index >= 0 is given).
#pragma once

#include <deque>
#include <string>

#include "config/config.h"
#include "ingest/ingest_context.h"
#include "ingest/write_handler.h"

namespace sluice {

inline constexpr size_t kMaxPendingDatagrams = 1024;
inline constexpr size_t kMaxPendingBytes = 8u << 20;

// Datagrams of one handler waiting for resolver keys.
class PendingDatagrams {
 public:
  struct Item {
    std::string data;  // capacity >= size + 64
    uint64_t job = 0;  // the resolve_misses() call it waits for
    int round = 0;
  };
  // Keeps a copy; false (and counted as dropped) over the bounds or after kMaxResolveRounds rounds.
  bool keep(IngestContext& ctx, const char* data, size_t size, uint64_t job, int round);
  // Removes and returns the datagrams waiting for jobs <= job (answers come back in order).
  std::deque<Item> take_up_to(IngestContext& ctx, uint64_t job);

 private:
  std::deque<Item> items_;
  size_t bytes_ = 0;
};

class UdpIngest : public DatagramHandler {
 public:
  UdpIngest(IngestContext& context, const TableSchema& table, EpochPrecision precision, int listener = -1);
  void on_datagram(const char* data, std::size_t size, std::size_t capacity) override;

 private:
  void process(const char* data, std::size_t size, std::size_t capacity, int round);
  void wait_for_keys(const char* data, std::size_t size, int round);
  PendingDatagrams pending_;
  uint64_t jobs_ = 0;
  IngestContext& ctx_;
  const TableSchema& table_;
  EpochPrecision precision_;
  metrics::UdpListenerDrops* drops_ = nullptr;
};

// Format "line": many lines per datagram, each mapped by the thread's LineMapper (which must be set
// on the context). Bad lines are counted as rejected rows; the good ones of the datagram are stored.
class UdpLineIngest : public DatagramHandler {
 public:
  UdpLineIngest(IngestContext& context, EpochPrecision precision, int listener = -1);
  void on_datagram(const char* data, std::size_t size, std::size_t capacity) override;

 private:
  void process(const char* data, std::size_t size, int round);
  void wait_for_keys(const char* data, std::size_t size, int round);
  PendingDatagrams pending_;
  uint64_t jobs_ = 0;
  IngestContext& ctx_;
  EpochPrecision precision_;
  metrics::UdpListenerDrops* drops_ = nullptr;
};

}  // namespace sluice
