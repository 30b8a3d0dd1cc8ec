#include "daemon/collectors.h"

namespace sluice {
namespace {

double load(const std::atomic<uint64_t>& a) { return static_cast<double>(a.load(std::memory_order_relaxed)); }

}  // namespace

void add_component_collectors(metrics::Registry& registry, const Catalog& catalog, const Batcher& batcher,
                              const pg::WriterPool& writers, const HttpServer* http,
                              const std::vector<std::unique_ptr<UdpListener>>& udp,
                              const std::vector<UdpConfig>& udp_configs) {
  using prometheus::MetricType;
  registry.add_collector([&catalog, &batcher, &writers](metrics::Families& out) {
    const auto& ws = writers.stats();
    auto& committed = metrics::family(out, "sluice_rows_committed_total", "Rows committed in the database, per table.", MetricType::Counter);
    auto& committed_bytes = metrics::family(out, "sluice_committed_bytes_total", "Encoded COPY bytes committed, per table.", MetricType::Counter);
    auto& failed = metrics::family(out, "sluice_rows_failed_total", "Rows the database refused (their requests were answered with an error), per table.", MetricType::Counter);
    auto& copies = metrics::family(out, "sluice_copy_batches_committed_total", "COPY statements committed, per table.", MetricType::Counter);
    auto& dead = metrics::family(out, "sluice_dead_letter_rows_total", "Rows the database refused one by one, stored in sluice_dead_letter with the reason, per table.", MetricType::Counter);
    for (const auto& t : catalog.tables) {
      metrics::add_value(committed, {{"table", t.config_name}}, load(ws.committed_rows[t.id]));
      metrics::add_value(committed_bytes, {{"table", t.config_name}}, load(ws.committed_bytes[t.id]));
      metrics::add_value(failed, {{"table", t.config_name}}, load(ws.failed_rows[t.id]));
      metrics::add_value(copies, {{"table", t.config_name}}, load(ws.committed_batches[t.id]));
      metrics::add_value(dead, {{"table", t.config_name}}, load(ws.dead_letter_rows[t.id]));
    }
    auto& duration = metrics::family(out, "sluice_copy_duration_seconds", "Duration of COPY statements (success or error).", MetricType::Histogram);
    std::vector<double> bounds(pg::WriterStats::kCopyBuckets.begin(), pg::WriterStats::kCopyBuckets.end());
    std::vector<uint64_t> counts;
    for (const auto& b : ws.copy_buckets) counts.push_back(b.load(std::memory_order_relaxed));
    metrics::add_histogram(duration, {}, bounds, counts, ws.copy_seconds_sum());

    auto& failures = metrics::family(out, "sluice_copy_failures_total", "Failed COPY attempts, per SQLSTATE class.", MetricType::Counter);
    ws.for_each_failure_class([&](std::string_view cls, uint64_t n) {
      metrics::add_value(failures, {{"sqlstate_class", std::string(cls)}}, static_cast<double>(n));
    });
    auto& events = metrics::family(out, "sluice_writer_events_total", "Writer events: retried batches, split batches, batches shared with idle writers, isolation COPYs, connection losses, reconnects, failed connects, failed dead-letter inserts, blocks abandoned at shutdown, COPYs whose commit answer was lost and how that was resolved.", MetricType::Counter);
    metrics::add_value(events, {{"event", "batch_retried"}}, load(ws.retried_batches));
    metrics::add_value(events, {{"event", "batch_split"}}, load(ws.split_batches));
    metrics::add_value(events, {{"event", "batch_shared"}}, load(ws.idle_splits));
    metrics::add_value(events, {{"event", "connection_lost"}}, load(ws.connection_losses));
    metrics::add_value(events, {{"event", "connect_failed"}}, load(ws.connect_failures));
    metrics::add_value(events, {{"event", "reconnected"}}, load(ws.reconnects));
    metrics::add_value(events, {{"event", "shutdown_abandoned_block"}}, load(ws.shutdown_blocks));
    metrics::add_value(events, {{"event", "isolation_copy"}}, load(ws.isolation_copies));
    metrics::add_value(events, {{"event", "dead_letter_insert_failed"}}, load(ws.dead_letter_failures));
    metrics::add_value(events, {{"event", "commit_in_doubt"}}, load(ws.commits_in_doubt));
    metrics::add_value(events, {{"event", "in_doubt_was_committed"}}, load(ws.in_doubt_committed));
    metrics::add_value(events, {{"event", "in_doubt_written_again"}}, load(ws.in_doubt_written_again));
    auto& connected = metrics::family(out, "sluice_db_connections_up", "Writer connections that are currently established.", MetricType::Gauge);
    metrics::add_value(connected, {}, static_cast<double>(ws.connected_writers.load(std::memory_order_relaxed)));
    auto& queue = metrics::family(out, "sluice_writer_queue_batches", "Flushed batches waiting for a writer.", MetricType::Gauge);
    metrics::add_value(queue, {}, static_cast<double>(ws.queue_depth.load(std::memory_order_relaxed)));

    const auto& bs = batcher.stats();
    auto& flushed = metrics::family(out, "sluice_batches_flushed_total", "Batches flushed, per trigger.", MetricType::Counter);
    for (size_t i = 0; i < kFlushTriggerCount; ++i) {
      metrics::add_value(flushed, {{"trigger", flush_trigger_name(static_cast<FlushTrigger>(i))}}, load(bs.flushed[i]));
    }
  });

  registry.add_collector([http, &udp, &udp_configs](metrics::Families& out) {
    if (http) {
      const auto& hs = http->stats();
      auto& requests = metrics::family(out, "sluice_http_responses_total", "HTTP responses on the ingest listener, per status class.", MetricType::Counter);
      metrics::add_value(requests, {{"code", "2xx"}}, load(hs.requests_2xx));
      metrics::add_value(requests, {{"code", "4xx"}}, load(hs.requests_4xx));
      metrics::add_value(requests, {{"code", "5xx"}}, load(hs.requests_5xx));
      auto& conns = metrics::family(out, "sluice_http_connections", "Open HTTP connections on the ingest listener.", MetricType::Gauge);
      metrics::add_value(conns, {}, static_cast<double>(http->connections()));
      auto& refused = metrics::family(out, "sluice_http_connections_refused_total", "Connections refused because http.max_connections was reached.", MetricType::Counter);
      metrics::add_value(refused, {}, load(hs.rejected_connections));
      auto& timeouts = metrics::family(out, "sluice_http_timeouts_total", "Connections closed by a header, body or idle timeout.", MetricType::Counter);
      metrics::add_value(timeouts, {}, load(hs.timeouts));
      // Security (README "Security"): bounded labels only — never a token, a token name or an address.
      auto& auth = metrics::family(out, "sluice_http_auth_failures_total", "Write requests refused by token checks: missing (no or unparseable credential, 401), invalid (no such token, 401), forbidden (table outside the token's scope, 403).", MetricType::Counter);
      metrics::add_value(auth, {{"reason", "missing"}}, load(hs.auth_missing));
      metrics::add_value(auth, {{"reason", "invalid"}}, load(hs.auth_invalid));
      metrics::add_value(auth, {{"reason", "forbidden"}}, load(hs.auth_forbidden));
      auto& limited = metrics::family(out, "sluice_http_rate_limited_total", "Write requests answered 429 because their token exceeded max_requests_per_second.", MetricType::Counter);
      metrics::add_value(limited, {}, load(hs.rate_limited));
      auto& per_client = metrics::family(out, "sluice_http_client_connections_refused_total", "Connections refused because their client address reached http.max_connections_per_client.", MetricType::Counter);
      metrics::add_value(per_client, {}, load(hs.client_rejected_connections));
      auto& tls = metrics::family(out, "sluice_http_tls_handshake_failures_total", "TLS handshakes that failed or timed out (including a missing or untrusted client certificate).", MetricType::Counter);
      metrics::add_value(tls, {}, load(hs.tls_handshake_failures));
    }
    auto& received = metrics::family(out, "sluice_udp_datagrams_received_total", "UDP datagrams received, per listener.", MetricType::Counter);
    auto& kernel = metrics::family(out, "sluice_udp_kernel_drops_total", "UDP datagrams the kernel dropped because the socket buffer was full (SO_RXQ_OVFL), per listener.", MetricType::Counter);
    auto& truncated = metrics::family(out, "sluice_udp_datagrams_truncated_total", "UDP datagrams larger than max_datagram_bytes, dropped, per listener.", MetricType::Counter);
    // Source outside udp[].allow: one more cause of the registry's drop counter (same family).
    auto& dropped = metrics::family(out, "sluice_udp_datagrams_dropped_total", "UDP datagrams lost, per cause (UDP is fire-and-forget: nothing is acknowledged).", MetricType::Counter);
    double not_allowed = 0;
    for (const auto& l : udp) not_allowed += load(l->stats().not_allowed);
    metrics::add_value(dropped, {{"cause", "not_allowed"}}, not_allowed);
    for (size_t i = 0; i < udp.size(); ++i) {
      const auto& us = udp[i]->stats();
      const std::string& name = udp_configs[i].listen;
      metrics::add_value(received, {{"listener", name}}, load(us.datagrams_received));
      metrics::add_value(kernel, {{"listener", name}}, load(us.kernel_drops));
      metrics::add_value(truncated, {{"listener", name}}, load(us.truncated));
    }
  });
}

}  // namespace sluice
