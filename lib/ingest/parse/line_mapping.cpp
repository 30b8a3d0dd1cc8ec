// ingest/parse/line_mapping.cpp — see line_mapping.h.
//
// Start-up resolves every mapping to a Target (table, special columns, rename maps) and checks it
// against the Catalog. Per line, the measurement → Target lookup and each tag/field name → column lookup
// go through small caches (the last measurement; the name seen at each tag/field position), so a body
// of similar lines does string compares instead of hash lookups. Nothing on the per-line path
// allocates once the buffers have grown, except the message of a rejected line.
#include "ingest/parse/line_mapping.h"

#include <stdexcept>

#include "core/bytes.h"

namespace sluice {

namespace {

constexpr size_t kMaxCachedNames = 64;

struct NameCache {
  std::string name;
  int column = -1;
  bool set = false;
};

bool is_time_type(PgType t) { return t == PgType::timestamptz || t == PgType::timestamp; }
bool is_text_type(PgType t) { return t == PgType::text || t == PgType::varchar || t == PgType::bpchar; }
bool is_json_type(PgType t) { return t == PgType::json || t == PgType::jsonb; }
inline int64_t floor_div_1000(int64_t v) { return v >= 0 ? v / 1000 : -((-(v + 1)) / 1000) - 1; }

void append_json_string(std::string& o, std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  o.push_back('"');
  for (const char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (c == '"' || c == '\\') {
      o.push_back('\\');
      o.push_back(ch);
    } else if (c < 0x20) {
      o.push_back('\\');
      switch (c) {
        case '\b': o.push_back('b'); break;
        case '\f': o.push_back('f'); break;
        case '\n': o.push_back('n'); break;
        case '\r': o.push_back('r'); break;
        case '\t': o.push_back('t'); break;
        default:
          o.append("u00");
          o.push_back(kHex[c >> 4]);
          o.push_back(kHex[c & 15]);
      }
    } else {
      o.push_back(ch);
    }
  }
  o.push_back('"');
}

// A line protocol number (-?(digits[.digits*]|.digits)([eE][+-]?digits)?) as a valid JSON number:
// leading zeros dropped, "0" before a bare fraction, a trailing '.' dropped.
void append_json_number(std::string& o, std::string_view t) {
  size_t i = 0;
  const size_t n = t.size();
  if (i < n && t[i] == '-') {
    o.push_back('-');
    ++i;
  }
  size_t int_start = i;
  while (i < n && t[i] >= '0' && t[i] <= '9') ++i;
  const size_t int_end = i;
  while (int_start + 1 < int_end && t[int_start] == '0') ++int_start;
  if (int_start == int_end) {
    o.push_back('0');
  } else {
    o.append(t.substr(int_start, int_end - int_start));
  }
  if (i < n && t[i] == '.') {
    const size_t dot = i++;
    while (i < n && t[i] >= '0' && t[i] <= '9') ++i;
    if (i > dot + 1) o.append(t.substr(dot, i - dot));
  }
  o.append(t.substr(i));  // exponent, as written (JSON allows e/E, a sign and leading zeros)
}

}  // namespace

struct LineMapper::Target {
  std::string measurement;  // "*" for the catch-all
  uint32_t table_id = 0;
  const TableSchema* table = nullptr;
  int time_column = -1;
  int measurement_column = -1;
  int extra_column = -1;
  UnmappedPolicy unmapped = UnmappedPolicy::reject;
  std::vector<ColumnRename> tag_renames, field_renames;  // owned: the maps' keys point into them
  std::unordered_map<std::string_view, int> tag_columns, field_columns;
  std::vector<NameCache> tag_cache, field_cache;  // by position in the line
  // The first tag_distinct (field_distinct) names of the cache are known to be pairwise distinct: a
  // line whose names all hit the cache at positions below that has no duplicate key to look for.
  size_t tag_distinct = 0, field_distinct = 0;

  bool special(int c) const { return c == time_column || c == measurement_column || c == extra_column; }

  int resolve_uncached(bool tag, std::string_view name) const {
    const auto& renames = tag ? tag_columns : field_columns;
    auto it = renames.find(name);
    if (it != renames.end()) return it->second;
    const int c = table->find(name);
    return c >= 0 && special(c) ? -1 : c;
  }

