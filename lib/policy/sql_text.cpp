#include "policy/sql_text.h"

#include <cstdio>

#include "core/pg_time.h"

namespace sluice::policy {
namespace {

constexpr int64_t kUsPerDay = 86400LL * 1000000;
constexpr int64_t kOriginFixed = 2 * kUsPerDay;  // 2000-01-03 00:00 UTC, time_bucket's default origin

int64_t floor_div(int64_t a, int64_t b) {
  int64_t q = a / b;
  if ((a % b != 0) && ((a < 0) != (b < 0))) --q;
  return q;
}

struct Civil {
  int64_t y;
  unsigned m, d;
};

// Howard Hinnant's civil_from_days (days since 1970-01-01).
Civil civil_from_days(int64_t z) {
  z += 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const unsigned doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const int64_t y = static_cast<int64_t>(yoe) + era * 400;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  const unsigned d = doy - (153 * mp + 2) / 5 + 1;
  const unsigned m = mp < 10 ? mp + 3 : mp - 9;
  return {y + (m <= 2), m, d};
}

// pg micros → (unix days, micros within the day)
void split_day(int64_t pg_us, int64_t& unix_days, int64_t& us_of_day) {
  const int64_t unix_us = pg_micros_to_unix(pg_us);
  unix_days = floor_div(unix_us, kUsPerDay);
  us_of_day = unix_us - unix_days * kUsPerDay;
}

int64_t from_civil(int64_t y, unsigned m, unsigned d, int64_t us_of_day) {
  return unix_micros_to_pg(days_from_civil(y, m, d) * kUsPerDay + us_of_day);
}

unsigned days_in_month(int64_t y, unsigned m) {
  static const unsigned dm[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0)) return 29;
  return dm[m - 1];
}

std::string time_column(const DesiredTable& t) { return quote_ident(t.ts.time_column); }

}  // namespace

std::string quote_ident(const std::string& name) {
  std::string out = "\"";
  for (char c : name) {
    if (c == '"') out.push_back('"');
    out.push_back(c);
  }
  out.push_back('"');
  return out;
}

std::string quote_literal(const std::string& text) {
  std::string out = "'";
  for (char c : text) {
    if (c == '\'') out.push_back('\'');
    out.push_back(c);
  }
  out.push_back('\'');
  return out;
}

std::string qualified(const QualifiedName& n) { return quote_ident(n.schema) + "." + quote_ident(n.name); }
std::string regclass_literal(const QualifiedName& n) { return quote_literal(qualified(n)); }
std::string interval_literal(const Interval& iv) { return "INTERVAL " + quote_literal(format_interval(iv)); }
std::string optional_interval_literal(const std::optional<Interval>& iv) {
  return iv ? interval_literal(*iv) : std::string("NULL");
}

std::string order_by_sql(const OrderByItem& item) {
  std::string s = quote_ident(item.column);
  if (item.desc) s += " DESC";
  if (item.nulls_first != item.desc) s += item.nulls_first ? " NULLS FIRST" : " NULLS LAST";
  return s;
}

std::string format_pg_time(int64_t pg_us) {
  int64_t days = 0, us = 0;
  split_day(pg_us, days, us);
  const Civil c = civil_from_days(days);
  const int64_t secs = us / 1000000;
  const int64_t frac = us % 1000000;
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04lld-%02u-%02u %02lld:%02lld:%02lld", static_cast<long long>(c.y), c.m, c.d,
                static_cast<long long>(secs / 3600), static_cast<long long>((secs / 60) % 60),
                static_cast<long long>(secs % 60));
  std::string s = buf;
  if (frac) {
    std::snprintf(buf, sizeof buf, ".%06lld", static_cast<long long>(frac));
    std::string f = buf;
    while (f.back() == '0') f.pop_back();
    s += f;
  }
  return s + "+00";
}

std::string timestamptz_literal(int64_t pg_us) { return "TIMESTAMPTZ " + quote_literal(format_pg_time(pg_us)); }

int64_t add_interval(int64_t pg_us, const Interval& iv, int sign) {
  int64_t t = pg_us;
  if (iv.months) {
    int64_t days = 0, us = 0;
    split_day(t, days, us);
    const Civil c = civil_from_days(days);
    int64_t mi = c.y * 12 + (c.m - 1) + static_cast<int64_t>(sign) * iv.months;
    const int64_t y = floor_div(mi, 12);
    const unsigned m = static_cast<unsigned>(mi - y * 12) + 1;
    const unsigned d = std::min(c.d, days_in_month(y, m));
    t = from_civil(y, m, d, us);
  }
  t += static_cast<int64_t>(sign) * iv.days * kUsPerDay;
  t += static_cast<int64_t>(sign) * iv.micros;
  return t;
}

