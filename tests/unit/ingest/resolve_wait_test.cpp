// The write services waiting for resolver keys, with a fake resolver service answering on its own
// thread (no database): a request with an uncached key is answered only after the service answered and
// the body was parsed again; a request with cached keys is answered meanwhile on the same IO thread; an
// unreachable database answers 503; UDP datagrams (ndjson and line) with misses are kept and replayed,
// and dropped (counted) beyond the bound. Also run under TSan (the answers cross threads).
#include <algorithm>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <thread>

#include <gtest/gtest.h>

#include "encoder_test_util.h"
#include "ingest/http_write_service.h"
#include "ingest/influx_write_service.h"
#include "ingest/udp_ingest.h"

namespace sluice {
namespace {

using test::make_column;

Catalog make_catalog() {
  Catalog c;
  TableSchema t;
  t.schema = "public";
  t.name = "readings";
  t.config_name = "readings";
  t.quoted = "\"public\".\"readings\"";
  t.columns.push_back(make_column("time", PgType::timestamptz, true));
  t.columns.push_back(make_column("dev", PgType::int8, true));
  t.columns.push_back(make_column("value", PgType::float8));
  t.time_column = 0;
  finish_table_schema(t);
  c.tables.push_back(std::move(t));
  return c;
}

// Answers on its own thread, only while the gate is open; ids come from `ids` (else unknown).
class FakeService : public KeyResolverService {
 public:
  FakeService() : thread_([this] { run(); }) {}
  ~FakeService() override {
    {
      std::lock_guard<std::mutex> l(m_);
      stop_ = true;
      open_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }
  void submit(std::vector<KeyMiss> misses, std::function<void(std::vector<ResolveResult>)> done) override {
    std::lock_guard<std::mutex> l(m_);
    jobs_.push_back({std::move(misses), std::move(done)});
    ++submitted_;
    cv_.notify_all();
  }
  void set_open(bool open) {
    std::lock_guard<std::mutex> l(m_);
    open_ = open;
    cv_.notify_all();
  }
  void set_id(const std::string& device, const std::string& id) {
    std::lock_guard<std::mutex> l(m_);
    ids_[device] = id;
  }
  void set_unavailable(bool u) {
    std::lock_guard<std::mutex> l(m_);
    unavailable_ = u;
  }
  int submitted() {
    std::lock_guard<std::mutex> l(m_);
    return submitted_;
  }

 private:
  struct Job {
    std::vector<KeyMiss> misses;
    std::function<void(std::vector<ResolveResult>)> done;
  };
  void run() {
    std::unique_lock<std::mutex> l(m_);
    for (;;) {
      cv_.wait(l, [this] { return stop_ || (open_ && !jobs_.empty()); });
      if (jobs_.empty()) return;
      Job job = std::move(jobs_.front());
      jobs_.pop_front();
      std::vector<ResolveResult> out;
      for (auto& m : job.misses) {
        ResolveResult r;
        r.resolver = m.resolver;
        r.key = m.key;
        std::vector<std::optional<std::string>> parts;
        decode_key(m.key, parts);
        if (unavailable_) {
          r.status = ResolveStatus::unavailable;
          r.message = "database unavailable: test";
        } else if (auto it = ids_.find(parts.at(0).value_or("")); it != ids_.end()) {
          r.status = ResolveStatus::found;
          r.value = it->second;
        } else {
          r.status = ResolveStatus::unknown;
        }
        out.push_back(std::move(r));
      }
      l.unlock();
      job.done(std::move(out));
      l.lock();
    }
  }
  std::mutex m_;
  std::condition_variable cv_;
  std::deque<Job> jobs_;
  std::map<std::string, std::string> ids_;
  bool open_ = true, stop_ = false, unavailable_ = false;
  int submitted_ = 0;
  std::thread thread_;
};

ResolverSpec device_spec() {
  ResolverSpec s;
  s.table = "readings";
  s.column = "dev";
  s.keys = {"device"};
  s.lookup_sql = "SELECT id FROM devices WHERE name = $1";
  return s;
}

class ResolveWaitTest : public ::testing::Test {
 protected:
  ResolveWaitTest()
      : catalog_(make_catalog()),
        ring_(64),
        registry_({"readings"}, 1),
        ctx_(io_, ring_, registry_.shard(0), catalog_, 100),
        set_(catalog_, {device_spec()}) {
    MeasurementMapping m;
    m.measurement = "r";
    m.table = "readings";
    ctx_.set_line_mapper(std::make_unique<LineMapper>(catalog_, std::vector<MeasurementMapping>{m}));
    ctx_.set_resolvers(std::make_unique<ThreadResolvers>(set_, catalog_.tables.size()), &fake_);
    config_.ack_timeout_ms = 2000;
    http_ = std::make_unique<HttpWriteService>(ctx_, config_);
    influx_ = std::make_unique<InfluxWriteService>(ctx_, config_);
  }

