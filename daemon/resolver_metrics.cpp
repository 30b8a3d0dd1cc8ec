#include "daemon/resolver_metrics.h"

#include <string>

namespace sluice {

void add_resolver_collector(metrics::Registry& registry, const ResolverSet& set, const pg::ResolverService& service,
                            const std::vector<std::unique_ptr<IngestContext>>& contexts) {
  using prometheus::MetricType;
  registry.add_collector([&set, &service, &contexts](metrics::Families& out) {
    auto& hits = metrics::family(out, "sluice_resolver_cache_hits_total",
                                 "Rows whose resolver key was in the IO thread's cache.", MetricType::Counter);
    auto& misses = metrics::family(out, "sluice_resolver_cache_misses_total",
                                   "Rows whose resolver key was not cached (the row waited for the resolver service).",
                                   MetricType::Counter);
    auto& lookups = metrics::family(out, "sluice_resolver_lookups_total", "Lookup queries run by the resolver service.",
                                    MetricType::Counter);
    auto& creates = metrics::family(out, "sluice_resolver_creates_total", "Rows created by the resolver service.",
                                    MetricType::Counter);
    auto& unknown = metrics::family(out, "sluice_resolver_unknown_rejects_total",
                                    "Rows rejected because their resolver key is unknown or could not be resolved.",
                                    MetricType::Counter);
    auto& errors = metrics::family(out, "sluice_resolver_errors_total",
                                   "Keys whose lookup or create failed or could not reach the database.",
                                   MetricType::Counter);
    for (const Resolver& r : set.resolvers()) {
      uint64_t h = 0, m = 0, u = 0;
      for (const auto& ctx : contexts) {
        ThreadResolvers* tr = ctx->resolvers();
        if (!tr) continue;
        const auto& c = tr->counters(r.id);
        h += c.hits.load(std::memory_order_relaxed);
        m += c.misses.load(std::memory_order_relaxed);
        u += c.unknown_rejects.load(std::memory_order_relaxed);
      }
      const auto& sc = service.counters(r.id);
      const std::map<std::string, std::string> labels = {{"table", r.table_name}, {"column", r.column_name}};
      metrics::add_value(hits, labels, static_cast<double>(h));
      metrics::add_value(misses, labels, static_cast<double>(m));
      metrics::add_value(unknown, labels, static_cast<double>(u));
      metrics::add_value(lookups, labels, static_cast<double>(sc.lookups.load(std::memory_order_relaxed)));
      metrics::add_value(creates, labels, static_cast<double>(sc.creates.load(std::memory_order_relaxed)));
      metrics::add_value(errors, labels, static_cast<double>(sc.errors.load(std::memory_order_relaxed)));
    }
    auto& pending = metrics::family(out, "sluice_resolver_udp_pending_datagrams",
                                    "UDP datagrams waiting for resolver keys, per IO thread.", MetricType::Gauge);
    auto& dropped = metrics::family(out, "sluice_resolver_udp_dropped_total",
                                    "UDP datagrams dropped while waiting for resolver keys (queue full or keys never "
                                    "settled), per IO thread.",
                                    MetricType::Counter);
    for (size_t i = 0; i < contexts.size(); ++i) {
      ThreadResolvers* tr = contexts[i]->resolvers();
      if (!tr) continue;
      metrics::add_value(pending, {{"thread", std::to_string(i)}},
                         static_cast<double>(tr->udp_pending.load(std::memory_order_relaxed)));
      metrics::add_value(dropped, {{"thread", std::to_string(i)}},
                         static_cast<double>(tr->udp_dropped.load(std::memory_order_relaxed)));
    }
  });
}

}  // namespace sluice
