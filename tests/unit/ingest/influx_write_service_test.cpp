// InfluxWriteService and UdpLineIngest with a real ring, a hand-built catalog and a real LineMapper
// (no database, no network): every answer of the InfluxDB write endpoints, the precision rules of v1
// and v2, back-pressure, acks completed on another thread, and line protocol datagrams.
#include "ingest/influx_write_service.h"
#include "ingest/udp_ingest.h"

#include <optional>
#include <thread>

#include <gtest/gtest.h>

#include "encoder_test_util.h"

namespace sluice {
namespace {

using test::make_column;

// PostgreSQL epoch (2000-01-01) microseconds of a Unix time in seconds.
constexpr int64_t pg_us(int64_t unix_s) { return (unix_s - 946684800LL) * 1000000LL; }

Catalog make_catalog() {
  Catalog c;
  TableSchema t;
  t.schema = "public";
  t.name = "readings";
  t.config_name = "readings";
  t.quoted = "\"public\".\"readings\"";
  t.columns.push_back(make_column("time", PgType::timestamptz, true));
  t.columns.push_back(make_column("sensor", PgType::text, true));
  t.columns.push_back(make_column("value", PgType::float8, true));
  t.columns.push_back(make_column("extra", PgType::jsonb));
  t.time_column = 0;
  finish_table_schema(t);
  c.tables.push_back(std::move(t));
  return c;
}

MeasurementConfig readings_mapping() {
  MeasurementConfig m;
  m.measurement = "temp";
  m.table = "readings";
  m.tags = {{"id", "sensor"}};
  m.fields = {{"v", "value"}};
  return m;
}

class InfluxWriteServiceTest : public ::testing::Test {
 protected:
  InfluxWriteServiceTest()
      : catalog_(make_catalog()),
        ring_(4),
        registry_({"readings"}, 1),
        ctx_(io_, ring_, registry_.shard(0), catalog_, 100) {
    config_.ack_timeout_ms = 200;
    ctx_.set_line_mapper(std::make_unique<LineMapper>(catalog_, measurement_mappings({readings_mapping()}), 100));
    service_ = std::make_unique<InfluxWriteService>(ctx_, config_);
  }

  WriteResponse send(std::string body, WriteApi api = WriteApi::influx_v2, std::string precision = "",
                     std::string ack = "accepted", std::function<void()> while_waiting = {}) {
    body_ = std::move(body);
    WriteRequest r;
    r.api = api;
    r.precision = precision;
    r.ack_mode = ack;
    r.body = &body_;
    std::optional<WriteResponse> answer;
    service_->handle(r, [&](WriteResponse w) { answer = std::move(w); });
    if (while_waiting) while_waiting();
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
    while (!answer && std::chrono::steady_clock::now() < deadline) {
      io_.restart();
      io_.run_for(std::chrono::milliseconds(10));
    }
    EXPECT_TRUE(answer.has_value()) << "no answer";
    return answer.value_or(WriteResponse{0, "", 0});
  }

  BlockPtr pop() {
    BlockPtr b;
    EXPECT_TRUE(ring_.try_pop(b));
    return b;
  }

