// HttpWriteService and UdpIngest with a real ring and a hand-built catalog (no database, no
// network): the answers for each outcome of a request, back-pressure when the ring is full,
// and that acks completed on another thread are answered on the IO thread.
#include "ingest/http_write_service.h"
#include "ingest/udp_ingest.h"

#include <filesystem>
#include <optional>
#include <thread>

#include <stdlib.h>

#include <gtest/gtest.h>

#include "encoder_test_util.h"
#include "spool/spool.h"

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
  t.columns.push_back(make_column("value", PgType::float8, true));
  t.columns.push_back(make_column("id", PgType::int8, true, true));
  t.time_column = 0;
  finish_table_schema(t);
  c.tables.push_back(std::move(t));
  return c;
}

class WriteServiceTest : public ::testing::Test {
 protected:
  WriteServiceTest()
      : catalog_(make_catalog()),
        ring_(4),
        registry_({"readings"}, 1),
        ctx_(io_, ring_, registry_.shard(0), catalog_, 100) {
    config_.ack_timeout_ms = 200;
    service_ = std::make_unique<HttpWriteService>(ctx_, config_);
  }

  // Sends one request; runs the io_context until the answer arrives (or 2 s pass).
  WriteResponse send(std::string body, std::string table = "readings", std::string ack = "",
                     std::string precision = "", std::function<void()> while_waiting = {}) {
    body_ = std::move(body);
    WriteRequest r;
    r.table = table;
    r.content_type = "application/json";
    r.precision = precision;
    r.ack_mode = ack;
    r.idempotency_key = idempotency_key_;
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
  std::unique_ptr<HttpWriteService> service_;
  std::string body_;
  std::string idempotency_key_;
};

TEST_F(WriteServiceTest, CommittedAckAnswersAfterTheWriterCompletesTheBlock) {
  std::thread writer;
  auto r = send(R"([{"time": 1, "value": 1.5}, {"time": 2, "value": 2}])", "readings", "", "", [&] {
    BlockPtr b = pop();
    ASSERT_TRUE(b);
    EXPECT_EQ(b->rows, 2u);
    ASSERT_TRUE(b->ack);
    // The writer completes on its own thread; the answer must come back through the io_context.
    writer = std::thread([b = std::move(b)] { b->ack->complete(AckOutcome::committed, b->rows); });
  });
  writer.join();
  EXPECT_EQ(r.status, 200u);
  EXPECT_EQ(r.body, R"({"accepted":2,"rejected":0,"errors":[]})");
}

// SIGHUP reload (daemon/reloader.h): a new rows-per-request limit applies to the next request.
TEST_F(WriteServiceTest, LiveSettingsApplyToTheNextRequest) {
  auto r = send(R"([{"time": 1, "value": 1}, {"time": 2, "value": 2}, {"time": 3, "value": 3}])", "readings", "accepted");
  EXPECT_EQ(r.status, 200u) << r.body;
  EXPECT_EQ(pop()->rows, 3u);
  HttpConfig next = config_;
  next.max_rows_per_request = 2;
  service_->apply_live_settings(next);
  r = send(R"([{"time": 1000, "value": 1}, {"time": 2000, "value": 2}, {"time": 3000, "value": 3}])", "readings",
           "accepted");
  EXPECT_EQ(r.status, 400u) << r.body;
  EXPECT_NE(r.body.find(R"("accepted":2,"rejected":1)"), std::string::npos) << r.body;
  BlockPtr b = pop();
  ASSERT_TRUE(b);
  EXPECT_EQ(b->rows, 2u);
}

TEST_F(WriteServiceTest, SpooledAckAnswersAfterTheFsyncAndTheBlockCarriesItsRecordId) {
  auto r = send(R"({"time": 1, "value": 1.5})", "readings", "spooled");
  EXPECT_EQ(r.status, 400u);
  EXPECT_NE(r.body.find("spool.enabled"), std::string::npos) << r.body;
  EXPECT_EQ(ring_.size_approx(), 0u);

  char tmpl[] = "/tmp/sluice-ws-spool-XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  spool::SpoolOptions o;
  o.dir = std::string(tmpl) + "/spool";
  o.max_bytes = 1 << 16;
  o.segment_bytes = 1 << 14;
  {
    spool::Spool sp(o);
    sp.open();
    ctx_.set_spool(&sp, [] { return true; });
    r = send(R"([{"time": 1, "value": 1.5}, {"time": 2, "value": 2}])", "readings", "spooled");
    EXPECT_EQ(r.status, 200u);
    EXPECT_EQ(r.body, R"({"accepted":2,"rejected":0,"errors":[]})");
    BlockPtr b = pop();
    ASSERT_TRUE(b);
    EXPECT_NE(b->spool_id, 0u);
    EXPECT_FALSE(b->ack);  // nobody waits for the commit
    EXPECT_EQ(sp.stats().pending_records.load(), 1u);
    EXPECT_EQ(sp.stats().appended_records.load(), 1u);
    sp.commit(b->spool_id);
    EXPECT_EQ(sp.stats().pending_records.load(), 0u);

    // A body larger than the spool: 503 with Retry-After, nothing queued.
    std::string big = "[";
    for (int i = 0; i < 3000; ++i) big += std::string(i ? "," : "") + R"({"time": 1, "value": 1})";
    big += "]";
    r = send(big, "readings", "spooled");
    EXPECT_EQ(r.status, 503u);
    EXPECT_GE(r.retry_after_s, 1u);
    EXPECT_EQ(ring_.size_approx(), 0u);
    // The database is down too: every ack mode gets the 503 while the spool is full.
    ctx_.set_spool(&sp, [] { return false; });
    r = send(R"({"time": 1, "value": 1})", "readings", "accepted");
    EXPECT_EQ(r.status, 503u);
    EXPECT_NE(r.body.find("spool is full"), std::string::npos) << r.body;
    ctx_.set_spool(nullptr, {});
  }
  std::filesystem::remove_all(tmpl);
}

TEST_F(WriteServiceTest, IdempotencyKeyTagsTheBlocksAndARetryInFlightGets409) {
  IdempotencyGate gate;
  ctx_.set_idempotency_gate(&gate);
  idempotency_key_ = "bad key";
  EXPECT_EQ(send(R"({"time": 1, "value": 1})", "readings", "accepted").status, 400u);
  idempotency_key_ = "k-1";
  // First attempt waits for its commit; a retry meanwhile is refused.
  std::optional<WriteResponse> first;
  body_ = R"({"time": 1, "value": 1})";
  WriteRequest req;
  req.table = "readings";
  req.idempotency_key = idempotency_key_;
  std::string first_body = body_;
  req.body = &first_body;
  service_->handle(req, [&](WriteResponse w) { first = std::move(w); });
  EXPECT_FALSE(first);
  const auto busy = send(R"({"time": 1, "value": 1})", "readings");
  EXPECT_EQ(busy.status, 409u);
  EXPECT_EQ(busy.retry_after_s, 1u);
  BlockPtr b = pop();
  ASSERT_TRUE(b);
  ASSERT_TRUE(b->idempotency_key);
  EXPECT_EQ(*b->idempotency_key, "k-1");
  EXPECT_EQ(b->idempotency_index, 0u);
  b->ack->complete(AckOutcome::committed, b->rows);
  for (int i = 0; i < 100 && !first; ++i) {
    io_.restart();
    io_.run_for(std::chrono::milliseconds(10));
  }
  ASSERT_TRUE(first);
  EXPECT_EQ(first->status, 200u);
  // Answered: the key may be used again (the writer decides whether rows are stored).
  EXPECT_EQ(send(R"({"time": 1, "value": 1})", "readings", "accepted").status, 200u);
  EXPECT_TRUE(pop()->idempotency_key);
  ctx_.set_idempotency_gate(nullptr);
}

TEST_F(WriteServiceTest, AcceptedAckAnswersAtOnce) {
  auto r = send(R"({"time": 1, "value": 1.5})", "readings", "accepted");
  EXPECT_EQ(r.status, 200u);
  EXPECT_EQ(r.body, R"({"accepted":1,"rejected":0,"errors":[]})");
  BlockPtr b = pop();
  EXPECT_EQ(b->rows, 1u);
}

TEST_F(WriteServiceTest, PartlyRejectedRequestStoresTheGoodRowsAndAnswers400) {
  auto r = send(R"([{"time": 1, "value": 1}, {"time": 2, "value": "x"}, {"time": 3}])", "readings", "accepted");
  EXPECT_EQ(r.status, 400u);
  EXPECT_EQ(r.body,
            R"j({"accepted":1,"rejected":2,"errors":[{"row":1,"column":"value","message":"column \"value\": expected a number, got a string (only \"NaN\", \"Infinity\" and \"-Infinity\" are accepted as strings)"},{"row":2,"column":"value","message":"missing value for required column \"value\""}]})j");
  EXPECT_EQ(pop()->rows, 1u);
  const std::string m = registry_.render();
  EXPECT_NE(m.find("sluice_rows_rejected_total{reason=\"invalid_value\",table=\"readings\"} 1"), std::string::npos) << m;
  EXPECT_NE(m.find("sluice_rows_rejected_total{reason=\"missing_column\",table=\"readings\"} 1"), std::string::npos) << m;
}

