// daemon/collectors.h — renders the components' own Stats as Prometheus families at scrape time.
#pragma once

#include <memory>
#include <vector>

#include "batch/batcher.h"
#include "catalog/catalog.h"
#include "config/config.h"
#include "ingest/http/http_server.h"
#include "ingest/udp/udp_listener.h"
#include "metrics/registry.h"
#include "pg/copy_writer.h"

namespace sluice {

void add_component_collectors(metrics::Registry& registry, const Catalog& catalog, const Batcher& batcher,
                              const pg::WriterPool& writers, const HttpServer* http,
                              const std::vector<std::unique_ptr<UdpListener>>& udp,
                              const std::vector<UdpConfig>& udp_configs);

}  // namespace sluice
