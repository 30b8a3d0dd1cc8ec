// policy/sql_text.h: quoting, time literals and bucket arithmetic (time_bucket's alignment).
#include "policy/sql_text.h"

#include <gtest/gtest.h>

#include "core/pg_time.h"

namespace sluice::policy {
namespace {

int64_t at(int y, unsigned m, unsigned d, int hh = 0, int mm = 0) {
  return unix_micros_to_pg((days_from_civil(y, m, d) * 86400 + hh * 3600 + mm * 60) * 1000000LL);
}

TEST(SqlText, QuotesIdentifiersAndLiterals) {
  EXPECT_EQ(qualified({"flux", "mg \"x\""}), "\"flux\".\"mg \"\"x\"\"\"");
  EXPECT_EQ(regclass_literal({"public", "o'k"}), "'\"public\".\"o''k\"'");
  EXPECT_EQ(interval_literal(Interval{0, 7, 0}), "INTERVAL '7 days'");
  EXPECT_EQ(order_by_sql({"timestamp", true, true}), "\"timestamp\" DESC");
  EXPECT_EQ(order_by_sql({"a", false, true}), "\"a\" NULLS FIRST");
}

TEST(SqlText, FormatsTimesInUtc) {
  EXPECT_EQ(format_pg_time(0), "2000-01-01 00:00:00+00");
  EXPECT_EQ(format_pg_time(at(2024, 2, 29, 13, 5) + 250000), "2024-02-29 13:05:00.25+00");
  EXPECT_EQ(format_pg_time(at(1999, 12, 31, 23, 59)), "1999-12-31 23:59:00+00");
  EXPECT_EQ(timestamptz_literal(at(2024, 6, 1)), "TIMESTAMPTZ '2024-06-01 00:00:00+00'");
}

TEST(SqlText, BucketsAlignLikeTimeBucket) {
  const Interval hour{0, 0, 3600LL * 1000000};
  const Interval day{0, 1, 0};
  const Interval week{0, 7, 0};
  const Interval month{1, 0, 0};
  EXPECT_EQ(bucket_floor(at(2024, 6, 10, 12, 34), hour), at(2024, 6, 10, 12));
  EXPECT_EQ(bucket_floor(at(2024, 6, 10, 12, 34), day), at(2024, 6, 10));
  EXPECT_EQ(bucket_floor(at(2024, 6, 13), week), at(2024, 6, 10));  // weeks start on Monday (origin 2000-01-03)
  EXPECT_EQ(bucket_floor(at(1999, 12, 31, 5), day), at(1999, 12, 31));
  EXPECT_EQ(bucket_floor(at(2024, 6, 10, 12), month), at(2024, 6, 1));
  EXPECT_EQ(bucket_add(at(2024, 12, 1), month), at(2025, 1, 1));
  EXPECT_EQ(add_interval(at(2024, 1, 31), month), at(2024, 2, 29));  // clamped like PostgreSQL
  EXPECT_EQ(add_interval(at(2024, 6, 10, 12), Interval{60, 0, 0}, -1), at(2019, 6, 10, 12));
  EXPECT_EQ(partition_name("datapoint", at(2024, 6, 10), day), "datapoint_p20240610");
  EXPECT_EQ(partition_name("datapoint", at(2024, 6, 10, 6), Interval{0, 0, 6 * 3600LL * 1000000}), "datapoint_p20240610_0600");
}

}  // namespace
}  // namespace sluice::policy
