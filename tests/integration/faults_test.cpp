// Fault-injection tests of the `committed` acknowledgement path, end to end: the sluiced binary,
// several keep-alive HTTP senders and a real PostgreSQL 15 that the tests kill, restart and stop.
//
//   senders (threads, one keep-alive connection each) ── POST /v1/write/fault_rows ──► sluiced
//     every request carries rows of its own (sender, seq) range; a range is never sent twice,
//     whatever the answer, so a row stored twice can only come from sluice itself
//   faults: kill -9 of sluiced · PostgreSQL fast restart · PostgreSQL stopped for 30 s
//   check:  every row of a 200 answer is in the table exactly once, with its content; rows of a
//           429/503 answer are not stored; rows of a 504 answer (accepted, commit not confirmed
//           in time) are stored once when sluiced stays up; no (sender, seq) anywhere twice
//
// Plus the bad-row isolation through the daemon (10,000 rows, foreign key, CHECK, numeric
// overflow, duplicate key under `error`) and the three conflict rules on a hypertable-shaped
// table configured per table.
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include <gtest/gtest.h>

#include "pg/connection.h"
#include "pg/migrate.h"
#include "support/daemon_process.h"
#include "support/http_client.h"
#include "support/pg_server.h"

namespace sluice {
namespace {

using namespace std::chrono_literals;
using test::DaemonProcess;
using test::HttpClient;

constexpr long long kBaseEpoch = 1735689600LL;  // 2025-01-01T00:00:00Z

struct Ports {
  int http = test::free_tcp_port();
  int admin = test::free_tcp_port();
};

// Small ring and writer queue, so an outage fills them within seconds; a short ack timeout, so a
// sender waiting for a commit that cannot happen gets its 504 during the outage.
std::string config_json(const Ports& p, const std::string& tables = R"([{"name": "fault_rows"}])") {
  return R"({
    "database": {"url": "ignored: SLUICE_DATABASE_URL wins", "connections": 2},
    "pipeline": {"io_threads": 2, "ring_capacity": 4, "writer_queue_batches": 2},
    "batch": {"max_rows": 5000, "max_age_ms": 20},
    "http": {"listen": "127.0.0.1:)" + std::to_string(p.http) + R"(", "ack_timeout_ms": 3000},
    "admin": {"listen": "127.0.0.1:)" + std::to_string(p.admin) + R"("},
    "log": {"level": "warn"},
    "tables": )" + tables + R"(
  })";
}

// No unique key on purpose: a row stored twice stays visible as two rows.
constexpr const char* kSchema = R"sql(
CREATE TABLE fault_rows (
  time   timestamptz NOT NULL,
  sender integer NOT NULL,
  seq    bigint NOT NULL,
  value  double precision NOT NULL,
  note   text NOT NULL
);
)sql";

std::string fresh_database(const std::string& name) {
  auto& server = test::shared_pg_server();
  const std::string url = server.create_database(name);
  pg::Connection conn(url);
  pg::migrate(conn, std::string(SLUICE_SOURCE_DIR) + "/sql");  // includes sluice_dead_letter
  conn.exec(kSchema);
  return url;
}

double value_of(int sender, long long seq) { return static_cast<double>(seq) * 10 + sender + 0.25; }
std::string note_of(int sender, long long seq) { return "s" + std::to_string(sender) + "-" + std::to_string(seq); }

std::string rows_json(int sender, long long first, int n) {
  std::string body = "[";
  for (int i = 0; i < n; ++i) {
    const long long seq = first + i;
    if (i) body += ',';
    body += R"({"time":)" + std::to_string(kBaseEpoch + seq) + R"(,"sender":)" + std::to_string(sender) +
            R"(,"seq":)" + std::to_string(seq) + R"(,"value":)" + std::to_string(value_of(sender, seq)) +
            R"(,"note":")" + note_of(sender, seq) + "\"}";
  }
  return body + "]";
}