TEST_F(WriteServiceTest, EveryRejectIsCountedByReasonEvenBeyondTheReportedErrors) {
  std::string body = "[";
  for (int i = 0; i < 150; ++i) body += std::string(i ? "," : "") + R"({"time": 1})";  // value missing
  body += R"(,{"time": 1, "value": 1, "bogus": 2}, 7])";
  auto r = send(body, "readings", "accepted");
  EXPECT_EQ(r.status, 400u);
  const std::string m = registry_.render();
  EXPECT_NE(m.find("sluice_rows_rejected_total{reason=\"missing_column\",table=\"readings\"} 150"), std::string::npos) << m;
  EXPECT_NE(m.find("sluice_rows_rejected_total{reason=\"unknown_column\",table=\"readings\"} 1"), std::string::npos) << m;
  EXPECT_NE(m.find("sluice_rows_rejected_total{reason=\"malformed\",table=\"readings\"} 1"), std::string::npos) << m;
  EXPECT_NE(m.find("sluice_rows_rejected_total{reason=\"invalid_value\",table=\"readings\"} 0"), std::string::npos) << m;
}

TEST_F(WriteServiceTest, FullRingIs429WithRetryAfterAndNothingQueued) {
  for (int i = 0; i < 4; ++i) EXPECT_EQ(send(R"({"time": 1, "value": 1})", "readings", "accepted").status, 200u);
  auto r = send(R"({"time": 1, "value": 1})", "readings", "accepted");
  EXPECT_EQ(r.status, 429u);
  EXPECT_GE(r.retry_after_s, 1u);
  EXPECT_EQ(ring_.size_approx(), 4u);
  EXPECT_NE(registry_.render().find("sluice_http_requests_refused_total{reason=\"ring_full\"} 1"), std::string::npos);
  pop();
  EXPECT_EQ(send(R"({"time": 1, "value": 1})", "readings", "accepted").status, 200u);
}

