// End-to-end tests of the dimension resolvers (catalog/resolver.h, pg/resolver_service.h) through the
// sluiced binary against a real PostgreSQL 15. The daemon runs with the resolvers and line protocol
// mappings of the shipped presets (config/presets/grid.json, flux.json, predictive_maintenance.json,
// merged; policies off), so the presets are checked too:
//   - observations.series_id from (ba, type, subtype), series created; unknown ba → row rejected
//   - sensor_readings.sensor_id registered in sensors when first seen (value passes through)
//   - flux.mg_meter_readings / mg_bess_readings.device_id from (device, site), registry row created
//   - flux.market_data.type from the type name, unknown names rejected (rule reject)
// each via JSON and line protocol; a burst of new keys from 16 concurrent senders (exactly one registry
// row per key); a request with cached keys answered while another waits for a blocked lookup; UDP line.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <future>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "catalog/catalog.h"
#include "catalog/resolver.h"
#include "pg/connection.h"
#include "pg/migrate.h"
#include "pg/resolver_service.h"
#include "support/daemon_process.h"
#include "support/http_client.h"
#include "support/pg_server.h"

namespace sluice {
namespace {

using nlohmann::json;
using test::HttpClient;

json load_preset(const std::string& name) {
  std::ifstream in(std::string(SLUICE_SOURCE_DIR) + "/config/presets/" + name + ".json");
  std::stringstream ss;
  ss << in.rdbuf();
  return json::parse(ss.str(), nullptr, true, /*ignore_comments=*/true);
}

class Resolvers : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    url_ = test::shared_pg_server().create_database("resolver_test");
    {
      pg::Connection conn(url_, "resolver_test");
      pg::migrate(conn, std::string(SLUICE_SOURCE_DIR) + "/sql");
    }
    http_port_ = test::free_tcp_port();
    admin_port_ = test::free_tcp_port();
    udp_port_ = test::free_tcp_port();
    json config = {
        {"database", {{"url", "ignored"}, {"connections", 2}}},
        // One IO thread: the "cached keys answered meanwhile" test needs both requests on one thread.
        {"pipeline", {{"io_threads", 1}}},
        {"batch", {{"max_age_ms", 10}}},
        {"http", {{"listen", "127.0.0.1:" + std::to_string(http_port_)}}},
        {"udp", json::array({{{"listen", "127.0.0.1:" + std::to_string(udp_port_)}, {"format", "line"}, {"precision", "s"}}})},
        {"admin", {{"listen", "127.0.0.1:" + std::to_string(admin_port_)}}},
        {"log", {{"level", "warn"}}},
        {"policy", {{"enabled", false}}},
        {"tables", json::array()},
        {"measurements", json::array()},
    };
    for (const char* p : {"grid", "flux", "predictive_maintenance"}) {
      const json preset = load_preset(p);
      for (const auto& t : preset.at("tables")) config["tables"].push_back(t);
      for (const auto& m : preset.at("measurements")) config["measurements"].push_back(m);
    }
    daemon_ = new test::DaemonProcess();
    daemon_->start(config.dump(2), url_, admin_port_);
  }

  static void TearDownTestSuite() {
    if (daemon_) EXPECT_EQ(daemon_->stop(), 0) << daemon_->log();
    delete daemon_;
    daemon_ = nullptr;
  }

  static std::string q(const std::string& sql) {
    pg::Connection conn(url_, "resolver_test check");
    auto r = conn.query(sql);
    return PQntuples(r.get()) > 0 ? (PQgetisnull(r.get(), 0, 0) ? "<null>" : PQgetvalue(r.get(), 0, 0))
                                  : std::string("<no rows>");
  }

  static test::HttpResponse line(const std::string& body, const std::string& precision = "ns") {
    HttpClient c("127.0.0.1", http_port_);
    return c.post("/api/v2/write?org=o&bucket=b&precision=" + precision, body, "text/plain");
  }
  static test::HttpResponse rows(const std::string& table, const std::string& body) {
    HttpClient c("127.0.0.1", http_port_);
    return c.post("/v1/write/" + table, body);
  }

