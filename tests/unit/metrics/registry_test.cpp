#include "metrics/registry.h"

#include <thread>

#include <gtest/gtest.h>

namespace sluice::metrics {
namespace {

TEST(Registry, SumsShardsPerTableAtScrapeTime) {
  Registry r({"a", "flux.b"}, 3);
  r.shard(0).tables[0].rows_accepted.add(5);
  r.shard(2).tables[0].rows_accepted.add(7);
  r.shard(1).tables[1].rows_rejected[static_cast<int>(RejectReason::unknown_column)].add(2);
  r.shard(1).udp_ring_full.add();
  const std::string text = r.render();
  EXPECT_NE(text.find("sluice_rows_accepted_total{table=\"a\"} 12\n"), std::string::npos) << text;
  EXPECT_NE(text.find("sluice_rows_accepted_total{table=\"flux.b\"} 0\n"), std::string::npos) << text;
  EXPECT_NE(text.find("sluice_rows_rejected_total{reason=\"unknown_column\",table=\"flux.b\"} 2\n"), std::string::npos) << text;
  EXPECT_NE(text.find("sluice_udp_datagrams_dropped_total{cause=\"ring_full\"} 1\n"), std::string::npos) << text;
  EXPECT_NE(text.find("# TYPE sluice_rows_accepted_total counter"), std::string::npos) << text;
}

TEST(Registry, UdpDropsPerListenerAndCauseIncludingKernelDrops) {
  Registry r({"a"}, 2);
  r.set_udp_listeners({"0.0.0.0:8089", "[::]:8094"}, [](size_t i) -> uint64_t { return i == 0 ? 17 : 0; });
  ASSERT_EQ(r.shard(0).udp_listeners.size(), 2u);
  ASSERT_EQ(r.shard(1).udp_listeners.size(), 2u);
  r.shard(0).udp_listeners[0].malformed.add(2);
  r.shard(1).udp_listeners[0].malformed.add(1);
  r.shard(1).udp_listeners[1].ring_full.add(5);
  const std::string text = r.render();
  EXPECT_NE(text.find("sluice_udp_datagrams_dropped_total{cause=\"malformed\",listener=\"0.0.0.0:8089\"} 3\n"), std::string::npos) << text;
  EXPECT_NE(text.find("sluice_udp_datagrams_dropped_total{cause=\"ring_full\",listener=\"0.0.0.0:8089\"} 0\n"), std::string::npos) << text;
  EXPECT_NE(text.find("sluice_udp_datagrams_dropped_total{cause=\"kernel\",listener=\"0.0.0.0:8089\"} 17\n"), std::string::npos) << text;
  EXPECT_NE(text.find("sluice_udp_datagrams_dropped_total{cause=\"ring_full\",listener=\"[::]:8094\"} 5\n"), std::string::npos) << text;
  EXPECT_NE(text.find("sluice_udp_datagrams_dropped_total{cause=\"kernel\",listener=\"[::]:8094\"} 0\n"), std::string::npos) << text;
  // With listeners named, no listener-less series next to them (sums would count twice).
  EXPECT_EQ(text.find("sluice_udp_datagrams_dropped_total{cause=\"malformed\"}"), std::string::npos) << text;
}

TEST(Registry, CollectorsMayAddManyFamiliesWithoutInvalidatingReferences) {
  Registry r({"t"}, 1);
  r.add_collector([](Families& out) {
    auto& first = family(out, "sluice_first", "first", prometheus::MetricType::Gauge);
    for (int i = 0; i < 100; ++i) family(out, "sluice_f" + std::to_string(i), "x", prometheus::MetricType::Counter);
    add_value(first, {}, 42);  // `first` must still be valid after 100 more families
  });
  EXPECT_NE(r.render().find("sluice_first 42\n"), std::string::npos);
}

TEST(Registry, HistogramBucketsAreCumulative) {
  Registry r({}, 1);
  r.add_collector([](Families& out) {
    auto& h = family(out, "sluice_h_seconds", "h", prometheus::MetricType::Histogram);
    add_histogram(h, {}, {0.1, 1.0}, {3, 2, 1}, 4.5);
  });
  const std::string text = r.render();
  EXPECT_NE(text.find("sluice_h_seconds_bucket{le=\"0.1\"} 3\n"), std::string::npos) << text;
  EXPECT_NE(text.find("sluice_h_seconds_bucket{le=\"1\"} 5\n"), std::string::npos) << text;
  EXPECT_NE(text.find("sluice_h_seconds_bucket{le=\"+Inf\"} 6\n"), std::string::npos) << text;
  EXPECT_NE(text.find("sluice_h_seconds_count 6\n"), std::string::npos) << text;
  EXPECT_NE(text.find("sluice_h_seconds_sum 4.5\n"), std::string::npos) << text;
}

TEST(ShardCounter, SingleWriterManyReaders) {
  ShardCounter c;
  std::atomic<bool> done{false};
  std::thread reader([&] {
    uint64_t last = 0;
    while (!done.load()) {
      const uint64_t v = c.get();
      EXPECT_GE(v, last);  // monotonic as seen by a reader
      last = v;
    }
  });
  for (int i = 0; i < 200000; ++i) c.add();
  done = true;
  reader.join();
  EXPECT_EQ(c.get(), 200000u);
}

}  // namespace
}  // namespace sluice::metrics