  // The hit (the name seen at this position last time) inline in map_line; the miss out of line.
  [[gnu::always_inline]] int resolve(bool tag, size_t position, std::string_view name) {
    const std::vector<NameCache>& cache = tag ? tag_cache : field_cache;
    if (position < cache.size() && cache[position].set && same_text(cache[position].name, name)) [[likely]] {
      return cache[position].column;
    }
    return resolve_miss(tag, position, name);
  }

  [[gnu::noinline]] int resolve_miss(bool tag, size_t position, std::string_view name) {
    std::vector<NameCache>& cache = tag ? tag_cache : field_cache;
    (tag ? tag_distinct : field_distinct) = 0;  // the cache changes: distinct again once a line is checked
    const int c = resolve_uncached(tag, name);
    if (position < kMaxCachedNames) {
      if (cache.size() <= position) cache.resize(position + 1);
      cache[position].name.assign(name);
      cache[position].column = c;
      cache[position].set = true;
    }
    return c;
  }
};

LineMapper::LineMapper(const Catalog& catalog, const std::vector<MeasurementMapping>& mappings, size_t max_errors)
    : catalog_(&catalog), max_errors_(max_errors) {
  std::vector<std::string> errors;
  for (size_t i = 0; i < mappings.size(); ++i) {
    const MeasurementMapping& m = mappings[i];
    const std::string label = "line protocol mapping \"" + m.measurement + "\"";
    if (m.measurement.empty()) {
      errors.push_back("line protocol mapping #" + std::to_string(i + 1) + ": measurement is empty");
      continue;
    }
    bool duplicate = false;
    for (size_t j = 0; j < i; ++j) duplicate = duplicate || mappings[j].measurement == m.measurement;
    if (duplicate) {
      errors.push_back(label + ": measurement is mapped more than once");
      continue;
    }
    if (m.measurement == "*" && m.table.empty()) {
      errors.push_back(label + ": the catch-all mapping \"*\" needs a table");
      continue;
    }
    const std::string& table_name = m.table.empty() ? m.measurement : m.table;
    const TableSchema* table = catalog.find(table_name);
    if (table == nullptr) {
      errors.push_back(label + ": table \"" + table_name + "\" is not a configured table");
      continue;
    }
    const std::string where = label + ", table \"" + table_name + "\"";
    auto t = std::make_unique<Target>();
    t->measurement = m.measurement;
    t->table = table;
    t->table_id = static_cast<uint32_t>(table - catalog.tables.data());
    t->unmapped = m.unmapped;
    t->time_column = table->time_column;
    if (t->time_column < 0) {
      errors.push_back(where + ": the table has no time column for the line timestamps");
    } else if (!is_time_type(table->columns[t->time_column].type)) {
      errors.push_back(where + ": time column \"" + table->columns[t->time_column].name +
                       "\" must be timestamptz or timestamp, not " + pg_type_name(table->columns[t->time_column].type));
    }
    if (!m.measurement_column.empty()) {
      t->measurement_column = table->find(m.measurement_column);
      if (t->measurement_column < 0) {
        errors.push_back(where + ": measurement_column \"" + m.measurement_column + "\" is not a column of the table");
      } else if (!is_text_type(table->columns[t->measurement_column].type)) {
        errors.push_back(where + ": measurement_column \"" + m.measurement_column +
                         "\" must be text, varchar or char, not " +
                         pg_type_name(table->columns[t->measurement_column].type));
      } else if (t->measurement_column == t->time_column) {
        errors.push_back(where + ": measurement_column \"" + m.measurement_column + "\" is the time column");
      }
    }
    if (!m.extra_json_column.empty()) {
      t->extra_column = table->find(m.extra_json_column);
      if (t->extra_column < 0) {
        errors.push_back(where + ": extra_json_column \"" + m.extra_json_column + "\" is not a column of the table");
      } else if (!is_json_type(table->columns[t->extra_column].type)) {
        errors.push_back(where + ": extra_json_column \"" + m.extra_json_column + "\" must be json or jsonb, not " +
                         pg_type_name(table->columns[t->extra_column].type));
      } else if (t->extra_column == t->measurement_column) {
        errors.push_back(where + ": extra_json_column and measurement_column are the same column \"" +
                         m.extra_json_column + "\"");
      }
    }
    t->tag_renames = m.tags;
    t->field_renames = m.fields;
    for (int tag = 1; tag >= 0; --tag) {
      const char* kind = tag ? "tag" : "field";
      const auto& renames = tag ? t->tag_renames : t->field_renames;
      auto& columns = tag ? t->tag_columns : t->field_columns;
      for (const ColumnRename& r : renames) {
        const std::string what = where + ": " + kind + " rename \"" + r.from + "\" -> \"" + r.to + "\"";
        if (r.from.empty() || r.to.empty()) {
          errors.push_back(what + ": both names must be given");
          continue;
        }
        const int c = table->find(r.to);
        if (c < 0) {
          errors.push_back(what + ": column \"" + r.to + "\" is not a column of the table");
        } else if (t->special(c)) {
          errors.push_back(what + ": column \"" + r.to + "\" is the " +
                           (c == t->time_column ? "time column" : c == t->extra_column ? "extra_json_column"
                                                                                        : "measurement_column"));
        } else if (!columns.emplace(std::string_view(r.from), c).second) {
          errors.push_back(what + ": \"" + r.from + "\" is renamed more than once");
        }
      }
    }
    if (m.measurement == "*") star_ = t.get();
    targets_.push_back(std::move(t));
  }
  if (!errors.empty()) {
    std::string message;
    for (const auto& e : errors) {
      if (!message.empty()) message.push_back('\n');
      message += e;
    }
    throw std::runtime_error(message);
  }
  for (const auto& t : targets_) {
    if (t.get() != star_) by_measurement_.emplace(std::string_view(t->measurement), t.get());
  }
  json_.reserve(256);
}

LineMapper::~LineMapper() = default;

LineMapper::Target* LineMapper::find_target(std::string_view measurement) {
  if (last_target_ != nullptr && same_text(measurement, last_measurement_)) return last_target_;
  auto it = by_measurement_.find(measurement);
  Target* t = it != by_measurement_.end() ? it->second : star_;
  if (t != nullptr) {
    last_measurement_.assign(measurement);
    last_target_ = t;
  }
  return t;
}

// State of one parse() call.
struct LineMapper::Run {
  LineMapper& m;
  std::vector<std::unique_ptr<RowEncoder>>& encoders;
  LineParseResult& out;
  const size_t max_rows;
  const std::vector<char>* allowed_tables;
  uint32_t line_no = 0;