TEST_F(WriteServiceTest, FullRingWithTheDatabaseDownIs503AndRetryAfterFollowsTheDrainRate) {
  DeliverySample sample;
  sample.database_up = false;
  BackpressureOptions o;
  o.outage_s = 7;
  Backpressure bp([&] { return sample; }, o);
  ctx_.set_backpressure(&bp);
  for (int i = 0; i < 4; ++i) EXPECT_EQ(send(R"({"time": 1, "value": 1})", "readings", "accepted").status, 200u);
  auto r = send(R"({"time": 1, "value": 1})", "readings", "accepted");
  EXPECT_EQ(r.status, 503u);
  EXPECT_EQ(r.retry_after_s, 7u);
  EXPECT_NE(r.body.find("database is unavailable"), std::string::npos) << r.body;
  // The database is back and drains 100 rows/s with 1,000 queued: 429, come back in 10 s.
  DeliverySample up;
  up.backlog_rows = 1000;
  Backpressure bp_up([&] { return up; }, o);
  ctx_.set_backpressure(&bp_up);
  const auto t0 = DrainRate::Clock::now();
  bp_up.tick(t0 - std::chrono::milliseconds(1500));
  up.drained_rows = 100;
  bp_up.tick(t0 - std::chrono::milliseconds(500));  // 100 rows in the last second
  r = send(R"({"time": 1, "value": 1})", "readings", "accepted");
  EXPECT_EQ(r.status, 429u);
  EXPECT_EQ(r.retry_after_s, 10u);
  const std::string m = registry_.render();
  EXPECT_NE(m.find("sluice_http_requests_refused_total{reason=\"database_unavailable\"} 1"), std::string::npos) << m;
  EXPECT_NE(m.find("sluice_http_requests_refused_total{reason=\"ring_full\"} 1"), std::string::npos) << m;
  ctx_.set_backpressure(nullptr);
}

TEST_F(WriteServiceTest, DatabaseRefusalIs500AndShutdownIs503) {
  auto failed = send(R"({"time": 1, "value": 1})", "readings", "", "", [&] {
    BlockPtr b = pop();
    b->ack->complete(AckOutcome::failed, 0, "23503: violates foreign key");
  });
  EXPECT_EQ(failed.status, 500u);
  EXPECT_NE(failed.body.find("the database refused rows: 23503: violates foreign key"), std::string::npos) << failed.body;
  auto stopped = send(R"({"time": 1, "value": 1})", "readings", "", "", [&] {
    BlockPtr b = pop();
    b->ack->complete(AckOutcome::shutdown, 0, "stopping");
  });
  EXPECT_EQ(stopped.status, 503u);
  EXPECT_EQ(stopped.retry_after_s, 1u);
}

TEST_F(WriteServiceTest, RowsDeadLetteredByTheDatabaseAre400WithTheCommittedCount) {
  auto r = send(R"([{"time": 1, "value": 1}, {"time": 2, "value": 2}])", "readings", "", "", [&] {
    BlockPtr b = pop();
    b->ack->complete(AckOutcome::dead_lettered, 1, "1 row(s) refused by the database and stored in sluice_dead_letter");
  });
  EXPECT_EQ(r.status, 400u);
  EXPECT_NE(r.body.find(R"("accepted":1,"rejected":1)"), std::string::npos) << r.body;
  EXPECT_NE(r.body.find("sluice_dead_letter"), std::string::npos) << r.body;
}