  boost::asio::io_context io_;
  Catalog catalog_;
  BlockRing ring_;
  metrics::Registry registry_;
  IngestContext ctx_;
  HttpConfig config_;
  std::unique_ptr<InfluxWriteService> service_;
  std::string body_;
};

TEST_F(InfluxWriteServiceTest, AllLinesWrittenIs204AfterCommit) {
  std::thread writer;
  auto r = send("temp,id=a v=1.5 1700000000000000000\ntemp,id=b v=2 1700000001000000000\n", WriteApi::influx_v2,
                "", "", [&] {
                  BlockPtr b = pop();
                  ASSERT_TRUE(b);
                  EXPECT_EQ(b->rows, 2u);
                  EXPECT_EQ(b->min_time, pg_us(1700000000));
                  EXPECT_EQ(b->max_time, pg_us(1700000001));
                  ASSERT_TRUE(b->ack);
                  writer = std::thread([b = std::move(b)] { b->ack->complete(AckOutcome::committed, b->rows); });
                });
  writer.join();
  EXPECT_EQ(r.status, 204u);
  EXPECT_EQ(r.body, "");
  const std::string m = registry_.render();
  EXPECT_NE(m.find("sluice_rows_accepted_total{table=\"readings\"} 2"), std::string::npos) << m;
}

TEST_F(InfluxWriteServiceTest, PrecisionsOfV1AndV2) {
  struct Case {
    WriteApi api;
    const char* precision;
    const char* ts;
  } cases[] = {
      {WriteApi::influx_v2, "", "1700000000000000000"},  {WriteApi::influx_v2, "ns", "1700000000000000000"},
      {WriteApi::influx_v2, "us", "1700000000000000"},   {WriteApi::influx_v2, "ms", "1700000000000"},
      {WriteApi::influx_v2, "s", "1700000000"},          {WriteApi::influx_v1, "n", "1700000000000000000"},
      {WriteApi::influx_v1, "u", "1700000000000000"},    {WriteApi::influx_v1, "ms", "1700000000000"},
      {WriteApi::influx_v1, "s", "1700000000"},          {WriteApi::influx_v1, "", "1700000000000000000"},
  };
  for (const auto& c : cases) {
    auto r = send(std::string("temp,id=a v=1 ") + c.ts, c.api, c.precision);
    EXPECT_EQ(r.status, 204u) << c.precision << " " << r.body;
    BlockPtr b = pop();
    ASSERT_TRUE(b);
    EXPECT_EQ(b->min_time, pg_us(1700000000)) << c.precision;
  }
  for (const char* bad : {"m", "h"}) {
    auto r = send("temp,id=a v=1 1", WriteApi::influx_v1, bad);
    EXPECT_EQ(r.status, 400u);
    EXPECT_EQ(r.body, std::string("{\"code\":\"invalid\",\"message\":\"precision \\\"") + bad +
                          "\\\" (minutes/hours) is not supported by sluice; use n, ns, u, us, ms or s\"}");
  }
  auto v2n = send("temp,id=a v=1 1", WriteApi::influx_v2, "n");
  EXPECT_EQ(v2n.status, 400u);
  EXPECT_EQ(v2n.body, R"j({"code":"invalid","message":"invalid precision \"n\" (use ns, us, ms or s)"})j");
  EXPECT_EQ(ring_.size_approx(), 0u);
}

TEST_F(InfluxWriteServiceTest, MixedGoodAndBadLinesStoreTheGoodOnesAndAnswer400) {
  auto r = send("temp,id=a v=1 1700000000000000000\n"
                "temp,id=b v= 1\n"
                "# comment\n"
                "other,id=c v=3 1\n"
                "temp,id=d v=4 1700000000000000000\n");
  EXPECT_EQ(r.status, 400u);
  EXPECT_EQ(r.body.rfind(R"({"code":"invalid","message":"partial write: 2 lines written, 2 lines rejected; first: line 2: )", 0), 0u) << r.body;
  EXPECT_NE(r.body.find(R"("line":2,"errors":[{"line":2,"message":"line 2: )"), std::string::npos) << r.body;
  EXPECT_NE(r.body.find(R"({"line":4,"message":"line 4: no table is mapped for measurement \"other\""})"), std::string::npos) << r.body;
  BlockPtr b = pop();
  ASSERT_TRUE(b);
  EXPECT_EQ(b->rows, 2u);
  EXPECT_EQ(ring_.size_approx(), 0u);
  const std::string m = registry_.render();
  EXPECT_NE(m.find("sluice_rows_received_total{table=\"readings\"} 4"), std::string::npos) << m;
  EXPECT_NE(m.find("sluice_rows_accepted_total{table=\"readings\"} 2"), std::string::npos) << m;
}

TEST_F(InfluxWriteServiceTest, AllLinesBadIs400AndNothingQueued) {
  auto r = send("temp,id=a x=1 1\n");
  EXPECT_EQ(r.status, 400u);
  EXPECT_EQ(r.body,
            R"({"code":"invalid","message":"partial write: 0 lines written, 1 line rejected; first: line 1: no column for field \"x\" in table \"readings\"","line":1,"errors":[{"line":1,"message":"line 1: no column for field \"x\" in table \"readings\"","column":"x"}]})");
  EXPECT_EQ(ring_.size_approx(), 0u);
  auto empty = send("\n# only a comment\n");
  EXPECT_EQ(empty.status, 400u);
  EXPECT_EQ(empty.body, R"({"code":"invalid","message":"writing requires points"})");
}

TEST_F(InfluxWriteServiceTest, FullRingIs429ThenRecovers) {
  for (int i = 0; i < 4; ++i) EXPECT_EQ(send("temp,id=a v=1 1").status, 204u);
  auto r = send("temp,id=a v=1 1");
  EXPECT_EQ(r.status, 429u);
  EXPECT_EQ(r.retry_after_s, 1u);
  EXPECT_EQ(r.body, R"({"code":"too many requests","message":"ingest queue is full, retry later"})");
  EXPECT_EQ(ring_.size_approx(), 4u);
  pop();
  EXPECT_EQ(send("temp,id=a v=1 1").status, 204u);
}

TEST_F(InfluxWriteServiceTest, DatabaseRefusalShutdownTimeoutAndClosing) {
  auto failed = send("temp,id=a v=1 1", WriteApi::influx_v1, "", "", [&] {
    pop()->ack->complete(AckOutcome::failed, 0, "23503: violates foreign key");
  });
  EXPECT_EQ(failed.status, 500u);
  EXPECT_EQ(failed.body, R"({"code":"internal error","message":"the database refused rows: 23503: violates foreign key"})");
  auto stopped = send("temp,id=a v=1 1", WriteApi::influx_v1, "", "", [&] {
    pop()->ack->complete(AckOutcome::shutdown, 0, "stopping");
  });
  EXPECT_EQ(stopped.status, 503u);
  EXPECT_EQ(stopped.retry_after_s, 1u);
  BlockPtr kept;
  auto late = send("temp,id=a v=1 1", WriteApi::influx_v2, "", "", [&] { kept = pop(); });
  EXPECT_EQ(late.status, 504u);
  kept->ack->complete(AckOutcome::committed, 1);  // a late completion is harmless
  io_.restart();
  io_.run_for(std::chrono::milliseconds(20));
  EXPECT_EQ(send("temp,id=a v=1 1", WriteApi::influx_v2, "", "sometimes").status, 400u);
  ctx_.set_closing();
  auto closing = send("temp,id=a v=1 1");
  EXPECT_EQ(closing.status, 503u);
  EXPECT_EQ(closing.retry_after_s, 1u);
  EXPECT_EQ(ring_.size_approx(), 0u);
}

TEST_F(InfluxWriteServiceTest, WithoutMeasurementsEveryWriteIs404) {
  boost::asio::io_context io;
  BlockRing ring(4);
  IngestContext ctx(io, ring, registry_.shard(0), catalog_, 100);
  InfluxWriteService service(ctx, config_);
  std::string body = "temp v=1";
  WriteRequest r;
  r.api = WriteApi::influx_v1;
  r.body = &body;
  std::optional<WriteResponse> answer;
  service.handle(r, [&](WriteResponse w) { answer = std::move(w); });
  ASSERT_TRUE(answer);
  EXPECT_EQ(answer->status, 404u);
}

TEST_F(InfluxWriteServiceTest, UdpLineDatagramsStoreTheGoodLines) {
  UdpLineIngest udp(ctx_, EpochPrecision::s);
  std::string d = "temp,id=a v=1 1700000000\ntemp,id=b v=oops 1700000001\ntemp,id=c v=3 1700000002\n";
  d.reserve(d.size() + 64);
  udp.on_datagram(d.data(), d.size(), d.capacity());
  BlockPtr b = pop();
  ASSERT_TRUE(b);
  EXPECT_EQ(b->rows, 2u);
  EXPECT_FALSE(b->ack);
  EXPECT_EQ(b->min_time, pg_us(1700000000));
  EXPECT_EQ(b->max_time, pg_us(1700000002));
  for (int i = 0; i < 5; ++i) udp.on_datagram(d.data(), d.size(), d.capacity());  // 4 fit, 1 dropped
  const std::string m = registry_.render();
  EXPECT_NE(m.find("sluice_udp_datagrams_dropped_total{cause=\"ring_full\"} 1"), std::string::npos) << m;
  EXPECT_NE(m.find("sluice_rows_accepted_total{table=\"readings\"} 10"), std::string::npos) << m;
  EXPECT_NE(m.find("sluice_rows_received_total{table=\"readings\"} 15"), std::string::npos) << m;
}

TEST(MeasurementMappings, ConfigBecomesMapperMappings) {
  MeasurementConfig c = readings_mapping();
  c.extra_json_column = "extra";
  c.unmapped = "ignore";
  c.measurement_column = "m";
  auto ms = measurement_mappings({c});
  ASSERT_EQ(ms.size(), 1u);
  EXPECT_EQ(ms[0].measurement, "temp");
  EXPECT_EQ(ms[0].table, "readings");
  ASSERT_EQ(ms[0].tags.size(), 1u);
  EXPECT_EQ(ms[0].tags[0].from, "id");
  EXPECT_EQ(ms[0].tags[0].to, "sensor");
  ASSERT_EQ(ms[0].fields.size(), 1u);
  EXPECT_EQ(ms[0].fields[0].to, "value");
  EXPECT_EQ(ms[0].extra_json_column, "extra");
  EXPECT_EQ(ms[0].unmapped, UnmappedPolicy::ignore);
  EXPECT_EQ(ms[0].measurement_column, "m");
}

}  // namespace
}  // namespace sluice