struct Sent {
  int sender;
  long long first;
  int rows;
  int status;               // HTTP status, -1 when the connection failed or closed
  std::string retry_after;  // the Retry-After header, empty when absent
  std::string body;
};

// Senders posting back to back on keep-alive connections until stop().
class Load {
 public:
  Load(int http_port, int senders, int rows_per_request) : rows_(rows_per_request) {
    for (int s = 0; s < senders; ++s) {
      threads_.emplace_back([this, http_port, s] {
        HttpClient c("127.0.0.1", http_port);
        for (long long first = 0; go_.load(); first += rows_) {
          auto r = c.post("/v1/write/fault_rows", rows_json(s, first, rows_), "application/json",
                          {{"X-Sluice-Ack", "committed"}});
          Sent sent{s, first, rows_, r.status, r.headers.count("retry-after") ? r.headers["retry-after"] : "",
                    r.body};
          {
            std::lock_guard<std::mutex> lock(mutex_);
            sent_.push_back(std::move(sent));
          }
          if (r.status != 200) {
            if (r.status < 0) c.close();
            std::this_thread::sleep_for(100ms);  // the next range, a moment later: never a resend
          }
        }
      });
    }
  }
  ~Load() { stop(); }
  void stop() {
    go_ = false;
    for (auto& t : threads_) {
      if (t.joinable()) t.join();
    }
  }
  std::vector<Sent> sent() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return sent_;
  }
  // How many requests got `status` so far.
  size_t count(int status) const {
    std::lock_guard<std::mutex> lock(mutex_);
    return static_cast<size_t>(std::count_if(sent_.begin(), sent_.end(), [&](const Sent& s) { return s.status == status; }));
  }

 private:
  int rows_;
  std::atomic<bool> go_{true};
  std::vector<std::thread> threads_;
  mutable std::mutex mutex_;
  std::vector<Sent> sent_;
};

struct Verdict {
  long long acked_rows = 0;      // rows of 200 answers
  long long stored_rows = 0;     // rows in the table
  std::map<int, int> statuses;   // answers by status
};

// Checks the table against what the senders were told. `unconfirmed_must_be_stored`: sluiced
// stayed up and drained (SIGTERM exit 0), so every accepted row (200 and 504) must be stored.
Verdict verify(const std::string& url, const std::vector<Sent>& sent, bool unconfirmed_must_be_stored) {
  Verdict v;
  std::unordered_map<long long, int> count;  // sender * 1e9 + seq
  pg::Connection conn(url);
  auto r = conn.query("SELECT sender, seq, value, note FROM fault_rows");
  long long bad_content = 0;
  for (int i = 0; i < PQntuples(r.get()); ++i) {
    const int sender = std::atoi(PQgetvalue(r.get(), i, 0));
    const long long seq = std::atoll(PQgetvalue(r.get(), i, 1));
    ++count[sender * 1000000000LL + seq];
    if (std::strtod(PQgetvalue(r.get(), i, 2), nullptr) != value_of(sender, seq) ||
        note_of(sender, seq) != PQgetvalue(r.get(), i, 3)) {
      ++bad_content;
    }
  }
  v.stored_rows = PQntuples(r.get());
  EXPECT_EQ(bad_content, 0) << "rows whose content differs from what was sent";
  long long twice = 0;
  for (const auto& [key, n] : count) twice += n > 1;
  EXPECT_EQ(twice, 0) << "rows stored more than once";

  long long stored_sent = 0;
  for (const Sent& s : sent) {
    ++v.statuses[s.status];
    long long present = 0;
    for (long long seq = s.first; seq < s.first + s.rows; ++seq) {
      auto it = count.find(s.sender * 1000000000LL + seq);
      present += it != count.end();
    }
    stored_sent += present;
    switch (s.status) {
      case 200:
        v.acked_rows += s.rows;
        EXPECT_EQ(present, s.rows) << "acknowledged rows missing: sender " << s.sender << " from " << s.first;
        break;
      case 429:
      case 503:
        EXPECT_EQ(present, 0) << "refused rows stored: sender " << s.sender << " from " << s.first << ": " << s.body;
        break;
      case 504:
        if (unconfirmed_must_be_stored) {
          EXPECT_EQ(present, s.rows) << "accepted (504) rows lost: sender " << s.sender << " from " << s.first;
        }
        break;
      default:  // -1: the connection broke (kill -9); all or nothing
        EXPECT_TRUE(present == 0 || present == s.rows) << "status " << s.status << ": " << present << " of " << s.rows;
    }
  }
  EXPECT_EQ(stored_sent, v.stored_rows) << "rows in the table that no request sent";
  return v;
}