  // map_line: the line's duplicate key check is still to be made (see there).
  bool duplicate_check_pending = false;

  // Makes the pending duplicate key check; true when it rejected the line for a duplicate.
  bool rejected_duplicate() {
    if (!duplicate_check_pending) return false;
    duplicate_check_pending = false;
    LineError dup;
    if (m.parser_.check_duplicates(dup) != LineStatus::error) return false;
    reject({}, dup.message, RejectKind::malformed);
    return true;
  }

  void reject(std::string_view column, std::string_view message, RejectKind kind) {
    if (rejected_duplicate()) return;
    ++out.rows_rejected;
    ++out.rejected_by_kind[static_cast<size_t>(kind)];
    if (out.errors.size() < m.max_errors_) {
      RowError& e = out.errors.emplace_back();
      e.row = line_no;
      e.column.assign(column);
      e.message.assign(message);
      e.kind = kind;
    }
  }

  void reject_line(std::string_view column, std::string_view message, RejectKind kind) {
    if (rejected_duplicate()) return;
    if (out.errors.size() >= m.max_errors_) {
      ++out.rows_rejected;
      ++out.rejected_by_kind[static_cast<size_t>(kind)];
      return;
    }
    std::string full = "line " + std::to_string(line_no) + ": ";
    full.append(message);
    reject(column, full, kind);
  }

  void reject_encoder(const RowEncoder& enc) {
    const int c = enc.error_column();
    const TableSchema& t = enc.table();
    if (c >= 0 && static_cast<size_t>(c) < t.columns.size()) {
      reject_line(t.columns[c].name, enc.error(), encoder_reject_kind(enc));
    } else {
      reject_line({}, enc.error(), encoder_reject_kind(enc));
    }
  }

  void finish_row(RowEncoder& enc, uint32_t table_id, TableKeys* keys) {
    if (keys) {
      switch (keys->resolve_row(enc)) {
        case TableKeys::Outcome::ok: break;
        case TableKeys::Outcome::missing: return;  // resolved later, then the body is parsed again
        case TableKeys::Outcome::rejected: reject_line(keys->error_column(), keys->error(), RejectKind::invalid_value); return;
        case TableKeys::Outcome::encoder: reject_encoder(enc); return;
      }
    }
    if (!m.blocks_.end_row(enc, table_id)) {
      reject_encoder(enc);
      return;
    }
    ++out.rows_accepted;
  }

