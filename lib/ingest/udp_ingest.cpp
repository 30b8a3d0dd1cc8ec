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

bool PendingDatagrams::keep(IngestContext& ctx, const char* data, size_t size, uint64_t job, int round) {
  ThreadResolvers* r = ctx.resolvers();
  if (round + 1 >= kMaxResolveRounds || items_.size() >= kMaxPendingDatagrams || bytes_ + size > kMaxPendingBytes) {
    if (r) r->udp_dropped.store(r->udp_dropped.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
    return false;
  }
  Item item;
  item.data.reserve(size + 64);
  item.data.assign(data, size);
  item.job = job;
  item.round = round;
  bytes_ += size;
  items_.push_back(std::move(item));
  if (r) r->udp_pending.store(r->udp_pending.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  return true;
}

std::deque<PendingDatagrams::Item> PendingDatagrams::take_up_to(IngestContext& ctx, uint64_t job) {
  std::deque<Item> out;
  while (!items_.empty() && items_.front().job <= job) {
    bytes_ -= items_.front().data.size();
    out.push_back(std::move(items_.front()));
    items_.pop_front();
  }
  if (ThreadResolvers* r = ctx.resolvers()) {  // the gauge sums the handlers of the thread
    r->udp_pending.store(r->udp_pending.load(std::memory_order_relaxed) - out.size(), std::memory_order_relaxed);
  }
  return out;
}

UdpIngest::UdpIngest(IngestContext& context, const TableSchema& table, EpochPrecision precision, int listener)
    : ctx_(context), table_(table), precision_(precision), drops_(listener_drops(context, listener)) {}

void UdpIngest::on_datagram(const char* data, std::size_t size, std::size_t capacity) {
  ctx_.counters().udp_datagrams.add();
  process(data, size, capacity, 0);
}

void UdpIngest::process(const char* data, std::size_t size, std::size_t capacity, int round) {
  if (ctx_.closing()) {
    ctx_.counters().udp_ring_full.add();
    if (drops_) drops_->ring_full.add();
    return;
  }
  RowEncoder& encoder = ctx_.encoder(table_.id);
  encoder.set_precision(precision_);
  JsonParseResult& result = ctx_.scratch_result();
  ctx_.clear_misses();
  ctx_.json_parser().parse(std::string_view(data, size), capacity, JsonShape::ndjson, encoder, table_.id,
                           SIZE_MAX, result);
  if (!result.syntax_ok) {
    ctx_.clear_misses();
    ctx_.counters().udp_malformed.add();
    if (drops_) drops_->malformed.add();
    return;
  }
  if (ctx_.resolvers() && ctx_.resolvers()->has_misses()) {
    result.blocks.clear();
    wait_for_keys(data, size, round);
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

void UdpIngest::wait_for_keys(const char* data, std::size_t size, int round) {
  const uint64_t job = ++jobs_;
  if (!pending_.keep(ctx_, data, size, job, round)) {
    ctx_.clear_misses();
    return;
  }
  ctx_.resolve_misses([this, job](const std::string& /*unavailable: the datagrams are parsed again*/) {
    for (auto& item : pending_.take_up_to(ctx_, job)) {
      process(item.data.data(), item.data.size(), item.data.capacity(), item.round + 1);
    }
  });
}

UdpLineIngest::UdpLineIngest(IngestContext& context, EpochPrecision precision, int listener)
    : ctx_(context), precision_(precision), drops_(listener_drops(context, listener)) {}

void UdpLineIngest::on_datagram(const char* data, std::size_t size, std::size_t /*capacity*/) {
  ctx_.counters().udp_datagrams.add();
  process(data, size, 0);
}

void UdpLineIngest::process(const char* data, std::size_t size, int round) {
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
  ctx_.clear_misses();
  mapper->parse(std::string_view(data, size), precision_, now_ns, ctx_.encoders(), SIZE_MAX, result);
  if (ctx_.resolvers() && ctx_.resolvers()->has_misses()) {
    result.blocks.clear();
    wait_for_keys(data, size, round);
    return;
  }
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

void UdpLineIngest::wait_for_keys(const char* data, std::size_t size, int round) {
  const uint64_t job = ++jobs_;
  if (!pending_.keep(ctx_, data, size, job, round)) {
    ctx_.clear_misses();
    return;
  }
  ctx_.resolve_misses([this, job](const std::string& /*unavailable: the datagrams are parsed again*/) {
    for (auto& item : pending_.take_up_to(ctx_, job)) process(item.data.data(), item.data.size(), item.round + 1);
  });
}

}  // namespace sluice
