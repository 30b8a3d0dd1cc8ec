#include "config/timeseries.h"

#include <cctype>
#include <cmath>
#include <set>

#include <nlohmann/json.hpp>

namespace sluice {
namespace {

using nlohmann::json;

constexpr int64_t kUsPerSecond = 1000000;
constexpr int64_t kUsPerMinute = 60 * kUsPerSecond;
constexpr int64_t kUsPerHour = 60 * kUsPerMinute;
constexpr int64_t kUsPerDay = 24 * kUsPerHour;

std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

void set_error(std::string* error, std::string message) {
  if (error) *error = std::move(message);
}

// Adds `value` units to the interval as PostgreSQL does: fractions of months spill into days
// (30 days a month) and fractions of days into microseconds (24 h a day).
bool add_unit(Interval& iv, double value, const std::string& unit) {
  static const struct {
    const char* names[6];
    int kind;  // 0 micros, 1 days, 2 months
    double factor;
  } units[] = {
      {{"microsecond", "microseconds", "us", "usec", "usecs", nullptr}, 0, 1.0},
      {{"millisecond", "milliseconds", "ms", "msec", "msecs", nullptr}, 0, 1e3},
      {{"second", "seconds", "s", "sec", "secs", nullptr}, 0, 1e6},
      {{"minute", "minutes", "m", "min", "mins", nullptr}, 0, 6e7},
      {{"hour", "hours", "h", "hr", "hrs", nullptr}, 0, 3.6e9},
      {{"day", "days", "d", nullptr, nullptr, nullptr}, 1, 1.0},
      {{"week", "weeks", "w", nullptr, nullptr, nullptr}, 1, 7.0},
      {{"month", "months", "mon", "mons", nullptr, nullptr}, 2, 1.0},
      {{"year", "years", "y", "yr", "yrs", nullptr}, 2, 12.0},
      {{"decade", "decades", nullptr, nullptr, nullptr, nullptr}, 2, 120.0},
  };
  for (const auto& u : units) {
    for (const char* n : u.names) {
      if (!n || unit != n) continue;
      const double v = value * u.factor;
      if (u.kind == 0) {
        iv.micros += static_cast<int64_t>(std::llround(v));
      } else if (u.kind == 1) {
        const double whole = std::trunc(v);
        iv.days += static_cast<int32_t>(whole);
        iv.micros += static_cast<int64_t>(std::llround((v - whole) * static_cast<double>(kUsPerDay)));
      } else {
        const double whole = std::trunc(v);
        iv.months += static_cast<int32_t>(whole);
        const double days = (v - whole) * 30.0;
        const double whole_days = std::trunc(days);
        iv.days += static_cast<int32_t>(whole_days);
        iv.micros += static_cast<int64_t>(std::llround((days - whole_days) * static_cast<double>(kUsPerDay)));
      }
      return true;
    }
  }
  return false;
}

// [-]HH:MM[:SS[.ffffff]]
bool parse_clock(std::string_view t, int64_t& micros) {
  bool neg = false;
  if (!t.empty() && (t[0] == '-' || t[0] == '+')) {
    neg = t[0] == '-';
    t.remove_prefix(1);
  }
  int64_t parts[3] = {0, 0, 0};
  int n = 0;
  size_t i = 0;
  int64_t frac_us = 0;
  while (n < 3) {
    if (i >= t.size() || !std::isdigit(static_cast<unsigned char>(t[i]))) return false;
    int64_t v = 0;
    while (i < t.size() && std::isdigit(static_cast<unsigned char>(t[i]))) {
      v = v * 10 + (t[i] - '0');
      if (v > 100000000) return false;
      ++i;
    }
    parts[n++] = v;
    if (i < t.size() && t[i] == ':') {
      ++i;
      continue;
    }
    if (n == 3 && i < t.size() && t[i] == '.') {
      ++i;
      int64_t scale = 100000;
      while (i < t.size() && std::isdigit(static_cast<unsigned char>(t[i]))) {
        frac_us += (t[i] - '0') * scale;
        scale /= 10;
        ++i;
      }
    }
    break;
  }
  if (i != t.size() || n < 2) return false;
  micros = parts[0] * kUsPerHour + parts[1] * kUsPerMinute + parts[2] * kUsPerSecond + frac_us;
  if (neg) micros = -micros;
  return true;
}

std::string plural(int64_t n, const char* unit) {
  return std::to_string(n) + " " + unit + (n == 1 || n == -1 ? "" : "s");
}

// ------------------------------------------------------------------------------- config reading

class Reader {
 public:
  Reader(const json& obj, std::string path, std::vector<std::string>& problems)
      : obj_(obj), path_(std::move(path)), problems_(problems) {
    if (!obj_.is_object()) problems_.push_back(path_ + ": expected an object");
  }
  ~Reader() {
    if (!obj_.is_object()) return;
    for (auto it = obj_.begin(); it != obj_.end(); ++it) {
      if (!seen_.count(it.key())) problems_.push_back(at(it.key()) + ": unknown setting");
    }
  }
  std::string at(const std::string& key) const { return path_ + "." + key; }
  const json* get(const std::string& key) {
    seen_.insert(key);
    if (!obj_.is_object()) return nullptr;
    auto it = obj_.find(key);
    return it == obj_.end() ? nullptr : &*it;
  }
  bool string(const std::string& key, std::string& out, bool required = false) {
    const json* v = get(key);
    if (!v) {
      if (required) problems_.push_back(at(key) + ": required");
      return false;
    }
    if (!v->is_string() || v->get<std::string>().empty()) {
      problems_.push_back(at(key) + ": expected a non-empty string");
      return false;
    }
    out = v->get<std::string>();
    return true;
  }
  void boolean(const std::string& key, bool& out) {
    const json* v = get(key);
    if (!v) return;
    if (!v->is_boolean()) {
      problems_.push_back(at(key) + ": expected true or false");
      return;
    }
    out = v->get<bool>();
  }
  void integer(const std::string& key, int& out, int min, int max) {
    const json* v = get(key);
    if (!v) return;
    if (!v->is_number_integer() || v->get<long long>() < min || v->get<long long>() > max) {
      problems_.push_back(at(key) + ": expected an integer in [" + std::to_string(min) + ", " +
                          std::to_string(max) + "]");
      return;
    }
    out = static_cast<int>(v->get<long long>());
  }
  // A positive interval; returns false when absent or invalid.
  bool interval(const std::string& key, Interval& out, bool required = false, bool allow_zero = false) {
    const json* v = get(key);
    if (!v) {
      if (required) problems_.push_back(at(key) + ": required (an interval such as \"1 day\")");
      return false;
    }
    return interval_value(*v, at(key), out, allow_zero);
  }
  bool interval_value(const json& v, const std::string& path, Interval& out, bool allow_zero) {
    if (!v.is_string()) {
      problems_.push_back(path + ": expected an interval string such as \"1 day\"");
      return false;
    }
    std::string err;
    if (!parse_interval(v.get<std::string>(), out, &err)) {
      problems_.push_back(path + ": " + err);
      return false;
    }
    if (out.cmp_key() < 0 || (!allow_zero && out.is_zero())) {
      problems_.push_back(path + ": \"" + v.get<std::string>() + "\" must be " +
                          (allow_zero ? "zero or positive" : "positive"));
      return false;
    }
    return true;
  }
  // An array of non-empty strings.
  bool strings(const std::string& key, std::vector<std::string>& out) {
    const json* v = get(key);
    if (!v) return false;
    if (!v->is_array()) {
      problems_.push_back(at(key) + ": expected an array of strings");
      return false;
    }
    out.clear();
    for (size_t i = 0; i < v->size(); ++i) {
      const json& e = (*v)[i];
      if (!e.is_string() || e.get<std::string>().empty()) {
        problems_.push_back(at(key) + "[" + std::to_string(i) + "]: expected a non-empty string");
        continue;
      }
      out.push_back(e.get<std::string>());
    }
    return true;
  }
  std::vector<std::string>& problems() { return problems_; }