  // The resolver key slot of a tag/field: by its name, else by the column its rename names (so
  // tags {"id": "sensor_id"} makes the tag id the key sensor_id); -1 when it is no key.
  static int key_slot(const TableKeys& keys, const Target& t, bool tag, std::string_view name) {
    const int slot = keys.slot(name);
    if (slot >= 0) return slot;
    const auto& renames = tag ? t.tag_columns : t.field_columns;
    if (renames.empty()) return -1;
    auto it = renames.find(name);
    return it == renames.end() ? -1 : keys.slot(t.table->columns[it->second].name);
  }

  // A name without a column: into the extra JSON object, dropped, or the line is rejected (false).
  bool unmapped(Target& t, bool tag, std::string_view name) {
    if (t.extra_column >= 0) {
      m.json_.push_back(m.json_.empty() ? '{' : ',');
      append_json_string(m.json_, name);
      m.json_.push_back(':');
      return true;
    }
    if (t.unmapped == UnmappedPolicy::ignore) return true;
    std::string message = "no column for ";
    message += tag ? "tag \"" : "field \"";
    append_for_message(message, name);
    message += "\" in table \"" + t.table->config_name + "\"";
    std::string column;
    append_for_message(column, name, 256);
    reject_line(column, message, RejectKind::unknown_column);
    return false;
  }

  // The duplicate key check the parser left to us (LineProtocolParser::defer_duplicate_check) is made
  // before the line's first rejection (reject / reject_line), or at its end unless every name hit the
  // position caches below their known-distinct prefix. A duplicate rejects the line as malformed with
  // the parser's message, whatever else is wrong with it, as when the parser checked.
  void map_line(const ParsedLine& line) {
    duplicate_check_pending = true;
    map_checked_line(line);
    duplicate_check_pending = false;
  }