int readyz(int admin_port) { return test::http_get(admin_port, "/readyz").status; }

bool wait_for_status(int admin_port, int want, std::chrono::milliseconds limit) {
  const auto until = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < until) {
    if (readyz(admin_port) == want) return true;
    std::this_thread::sleep_for(50ms);
  }
  return false;
}

// Polls /readyz in the background and remembers every status seen.
class ReadyWatch {
 public:
  explicit ReadyWatch(int admin_port)
      : thread_([this, admin_port] {
          while (go_.load()) {
            const int s = readyz(admin_port);
            {
              std::lock_guard<std::mutex> lock(mutex_);
              seen_.insert(s);
            }
            std::this_thread::sleep_for(20ms);
          }
        }) {}
  ~ReadyWatch() { stop(); }
  void stop() {
    go_ = false;
    if (thread_.joinable()) thread_.join();
  }
  bool saw(int status) {
    std::lock_guard<std::mutex> lock(mutex_);
    return seen_.count(status) != 0;
  }

 private:
  std::atomic<bool> go_{true};
  std::mutex mutex_;
  std::set<int> seen_;
  std::thread thread_;
};

long long metric(const std::string& text, const std::string& series) {
  const auto at = text.find("\n" + series + " ");
  if (at == std::string::npos) return -1;
  return std::atoll(text.c_str() + at + series.size() + 2);
}

// kill -9 during a sustained committed-ack load, then a restart on the same database.
TEST(Faults, KillNineUnderLoadKeepsEveryCommittedAckExactlyOnce) {
  const std::string url = fresh_database("faults_kill9");
  Ports p;
  auto d = std::make_unique<DaemonProcess>();
  d->start(config_json(p), url, p.admin);
  {
    Load load(p.http, 4, 200);
    std::this_thread::sleep_for(2s);
    ASSERT_GT(load.count(200), 10u) << "the load did not run";
    EXPECT_EQ(d->stop(SIGKILL), 128 + SIGKILL);
    load.stop();
    const Verdict v = verify(url, load.sent(), false);
    EXPECT_GT(v.acked_rows, 2000);
    EXPECT_GE(v.stored_rows, v.acked_rows);
  }
  // Restarted on the same database, it takes new rows next to the old ones (nothing to replay
  // with committed acks: whatever was not committed was not acknowledged).
  d = std::make_unique<DaemonProcess>();
  d->start(config_json(p), url, p.admin);
  HttpClient c("127.0.0.1", p.http);
  const auto r = c.post("/v1/write/fault_rows", rows_json(9, 0, 50));
  EXPECT_EQ(r.status, 200) << r.body;
  pg::Connection conn(url);
  auto q = conn.query("SELECT count(*) FROM fault_rows WHERE sender = 9");
  EXPECT_STREQ(PQgetvalue(q.get(), 0, 0), "50");
  EXPECT_EQ(d->stop(SIGTERM), 0) << d->log();
}