  // Starts a request; its answer lands in `answer` once the io_context has run.
  void start(WriteHandler& h, WriteApi api, std::string& body, std::optional<WriteResponse>& answer) {
    WriteRequest r;
    r.api = api;
    r.table = "readings";
    r.content_type = "application/json";
    r.ack_mode = "accepted";
    r.body = &body;
    h.handle(r, [&answer](WriteResponse w) { answer = std::move(w); });
  }
  // Runs the io_context until `done` or 2 s pass.
  void run_until(const std::function<bool()>& done) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
    while (!done() && std::chrono::steady_clock::now() < deadline) {
      io_.restart();
      io_.run_for(std::chrono::milliseconds(5));
    }
  }
  // Pops every block; returns the total rows and the dev values (8-byte big-endian, second field).
  std::vector<int64_t> drain() {
    std::vector<int64_t> devs;
    BlockPtr b;
    while (ring_.try_pop(b)) {
      size_t off = 0;
      for (uint32_t i = 0; i < b->rows; ++i) {
        test::DecodedTuple t;
        EXPECT_TRUE(test::decode_tuple(b->data.data() + off, b->data.size() - off, t));
        devs.push_back(test::read_be(t.fields.at(1).data(), 8));
        off += t.bytes;
      }
    }
    return devs;
  }

