// config/reload.h: which settings a SIGHUP applies live and which need a restart.
#include "config/reload.h"

#include <algorithm>
#include <cstdlib>

#include <gtest/gtest.h>

namespace sluice {
namespace {

Config parse(const std::string& extra) {
  unsetenv("SLUICE_DATABASE_URL");
  return parse_config(R"({"database": {"url": "postgresql://u:pw@h/db"}, "tables": [{"name": "t"}])" + extra + "}",
                      "reload.json");
}

bool has(const std::vector<std::string>& v, const std::string& s) { return std::find(v.begin(), v.end(), s) != v.end(); }

TEST(ReloadPlan, SameConfigChangesNothing) {
  const Config a = parse(R"(, "udp": [{"listen": "127.0.0.1:1", "table": "t"}])");
  const auto plan = plan_reload(a, a);
  EXPECT_TRUE(plan.live_changes.empty()) << ::testing::PrintToString(plan.live_changes);
  EXPECT_TRUE(plan.restart_required.empty()) << ::testing::PrintToString(plan.restart_required);
}

TEST(ReloadPlan, LiveSettingsAreListedWithOldAndNewValues) {
  const Config a = parse("");
  const Config b = parse(R"(, "log": {"level": "debug"}, "batch": {"max_rows": 500, "max_age_ms": 7},
                            "http": {"max_rows_per_request": 3, "ack_timeout_ms": 1000, "max_connections": 9,
                                     "max_body_bytes": 4096, "default_precision": "ms"})");
  const auto plan = plan_reload(a, b);
  EXPECT_TRUE(plan.restart_required.empty()) << ::testing::PrintToString(plan.restart_required);
  for (const char* s : {"log.level: \"info\" -> \"debug\"", "batch.max_rows: 20000 -> 500", "batch.max_age_ms: 50 -> 7",
                        "http.max_rows_per_request: 100000 -> 3", "http.ack_timeout_ms: 30000 -> 1000",
                        "http.max_connections: 1024 -> 9", "http.max_body_bytes: 16777216 -> 4096",
                        "http.default_precision: \"s\" -> \"ms\""}) {
    EXPECT_TRUE(has(plan.live_changes, s)) << s << " in " << ::testing::PrintToString(plan.live_changes);
  }
  EXPECT_EQ(plan.live_changes.size(), 8u);

  const Config now = apply_live_settings(a, b);
  EXPECT_EQ(now.log.level, "debug");
  EXPECT_EQ(now.batch.max_rows, 500u);
  EXPECT_EQ(now.http.max_rows_per_request, 3u);
  EXPECT_EQ(now.http.default_precision, "ms");
  EXPECT_TRUE(plan_reload(now, b).live_changes.empty());
}

TEST(ReloadPlan, RestartSettingsAreNamedAndKept) {
  const Config a = parse(R"(, "udp": [{"listen": "127.0.0.1:1", "table": "t"}])");
  Config b = parse(R"(, "http": {"listen": "127.0.0.1:9999"}, "admin": {"listen": "127.0.0.1:9998"},
                       "pipeline": {"io_threads": 4}, "udp": [{"listen": "127.0.0.1:2", "table": "t"}],
                       "batch": {"max_rows": 10, "split_min_rows": 0}, "policy": {"enabled": false})");
  b.database.url = "postgresql://u:other@h/db";
  const auto plan = plan_reload(a, b);
  for (const char* s : {"http.listen", "admin.listen", "pipeline.io_threads", "udp", "database.url", "policy",
                        "batch.split_min_rows"}) {
    EXPECT_TRUE(has(plan.restart_required, s)) << s << " in " << ::testing::PrintToString(plan.restart_required);
  }
  EXPECT_EQ(plan.restart_required.size(), 7u) << ::testing::PrintToString(plan.restart_required);
  ASSERT_EQ(plan.live_changes.size(), 1u);
  for (const auto& s : plan.live_changes) EXPECT_EQ(s.find("other"), std::string::npos) << "the URL is never shown";

  const Config now = apply_live_settings(a, b);
  EXPECT_EQ(now.http.listen, a.http.listen);
  EXPECT_EQ(now.pipeline.io_threads, a.pipeline.io_threads);
  EXPECT_EQ(now.database.url, a.database.url);
  EXPECT_EQ(now.batch.max_rows, 10u);
  EXPECT_EQ(now.batch.split_min_rows, a.batch.split_min_rows);
  // What still differs is what the next reload reports again as needing a restart.
  EXPECT_EQ(plan_reload(now, b).restart_required.size(), 7u);
}

TEST(ReloadPlan, TablesAndMeasurementsNeedARestart) {
  const Config a = parse("");
  const Config b = parse_config(R"({"database": {"url": "postgresql://u:pw@h/db"},
                                    "tables": [{"name": "t"}, {"name": "u"}],
                                    "measurements": [{"measurement": "m", "table": "u"}]})", "b.json");
  const auto plan = plan_reload(a, b);
  EXPECT_TRUE(has(plan.restart_required, "tables"));
  EXPECT_TRUE(has(plan.restart_required, "measurements"));
  // A section that only differs in spacing or key order is the same section.
  const Config c = parse_config(R"({"tables": [ {"name" : "t"} ], "database": {"url": "postgresql://u:pw@h/db"}})", "c");
  EXPECT_TRUE(plan_reload(a, c).restart_required.empty()) << ::testing::PrintToString(plan_reload(a, c).restart_required);
}

}  // namespace
}  // namespace sluice