  void map_checked_line(const ParsedLine& line) {
    Target* t = m.find_target(line.measurement);
    if (t == nullptr) {
      std::string message = "no table is mapped for measurement \"";
      append_for_message(message, line.measurement);
      message.push_back('"');
      reject_line({}, message, RejectKind::unknown_column);
      return;
    }
    if (allowed_tables != nullptr && (t->table_id >= allowed_tables->size() || !(*allowed_tables)[t->table_id])) {
      reject_line({}, "this token may not write table \"" + t->table->config_name + "\"", RejectKind::forbidden);
      return;
    }
    if (t->table_id >= encoders.size() || !encoders[t->table_id]) {
      reject_line({}, "internal error: no encoder for table \"" + t->table->config_name + "\"", RejectKind::invalid_value);
      return;
    }
    RowEncoder& enc = *encoders[t->table_id];
    enc.set_precision(EpochPrecision::us);
    enc.begin_row();
    TableKeys* keys = m.resolvers_ ? m.resolvers_->table(t->table_id) : nullptr;
    if (keys) keys->begin_row();

    if (!enc.put_unix_micros(t->time_column, floor_div_1000(line.timestamp_ns))) {
      reject_encoder(enc);
      return;
    }
    if (t->measurement_column >= 0 && !enc.put_string(t->measurement_column, line.measurement)) {
      reject_encoder(enc);
      return;
    }

    m.json_.clear();
    m.unmapped_tags_.clear();
    for (size_t k = 0; k < line.tags.size(); ++k) {
      const LineTag& tag = line.tags[k];
      if (int slot; keys && (slot = key_slot(*keys, *t, true, tag.key)) >= 0) {
        keys->set(slot, tag.value);
        continue;
      }
      const int c = t->resolve(true, k, tag.key);
      if (c < 0) {
        if (!unmapped(*t, true, tag.key)) return;
        if (t->extra_column >= 0) {
          append_json_string(m.json_, tag.value);
          m.unmapped_tags_.push_back(static_cast<uint32_t>(k));
        }
        continue;
      }
      const bool ok = is_number_type(t->table->columns[c].type) ? enc.put_number(c, tag.value, NumberKind::any)
                                                                : enc.put_string(c, tag.value);
      if (!ok) {
        reject_encoder(enc);
        return;
      }
    }
    for (size_t k = 0; k < line.fields.size(); ++k) {
      const LineField& f = line.fields[k];
      if (int slot; keys && (slot = key_slot(*keys, *t, false, f.key)) >= 0) {
        keys->set(slot, f.kind == LineFieldKind::boolean ? (f.boolean ? "true" : "false") : f.value);
        continue;
      }
      const int c = t->resolve(false, k, f.key);
      if (c < 0) {
        if (t->extra_column >= 0) {
          for (uint32_t tk : m.unmapped_tags_) {
            if (line.tags[tk].key == f.key) {
              std::string message = "tag and field \"";
              append_for_message(message, f.key);
              message += "\" both go to extra_json_column \"" + t->table->columns[t->extra_column].name + "\"";
              std::string column;
              append_for_message(column, f.key, 256);
              reject_line(column, message, RejectKind::invalid_value);
              return;
            }
          }
        }
        if (!unmapped(*t, false, f.key)) return;
        if (t->extra_column >= 0) {
          switch (f.kind) {
            case LineFieldKind::string: append_json_string(m.json_, f.value); break;
            case LineFieldKind::boolean: m.json_.append(f.boolean ? "true" : "false"); break;
            default: append_json_number(m.json_, f.value); break;
          }
        }
        continue;
      }
      bool ok = false;
      switch (f.kind) {
        case LineFieldKind::floating:
          ok = f.has_number ? enc.put_float_value(c, f.value, f.number) : enc.put_number(c, f.value, NumberKind::floating);
          break;
        case LineFieldKind::integer: ok = enc.put_number(c, f.value, NumberKind::integer); break;
        case LineFieldKind::unsigned_integer: ok = enc.put_number(c, f.value, NumberKind::unsigned_integer); break;
        case LineFieldKind::string: ok = enc.put_string(c, f.value); break;
        case LineFieldKind::boolean: ok = enc.put_bool(c, f.boolean); break;
      }
      if (!ok) {
        reject_encoder(enc);
        return;
      }
    }
    if (!m.json_.empty()) {
      m.json_.push_back('}');
      if (!enc.put_json(t->extra_column, m.json_)) {
        reject_encoder(enc);
        return;
      }
    }
    // Without resolver keys every name went through t->resolve, and a miss reset the known-distinct
    // prefix: a line within the prefix has the cached names, known distinct.
    const size_t ntags = line.tags.size(), nfields = line.fields.size();
    if (keys == nullptr && ntags <= t->tag_distinct && nfields <= t->field_distinct) {
      duplicate_check_pending = false;
    } else {
      if (rejected_duplicate()) return;
      // The caches now hold this line's names at positions 0..n-1 (when they fit), checked distinct.
      if (keys == nullptr && ntags <= kMaxCachedNames && nfields <= kMaxCachedNames) {
        t->tag_distinct = ntags;
        t->field_distinct = nfields;
      }
    }
    finish_row(enc, t->table_id, keys);
  }
};

void LineMapper::parse(std::string_view body, EpochPrecision precision, int64_t now_ns,
                       std::vector<std::unique_ptr<RowEncoder>>& encoders, size_t max_rows, LineParseResult& out,
                       const std::vector<char>* allowed_tables) {
  out.syntax_ok = true;
  out.error_offset = 0;
  out.syntax_error.clear();
  out.rows_accepted = 0;
  out.rows_rejected = 0;
  out.rejected_by_kind = {};
  out.errors.clear();
  out.blocks.clear();
  blocks_.begin(out.blocks, catalog_->tables.size(), body.size() + 256);

  Run run{*this, encoders, out, max_rows, allowed_tables};
  parser_.reset(body, precision, now_ns);
  parser_.defer_duplicate_check(true);  // map_line checks, or knows the keys are distinct
  ParsedLine line;
  LineError error;
  size_t rows = 0;
  for (;;) {
    const LineStatus s = parser_.next(line, error);
    if (s == LineStatus::end) break;
    run.line_no = parser_.line_no();
    if (rows++ >= max_rows) {
      run.reject_line({}, "too many rows in one request (limit " + std::to_string(max_rows) + ")",
                      RejectKind::too_many_rows);
      continue;
    }
    if (s == LineStatus::error) {
      run.reject({}, error.message, RejectKind::malformed);
      continue;
    }
    run.map_line(line);
  }
  blocks_.finish();
}

}  // namespace sluice