  // Polls until the query returns `want` (UDP has no answer to wait for).
  static std::string wait_for(const std::string& sql, const std::string& want) {
    std::string got;
    for (int i = 0; i < 200; ++i) {
      got = q(sql);
      if (got == want) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(25));
    }
    return got;
  }

  static inline std::string url_;
  static inline int http_port_ = 0, admin_port_ = 0, udp_port_ = 0;
  static inline test::DaemonProcess* daemon_ = nullptr;
};

TEST_F(Resolvers, GridSeriesFromLineProtocolAndJson) {
  auto r = line("grid,ba=PJM,type=demand value=91234.5 1700000000000000000");
  ASSERT_EQ(r.status, 204) << r.body;
  // The series was created once, with the preset's units, and the observation carries its id.
  EXPECT_EQ(q("SELECT count(*) FROM series s JOIN balancing_authorities ba ON ba.id = s.ba_id "
              "WHERE ba.code = 'PJM' AND s.type = 'demand' AND s.subtype IS NULL"),
            "1");
  EXPECT_EQ(q("SELECT format('%s|%s|%s|%s', ba.code, s.type, s.units, o.value) FROM observations o "
              "JOIN series s ON s.id = o.series_id JOIN balancing_authorities ba ON ba.id = s.ba_id "
              "WHERE o.ts = to_timestamp(1700000000)"),
            "PJM|demand|MW|91234.500");

  // JSON, same key (cached now) and a new one with a subtype and a renamed quality tag.
  r = rows("observations", R"([{"ba":"PJM","type":"demand","ts":"2023-11-14T22:13:21Z","value":1.5},
                                {"ba":"CAISO","type":"generation","subtype":"solar","ts":"2023-11-14T22:13:21Z","value":2}])");
  ASSERT_EQ(r.status, 200) << r.body;
  r = line("grid,ba=CAISO,type=generation,subtype=solar,quality=estimated value=3 1700000002000000000");
  ASSERT_EQ(r.status, 204) << r.body;
  EXPECT_EQ(q("SELECT count(*) FROM series s JOIN balancing_authorities ba ON ba.id = s.ba_id WHERE ba.code IN ('PJM', 'CAISO')"),
            "2");
  EXPECT_EQ(q("SELECT string_agg(format('%s/%s/%s=%s:%s', ba.code, s.type, coalesce(s.subtype, '-'), o.value, o.quality_flag), ' ' "
              "ORDER BY o.ts, ba.code) FROM observations o JOIN series s ON s.id = o.series_id "
              "JOIN balancing_authorities ba ON ba.id = s.ba_id"),
            "PJM/demand/-=91234.500:good CAISO/generation/solar=2.000:good PJM/demand/-=1.500:good "
            "CAISO/generation/solar=3.000:estimated");
}

TEST_F(Resolvers, UnknownBalancingAuthorityIsRejectedUnderCreateOtherRowsStored) {
  // create: the series cannot be created for an unknown ba (the create inserts nothing) → the row is
  // rejected naming the resolver and the key; the good line is stored.
  auto r = line("grid,ba=NOPE,type=demand value=1 1700000100000000000\n"
                "grid,ba=MISO,type=demand value=2 1700000100000000000\n");
  ASSERT_EQ(r.status, 400) << r.body;
  EXPECT_NE(r.body.find("line 1: resolver \\\"observations.series_id\\\": unknown key ba=\\\"NOPE\\\", type=\\\"demand\\\", subtype=null"),
            std::string::npos)
      << r.body;
  EXPECT_NE(r.body.find("1 line written, 1 line rejected"), std::string::npos) << r.body;
  EXPECT_EQ(q("SELECT count(*) FROM observations o JOIN series s ON s.id = o.series_id JOIN balancing_authorities ba "
              "ON ba.id = s.ba_id WHERE ba.code = 'MISO' AND o.ts = to_timestamp(1700000100)"),
            "1");
  EXPECT_EQ(q("SELECT count(*) FROM balancing_authorities WHERE code = 'NOPE'"), "0");
  // A missing required key is rejected too, with its name.
  r = rows("observations", R"([{"type":"demand","ts":"2023-11-14T22:15:00Z","value":1}])");
  ASSERT_EQ(r.status, 400) << r.body;
  EXPECT_NE(r.body.find("key \\\"ba\\\" is missing"), std::string::npos) << r.body;
}