TEST_F(WriteServiceTest, CommitNotInTimeIs504) {
  BlockPtr kept;
  auto r = send(R"({"time": 1, "value": 1})", "readings", "", "", [&] { kept = pop(); });
  EXPECT_EQ(r.status, 504u);
  EXPECT_NE(r.body.find("not committed in time"), std::string::npos) << r.body;
  kept->ack->complete(AckOutcome::committed, 1);  // late completion must be harmless
  io_.restart();
  io_.run_for(std::chrono::milliseconds(20));
}

TEST_F(WriteServiceTest, RequestErrors) {
  EXPECT_EQ(send("{}", "nope").status, 404u);
  EXPECT_EQ(send(R"({"time": 1, "value": 1})", "readings", "", "hours").status, 400u);
  EXPECT_EQ(send(R"({"time": 1, "value": 1})", "readings", "sometimes").status, 400u);
  auto bad = send(R"([{"time": 1, "value": 1}, {"time": )");
  EXPECT_EQ(bad.status, 400u);
  EXPECT_NE(bad.body.find("\"offset\":"), std::string::npos) << bad.body;
  EXPECT_EQ(ring_.size_approx(), 0u);
}

TEST_F(WriteServiceTest, ClosingRefusesNewRequests) {
  ctx_.set_closing();
  auto r = send(R"({"time": 1, "value": 1})");
  EXPECT_EQ(r.status, 503u);
  EXPECT_EQ(ring_.size_approx(), 0u);
}

TEST_F(WriteServiceTest, UdpDatagramsGoToTheRingAndDropsAreCounted) {
  UdpIngest udp(ctx_, catalog_.tables[0], EpochPrecision::ms);
  std::string d = "{\"time\": 1000, \"value\": 1}\n{\"time\": 2000, \"value\": 2}\n";
  d.reserve(d.size() + 64);
  udp.on_datagram(d.data(), d.size(), d.capacity());
  BlockPtr b = pop();
  EXPECT_EQ(b->rows, 2u);
  EXPECT_FALSE(b->ack);
  std::string bad = "{\"time\": ";
  bad.reserve(bad.size() + 64);
  udp.on_datagram(bad.data(), bad.size(), bad.capacity());
  for (int i = 0; i < 5; ++i) udp.on_datagram(d.data(), d.size(), d.capacity());  // 4 fit, 1 dropped
  const std::string m = registry_.render();
  EXPECT_NE(m.find("sluice_udp_datagrams_dropped_total{cause=\"malformed\"} 1"), std::string::npos) << m;
  EXPECT_NE(m.find("sluice_udp_datagrams_dropped_total{cause=\"ring_full\"} 1"), std::string::npos) << m;
}

TEST_F(WriteServiceTest, UdpDropsAreCountedPerListener) {
  registry_.set_udp_listeners({"127.0.0.1:1", "127.0.0.1:2"}, [](size_t) -> uint64_t { return 0; });
  UdpIngest first(ctx_, catalog_.tables[0], EpochPrecision::ms, 0);
  UdpIngest second(ctx_, catalog_.tables[0], EpochPrecision::ms, 1);
  std::string d = "{\"time\": 1000, \"value\": 1}\n";
  d.reserve(d.size() + 64);
  std::string bad = "{\"time\": ";
  bad.reserve(bad.size() + 64);
  second.on_datagram(bad.data(), bad.size(), bad.capacity());
  for (int i = 0; i < 4; ++i) first.on_datagram(d.data(), d.size(), d.capacity());  // fills the ring
  first.on_datagram(d.data(), d.size(), d.capacity());
  second.on_datagram(d.data(), d.size(), d.capacity());
  second.on_datagram(d.data(), d.size(), d.capacity());
  const std::string m = registry_.render();
  EXPECT_NE(m.find("sluice_udp_datagrams_dropped_total{cause=\"ring_full\",listener=\"127.0.0.1:1\"} 1\n"), std::string::npos) << m;
  EXPECT_NE(m.find("sluice_udp_datagrams_dropped_total{cause=\"malformed\",listener=\"127.0.0.1:1\"} 0\n"), std::string::npos) << m;
  EXPECT_NE(m.find("sluice_udp_datagrams_dropped_total{cause=\"ring_full\",listener=\"127.0.0.1:2\"} 2\n"), std::string::npos) << m;
  EXPECT_NE(m.find("sluice_udp_datagrams_dropped_total{cause=\"malformed\",listener=\"127.0.0.1:2\"} 1\n"), std::string::npos) << m;
}

}  // namespace
}  // namespace sluice