  boost::asio::io_context io_;
  Catalog catalog_;
  BlockRing ring_;
  metrics::Registry registry_;
  IngestContext ctx_;
  ResolverSet set_;
  FakeService fake_;
  HttpConfig config_;
  std::unique_ptr<HttpWriteService> http_;
  std::unique_ptr<InfluxWriteService> influx_;
};

TEST_F(ResolveWaitTest, MissWaitsWhileCachedRequestIsAnswered) {
  fake_.set_id("warm", "7");
  fake_.set_id("cold", "9");
  std::string warm_body = R"([{"device":"warm","time":1,"value":1}])";
  std::optional<WriteResponse> warm;
  start(*http_, WriteApi::json, warm_body, warm);
  run_until([&] { return warm.has_value(); });
  ASSERT_TRUE(warm);
  EXPECT_EQ(warm->status, 200u) << warm->body;
  EXPECT_EQ(drain(), (std::vector<int64_t>{7}));

  fake_.set_open(false);  // the next lookup hangs
  std::string cold_body = R"([{"device":"cold","time":2,"value":2},{"device":"warm","time":3,"value":3}])";
  std::optional<WriteResponse> cold;
  start(*http_, WriteApi::json, cold_body, cold);
  std::string again_body = "r,device=warm value=4 4000000000";
  std::optional<WriteResponse> again;
  start(*influx_, WriteApi::influx_v2, again_body, again);
  run_until([&] { return again.has_value(); });
  ASSERT_TRUE(again) << "a request with cached keys waited for another request's lookup";
  EXPECT_EQ(again->status, 204u) << again->body;
  EXPECT_FALSE(cold.has_value());
  EXPECT_EQ(drain(), (std::vector<int64_t>{7}));  // only the cached request's row so far

  fake_.set_open(true);
  run_until([&] { return cold.has_value(); });
  ASSERT_TRUE(cold);
  EXPECT_EQ(cold->status, 200u) << cold->body;
  EXPECT_EQ(cold->body, R"({"accepted":2,"rejected":0,"errors":[]})");
  EXPECT_EQ(drain(), (std::vector<int64_t>{9, 7}));  // both rows, in body order
  EXPECT_EQ(fake_.submitted(), 2);

  // Unknown under reject: the row is refused naming the key, the other one stored.
  std::string mixed = R"([{"device":"ghost","time":5,"value":5},{"device":"cold","time":6,"value":6}])";
  std::optional<WriteResponse> m;
  start(*http_, WriteApi::json, mixed, m);
  run_until([&] { return m.has_value(); });
  ASSERT_TRUE(m);
  EXPECT_EQ(m->status, 400u);
  EXPECT_NE(m->body.find(R"(resolver \"readings.dev\": unknown key device=\"ghost\" (unknown keys are rejected))"),
            std::string::npos)
      << m->body;
  EXPECT_EQ(drain(), (std::vector<int64_t>{9}));
}

TEST_F(ResolveWaitTest, UnavailableDatabaseAnswers503AndCachesNothing) {
  fake_.set_unavailable(true);
  std::string body = "r,device=x value=1 1000000000";
  std::optional<WriteResponse> a;
  start(*influx_, WriteApi::influx_v2, body, a);
  run_until([&] { return a.has_value(); });
  ASSERT_TRUE(a);
  EXPECT_EQ(a->status, 503u);
  EXPECT_EQ(a->retry_after_s, 1u);
  EXPECT_NE(a->body.find("resolver: database unavailable: test"), std::string::npos) << a->body;
  fake_.set_unavailable(false);
  fake_.set_id("x", "3");
  std::optional<WriteResponse> b;
  start(*influx_, WriteApi::influx_v2, body, b);
  run_until([&] { return b.has_value(); });
  ASSERT_TRUE(b);
  EXPECT_EQ(b->status, 204u) << b->body;
  EXPECT_EQ(drain(), (std::vector<int64_t>{3}));
}

// Lines for a table outside the token's scope are refused before their keys are looked up: a token
// cannot make the resolver look up (or create) registry rows of tables it may not write.
TEST_F(ResolveWaitTest, OutOfScopeLinesNeverReachTheResolver) {
  fake_.set_open(false);
  TableScope scope;
  scope.patterns = {"other_table"};
  std::string body = "r,device=late value=1 1000000000";
  std::optional<WriteResponse> a;
  {
    WriteRequest r;
    r.api = WriteApi::influx_v2;
    r.ack_mode = "accepted";
    r.body = &body;
    r.scope = &scope;
    influx_->handle(r, [&a](WriteResponse w) { a = std::move(w); });
  }
  run_until([&] { return a.has_value(); });
  ASSERT_TRUE(a);
  EXPECT_EQ(a->status, 403u) << a->body;
  EXPECT_EQ(fake_.submitted(), 0);
  EXPECT_TRUE(drain().empty());
  fake_.set_open(true);
}

TEST_F(ResolveWaitTest, UdpDatagramsWithMissesAreKeptAndReplayed) {
  fake_.set_id("u1", "11");
  fake_.set_id("u2", "12");
  UdpIngest json(ctx_, catalog_.tables[0], EpochPrecision::s);
  UdpLineIngest line(ctx_, EpochPrecision::s);
  fake_.set_open(false);
  std::string d1 = "{\"device\":\"u1\",\"time\":1,\"value\":1}\n";
  std::string d2 = "r,device=u2 value=2 2\nr,device=u1 value=3 3\n";
  d1.reserve(d1.size() + 64);
  json.on_datagram(d1.data(), d1.size(), d1.capacity());
  line.on_datagram(d2.data(), d2.size(), d2.size() + 64);
  d1.assign(d1.size(), 'x');  // the handler kept its own copy
  EXPECT_EQ(ctx_.resolvers()->udp_pending.load(), 2u);
  EXPECT_TRUE(drain().empty());
  fake_.set_open(true);
  run_until([&] { return ring_.size_approx() >= 2; });
  auto devs = drain();
  std::sort(devs.begin(), devs.end());
  EXPECT_EQ(devs, (std::vector<int64_t>{11, 11, 12}));
  EXPECT_EQ(ctx_.resolvers()->udp_dropped.load(), 0u);

  // Beyond the bound, datagrams are dropped and counted.
  fake_.set_open(false);
  for (size_t i = 0; i < kMaxPendingDatagrams + 5; ++i) {
    std::string d = "r,device=n" + std::to_string(i) + " value=1 1";
    line.on_datagram(d.data(), d.size(), d.size() + 64);
  }
  EXPECT_EQ(ctx_.resolvers()->udp_dropped.load(), 5u);
  fake_.set_open(true);
  run_until([&] { return ctx_.resolvers()->udp_pending.load() == 0; });
  EXPECT_EQ(ctx_.resolvers()->udp_pending.load(), 0u);
}

}  // namespace
}  // namespace sluice