TEST_F(Resolvers, MarketDataTypeByNameUnknownRejected) {
  auto r = line("market,type=wholesale_price value=55.25 1700000200000000000\n"
                "market,type=bogus_type value=1 1700000201000000000\n"
                "market,type=niv_estimate,src=x value=-12.5 1700000202000000000\n");
  ASSERT_EQ(r.status, 400) << r.body;
  EXPECT_NE(r.body.find("resolver \\\"flux.market_data.type\\\": unknown key type=\\\"bogus_type\\\" (unknown keys are rejected)"),
            std::string::npos)
      << r.body;
  EXPECT_EQ(q("SELECT string_agg(format('%s:%s:%s', type, value, coalesce(metadata::text, '-')), ' ' ORDER BY time) "
              "FROM flux.market_data WHERE time >= to_timestamp(1700000200) AND time < to_timestamp(1700000300)"),
            "2:55.25:- 1:-12.5:{\"src\": \"x\"}");
  EXPECT_EQ(q("SELECT count(*) FROM flux.market_data_types"), "4");  // never extended

  r = rows("flux.market_data", R"([{"type":"axle_dispatch","time":"2023-11-14T23:00:00Z","value":7},
                                   {"type":"nope","time":"2023-11-14T23:00:00Z","value":8}])");
  ASSERT_EQ(r.status, 400) << r.body;
  EXPECT_NE(r.body.find("\"row\":1,\"column\":\"type\""), std::string::npos) << r.body;
  EXPECT_EQ(q("SELECT type FROM flux.market_data WHERE time = '2023-11-14T23:00:00Z'"), "4");
}

TEST_F(Resolvers, DevicesRegisteredWhenFirstSeen) {
  auto r = line("meter,device=m-01,site=north frequency=50.01,power_total_active=12.5 1700000300000000000\n"
                "meter,device=m-01,site=north frequency=49.99 1700000301000000000\n"
                "meter,device=m-01,site=south frequency=50 1700000302000000000\n");
  ASSERT_EQ(r.status, 204) << r.body;
  r = rows("flux.mg_bess_readings", R"([{"device":"b-01","site":"north","time":"2023-11-14T22:20:00Z","soe":81.5},
                                        {"device":"b-01","site":"north","time":"2023-11-14T22:21:00Z","soe":80}])");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(q("SELECT string_agg(format('%s/%s/%s', name, site, type), ' ' ORDER BY type, name, site) "
              "FROM flux.mg_device_registry WHERE name IN ('m-01', 'b-01')"),
            "b-01/north/bess m-01/north/meter m-01/south/meter");
  EXPECT_EQ(q("SELECT string_agg(format('%s@%s=%s', d.name, d.site, m.frequency), ' ' ORDER BY m.time) "
              "FROM flux.mg_meter_readings m JOIN flux.mg_device_registry d ON d.id = m.device_id "
              "WHERE m.time >= to_timestamp(1700000300) AND m.time < to_timestamp(1700000400)"),
            "m-01@north=50.01 m-01@north=49.99 m-01@south=50");
  EXPECT_EQ(q("SELECT string_agg(b.soe::text, ' ' ORDER BY b.time) FROM flux.mg_bess_readings b "
              "JOIN flux.mg_device_registry d ON d.id = b.device_id WHERE d.name = 'b-01'"),
            "81.5 80");
}

