#include "metrics/registry.h"

#include <prometheus/text_serializer.h>

namespace sluice::metrics {

const char* reject_reason_name(RejectReason r) {
  switch (r) {
    case RejectReason::invalid_value: return "invalid_value";
    case RejectReason::unknown_column: return "unknown_column";
    case RejectReason::missing_column: return "missing_column";
    case RejectReason::malformed: return "malformed";
    case RejectReason::too_many_rows: return "too_many_rows";
    case RejectReason::forbidden: return "forbidden";
    case RejectReason::count_: break;
  }
  return "other";
}

prometheus::MetricFamily& family(Families& out, const std::string& name, const std::string& help,
                                 prometheus::MetricType type) {
  for (auto& f : out) {
    if (f.name == name) return f;
  }
  prometheus::MetricFamily f;
  f.name = name;
  f.help = help;
  f.type = type;
  out.push_back(std::move(f));
  return out.back();
}

void add_value(prometheus::MetricFamily& f, std::map<std::string, std::string> labels, double value) {
  prometheus::ClientMetric m;
  for (auto& [k, v] : labels) m.label.push_back({k, v});
  switch (f.type) {
    case prometheus::MetricType::Counter: m.counter.value = value; break;
    case prometheus::MetricType::Gauge: m.gauge.value = value; break;
    default: m.untyped.value = value; break;
  }
  f.metric.push_back(std::move(m));
}

void add_histogram(prometheus::MetricFamily& f, std::map<std::string, std::string> labels,
                   const std::vector<double>& bounds, const std::vector<uint64_t>& counts, double sum) {
  prometheus::ClientMetric m;
  for (auto& [k, v] : labels) m.label.push_back({k, v});
  uint64_t cumulative = 0;
  for (size_t i = 0; i < bounds.size(); ++i) {
    cumulative += i < counts.size() ? counts[i] : 0;
    m.histogram.bucket.push_back({cumulative, bounds[i]});
  }
  if (counts.size() > bounds.size()) cumulative += counts[bounds.size()];  // +Inf bucket
  m.histogram.bucket.push_back({cumulative, std::numeric_limits<double>::infinity()});
  m.histogram.sample_count = cumulative;
  m.histogram.sample_sum = sum;
  f.metric.push_back(std::move(m));
}

Registry::Registry(std::vector<std::string> table_names, int shards) : table_names_(std::move(table_names)) {
  for (int i = 0; i < shards; ++i) shards_.push_back(std::make_unique<IngestShard>(table_names_.size()));
}

void Registry::set_udp_listeners(std::vector<std::string> names, std::function<uint64_t(size_t)> kernel_drops) {
  for (auto& s : shards_) {
    while (s->udp_listeners.size() < names.size()) s->udp_listeners.emplace_back();
  }
  std::lock_guard<std::mutex> lock(mutex_);
  udp_listener_names_ = std::move(names);
  udp_kernel_drops_ = std::move(kernel_drops);
}

void Registry::add_collector(Collector c) {
  std::lock_guard<std::mutex> lock(mutex_);
  collectors_.push_back(std::move(c));
}

Families Registry::collect() const {
  Families out;
  using prometheus::MetricType;
  auto& received = family(out, "sluice_rows_received_total", "Rows parsed from requests and datagrams, per table.", MetricType::Counter);
  auto& accepted = family(out, "sluice_rows_accepted_total", "Rows validated, encoded and queued for the database, per table.", MetricType::Counter);
  auto& rejected = family(out, "sluice_rows_rejected_total", "Rows refused before reaching the database, per table and reason.", MetricType::Counter);
  auto& bytes = family(out, "sluice_received_bytes_total", "Payload bytes received (after decompression), per table.", MetricType::Counter);
  for (size_t t = 0; t < table_names_.size(); ++t) {
    uint64_t rcv = 0, acc = 0, byt = 0;
    uint64_t rej[static_cast<int>(RejectReason::count_)] = {};
    for (const auto& s : shards_) {
      const auto& c = s->tables[t];
      rcv += c.rows_received.get();
      acc += c.rows_accepted.get();
      byt += c.bytes_received.get();
      for (int r = 0; r < static_cast<int>(RejectReason::count_); ++r) rej[r] += c.rows_rejected[r].get();
    }
    const auto& name = table_names_[t];
    add_value(received, {{"table", name}}, static_cast<double>(rcv));
    add_value(accepted, {{"table", name}}, static_cast<double>(acc));
    add_value(bytes, {{"table", name}}, static_cast<double>(byt));
    for (int r = 0; r < static_cast<int>(RejectReason::count_); ++r) {
      add_value(rejected, {{"table", name}, {"reason", reject_reason_name(static_cast<RejectReason>(r))}},
                static_cast<double>(rej[r]));
    }
  }
  uint64_t ring_full = 0, bad_body = 0, unknown = 0, udp = 0, udp_bad = 0, udp_full = 0, database_down = 0;
  for (const auto& s : shards_) {
    ring_full += s->http_ring_full.get();
    database_down += s->http_database_down.get();
    bad_body += s->http_bad_body.get();
    unknown += s->http_unknown_table.get();
    udp += s->udp_datagrams.get();
    udp_bad += s->udp_malformed.get();
    udp_full += s->udp_ring_full.get();
  }
  auto& http_rejected = family(out, "sluice_http_requests_refused_total", "HTTP write requests refused as a whole, per reason.", MetricType::Counter);
  add_value(http_rejected, {{"reason", "ring_full"}}, static_cast<double>(ring_full));
  add_value(http_rejected, {{"reason", "database_unavailable"}}, static_cast<double>(database_down));
  add_value(http_rejected, {{"reason", "bad_body"}}, static_cast<double>(bad_body));
  add_value(http_rejected, {{"reason", "unknown_table"}}, static_cast<double>(unknown));
  auto& udp_parsed = family(out, "sluice_udp_datagrams_parsed_total", "UDP datagrams handed to a parser.", MetricType::Counter);
  add_value(udp_parsed, {}, static_cast<double>(udp));
  auto& udp_dropped = family(out, "sluice_udp_datagrams_dropped_total", "UDP datagrams lost, per cause (UDP is fire-and-forget: nothing is acknowledged).", MetricType::Counter);
  std::lock_guard<std::mutex> lock(mutex_);
  if (udp_listener_names_.empty()) {
    add_value(udp_dropped, {{"cause", "malformed"}}, static_cast<double>(udp_bad));
    add_value(udp_dropped, {{"cause", "ring_full"}}, static_cast<double>(udp_full));
  }
  for (size_t i = 0; i < udp_listener_names_.size(); ++i) {
    uint64_t malformed = 0, full = 0;
    for (const auto& s : shards_) {
      if (i >= s->udp_listeners.size()) continue;
      malformed += s->udp_listeners[i].malformed.get();
      full += s->udp_listeners[i].ring_full.get();
    }
    const std::string& name = udp_listener_names_[i];
    add_value(udp_dropped, {{"listener", name}, {"cause", "malformed"}}, static_cast<double>(malformed));
    add_value(udp_dropped, {{"listener", name}, {"cause", "ring_full"}}, static_cast<double>(full));
    add_value(udp_dropped, {{"listener", name}, {"cause", "kernel"}},
              static_cast<double>(udp_kernel_drops_ ? udp_kernel_drops_(i) : 0));
  }

  for (const auto& c : collectors_) c(out);
  return out;
}

std::string Registry::render() const {
  const Families families = collect();
  prometheus::TextSerializer serializer;
  return serializer.Serialize(std::vector<prometheus::MetricFamily>(families.begin(), families.end()));
}

}  // namespace sluice::metrics
