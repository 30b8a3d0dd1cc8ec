// ingest/udp_ingest.h — datagrams of NDJSON rows for one configured table.
//
//   UdpListener (recvmmsg) ─► UdpIngest::on_datagram ─► JsonRowParser ─► ring (or counted drop)
//
// UDP is fire-and-forget: nothing is acknowledged, and every loss is counted by cause
// (malformed datagram, rejected row, ring full) in the thread's IngestShard.
#pragma once

#include "config/config.h"
#include "ingest/ingest_context.h"
#include "ingest/write_handler.h"

namespace sluice {

class UdpIngest : public DatagramHandler {
 public:
  UdpIngest(IngestContext& context, const TableSchema& table, EpochPrecision precision);
  void on_datagram(const char* data, std::size_t size, std::size_t capacity) override;

 private:
  IngestContext& ctx_;
  const TableSchema& table_;
  EpochPrecision precision_;
};

}  // namespace sluice
