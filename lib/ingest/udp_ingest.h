// ingest/udp_ingest.h — datagrams of NDJSON rows for one configured table, or of InfluxDB line protocol.
//
//   UdpListener (recvmmsg) ─► UdpIngest::on_datagram ─► JsonRowParser ─► ring (or counted drop)
//                          └► UdpLineIngest::on_datagram ─► LineMapper (measurements → tables) ─► ring
//
// UDP is fire-and-forget: nothing is acknowledged, and every loss is counted by cause
// (malformed datagram, rejected row, ring full) in the thread's IngestShard, and per listener
// (IngestShard::udp_listeners[listener], when a listener index >= 0 is given).
#pragma once

#include "config/config.h"
#include "ingest/ingest_context.h"
#include "ingest/write_handler.h"

namespace sluice {

class UdpIngest : public DatagramHandler {
 public:
  UdpIngest(IngestContext& context, const TableSchema& table, EpochPrecision precision, int listener = -1);
  void on_datagram(const char* data, std::size_t size, std::size_t capacity) override;

 private:
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
  IngestContext& ctx_;
  EpochPrecision precision_;
  metrics::UdpListenerDrops* drops_ = nullptr;
};

}  // namespace sluice