TEST_F(Resolvers, SensorsRegisteredWhenFirstSeen) {
  auto r = rows("sensor_readings", R"([{"timestamp":"2023-11-14T22:30:00Z","sensor_id":"pump-9","value":0.5},
                                       {"timestamp":"2023-11-14T22:30:00Z","sensor_id":"pump-10","value":1.5}])");
  ASSERT_EQ(r.status, 200) << r.body;
  // The preset's line mapping renames tag id → sensor_id, which makes it the resolver key.
  r = line("sensor,id=pump-9,type=vibration value=0.75 1700000500000000000\n"
           "sensor,id=fan-1 value=3,rpm=1200i 1700000500000000000\n");
  ASSERT_EQ(r.status, 204) << r.body;
  EXPECT_EQ(q("SELECT string_agg(sensor_id, ' ' ORDER BY sensor_id) FROM sensors"), "fan-1 pump-10 pump-9");
  EXPECT_EQ(q("SELECT string_agg(format('%s=%s:%s', sensor_id, value, coalesce(sensor_metadata::text, '-')), ' ' "
              "ORDER BY sensor_id, \"timestamp\") FROM sensor_readings"),
            "fan-1=3:{\"rpm\": 1200} pump-10=1.5:- pump-9=0.75:- pump-9=0.5:-");
}

TEST_F(Resolvers, BurstOfNewKeysFromManySendersCreatesEachOnce) {
  constexpr int kThreads = 16, kLines = 20, kDevices = 12;
  std::atomic<int> failures{0};
  std::vector<std::string> errors(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::string body;
      for (int j = 0; j < kLines; ++j) {
        const int d = (t + j) % kDevices;  // overlapping sets of new keys
        body += "meter,device=burst-" + std::to_string(d) + ",site=east frequency=" + std::to_string(d) + " " +
                std::to_string(1700001000 + t * 100 + j) + "\n";
      }
      HttpClient c("127.0.0.1", http_port_);
      const auto r = c.post("/write?db=x&precision=s", body, "text/plain");
      if (r.status != 204) {
        errors[t] = std::to_string(r.status) + " " + r.body;
        failures.fetch_add(1);
      }
    });
  }
  for (auto& th : threads) th.join();
  ASSERT_EQ(failures.load(), 0) << errors[0];
  EXPECT_EQ(q("SELECT count(*) FROM flux.mg_device_registry WHERE site = 'east'"), std::to_string(kDevices));
  EXPECT_EQ(q("SELECT count(*) FROM (SELECT name FROM flux.mg_device_registry WHERE site = 'east' GROUP BY name "
              "HAVING count(*) > 1) d"),
            "0");
  EXPECT_EQ(q("SELECT count(*) FROM flux.mg_meter_readings m JOIN flux.mg_device_registry d ON d.id = m.device_id "
              "WHERE d.site = 'east'"),
            std::to_string(kThreads * kLines));
  // Every reading carries its own device's id (frequency holds the device number).
  EXPECT_EQ(q("SELECT count(*) FROM flux.mg_meter_readings m JOIN flux.mg_device_registry d ON d.id = m.device_id "
              "WHERE d.site = 'east' AND d.name = 'burst-' || m.frequency::int"),
            std::to_string(kThreads * kLines));
  // Every meter in the registry was created by the resolver, and each creation is counted once.
  const auto metrics = test::http_get(admin_port_, "/metrics").body;
  const std::string creates = "sluice_resolver_creates_total{column=\"device_id\",table=\"flux.mg_meter_readings\"} " +
                              q("SELECT count(*) FROM flux.mg_device_registry WHERE type = 'meter'") + "\n";
  EXPECT_NE(metrics.find(creates), std::string::npos) << creates << metrics;
  EXPECT_NE(metrics.find("sluice_resolver_cache_hits_total{column=\"device_id\",table=\"flux.mg_meter_readings\"}"),
            std::string::npos)
      << metrics;
}