// PostgreSQL fast-restarted mid-load: the writers reconnect by themselves.
TEST(Faults, PostgresRestartMidLoadLosesAndDuplicatesNothing) {
  const std::string url = fresh_database("faults_pg_restart");
  Ports p;
  DaemonProcess d;
  d.start(config_json(p), url, p.admin);
  Load load(p.http, 4, 200);
  ReadyWatch watch(p.admin);
  std::this_thread::sleep_for(1s);
  const size_t before = load.count(200);
  ASSERT_GT(before, 5u) << "the load did not run";
  // The restart, with its down time as long as readiness needs to notice it: a plain fast restart can
  // be over between two polls of /readyz on a busy machine.
  auto& server = test::shared_pg_server();
  server.stop_keep_data();
  const bool noticed = wait_for_status(p.admin, 503, 10s);
  server.start_again();
  EXPECT_TRUE(noticed) << "/readyz never reflected the restart";
  // Ingestion resumes without touching sluiced.
  EXPECT_TRUE(wait_for_status(p.admin, 200, 15s)) << d.log();
  const auto resumed_until = std::chrono::steady_clock::now() + 15s;
  while (load.count(200) < before + 20 && std::chrono::steady_clock::now() < resumed_until) {
    std::this_thread::sleep_for(50ms);
  }
  EXPECT_GE(load.count(200), before + 20) << "ingestion did not resume: " << d.log();
  load.stop();
  watch.stop();
  EXPECT_TRUE(watch.saw(200));
  const std::string m = test::http_get(p.admin, "/metrics").body;
  EXPECT_GE(metric(m, "sluice_writer_events_total{event=\"connection_lost\"}"), 1) << m;
  EXPECT_EQ(d.stop(SIGTERM), 0) << d.log();
  const Verdict v = verify(url, load.sent(), true);
  EXPECT_GT(v.acked_rows, 4000);
}

// PostgreSQL stopped for 30 s mid-load: /readyz false meanwhile; senders get 504 for what waited
// for a commit and, once the ring is full, 503 with a Retry-After; everything comes back after.
TEST(Faults, PostgresDownThirtySecondsMidLoad) {
  const std::string url = fresh_database("faults_pg_outage");
  Ports p;
  DaemonProcess d;
  d.start(config_json(p), url, p.admin);
  auto& server = test::shared_pg_server();
  struct Restore {  // never leave the shared server down for the next test
    ~Restore() {
      if (!test::shared_pg_server().running()) test::shared_pg_server().start_again();
    }
  } restore;

  Load load(p.http, 4, 200);
  std::this_thread::sleep_for(1s);
  const size_t before = load.count(200);
  ASSERT_GT(before, 5u) << "the load did not run";
  server.stop_keep_data();  // returns once the server is down: nothing commits after this
  const auto down_at = std::chrono::steady_clock::now();
  const size_t acked_at_down = load.count(200);
  EXPECT_TRUE(wait_for_status(p.admin, 503, 5s)) << "/readyz still ready with the database down";
  int ready_during = 0;
  while (std::chrono::steady_clock::now() - down_at < 30s) {
    if (readyz(p.admin) == 200) ++ready_during;
    std::this_thread::sleep_for(250ms);
  }
  const size_t acked_while_down = load.count(200) - acked_at_down;
  server.start_again();
  EXPECT_EQ(ready_during, 0) << "/readyz said ready during the outage";
  EXPECT_TRUE(wait_for_status(p.admin, 200, 15s)) << d.log();
  const size_t after = load.count(200);
  const auto resumed_until = std::chrono::steady_clock::now() + 15s;
  while (load.count(200) < after + 20 && std::chrono::steady_clock::now() < resumed_until) {
    std::this_thread::sleep_for(50ms);
  }
  EXPECT_GE(load.count(200), after + 20) << "ingestion did not resume: " << d.log();
  load.stop();

  // What the senders got during the outage.
  // At most the answers already on their way when the server went down (one per sender).
  EXPECT_LE(acked_while_down, 4u) << "commits acknowledged while the database was down";
  EXPECT_GT(load.count(504), 0u) << "no request waited for its commit until the ack timeout";
  EXPECT_GT(load.count(503), 0u) << "the full ring never answered 503 while the database was down";
  for (const Sent& s : load.sent()) {
    if (s.status == 503 || s.status == 429) {
      const int ra = std::atoi(s.retry_after.c_str());
      EXPECT_GE(ra, 1) << s.status << " without a usable Retry-After: '" << s.retry_after << "'";
      EXPECT_LE(ra, 60) << s.retry_after;
    }
    if (s.status == 503) {
      EXPECT_NE(s.body.find("database"), std::string::npos) << s.body;
    }
    if (s.status == 504) {
      EXPECT_NE(s.body.find("may still be committed"), std::string::npos) << s.body;
    }
  }
  const std::string m = test::http_get(p.admin, "/metrics").body;
  EXPECT_GT(metric(m, "sluice_http_requests_refused_total{reason=\"database_unavailable\"}"), 0) << m;
  EXPECT_EQ(d.stop(SIGTERM), 0) << d.log();
  const Verdict v = verify(url, load.sent(), true);
  EXPECT_GT(v.acked_rows, 4000);
}

