#include "ingest/udp_ingest.h"

namespace sluice {

UdpIngest::UdpIngest(IngestContext& context, const TableSchema& table, EpochPrecision precision)
    : ctx_(context), table_(table), precision_(precision) {}

void UdpIngest::on_datagram(const char* data, std::size_t size, std::size_t capacity) {
  ctx_.counters().udp_datagrams.add();
  if (ctx_.closing()) {
    ctx_.counters().udp_ring_full.add();
    return;
  }
  RowEncoder& encoder = ctx_.encoder(table_.id);
  encoder.set_precision(precision_);
  JsonParseResult& result = ctx_.scratch_result();
  ctx_.json_parser().parse(std::string_view(data, size), capacity, JsonShape::ndjson, encoder, table_.id,
                           SIZE_MAX, result);
  if (!result.syntax_ok) {
    ctx_.counters().udp_malformed.add();
    return;
  }
  if (!result.blocks.empty() && !ctx_.has_room_for(result.blocks.size())) {
    ctx_.counters().udp_ring_full.add();
    result.blocks.clear();
    return;
  }
  ctx_.count(table_.id, size, result);
  ctx_.push_all(result.blocks);
}

}  // namespace sluice