TEST_F(Resolvers, CachedKeysAnsweredWhileMissesAreResolved) {
  // Warm the cache for one device, then block the registry so the lookup of a new device waits.
  ASSERT_EQ(line("meter,device=warm,site=west frequency=1 1700002000000000000").status, 204);
  pg::Connection blocker(url_, "resolver_test blocker");
  blocker.exec("BEGIN; LOCK TABLE flux.mg_device_registry IN ACCESS EXCLUSIVE MODE");
  auto slow = std::async(std::launch::async, [] {
    return line("meter,device=cold,site=west frequency=2 1700002001000000000");
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  const auto t0 = std::chrono::steady_clock::now();
  const auto fast = line("meter,device=warm,site=west frequency=3 1700002002000000000");
  const auto fast_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_EQ(fast.status, 204) << fast.body;
  EXPECT_LT(fast_ms, 3000);
  EXPECT_EQ(slow.wait_for(std::chrono::milliseconds(0)), std::future_status::timeout)
      << "the new key was resolved although its lookup was blocked";
  blocker.exec("COMMIT");
  const auto r = slow.get();
  EXPECT_EQ(r.status, 204) << r.body;
  EXPECT_EQ(q("SELECT string_agg(format('%s=%s', d.name, m.frequency), ' ' ORDER BY m.time) FROM flux.mg_meter_readings m "
              "JOIN flux.mg_device_registry d ON d.id = m.device_id WHERE d.site = 'west'"),
            "warm=1 cold=2 warm=3");
}

TEST_F(Resolvers, UdpLineWithResolvers) {
  int s = socket(AF_INET, SOCK_DGRAM, 0);
  ASSERT_GE(s, 0);
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(static_cast<uint16_t>(udp_port_));
  inet_pton(AF_INET, "127.0.0.1", &to.sin_addr);
  const std::string d1 = "meter,device=udp-1,site=udp frequency=49.5 1700003000\n"
                         "grid,ba=ERCOT,type=demand value=42 1700003000\n";
  const std::string d2 = "meter,device=udp-1,site=udp frequency=49.75 1700003001\n"
                         "market,type=nope value=1 1700003001\n";
  sendto(s, d1.data(), d1.size(), 0, reinterpret_cast<sockaddr*>(&to), sizeof to);
  sendto(s, d2.data(), d2.size(), 0, reinterpret_cast<sockaddr*>(&to), sizeof to);
  close(s);
  EXPECT_EQ(wait_for("SELECT string_agg(m.frequency::text, ' ' ORDER BY m.time) FROM flux.mg_meter_readings m "
                     "JOIN flux.mg_device_registry d ON d.id = m.device_id WHERE d.name = 'udp-1' AND d.site = 'udp'",
                     "49.5 49.75"),
            "49.5 49.75");
  EXPECT_EQ(wait_for("SELECT count(*) FROM observations o JOIN series s ON s.id = o.series_id JOIN balancing_authorities ba "
                     "ON ba.id = s.ba_id WHERE ba.code = 'ERCOT'",
                     "1"),
            "1");
  EXPECT_EQ(q("SELECT count(*) FROM flux.mg_device_registry WHERE name = 'udp-1'"), "1");
}

TEST_F(Resolvers, StartUpCheckNamesBadSql) {
  pg::Connection conn(url_, "resolver_test catalog");
  const Catalog catalog = load_catalog(conn.get(), {{"flux.market_data", ""}});
  ResolverSpec bad_table;
  bad_table.table = "flux.market_data";
  bad_table.column = "type";
  bad_table.keys = {"type"};
  bad_table.lookup_sql = "SELECT id FROM flux.no_such_types WHERE name = $1";
  ResolverSpec unused_key = bad_table;
  unused_key.column = "value";
  unused_key.keys = {"type", "unit"};
  unused_key.lookup_sql = "SELECT id FROM flux.market_data_types WHERE name = $1";
  const ResolverSet set(catalog, {bad_table, unused_key});
  pg::ResolverService service(url_, set);
  try {
    service.check();
    ADD_FAILURE() << "check() accepted bad SQL";
  } catch (const std::runtime_error& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("resolver \"flux.market_data.type\": lookup SQL: relation \"flux.no_such_types\" does not exist"),
              std::string::npos)
        << m;
    EXPECT_NE(m.find("resolver \"flux.market_data.value\": lookup SQL: uses 1 parameters for 2 keys"), std::string::npos)
        << m;
  }
  // The preset's statements pass (the daemon above started with them).
}

}  // namespace
}  // namespace sluice