// 10,000 rows in one request, some of which the database refuses: exactly the good ones are
// stored, each refused one is in sluice_dead_letter with its SQLSTATE.
TEST(Faults, TenThousandRowRequestWithRowsTheDatabaseRefuses) {
  const std::string url = fresh_database("faults_bad_rows");
  test::shared_pg_server().psql("faults_bad_rows", R"sql(
    CREATE TABLE fault_devices (id integer PRIMARY KEY);
    INSERT INTO fault_devices SELECT generate_series(0, 9);
    CREATE TABLE fault_checked (
      time    timestamptz NOT NULL,
      device  integer NOT NULL REFERENCES fault_devices (id),
      seq     bigint NOT NULL,
      reading numeric(8,2) CHECK (reading >= 0),
      counter bigint CHECK (counter::integer >= 0),
      PRIMARY KEY (time, device)
    );)sql");
  Ports p;
  DaemonProcess d;
  d.start(config_json(p, R"([{"name": "fault_checked", "conflict": "error"}])"), url, p.admin);
  // 101: unknown device (23503) · 2002: negative reading (23514) · 4004: a counter that overflows
  // the CHECK's integer cast (22003, numeric value out of range, raised by the database) · 9009:
  // same (time, device) as seq 9 (23505). 3003: 12345678.5 does not fit numeric(8,2): the encoder
  // knows the type modifier and refuses it at the edge (a row error in the answer, not a dead letter).
  std::string body = "[";
  long long good_sum = 0;
  for (long long seq = 0; seq < 10000; ++seq) {
    long long second = seq;
    int device = static_cast<int>(seq % 10);
    std::string reading = std::to_string(seq) + ".5";
    if (seq == 101) device = 99;
    if (seq == 2002) reading = "-1";
    if (seq == 3003) reading = "12345678.5";
    std::string counter = std::to_string(seq);
    if (seq == 4004) counter = "5000000000";
    if (seq == 9009) second = 9;
    if (seq != 101 && seq != 2002 && seq != 3003 && seq != 4004 && seq != 9009) good_sum += seq;
    if (seq) body += ',';
    body += R"({"time":)" + std::to_string(kBaseEpoch + second) + R"(,"device":)" + std::to_string(device) +
            R"(,"seq":)" + std::to_string(seq) + R"(,"reading":)" + reading + R"(,"counter":)" + counter + "}";
  }
  body += "]";
  HttpClient c("127.0.0.1", p.http);
  const auto r = c.post("/v1/write/fault_checked", body);
  EXPECT_EQ(r.status, 400) << r.body;
  EXPECT_NE(r.body.find("\"accepted\":9995,\"rejected\":5"), std::string::npos) << r.body.substr(0, 500);
  pg::Connection conn(url);
  auto q = conn.query("SELECT count(*), count(DISTINCT seq), sum(seq) FROM fault_checked");
  EXPECT_NE(r.body.find(R"("row":3003,"column":"reading")"), std::string::npos) << r.body.substr(0, 500);
  EXPECT_STREQ(PQgetvalue(q.get(), 0, 0), "9995");
  EXPECT_STREQ(PQgetvalue(q.get(), 0, 1), "9995");
  EXPECT_EQ(std::atoll(PQgetvalue(q.get(), 0, 2)), good_sum);
  auto dl = conn.query("SELECT string_agg(row_data->>'seq' || ':' || sqlstate, ',' ORDER BY (row_data->>'seq')::int), "
                       "bool_and(table_name = 'fault_checked') FROM sluice_dead_letter");
  EXPECT_STREQ(PQgetvalue(dl.get(), 0, 0), "101:23503,2002:23514,4004:22003,9009:23505");
  EXPECT_STREQ(PQgetvalue(dl.get(), 0, 1), "t");
  const std::string m = test::http_get(p.admin, "/metrics").body;
  EXPECT_EQ(metric(m, "sluice_dead_letter_rows_total{table=\"fault_checked\"}"), 4) << m;
  EXPECT_EQ(metric(m, "sluice_rows_committed_total{table=\"fault_checked\"}"), 9995) << m;
  EXPECT_EQ(d.stop(SIGTERM), 0) << d.log();
}

