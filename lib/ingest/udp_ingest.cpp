#include "ingest/udp_ingest.h"

#include <chrono>

namespace sluice {

namespace {

metrics::UdpListenerDrops* listener_drops(IngestContext& ctx, int listener) {
  auto& per_listener = ctx.counters().udp_listeners;
  return listener >= 0 && static_cast<size_t>(listener) < per_listener.size() ? &per_listener[static_cast<size_t>(listener)]
                                                                               : nullptr;
}

}  // namespace

UdpIngest::UdpIngest(IngestContext& context, const TableSchema& table, EpochPrecision precision, int listener)
    : ctx_(context), table_(table), precision_(precision), drops_(listener_drops(context, listener)) {}

void UdpIngest::on_datagram(const char* data, std::size_t size, std::size_t capacity) {
  ctx_.counters().udp_datagrams.add();
  if (ctx_.closing()) {
    ctx_.counters().udp_ring_full.add();
    if (drops_) drops_->ring_full.add();
    return;
  }
  RowEncoder& encoder = ctx_.encoder(table_.id);
  encoder.set_precision(precision_);
  JsonParseResult& result = ctx_.scratch_result();
  ctx_.json_parser().parse(std::string_view(data, size), capacity, JsonShape::ndjson, encoder, table_.id,
                           SIZE_MAX, result);
  if (!result.syntax_ok) {
    ctx_.counters().udp_malformed.add();
    if (drops_) drops_->malformed.add();
    return;
  }
  if (!result.blocks.empty() && !ctx_.has_room_for(result.blocks.size())) {
    ctx_.counters().udp_ring_full.add();
    if (drops_) drops_->ring_full.add();
    result.blocks.clear();
    return;
  }
  ctx_.count(table_.id, size, result);
  ctx_.push_all(result.blocks);
}

UdpLineIngest::UdpLineIngest(IngestContext& context, EpochPrecision precision, int listener)
    : ctx_(context), precision_(precision), drops_(listener_drops(context, listener)) {}

void UdpLineIngest::on_datagram(const char* data, std::size_t size, std::size_t /*capacity*/) {
  ctx_.counters().udp_datagrams.add();
  LineMapper* mapper = ctx_.line_mapper();
  if (ctx_.closing() || !mapper) {
    ctx_.counters().udp_ring_full.add();
    if (drops_) drops_->ring_full.add();
    return;
  }
  const int64_t now_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                             std::chrono::system_clock::now().time_since_epoch())
                             .count();
  LineParseResult& result = ctx_.scratch_result();
  mapper->parse(std::string_view(data, size), precision_, now_ns, ctx_.encoders(), SIZE_MAX, result);
  if (result.rows_accepted == 0 && result.rows_rejected == 0) return;  // blank or comments only
  if (!result.blocks.empty() && !ctx_.has_room_for(result.blocks.size())) {
    ctx_.counters().udp_ring_full.add();
    if (drops_) drops_->ring_full.add();
    result.blocks.clear();
    return;
  }
  ctx_.count_lines(size, result);
  ctx_.push_all(result.blocks);
}

}  // namespace sluice
