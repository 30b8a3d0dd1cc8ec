// config/reload.h — what a SIGHUP reload may change in a running sluiced, and what needs a restart.
//
//   running Config ─┐                    ┌─► live:    applied at once (log level, batch limits, HTTP
//                   ├─► plan_reload() ───┤            limits and timeouts, rows per request, ack timeout,
//   new Config ─────┘   (both valid)     │            default precision)
//                                        └─► restart: listed and logged, the running value is kept
//                                                     (listen addresses, database, pipeline, tables, …)
//
// A top-level section this file does not know (a section added later) counts as "needs a restart"
// when its JSON differs, until its owner makes it live (see the reload hook in daemon/reloader.cpp).
#pragma once

#include <string>
#include <vector>

#include "config/config.h"

namespace sluice {

struct ReloadPlan {
  // "batch.max_rows: 20000 -> 500" for every live setting whose value differs.
  std::vector<std::string> live_changes;
  // Settings that differ but need a restart ("http.listen", "database.url", "tables", …). The URL's
  // value is never shown.
  std::vector<std::string> restart_required;
};

ReloadPlan plan_reload(const Config& running, const Config& next);

// `running` with every live setting taken from `next`: the configuration in force after a reload.
Config apply_live_settings(const Config& running, const Config& next);

}  // namespace sluice