// The three conflict rules, configured per table, on hypertable-shaped tables (the primary key
// includes the time column), through the daemon: the same key sent twice.
TEST(Faults, ConflictRulesPerTableThroughTheDaemon) {
  const std::string url = fresh_database("faults_conflict");
  std::string ddl;
  for (const char* name : {"c_error", "c_ignore", "c_update"}) {
    ddl += std::string("CREATE TABLE ") + name +
           " (time timestamptz NOT NULL, device integer NOT NULL, reading double precision, "
           "PRIMARY KEY (time, device));\n";
  }
  test::shared_pg_server().psql("faults_conflict", ddl);
  Ports p;
  DaemonProcess d;
  d.start(config_json(p, R"([{"name": "c_error", "conflict": "error"}, {"name": "c_ignore", "conflict": "ignore"},
                             {"name": "c_update", "conflict": "update"}])"),
          url, p.admin);
  HttpClient c("127.0.0.1", p.http);
  auto row = [](int second, int device, double reading) {
    return R"({"time":)" + std::to_string(kBaseEpoch + second) + R"(,"device":)" + std::to_string(device) +
           R"(,"reading":)" + std::to_string(reading) + "}";
  };
  for (const char* t : {"c_error", "c_ignore", "c_update"}) {
    const std::string target = std::string("/v1/write/") + t;
    auto first = c.post(target, "[" + row(0, 1, 1.5) + "," + row(1, 1, 2.5) + "]");
    EXPECT_EQ(first.status, 200) << t << ": " << first.body;
    auto second = c.post(target, "[" + row(1, 1, 20.5) + "," + row(2, 1, 3.5) + "]");
    // error: the duplicate is dead-lettered (400, the other row stored); ignore/update: 200.
    EXPECT_EQ(second.status, std::string(t) == "c_error" ? 400 : 200) << t << ": " << second.body;
  }
  pg::Connection conn(url);
  auto rows = [&](const std::string& t) {
    auto q = conn.query("SELECT string_agg(extract(epoch FROM time)::bigint - " + std::to_string(kBaseEpoch) +
                        " || '=' || reading, ',' ORDER BY time) FROM " + t);
    return std::string(PQgetvalue(q.get(), 0, 0));
  };
  EXPECT_EQ(rows("c_error"), "0=1.5,1=2.5,2=3.5");
  EXPECT_EQ(rows("c_ignore"), "0=1.5,1=2.5,2=3.5");
  EXPECT_EQ(rows("c_update"), "0=1.5,1=20.5,2=3.5");
  auto dl = conn.query("SELECT string_agg(table_name || ':' || sqlstate || ':' || (row_data->>'reading'), ',') "
                       "FROM sluice_dead_letter");
  EXPECT_STREQ(PQgetvalue(dl.get(), 0, 0), "c_error:23505:20.5");
  EXPECT_EQ(d.stop(SIGTERM), 0) << d.log();
}

}  // namespace
}  // namespace sluice