 private:
  const json& obj_;
  std::string path_;
  std::vector<std::string>& problems_;
  std::set<std::string> seen_;
};

bool valid_identifier_text(const std::string& s) {
  return !s.empty() && s.size() <= 63 && s.find('\0') == std::string::npos;
}

std::optional<Interval> optional_offset(Reader& r, const std::string& key, bool& present) {
  const json* v = r.get(key);
  present = v != nullptr;
  if (!v || v->is_null()) return std::nullopt;
  Interval iv;
  if (!r.interval_value(*v, r.at(key), iv, /*allow_zero=*/true)) return std::nullopt;
  return iv;
}

ContinuousAggregateConfig parse_cagg(const json& v, const std::string& path, std::vector<std::string>& problems) {
  ContinuousAggregateConfig c;
  Reader r(v, path, problems);
  r.string("name", c.name, true);
  r.interval("bucket_width", c.bucket_width);
  r.string("bucket_column", c.bucket_column);
  r.string("select", c.select);
  r.string("where", c.where);
  r.strings("group_by", c.group_by);
  r.boolean("materialized_only", c.materialized_only);
  r.boolean("refresh_on_create", c.refresh_on_create);
  r.strings("requires_extensions", c.requires_extensions);
  if (const json* a = r.get("aggregates")) {
    // An object {"avg_value": "avg(value)", ...} (columns in name order) or an array of such
    // one-key objects (columns in array order, as the view shows them).
    auto add = [&](const json& obj, const std::string& p) {
      for (auto it = obj.begin(); it != obj.end(); ++it) {
        if (!it.value().is_string() || it.value().get<std::string>().empty()) {
          problems.push_back(p + "." + it.key() + ": expected an SQL expression string");
          continue;
        }
        c.aggregates.push_back({it.key(), it.value().get<std::string>()});
      }
    };
    if (a->is_object()) {
      add(*a, r.at("aggregates"));
    } else if (a->is_array()) {
      for (size_t i = 0; i < a->size(); ++i) {
        const std::string p = r.at("aggregates") + "[" + std::to_string(i) + "]";
        if (!(*a)[i].is_object() || (*a)[i].size() != 1) {
          problems.push_back(p + ": expected an object with one key, e.g. {\"avg_value\": \"avg(value)\"}");
          continue;
        }
        add((*a)[i], p);
      }
    } else {
      problems.push_back(r.at("aggregates") + ": expected an object or an array of one-key objects");
    }
  }
  if (const json* p = r.get("refresh_policies")) {
    if (!p->is_array()) {
      problems.push_back(r.at("refresh_policies") + ": expected an array");
    } else {
      for (size_t i = 0; i < p->size(); ++i) {
        const std::string pp = r.at("refresh_policies") + "[" + std::to_string(i) + "]";
        Reader pr((*p)[i], pp, problems);
        RefreshPolicyConfig rp;
        bool has_start = false, has_end = false;
        rp.start_offset = optional_offset(pr, "start_offset", has_start);
        rp.end_offset = optional_offset(pr, "end_offset", has_end);
        if (!has_start) problems.push_back(pp + ".start_offset: required (an interval, or null for no limit)");
        if (!has_end) problems.push_back(pp + ".end_offset: required (an interval, or null for no limit)");
        pr.interval("schedule_interval", rp.schedule_interval, true);
        if (rp.start_offset && rp.end_offset && !(*rp.end_offset < *rp.start_offset)) {
          problems.push_back(pp + ": start_offset must be larger than end_offset");
        } else if (rp.start_offset && rp.end_offset && !c.bucket_width.is_zero() && c.bucket_width.fixed_length() &&
                   rp.start_offset->fixed_length() && rp.end_offset->fixed_length() &&
                   rp.start_offset->approx_micros() - rp.end_offset->approx_micros() < 2 * c.bucket_width.approx_micros()) {
          // TimescaleDB refuses such a policy ("policy refresh window too small").
          problems.push_back(pp + ": the window " + format_interval(*rp.start_offset) + " → " +
                             format_interval(*rp.end_offset) + " covers less than two buckets of " +
                             format_interval(c.bucket_width) + " (TimescaleDB requires at least two)");
        }
        c.refresh_policies.push_back(rp);
      }
    }
  }
  if (!c.name.empty() && !valid_identifier_text(c.name.substr(c.name.find('.') + 1))) {
    problems.push_back(r.at("name") + ": \"" + c.name + "\" is not a valid name");
  }
  if (c.select.empty()) {
    if (c.bucket_width.is_zero()) problems.push_back(r.at("bucket_width") + ": required (e.g. \"1 hour\")");
    if (c.aggregates.empty()) problems.push_back(r.at("aggregates") + ": required (or give \"select\")");
  } else {
    std::string head = lower(c.select.substr(0, std::min<size_t>(c.select.size(), 16)));
    while (!head.empty() && std::isspace(static_cast<unsigned char>(head[0]))) head.erase(0, 1);
    if (head.rfind("select", 0) != 0) problems.push_back(r.at("select") + ": must be a SELECT statement");
    if (!c.aggregates.empty() || !c.group_by.empty() || !c.where.empty()) {
      problems.push_back(path + ": give either \"select\" or \"aggregates\"/\"group_by\"/\"where\", not both");
    }
  }
  return c;
}

IndexConfig parse_index(const json& v, const std::string& path, std::vector<std::string>& problems) {
  IndexConfig ix;
  Reader r(v, path, problems);
  std::vector<std::string> cols;
  if (!r.strings("columns", cols) || cols.empty()) problems.push_back(r.at("columns") + ": required, a non-empty array");
  for (size_t i = 0; i < cols.size(); ++i) {
    OrderByItem item;
    std::string err;
    if (!parse_order_by(cols[i], item, &err)) {
      problems.push_back(r.at("columns") + "[" + std::to_string(i) + "]: " + err);
      continue;
    }
    ix.columns.push_back(item);
  }
  r.string("type", ix.type);
  ix.type = lower(ix.type);
  static const std::set<std::string> types = {"btree", "brin", "hash", "gist", "gin", "spgist"};
  if (!types.count(ix.type)) problems.push_back(r.at("type") + ": \"" + ix.type + "\" is not an index method");
  r.string("name", ix.name);
  r.string("where", ix.where);
  return ix;
}

}  // namespace

// ----------------------------------------------------------------------------------- intervals

__int128 Interval::cmp_key() const {
  return static_cast<__int128>(micros) +
         (static_cast<__int128>(days) + static_cast<__int128>(months) * 30) * kUsPerDay;
}

int64_t Interval::approx_micros() const {
  const __int128 k = cmp_key();
  if (k > INT64_MAX) return INT64_MAX;
  if (k < INT64_MIN) return INT64_MIN;
  return static_cast<int64_t>(k);
}

bool operator==(const Interval& a, const Interval& b) { return a.cmp_key() == b.cmp_key(); }
bool operator!=(const Interval& a, const Interval& b) { return !(a == b); }
bool operator<(const Interval& a, const Interval& b) { return a.cmp_key() < b.cmp_key(); }
bool operator>(const Interval& a, const Interval& b) { return b < a; }

bool parse_interval(std::string_view text, Interval& out, std::string* error) {
  // Tokens: numbers with an optional attached unit ("2h"), unit words, clock parts ("02:00:00").
  std::vector<std::string> tokens;
  std::string cur;
  for (char ch : text) {
    if (std::isspace(static_cast<unsigned char>(ch)) || ch == ',') {
      if (!cur.empty()) tokens.push_back(lower(cur));
      cur.clear();
    } else {
      cur.push_back(ch);
    }
  }
  if (!cur.empty()) tokens.push_back(lower(cur));
  if (!tokens.empty() && tokens[0] == "@") tokens.erase(tokens.begin());
  if (tokens.empty()) {
    set_error(error, "empty interval");
    return false;
  }
  Interval iv;
  bool any = false;
  for (size_t i = 0; i < tokens.size(); ++i) {
    const std::string& t = tokens[i];
    if (t.find(':') != std::string::npos) {
      int64_t us = 0;
      if (!parse_clock(t, us)) {
        set_error(error, "\"" + std::string(text) + "\" is not an interval (bad time \"" + t + "\")");
        return false;
      }
      iv.micros += us;
      any = true;
      continue;
    }
    // number, optionally followed directly by a unit
    size_t j = 0;
    if (j < t.size() && (t[j] == '-' || t[j] == '+')) ++j;
    const size_t digits_start = j;
    while (j < t.size() && (std::isdigit(static_cast<unsigned char>(t[j])) || t[j] == '.')) ++j;
    if (j == digits_start) {
      set_error(error, "\"" + std::string(text) + "\" is not an interval (expected a number before \"" + t + "\")");
      return false;
    }
    double value = 0;
    try {
      value = std::stod(t.substr(0, j));
    } catch (...) {
      set_error(error, "\"" + std::string(text) + "\" is not an interval (bad number \"" + t + "\")");
      return false;
    }
    std::string unit = t.substr(j);
    if (unit.empty()) {
      if (i + 1 >= tokens.size()) {
        // PostgreSQL reads a bare number as seconds; a config value needs its unit.
        set_error(error, "\"" + std::string(text) + "\" has a number without a unit (e.g. \"1 day\")");
        return false;
      }
      unit = tokens[++i];
    }
    if (!add_unit(iv, value, unit)) {
      set_error(error, "\"" + std::string(text) + "\" is not an interval (unknown unit \"" + unit + "\")");
      return false;
    }
    any = true;
  }
  if (!any) {
    set_error(error, "empty interval");
    return false;
  }
  out = iv;
  return true;
}

std::string format_interval(const Interval& iv) {
  std::string out;
  auto add = [&](const std::string& s) {
    if (!out.empty()) out += " ";
    out += s;
  };
  const int32_t years = iv.months / 12;
  const int32_t months = iv.months % 12;
  if (years) add(plural(years, "year"));
  if (months) add(plural(months, "month"));
  if (iv.days) add(plural(iv.days, "day"));
  int64_t us = iv.micros;
  if (us) {
    const bool neg = us < 0;
    if (neg) us = -us;
    const int64_t h = us / kUsPerHour;
    const int64_t m = (us % kUsPerHour) / kUsPerMinute;
    const int64_t s = (us % kUsPerMinute) / kUsPerSecond;
    const int64_t f = us % kUsPerSecond;
    const int64_t sign = neg ? -1 : 1;
    if (h) add(plural(sign * h, "hour"));
    if (m) add(plural(sign * m, "minute"));
    if (s || f) {
      if (f) {
        std::string frac = std::to_string(f + kUsPerSecond).substr(1);  // 6 digits
        while (!frac.empty() && frac.back() == '0') frac.pop_back();
        add(std::string(neg ? "-" : "") + std::to_string(s) + "." + frac + " seconds");
      } else {
        add(plural(sign * s, "second"));
      }
    }
  }
  return out.empty() ? "0" : out;
}

bool parse_order_by(std::string_view text, OrderByItem& out, std::string* error) {
  std::vector<std::string> words;
  size_t i = 0;
  std::string column;
  while (i < text.size() && std::isspace(static_cast<unsigned char>(text[i]))) ++i;
  if (i < text.size() && text[i] == '"') {
    ++i;
    while (i < text.size()) {
      if (text[i] == '"') {
        if (i + 1 < text.size() && text[i + 1] == '"') {
          column.push_back('"');
          i += 2;
          continue;
        }
        ++i;
        break;
      }
      column.push_back(text[i++]);
    }
  } else {
    while (i < text.size() && !std::isspace(static_cast<unsigned char>(text[i]))) column.push_back(text[i++]);
  }
  std::string w;
  for (; i <= text.size(); ++i) {
    if (i == text.size() || std::isspace(static_cast<unsigned char>(text[i]))) {
      if (!w.empty()) words.push_back(lower(w));
      w.clear();
    } else {
      w.push_back(text[i]);
    }
  }
  if (column.empty()) {
    set_error(error, "\"" + std::string(text) + "\": expected a column name");
    return false;
  }
  OrderByItem item;
  item.column = column;
  size_t k = 0;
  if (k < words.size() && (words[k] == "asc" || words[k] == "desc")) item.desc = words[k++] == "desc";
  item.nulls_first = item.desc;
  if (k + 1 < words.size() && words[k] == "nulls" && (words[k + 1] == "first" || words[k + 1] == "last")) {
    item.nulls_first = words[k + 1] == "first";
    k += 2;
  }
  if (k != words.size()) {
    set_error(error, "\"" + std::string(text) + "\": expected \"column [ASC|DESC] [NULLS FIRST|LAST]\"");
    return false;
  }
  out = item;
  return true;
}

// --------------------------------------------------------------------------------- the blocks

TimeseriesConfig parse_timeseries(const json& v, const std::string& path, const std::string& default_time_column,
                                  std::vector<std::string>& problems) {
  TimeseriesConfig ts;
  Reader r(v, path, problems);
  ts.time_column = default_time_column;
  r.string("time_column", ts.time_column);
  if (ts.time_column.empty()) {
    problems.push_back(r.at("time_column") + ": required (here or in the table's time_column)");
  }
  Interval chunk;
  if (r.interval("chunk_interval", chunk)) ts.chunk_interval = chunk;
  r.boolean("allow_destructive", ts.allow_destructive);
  r.integer("partitions_ahead", ts.partitions_ahead, 1, 366);

  if (const json* c = r.get("compression")) {
    CompressionConfig cc;
    Reader cr(*c, r.at("compression"), problems);
    cr.boolean("enabled", cc.enabled);
    Interval after;
    if (cr.interval("after", after)) cc.after = after;
    std::vector<std::string> seg;
    if (cr.strings("segment_by", seg)) cc.segment_by = seg;
    std::vector<std::string> ord;
    if (cr.strings("order_by", ord)) {
      std::vector<OrderByItem> items;
      for (size_t i = 0; i < ord.size(); ++i) {
        OrderByItem item;
        std::string err;
        if (parse_order_by(ord[i], item, &err)) {
          items.push_back(item);
        } else {
          problems.push_back(cr.at("order_by") + "[" + std::to_string(i) + "]: " + err);
        }
      }
      cc.order_by = items;
    }
    ts.compression = cc;
  }
  if (const json* rv = r.get("retention")) {
    RetentionConfig rc;
    Reader rr(*rv, r.at("retention"), problems);
    rr.boolean("enabled", rc.enabled);
    rr.interval("drop_after", rc.drop_after, rc.enabled);
    ts.retention = rc;
  }
  if (const json* a = r.get("continuous_aggregates")) {
    if (!a->is_array()) {
      problems.push_back(r.at("continuous_aggregates") + ": expected an array");
    } else {
      std::set<std::string> names;
      for (size_t i = 0; i < a->size(); ++i) {
        const std::string p = r.at("continuous_aggregates") + "[" + std::to_string(i) + "]";
        ts.continuous_aggregates.push_back(parse_cagg((*a)[i], p, problems));
        const auto& n = ts.continuous_aggregates.back().name;
        if (!n.empty() && !names.insert(n).second) problems.push_back(p + ".name: \"" + n + "\" is listed twice");
      }
    }
  }
  if (const json* ix = r.get("indexes")) {
    if (!ix->is_array()) {
      problems.push_back(r.at("indexes") + ": expected an array");
    } else {
      for (size_t i = 0; i < ix->size(); ++i) {
        ts.indexes.push_back(parse_index((*ix)[i], r.at("indexes") + "[" + std::to_string(i) + "]", problems));
      }
    }
  }
  return ts;
}

PolicySettings parse_policy_settings(const json& v, const std::string& path, std::vector<std::string>& problems) {
  PolicySettings p;
  Reader r(v, path, problems);
  r.boolean("enabled", p.enabled);
  r.boolean("drive_jobs", p.drive_jobs);
  r.boolean("allow_destructive", p.allow_destructive);
  if (const json* iv = r.get("reconcile_interval")) {
    Interval i;
    if (r.interval_value(*iv, r.at("reconcile_interval"), i, false)) {
      if (!i.fixed_length() || i.approx_micros() < 1'000'000) {
        problems.push_back(r.at("reconcile_interval") + ": must be at least 1 second, without months");
      } else {
        p.reconcile_interval_s = static_cast<int>(std::min<int64_t>(i.approx_micros() / 1'000'000, 7 * 86400));
      }
    }
  }
  if (const json* iv = r.get("late_refresh_min_interval")) {
    Interval i;
    if (r.interval_value(*iv, r.at("late_refresh_min_interval"), i, true)) {
      p.late_refresh_min_interval_s = static_cast<int>(std::min<int64_t>(i.approx_micros() / 1'000'000, 86400));
    }
  }
  if (const json* iv = r.get("job_overdue_grace")) {
    Interval i;
    if (r.interval_value(*iv, r.at("job_overdue_grace"), i, true)) {
      p.job_overdue_grace_s = static_cast<int>(std::min<int64_t>(i.approx_micros() / 1'000'000, 7 * 86400));
    }
  }
  return p;
}

}  // namespace sluice