int64_t bucket_floor(int64_t pg_us, const Interval& width) {
  if (width.months == 0) {
    const int64_t w = width.approx_micros();
    if (w <= 0) return pg_us;
    return floor_div(pg_us - kOriginFixed, w) * w + kOriginFixed;
  }
  int64_t days = 0, us = 0;
  split_day(pg_us, days, us);
  const Civil c = civil_from_days(days);
  const int64_t mi = (c.y - 2000) * 12 + (c.m - 1);
  const int64_t start = floor_div(mi, width.months) * width.months;
  const int64_t y = 2000 + floor_div(start, 12);
  const unsigned m = static_cast<unsigned>(start - floor_div(start, 12) * 12) + 1;
  return from_civil(y, m, 1, 0);
}

int64_t bucket_add(int64_t bucket_start, const Interval& width, int n) {
  if (width.months == 0) return bucket_start + static_cast<int64_t>(n) * width.approx_micros();
  Interval step = width;
  step.months *= n;
  return add_interval(bucket_start, step);
}

std::string fnv1a_hex(const std::string& text) {
  uint64_t h = 1469598103934665603ULL;
  for (unsigned char c : text) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

std::string bucket_expression(const DesiredTable& t, const ContinuousAggregateConfig& c, bool timescaledb) {
  if (timescaledb) return "time_bucket(" + interval_literal(c.bucket_width) + ", " + time_column(t) + ")";
  if (c.bucket_width.months == 0) {
    return "date_bin(" + interval_literal(c.bucket_width) + ", " + time_column(t) + ", " +
           timestamptz_literal(kOriginFixed) + ")";
  }
  if (c.bucket_width.months == 1 && c.bucket_width.days == 0 && c.bucket_width.micros == 0) {
    return "date_trunc('month', " + time_column(t) + ")";
  }
  if (c.bucket_width.months == 12 && c.bucket_width.days == 0 && c.bucket_width.micros == 0) {
    return "date_trunc('year', " + time_column(t) + ")";
  }
  return "";  // not expressible without TimescaleDB
}

std::string aggregate_select(const DesiredTable& t, const ContinuousAggregateConfig& c, bool timescaledb,
                             const std::string& extra_where) {
  if (!c.select.empty()) return c.select;
  const std::string bucket = bucket_expression(t, c, timescaledb);
  std::string s = "SELECT " + bucket + " AS " + quote_ident(c.bucket_column);
  for (const auto& g : c.group_by) s += ", " + quote_ident(g);
  for (const auto& a : c.aggregates) s += ", " + a.expr + " AS " + quote_ident(a.name);
  s += " FROM " + qualified(t.table);
  std::string where = c.where.empty() ? "" : (extra_where.empty() ? c.where : "(" + c.where + ")");
  if (!extra_where.empty()) where += (where.empty() ? "" : " AND ") + extra_where;
  if (!where.empty()) s += " WHERE " + where;
  s += " GROUP BY " + bucket;
  for (const auto& g : c.group_by) s += ", " + quote_ident(g);
  return s;
}

std::string aggregate_marker(const DesiredTable& t, const ContinuousAggregateConfig& c, bool timescaledb) {
  return std::string(kMarkerPrefix) + fnv1a_hex(aggregate_select(t, c, timescaledb));
}

std::string default_index_name(const DesiredTable& t, const IndexConfig& ix) {
  std::string n = "ix_" + t.table.name;
  for (const auto& c : ix.columns) n += "_" + c.column;
  if (n.size() > 63) n = n.substr(0, 54) + "_" + fnv1a_hex(n).substr(0, 8);
  return n;
}

std::string partition_name(const std::string& table, int64_t lo, const Interval& interval) {
  int64_t days = 0, us = 0;
  split_day(lo, days, us);
  const Civil c = civil_from_days(days);
  char buf[48];
  if (interval.months == 0 && interval.days == 0) {
    std::snprintf(buf, sizeof buf, "_p%04lld%02u%02u_%02lld%02lld", static_cast<long long>(c.y), c.m, c.d,
                  static_cast<long long>(us / 3600000000LL), static_cast<long long>((us / 60000000LL) % 60));
  } else {
    std::snprintf(buf, sizeof buf, "_p%04lld%02u%02u", static_cast<long long>(c.y), c.m, c.d);
  }
  const std::string suffix = buf;
  std::string base = table;
  if (base.size() + suffix.size() > 63) base = base.substr(0, 63 - suffix.size());
  return base + suffix;
}

}  // namespace sluice::policy
