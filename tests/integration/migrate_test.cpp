// Integration tests of pg/migrate.h and the migrations in sql/, against a real PostgreSQL 15
// (tests/support/pg_server.h). Each test uses its own database on the binary's shared server.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "pg/connection.h"
#include "pg/migrate.h"
#include "support/pg_server.h"

namespace sluice {
namespace {

namespace fs = std::filesystem;
using test::shared_pg_server;

const std::string kSqlDir = std::string(SLUICE_SOURCE_DIR) + "/sql";

const std::vector<std::string> kMigrationNames = {
    "001_grid.sql", "002_predictive_maintenance.sql", "003_flux.sql", "004_datapoint.sql",
    "005_energy_forecast.sql", "006_dead_letter.sql", "007_delivery.sql"};

// A scratch folder removed at the end of the test.
class TempDir {
 public:
  TempDir() {
    std::string templ = "/tmp/sluice-migrate-test-XXXXXX";
    if (::mkdtemp(templ.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = templ;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }
  void write(const std::string& name, const std::string& content) const {
    std::ofstream(path_ + "/" + name, std::ios::binary | std::ios::trunc) << content;
  }
  void append(const std::string& name, const std::string& content) const {
    std::ofstream(path_ + "/" + name, std::ios::binary | std::ios::app) << content;
  }
  void copy_from(const std::string& dir) const {
    for (const auto& e : fs::directory_iterator(dir)) {
      if (!e.is_regular_file()) continue;  // e.g. sql/roles/: not migrations
      fs::copy_file(e.path(), path_ + "/" + e.path().filename().string());
    }
  }

 private:
  std::string path_;
};

std::string psql(const std::string& db, const std::string& sql) {
  return shared_pg_server().psql(db, sql);
}

std::vector<std::string> names_of(const std::vector<pg::MigrationFile>& files) {
  std::vector<std::string> out;
  for (const auto& f : files) out.push_back(f.name);
  return out;
}

template <typename Fn>
std::string error_of(Fn&& fn) {
  try {
    fn();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "<no exception>";
}

// ---------------------------------------------------------------------------------- load_migrations

TEST(LoadMigrations, ReadsTheRepositoryMigrationsInVersionOrder) {
  const auto files = pg::load_migrations(kSqlDir);
  EXPECT_EQ(names_of(files), kMigrationNames);
  for (std::size_t i = 0; i < files.size(); ++i) {
    EXPECT_EQ(files[i].version, static_cast<int>(i) + 1);
    EXPECT_EQ(files[i].path, kSqlDir + "/" + kMigrationNames[i]);
    EXPECT_EQ(files[i].checksum.size(), 16u);
    EXPECT_EQ(files[i].checksum, pg::migration_checksum(files[i].sql));
    EXPECT_NE(files[i].sql.find("-- " + kMigrationNames[i]), std::string::npos)
        << "header comment naming the file";
    EXPECT_NE(files[i].sql.find("Source: "), std::string::npos)
        << kMigrationNames[i] << " must name its source (a reference document, or sluice itself)";
  }
}

TEST(LoadMigrations, ChecksumIsFnv1a64Hex) {
  EXPECT_EQ(pg::migration_checksum(""), "cbf29ce484222325");
  EXPECT_EQ(pg::migration_checksum("a"), "af63dc4c8601ec8c");
  EXPECT_EQ(pg::migration_checksum("foobar"), "85944171f73967e8");
}

TEST(LoadMigrations, SortsNumericallyAndIgnoresOtherFiles) {
  TempDir dir;
  dir.write("10_ten.sql", "SELECT 10;");
  dir.write("2_two.sql", "SELECT 2;");
  dir.write("001_one.sql", "SELECT 1;");
  dir.write("README.md", "not a migration");
  dir.write("notes.sql.bak", "ignored too");
  const auto files = pg::load_migrations(dir.path());
  ASSERT_EQ(names_of(files), (std::vector<std::string>{"001_one.sql", "2_two.sql", "10_ten.sql"}));
  EXPECT_EQ(files[0].version, 1);
  EXPECT_EQ(files[1].version, 2);
  EXPECT_EQ(files[2].version, 10);
  EXPECT_EQ(files[2].sql, "SELECT 10;");
}

TEST(LoadMigrations, RejectsBadNames) {
  for (const std::string bad : {"grid.sql", "1-grid.sql", "001_.sql", "001grid.sql", "_grid.sql",
                                "001_gr id.sql", "0000000001_too_long.sql"}) {
    TempDir dir;
    dir.write("001_ok.sql", "SELECT 1;");
    dir.write(bad, "SELECT 1;");
    const std::string err = error_of([&] { pg::load_migrations(dir.path()); });
    EXPECT_NE(err.find("bad migration file name"), std::string::npos) << bad << ": " << err;
    EXPECT_NE(err.find(bad), std::string::npos) << bad << ": " << err;
  }
}

TEST(LoadMigrations, RejectsDuplicateVersions) {
  TempDir dir;
  dir.write("001_a.sql", "SELECT 1;");
  dir.write("1_b.sql", "SELECT 1;");
  const std::string err = error_of([&] { pg::load_migrations(dir.path()); });
  EXPECT_NE(err.find("001_a.sql"), std::string::npos) << err;
  EXPECT_NE(err.find("1_b.sql"), std::string::npos) << err;
  EXPECT_NE(err.find("share version 1"), std::string::npos) << err;
}

TEST(LoadMigrations, MissingDirectoryThrows) {
  const std::string err = error_of([] { pg::load_migrations("/nonexistent/sluice/sql"); });
  EXPECT_NE(err.find("/nonexistent/sluice/sql"), std::string::npos) << err;
}

// ------------------------------------------------------------------------------------------ migrate

TEST(Migrate, FreshDatabaseGetsEveryTableViewIndexAndReferenceRow) {
  auto& server = shared_pg_server();
  const std::string url = server.create_database("migrate_fresh");
  pg::Connection conn(url);
  const int encoding_before = PQclientEncoding(conn.get());

  const pg::MigrateReport report = pg::migrate(conn, kSqlDir);
  EXPECT_EQ(report.applied, kMigrationNames);
  EXPECT_TRUE(report.skipped.empty());
  EXPECT_EQ(PQclientEncoding(conn.get()), encoding_before) << "client_encoding restored";
  EXPECT_EQ(PQtransactionStatus(conn.get()), PQTRANS_IDLE);

  EXPECT_EQ(psql("migrate_fresh",
                 "SELECT table_schema || '.' || table_name || ':' || table_type "
                 "FROM information_schema.tables WHERE table_schema IN ('public', 'flux') "
                 "ORDER BY 1"),
            "flux.market_data:BASE TABLE\n"
            "flux.market_data_types:BASE TABLE\n"
            "flux.mg_bess_readings:BASE TABLE\n"
            "flux.mg_device_registry:BASE TABLE\n"
            "flux.mg_meter_readings:BASE TABLE\n"
            "public.ba_summary:VIEW\n"
            "public.balancing_authorities:BASE TABLE\n"
            "public.cities:BASE TABLE\n"
            "public.datapoint:BASE TABLE\n"
            "public.energy_consumption:BASE TABLE\n"
            "public.latest_observations:VIEW\n"
            "public.observations:BASE TABLE\n"
            "public.sensor_readings:BASE TABLE\n"
            "public.sensors:BASE TABLE\n"
            "public.series:BASE TABLE\n"
            "public.sluice_dead_letter:BASE TABLE\n"
            "public.sluice_idempotency_keys:BASE TABLE\n"
            "public.sluice_schema_migrations:BASE TABLE\n"
            "public.sluice_spool_committed:BASE TABLE\n"
            "public.weather_data:BASE TABLE\n");

  EXPECT_EQ(psql("migrate_fresh",
                 "SELECT schemaname || '.' || indexname FROM pg_indexes "
                 "WHERE schemaname IN ('public', 'flux') ORDER BY 1"),
            "flux.market_data_time_idx\n"
            "flux.market_data_type_time_idx\n"
            "flux.market_data_types_name_key\n"
            "flux.market_data_types_pkey\n"
            "flux.mg_bess_readings_deviceid_time_idx\n"
            "flux.mg_bess_readings_time_idx\n"
            "flux.mg_device_registry_pkey\n"
            "flux.mg_device_registry_site_idx\n"
            "flux.mg_device_registry_type_idx\n"
            "flux.mg_meter_readings_device_time_idx\n"
            "flux.mg_meter_readings_deviceid_time_idx\n"
            "flux.mg_meter_readings_time_idx\n"
            "public.balancing_authorities_code_key\n"
            "public.balancing_authorities_pkey\n"
            "public.cities_pkey\n"
            "public.consumption_city_timestamp\n"
            "public.datapoint_pkey\n"
            "public.energy_consumption_pkey\n"
            "public.idx_cities_location\n"
            "public.idx_cities_timezone\n"
            "public.idx_consumption_city_time\n"
            "public.idx_consumption_time\n"
            "public.idx_observations_ts_series\n"
            "public.idx_observations_value\n"
            "public.idx_sensor_readings_sensor_id_timestamp\n"
            "public.idx_sensor_readings_timestamp\n"
            "public.idx_series_active\n"
            "public.idx_series_ba_type\n"
            "public.idx_weather_city_time\n"
            "public.idx_weather_time\n"
            "public.ix_datapoint_source\n"
            "public.ix_datapoint_source_timestamp\n"
            "public.ix_datapoint_timestamp\n"
            "public.observations_pkey\n"
            "public.sensor_readings_pkey\n"
            "public.sensors_pkey\n"
            "public.sensors_sensor_id_key\n"
            "public.series_ba_id_type_subtype_key\n"
            "public.series_pkey\n"
            "public.sluice_dead_letter_pkey\n"
            "public.sluice_dead_letter_table_failed_at\n"
            "public.sluice_idempotency_keys_created_at\n"
            "public.sluice_idempotency_keys_pkey\n"
            "public.sluice_schema_migrations_pkey\n"
            "public.sluice_spool_committed_pkey\n"
            "public.unique_city_name\n"
            "public.weather_city_timestamp\n"
            "public.weather_data_pkey\n");

  // Keys as the documents define them.
  EXPECT_EQ(psql("migrate_fresh",
                 "SELECT indexdef FROM pg_indexes WHERE indexname IN "
                 "('observations_pkey', 'sensor_readings_pkey', 'datapoint_pkey', "
                 "'idx_sensor_readings_sensor_id_timestamp', 'idx_consumption_time', "
                 "'mg_meter_readings_deviceid_time_idx') ORDER BY indexname"),
            "CREATE UNIQUE INDEX datapoint_pkey ON public.datapoint USING btree (id, \"timestamp\")\n"
            "CREATE INDEX idx_consumption_time ON public.energy_consumption USING brin (\"timestamp\")\n"
            "CREATE INDEX idx_sensor_readings_sensor_id_timestamp ON public.sensor_readings USING btree "
            "(sensor_id, \"timestamp\" DESC)\n"
            "CREATE UNIQUE INDEX mg_meter_readings_deviceid_time_idx ON flux.mg_meter_readings USING "
            "btree (device_id, \"time\")\n"
            "CREATE UNIQUE INDEX observations_pkey ON public.observations USING btree (series_id, ts)\n"
            "CREATE UNIQUE INDEX sensor_readings_pkey ON public.sensor_readings USING btree "
            "(\"timestamp\", sensor_id)\n");

  // Reference rows.
  EXPECT_EQ(psql("migrate_fresh",
                 "SELECT code || '|' || name || '|' || timezone || '|' || region "
                 "FROM balancing_authorities ORDER BY code"),
            "CAISO|California ISO|America/Los_Angeles|Western\n"
            "ERCOT|Electric Reliability Council of Texas|America/Chicago|Texas\n"
            "MISO|Midcontinent ISO|America/Chicago|Central\n"
            "PJM|PJM Interconnection|America/New_York|Eastern\n"
            "SPP|Southwest Power Pool|America/Chicago|Central\n");
  EXPECT_EQ(psql("migrate_fresh",
                 "SELECT id || '|' || name || '|' || description || '|' || unit "
                 "FROM flux.market_data_types ORDER BY id"),
            "1|niv_estimate|Net Imbalance Volume Estimate|MW\n"
            "2|wholesale_price|Wholesale Electricity Price|\u00a3/MWh\n"
            "3|imbalance_price|System Imbalance Price|\u00a3/MWh\n"
            "4|axle_dispatch|Axle Platform Dispatch Signal|kW\n");

  // Type, extensions, sequence ownership.
  EXPECT_EQ(psql("migrate_fresh",
                 "SELECT string_agg(attname || ' ' || format_type(atttypid, atttypmod), ', ' "
                 "ORDER BY attnum) FROM pg_attribute "
                 "WHERE attrelid = 'flux.market_data_input'::regclass AND attnum > 0"),
            "time timestamp with time zone, type integer, value real\n");
  EXPECT_EQ(psql("migrate_fresh",
                 "SELECT extname FROM pg_extension WHERE extname IN ('cube', 'earthdistance') "
                 "ORDER BY 1"),
            "cube\nearthdistance\n");
  EXPECT_EQ(psql("migrate_fresh", "SELECT pg_get_serial_sequence('sensor_readings', 'id')"),
            "public.sensor_readings_id_seq\n");

  // Ledger: one row per file with its checksum.
  std::string expected_ledger;
  for (const auto& f : pg::load_migrations(kSqlDir)) {
    expected_ledger += std::to_string(f.version) + "|" + f.name + "|" + f.checksum + "\n";
  }
  EXPECT_EQ(psql("migrate_fresh",
                 "SELECT version || '|' || name || '|' || checksum FROM sluice_schema_migrations "
                 "ORDER BY version"),
            expected_ledger);

  // The advisory lock was released: another session can take it at once.
  EXPECT_EQ(psql("migrate_fresh",
                 "SELECT pg_try_advisory_lock(" + std::to_string(pg::kMigrationLockKey) + ")"),
            "t\n");
}

TEST(Migrate, SecondRunAppliesNothing) {
  auto& server = shared_pg_server();
  const std::string url = server.create_database("migrate_rerun");
  pg::Connection conn(url);
  ASSERT_EQ(pg::migrate(conn, kSqlDir).applied.size(), kMigrationNames.size());
  const std::string ledger_before =
      psql("migrate_rerun", "SELECT version, applied_at FROM sluice_schema_migrations ORDER BY 1");

  const pg::MigrateReport again = pg::migrate(conn, kSqlDir);
  EXPECT_TRUE(again.applied.empty());
  EXPECT_EQ(again.skipped, kMigrationNames);

  pg::Connection other(url);  // a new session sees the same
  const pg::MigrateReport third = pg::migrate(other, kSqlDir);
  EXPECT_TRUE(third.applied.empty());
  EXPECT_EQ(third.skipped, kMigrationNames);

  EXPECT_EQ(psql("migrate_rerun", "SELECT version, applied_at FROM sluice_schema_migrations ORDER BY 1"),
            ledger_before);
  EXPECT_EQ(psql("migrate_rerun", "SELECT count(*) FROM balancing_authorities"), "5\n");
  EXPECT_EQ(psql("migrate_rerun", "SELECT count(*) FROM flux.market_data_types"), "4\n");
}

TEST(Migrate, PendingFilesAreAppliedInOrderOnTopOfExistingOnes) {
  auto& server = shared_pg_server();
  const std::string url = server.create_database("migrate_pending");
  TempDir dir;
  dir.copy_from(kSqlDir);
  pg::Connection conn(url);
  ASSERT_EQ(pg::migrate(conn, dir.path()).applied, kMigrationNames);

  dir.write("901_second.sql", "ALTER TABLE extra_table ADD COLUMN b int;");
  dir.write("900_first.sql", "CREATE TABLE extra_table (a int);");
  const pg::MigrateReport report = pg::migrate(conn, dir.path());
  EXPECT_EQ(report.applied, (std::vector<std::string>{"900_first.sql", "901_second.sql"}));
  EXPECT_EQ(report.skipped, kMigrationNames);
  EXPECT_EQ(psql("migrate_pending",
                 "SELECT string_agg(column_name, ',' ORDER BY ordinal_position) "
                 "FROM information_schema.columns WHERE table_name = 'extra_table'"),
            "a,b\n");
  EXPECT_EQ(psql("migrate_pending", "SELECT count(*) FROM sluice_schema_migrations"),
            std::to_string(kMigrationNames.size() + 2) + "\n");
}

TEST(Migrate, ChangedChecksumIsAnErrorNamingTheFile) {
  auto& server = shared_pg_server();
  const std::string url = server.create_database("migrate_changed");
  TempDir dir;
  dir.copy_from(kSqlDir);
  pg::Connection conn(url);
  ASSERT_EQ(pg::migrate(conn, dir.path()).applied.size(), kMigrationNames.size());

  dir.append("003_flux.sql", "\n-- an edit after the fact\n");
  dir.write("900_new.sql", "CREATE TABLE must_not_exist (a int);");
  const std::string err = error_of([&] { pg::migrate(conn, dir.path()); });
  EXPECT_NE(err.find(dir.path() + "/003_flux.sql"), std::string::npos) << err;
  EXPECT_NE(err.find("already applied"), std::string::npos) << err;
  EXPECT_NE(err.find(pg::load_migrations(kSqlDir)[2].checksum), std::string::npos)
      << "names the recorded checksum: " << err;

  // Nothing was applied, not even the new file, and the connection is still usable.
  EXPECT_EQ(psql("migrate_changed", "SELECT to_regclass('must_not_exist') IS NULL"), "t\n");
  EXPECT_EQ(psql("migrate_changed", "SELECT count(*) FROM sluice_schema_migrations"),
            std::to_string(kMigrationNames.size()) + "\n");
  EXPECT_EQ(PQtransactionStatus(conn.get()), PQTRANS_IDLE);
  EXPECT_EQ(psql("migrate_changed",
                 "SELECT pg_try_advisory_lock(" + std::to_string(pg::kMigrationLockKey) + ")"),
            "t\n");
}

TEST(Migrate, FailingMigrationIsRolledBackAndNamed) {
  auto& server = shared_pg_server();
  const std::string url = server.create_database("migrate_failing");
  TempDir dir;
  dir.write("001_ok.sql", "CREATE TABLE ok_table (a int);");
  dir.write("002_bad.sql", "CREATE TABLE half_table (a int);\nSELECT * FROM no_such_table;");
  dir.write("003_later.sql", "CREATE TABLE later_table (a int);");
  pg::Connection conn(url);

  try {
    pg::migrate(conn, dir.path());
    FAIL() << "expected PgError";
  } catch (const pg::PgError& e) {
    EXPECT_EQ(e.sqlstate(), "42P01");
    EXPECT_NE(std::string(e.what()).find("002_bad.sql"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("no_such_table"), std::string::npos) << e.what();
  }
  EXPECT_EQ(PQtransactionStatus(conn.get()), PQTRANS_IDLE);
  EXPECT_EQ(psql("migrate_failing",
                 "SELECT to_regclass('ok_table') IS NOT NULL, to_regclass('half_table') IS NULL, "
                 "to_regclass('later_table') IS NULL"),
            "t|t|t\n");
  EXPECT_EQ(psql("migrate_failing", "SELECT string_agg(name, ',' ORDER BY version) FROM "
                                    "sluice_schema_migrations"),
            "001_ok.sql\n");

  // Fixed file: the same connection carries on from where it stopped.
  dir.write("002_bad.sql", "CREATE TABLE half_table (a int);");
  const pg::MigrateReport report = pg::migrate(conn, dir.path());
  EXPECT_EQ(report.applied, (std::vector<std::string>{"002_bad.sql", "003_later.sql"}));
  EXPECT_EQ(report.skipped, (std::vector<std::string>{"001_ok.sql"}));
}

TEST(Migrate, ConcurrentMigratorsApplyEachFileOnce) {
  auto& server = shared_pg_server();
  const std::string url = server.create_database("migrate_concurrent");
  constexpr int kMigrators = 4;
  std::vector<pg::MigrateReport> reports(kMigrators);
  std::vector<std::string> errors(kMigrators);
  std::vector<std::thread> threads;
  for (int i = 0; i < kMigrators; ++i) {
    threads.emplace_back([&, i] {
      try {
        pg::Connection conn(url, "migrate_test");
        reports[i] = pg::migrate(conn, kSqlDir);
      } catch (const std::exception& e) {
        errors[i] = e.what();
      }
    });
  }
  for (auto& t : threads) t.join();

  std::vector<std::string> all_applied;
  for (int i = 0; i < kMigrators; ++i) {
    EXPECT_EQ(errors[i], "") << "migrator " << i;
    EXPECT_EQ(reports[i].applied.size() + reports[i].skipped.size(), kMigrationNames.size());
    all_applied.insert(all_applied.end(), reports[i].applied.begin(), reports[i].applied.end());
  }
  std::sort(all_applied.begin(), all_applied.end());
  EXPECT_EQ(all_applied, kMigrationNames);  // each file exactly once
  EXPECT_EQ(psql("migrate_concurrent", "SELECT count(*) FROM balancing_authorities"), "5\n");
}

TEST(Migrate, SampleRowInsertsIntoEveryTable) {
  auto& server = shared_pg_server();
  const std::string url = server.create_database("migrate_rows");
  pg::Connection conn(url);
  pg::migrate(conn, kSqlDir);

  psql("migrate_rows", R"SQL(
INSERT INTO series (ba_id, type, subtype, units, eia_series_id)
  SELECT id, 'demand', NULL, 'MW', 'EBA.PJM-ALL.D.H' FROM balancing_authorities WHERE code = 'PJM';
INSERT INTO observations (series_id, ts, value)
  SELECT id, '2024-01-01T00:00:00Z', 91234.567 FROM series;
INSERT INTO observations (series_id, ts, value, quality_flag)
  SELECT id, '2024-01-01T01:00:00Z', 92000.5, 'estimated' FROM series;

INSERT INTO sensors (sensor_id, type, location) VALUES ('pump-7', 'vibration', 'plant-a');
INSERT INTO sensor_readings ("timestamp", sensor_id, sensor_type, value, unit, quality, sensor_metadata)
  VALUES ('2024-01-01T00:00:00Z', 'pump-7', 'vibration', 0.42, 'mm/s', 0.99, '{"axis": "x"}');
INSERT INTO sensor_readings ("timestamp", sensor_id, value)
  VALUES ('2024-01-01T00:00:01Z', 'pump-7', 0.43);

INSERT INTO flux.mg_device_registry (id, name, type, site, metadata)
  VALUES ('123e4567-e89b-12d3-a456-426614174000', 'meter-1', 'meter', 'WLCE', '{"modbus_address": 1}');
INSERT INTO flux.mg_meter_readings ("time", device_id, frequency, power_total_active, energy_imported_active)
  VALUES ('2024-01-01T00:00:00Z', '123e4567-e89b-12d3-a456-426614174000', 50.01, 12.5, 1000.25);
INSERT INTO flux.mg_bess_readings ("time", device_id, soe, target_power, available_inverter_blocks, command_source)
  VALUES ('2024-01-01T00:00:00Z', '123e4567-e89b-12d3-a456-426614174000', 55.5, -20, 4, 1);
INSERT INTO flux.market_data ("time", type, value, metadata)
  VALUES ('2024-01-01T00:00:00Z', 2, 85.3, '{"source": "test"}');

INSERT INTO datapoint ("timestamp", source, value, metadata)
  VALUES ('2024-01-01T00:00:00Z', 'electricity_price', 0.25, '{"currency": "NOK"}');

INSERT INTO cities (name, latitude, longitude, timezone)
  VALUES ('Mumbai', 19.076090, 72.877426, 'Asia/Kolkata');
INSERT INTO energy_consumption (city_id, "timestamp", consumption_kwh, peak_demand_kw)
  SELECT id, '2024-01-01T00:00:00Z', 1234.56, 99.5 FROM cities;
INSERT INTO weather_data (city_id, "timestamp", temperature, humidity, wind_speed, precipitation)
  SELECT id, '2024-01-01T00:00:00Z', 28.5, 70.25, 3.1, 0 FROM cities;
)SQL");

  EXPECT_EQ(psql("migrate_rows", "SELECT code, series_count, latest_data_time FROM ba_summary "
                                 "WHERE series_count > 0"),
            "PJM|1|2024-01-01 01:00:00+00\n");
  EXPECT_EQ(psql("migrate_rows", "SELECT value, quality_flag FROM latest_observations"),
            "92000.500|estimated\n");
  EXPECT_EQ(psql("migrate_rows", "SELECT id, sensor_id, value, sensor_metadata->>'axis' "
                                 "FROM sensor_readings ORDER BY \"timestamp\""),
            "1|pump-7|0.42|x\n2|pump-7|0.43|\n");
  EXPECT_EQ(psql("migrate_rows",
                 "SELECT (SELECT count(*) FROM flux.mg_meter_readings) || ',' || "
                 "(SELECT count(*) FROM flux.mg_bess_readings) || ',' || "
                 "(SELECT count(*) FROM flux.market_data) || ',' || "
                 "(SELECT count(*) FROM flux.mg_device_registry) || ',' || "
                 "(SELECT count(*) FROM datapoint) || ',' || "
                 "(SELECT count(*) FROM energy_consumption) || ',' || "
                 "(SELECT count(*) FROM weather_data)"),
            "1,1,1,1,1,1,1\n");
  EXPECT_EQ(psql("migrate_rows", "SELECT id IS NOT NULL, created_at IS NOT NULL FROM flux.mg_bess_readings"),
            "t|t\n");
  // earthdistance works on the indexed expression.
  EXPECT_EQ(psql("migrate_rows",
                 "SELECT round(earth_distance(ll_to_earth(latitude, longitude), "
                 "ll_to_earth(19.076090, 72.877426))) FROM cities"),
            "0\n");

  // The keys reject what they must.
  const std::string dup = error_of([] {
    psql("migrate_rows",
         "INSERT INTO flux.mg_bess_readings (\"time\", device_id, soe) VALUES "
         "('2024-01-01T00:00:00Z', '123e4567-e89b-12d3-a456-426614174000', 1);");
  });
  EXPECT_NE(dup.find("mg_bess_readings_deviceid_time_idx"), std::string::npos) << dup;
  const std::string fk = error_of([] {
    psql("migrate_rows",
         "INSERT INTO sensor_readings (\"timestamp\", sensor_id, value) VALUES (now(), 'nope', 1);");
  });
  EXPECT_NE(fk.find("sensor_readings_sensor_id_fkey"), std::string::npos) << fk;
  const std::string pk = error_of([] {
    psql("migrate_rows", "INSERT INTO sensor_readings (\"timestamp\", sensor_id, value) VALUES "
                         "('2024-01-01T00:00:00Z', 'pump-7', 9);");
  });
  EXPECT_NE(pk.find("sensor_readings_pkey"), std::string::npos) << pk;
}

TEST(Migrate, LedgerSurvivesAServerRestart) {
  auto& server = shared_pg_server();
  const std::string url = server.create_database("migrate_restart");
  {
    pg::Connection conn(url);
    ASSERT_EQ(pg::migrate(conn, kSqlDir).applied.size(), kMigrationNames.size());
  }
  const int port = server.port();
  server.restart();
  ASSERT_TRUE(server.running());
  EXPECT_EQ(server.port(), port);
  pg::Connection conn(url);
  const pg::MigrateReport report = pg::migrate(conn, kSqlDir);
  EXPECT_TRUE(report.applied.empty());
  EXPECT_EQ(report.skipped, kMigrationNames);
}

}  // namespace
}  // namespace sluice
