// daemon/resolver_metrics.h — the resolvers' counters as Prometheus families at scrape time.
//
//   sluice_resolver_cache_hits_total{table,column}      rows whose key was in the IO thread's cache
//   sluice_resolver_cache_misses_total{table,column}    rows whose key was not (the row waited)
//   sluice_resolver_lookups_total{table,column}         lookup queries the resolver service ran
//   sluice_resolver_creates_total{table,column}         rows the resolver service created
//   sluice_resolver_unknown_rejects_total{table,column} rows rejected for an unknown (or failed) key
//   sluice_resolver_errors_total{table,column}          keys whose lookup/create failed or could not run
//   sluice_resolver_udp_pending_datagrams{thread}       UDP datagrams waiting for keys
//   sluice_resolver_udp_dropped_total{thread}           UDP datagrams dropped while waiting for keys
#pragma once

#include <memory>
#include <vector>

#include "catalog/resolver.h"
#include "ingest/ingest_context.h"
#include "metrics/registry.h"
#include "pg/resolver_service.h"

namespace sluice {

// Everything must outlive the registry's scrapes (the daemon detaches the admin view first).
void add_resolver_collector(metrics::Registry& registry, const ResolverSet& set, const pg::ResolverService& service,
                            const std::vector<std::unique_ptr<IngestContext>>& contexts);

}  // namespace sluice
