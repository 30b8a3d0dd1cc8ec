// ingest/parse/json_rows.cpp — see json_rows.h.
//
// simdjson On-Demand walks the body once. Scalars go straight from the parser's buffers to the
// encoder (strings are unescaped into the parser's string buffer, numbers are passed as their raw
// token). Things On-Demand does not validate (number tokens, skipped nested values) are checked
// here with json_check, so a body is either fully valid JSON or rejected as a whole. On a syntax
// error the body is re-scanned with json_check to report a precise byte offset (bad path only).
#include "ingest/parse/json_rows.h"

#include <simdjson.h>

#include <cstring>

#include "core/decimal_double.h"
#include "ingest/parse/json_check.h"
#include "ingest/parse/row_blocks.h"

namespace sluice {

static_assert(kJsonPadding == simdjson::SIMDJSON_PADDING, "kJsonPadding must match simdjson");

namespace od = simdjson::ondemand;

struct JsonRowParser::Impl {
  od::parser parser;
  // Column index seen at each key position of the previous row: rows of one request nearly always
  // list the same keys in the same order, so a string compare replaces the hash lookup.
  std::vector<int> key_cache;
  const TableSchema* key_cache_table = nullptr;
  RowBlocks blocks;
  ThreadResolvers* resolvers = nullptr;
};

namespace {

constexpr size_t kMaxCachedKeys = 64;

inline bool is_ws(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

std::string_view trim_right(std::string_view s) {
  while (!s.empty() && is_ws(s.back())) s.remove_suffix(1);
  return s;
}

// State of one parse() call.
class Run {
 public:
  Run(od::parser& parser, std::vector<int>& key_cache, RowBlocks& blocks, RowEncoder& enc, JsonParseResult& out,
      uint32_t table_id, size_t max_rows, size_t max_errors, TableKeys* keys)
      : keys_(keys),
        parser_(parser),
        key_cache_(key_cache),
        blocks_(blocks),
        enc_(enc),
        table_(enc.table()),
        out_(out),
        table_id_(table_id),
        max_rows_(max_rows),
        max_errors_(max_errors) {}

  // Returns false on a syntax error (message in syntax_error()).
  bool document(std::string_view body, size_t capacity) {
    od::document doc;
    if (auto e = parser_.iterate(body.data(), body.size(), capacity).get(doc)) return syntax(e);
    od::json_type t;
    if (auto e = doc.type().get(t)) return syntax(e);
    if (t == od::json_type::array) {
      od::array arr;
      if (auto e = doc.get_array().get(arr)) return syntax(e);
      for (auto element : arr) {
        od::value v;
        if (auto e = element.get(v)) return syntax(e);
        if (!row_value(v)) return false;
      }
    } else if (t == od::json_type::object) {
      od::object obj;
      if (auto e = doc.get_object().get(obj)) return syntax(e);
      if (!object_row(obj)) return false;
    } else {
      return syntax("expected a JSON object or an array of objects");
    }
    const char* loc = nullptr;
    if (!doc.current_location().get(loc)) return syntax("unexpected content after the JSON value");
    return true;
  }

  // One object per line; returns false on a syntax error, with the offending line in error_line_*.
  bool ndjson(std::string_view body, size_t capacity) {
    size_t pos = 0;
    while (pos < body.size()) {
      const void* nl = std::memchr(body.data() + pos, '\n', body.size() - pos);
      const size_t end = nl ? static_cast<size_t>(static_cast<const char*>(nl) - body.data()) : body.size();
      std::string_view line = body.substr(pos, end - pos);
      size_t first = 0;
      while (first < line.size() && is_ws(line[first])) ++first;
      if (first < line.size()) {
        line_start_ = pos;
        line_ = line;
        od::document doc;
        if (auto e = parser_.iterate(line.data(), line.size(), capacity - pos).get(doc)) return syntax(e);
        od::json_type t;
        if (auto e = doc.type().get(t)) return syntax(e);
        if (t == od::json_type::object) {
          od::object obj;
          if (auto e = doc.get_object().get(obj)) return syntax(e);
          if (!object_row(obj)) return false;
          const char* loc = nullptr;
          if (!doc.current_location().get(loc)) return syntax("unexpected content after the JSON value");
        } else {
          // A scalar or array line: valid JSON is a rejected row, anything else a syntax error.
          size_t off = 0;
          const char* what = "";
          if (!json_check(line, off, &what)) return syntax(what);
          reject_row(nullptr, 0, row_ >= max_rows_ ? too_many_rows() : "row is not a JSON object",
                 row_ >= max_rows_ ? RejectKind::too_many_rows : RejectKind::malformed);
          ++row_;
        }
      }
      pos = end + 1;
    }
    return true;
  }

  const std::string& syntax_error() const { return syntax_error_; }
  // The part of the body to re-scan for the error offset, and where it starts.
  size_t line_start() const { return line_start_; }
  std::string_view line() const { return line_; }

 private:
  bool syntax(simdjson::error_code e) { return syntax(simdjson::error_message(e)); }
  bool syntax(const char* message) {
    syntax_error_ = message;
    return false;
  }

  std::string too_many_rows() const {
    return "too many rows in one request (limit " + std::to_string(max_rows_) + ")";
  }

  void reject_row(const char* column, size_t column_size, std::string_view message, RejectKind kind) {
    ++out_.rows_rejected;
    ++out_.rejected_by_kind[static_cast<size_t>(kind)];
    if (out_.errors.size() < max_errors_) {
      RowError& err = out_.errors.emplace_back();
      err.row = row_;
      if (column) err.column.assign(column, column_size);
      err.message.assign(message);
      err.kind = kind;
    }
  }

  void reject_encoder_error() {
    const int c = enc_.error_column();
    if (c >= 0 && static_cast<size_t>(c) < table_.columns.size()) {
      const std::string& name = table_.columns[c].name;
      reject_row(name.data(), name.size(), enc_.error(), encoder_reject_kind(enc_));
    } else {
      reject_row(nullptr, 0, enc_.error(), encoder_reject_kind(enc_));
    }
  }

  // The key cache holds, per key position, the column seen there last: c >= 0 for a column whose
  // name has no '"' or '\\' (its raw and unescaped spellings are the same bytes), -2 - c for any
  // other column, -1 for none.
  int lookup(size_t position, std::string_view key) {
    std::vector<int>& cache = key_cache_;
    if (position < cache.size()) {
      const int c = cache[position] >= 0 ? cache[position] : -2 - cache[position];
      if (c >= 0 && table_.columns[c].name == key) return c;
    }
    const int c = table_.find(key);
    if (position < kMaxCachedKeys) {
      if (cache.size() <= position) cache.resize(position + 1, -1);
      const bool plain = c >= 0 && table_.columns[c].name.find_first_of("\"\\") == std::string::npos;
      cache[position] = c < 0 || plain ? c : -2 - c;
    }
    return c;
  }

  // The cached column of this key position when the raw key (as written, before unescaping) is
  // exactly its name, else -1: the common case skips unescaping the key into the string buffer.
  int raw_lookup(size_t position, od::raw_json_string raw) const {
    if (position < key_cache_.size()) {
      const int c = key_cache_[position];
      if (c >= 0 && raw.unsafe_is_equal(table_.columns[c].name)) return c;
    }
    return -1;
  }

  // An array element: an object is a row, anything else a rejected row (after validating it).
  bool row_value(od::value& v) {
    od::json_type t;
    if (auto e = v.type().get(t)) return syntax(e);
    if (t == od::json_type::object) {
      od::object obj;
      if (auto e = v.get_object().get(obj)) return syntax(e);
      return object_row(obj);
    }
    bool ignored = false;
    if (!value(v, -1, ignored)) return false;
    reject_row(nullptr, 0, row_ >= max_rows_ ? too_many_rows() : "row is not a JSON object",
                 row_ >= max_rows_ ? RejectKind::too_many_rows : RejectKind::malformed);
    ++row_;
    return true;
  }

  bool object_row(od::object& obj) {
    const bool over_limit = row_ >= max_rows_;
    bool row_ok = !over_limit;
    if (row_ok) enc_.begin_row();
    if (keys_) keys_->begin_row();
    size_t position = 0;
    for (auto field_result : obj) {
      od::field field;
      if (auto e = std::move(field_result).get(field)) return syntax(e);
      // A resolver key takes precedence over a column of the same name (e.g. a registered sensor_id).
      int column = row_ok && !keys_ ? raw_lookup(position, field.key()) : -1;
      if (column < 0) {
        std::string_view key;
        if (auto e = field.unescaped_key().get(key)) return syntax(e);
        if (int slot; row_ok && keys_ && (slot = keys_->slot(key)) >= 0) {
          if (!key_value(field.value(), slot, row_ok)) return false;
          ++position;
          continue;
        }
        if (row_ok) {
          column = lookup(position, key);
          if (column < 0) {
            std::string message = "unknown column \"";
            message.append(key);
            message.push_back('"');
            reject_row(key.data(), key.size(), message, RejectKind::unknown_column);
            row_ok = false;
          }
        }
      }
      if (!value(field.value(), column, row_ok)) return false;
      ++position;
    }
    if (over_limit) {
      reject_row(nullptr, 0, too_many_rows(), RejectKind::too_many_rows);
    } else if (row_ok) {
      finish_row();
    }
    ++row_;
    return true;
  }

  // Validates one value and, when row_ok and column >= 0, puts it. Returns false on a syntax
  // error; a refused value rejects the row and clears row_ok.
  bool value(od::value v, int column, bool& row_ok) {
    const bool put = row_ok && column >= 0;
    od::json_type t;
    if (auto e = v.type().get(t)) return syntax(e);
    bool ok = true;
    switch (t) {
      case od::json_type::string: {
        std::string_view s;
        if (auto e = v.get_string().get(s)) return syntax(e);
        if (put) ok = enc_.put_string(column, s);
        break;
      }
      case od::json_type::number: {
        // Checked and, when short, converted in one pass (float columns then skip the text).
        const std::string_view token = trim_right(v.raw_json_token());
        double number = 0;
        const int form = scan_json_number(token, number);
        if (form == 0) return syntax("invalid number");
        if (put) {
          ok = form == 2 ? enc_.put_float_value(column, token, number, NumberKind::any) : enc_.put_number(column, token);
        }
        break;
      }
      case od::json_type::boolean: {
        bool b = false;
        if (auto e = v.get_bool().get(b)) return syntax(e);
        if (put) ok = enc_.put_bool(column, b);
        break;
      }
      case od::json_type::null: {
        bool is_null = false;
        if (auto e = v.is_null().get(is_null)) return syntax(e);
        if (!is_null) return syntax("invalid literal");
        if (put) ok = enc_.put_null(column);
        break;
      }
      case od::json_type::object: {
        od::object o;
        std::string_view raw;
        if (auto e = v.get_object().get(o)) return syntax(e);
        if (auto e = o.raw_json().get(raw)) return syntax(e);
        if (!nested(raw)) return false;
        if (put) ok = enc_.put_json(column, trim_right(raw));
        break;
      }
      case od::json_type::array: {
        od::array a;
        std::string_view raw;
        if (auto e = v.get_array().get(a)) return syntax(e);
        if (auto e = a.raw_json().get(raw)) return syntax(e);
        if (!nested(raw)) return false;
        if (put) ok = enc_.put_json(column, trim_right(raw));
        break;
      }
    }
    if (!ok) {
      reject_encoder_error();
      row_ok = false;
    }
    return true;
  }

  // On-Demand skips nested values without validating them.
  bool nested(std::string_view raw) {
    size_t off = 0;
    const char* what = "";
    if (json_check(raw, off, &what)) return true;
    return syntax(what);
  }

  // A resolver key's value (scalars only; null = absent). Returns false on a syntax error.
  bool key_value(od::value v, int slot, bool& row_ok) {
    od::json_type t;
    if (auto e = v.type().get(t)) return syntax(e);
    if (t == od::json_type::string) {
      std::string_view s;
      if (auto e = v.get_string().get(s)) return syntax(e);
      keys_->set(slot, s);
    } else if (t == od::json_type::number) {
      const std::string_view token = trim_right(v.raw_json_token());
      if (!is_json_number_token(token)) return syntax("invalid number");
      keys_->set(slot, token);
    } else if (t == od::json_type::boolean) {
      bool b = false;
      if (auto e = v.get_bool().get(b)) return syntax(e);
      keys_->set(slot, b ? "true" : "false");
    } else if (t != od::json_type::null) {
      bool ignored = false;
      if (!value(v, -1, ignored)) return false;  // validates the nested value
      std::string message = "resolver key \"";
      message.append(keys_->name(slot));
      message.append("\": expected a string, number or boolean");
      reject_row(nullptr, 0, message, RejectKind::invalid_value);
      row_ok = false;
    } else {
      bool is_null = false;
      if (auto e = v.is_null().get(is_null)) return syntax(e);
      if (!is_null) return syntax("invalid literal");
    }
    return true;
  }

  void finish_row() {
    if (keys_) {
      switch (keys_->resolve_row(enc_)) {
        case TableKeys::Outcome::ok: break;
        case TableKeys::Outcome::missing: return;  // resolved later, then the body is parsed again
        case TableKeys::Outcome::rejected: {
          const std::string& c = keys_->error_column();
          reject_row(c.data(), c.size(), keys_->error(), RejectKind::invalid_value);
          return;
        }
        case TableKeys::Outcome::encoder: reject_encoder_error(); return;
      }
    }
    if (!blocks_.end_row(enc_, table_id_)) {
      reject_encoder_error();
      return;
    }
    ++out_.rows_accepted;
  }

  TableKeys* const keys_;  // resolver keys of the table, or nullptr
  od::parser& parser_;
  std::vector<int>& key_cache_;
  RowBlocks& blocks_;
  RowEncoder& enc_;
  const TableSchema& table_;
  JsonParseResult& out_;
  const uint32_t table_id_;
  const size_t max_rows_;
  const size_t max_errors_;
  uint32_t row_ = 0;
  std::string syntax_error_;
  size_t line_start_ = 0;
  std::string_view line_;
};

void reset(JsonParseResult& out) {
  out.syntax_ok = true;
  out.error_offset = 0;
  out.syntax_error.clear();
  out.rows_accepted = 0;
  out.rows_rejected = 0;
  out.rejected_by_kind = {};
  out.errors.clear();
  out.blocks.clear();
}

}  // namespace

JsonRowParser::JsonRowParser(size_t max_errors) : impl_(std::make_unique<Impl>()), max_errors_(max_errors) {}
JsonRowParser::~JsonRowParser() = default;

void JsonRowParser::set_resolvers(ThreadResolvers* resolvers) { impl_->resolvers = resolvers; }

void JsonRowParser::parse(std::string_view body, size_t capacity, JsonShape shape, RowEncoder& encoder,
                          uint32_t table_id, size_t max_rows, JsonParseResult& out) {
  reset(out);
  if (capacity < body.size() + kJsonPadding) {
    out.syntax_ok = false;
    out.syntax_error = "internal error: body buffer lacks JSON padding";
    return;
  }
  if (impl_->key_cache_table != &encoder.table()) {
    impl_->key_cache.clear();
    impl_->key_cache_table = &encoder.table();
  }
  impl_->blocks.begin(out.blocks, table_id + 1, body.size() / 2 + 256);
  TableKeys* keys = impl_->resolvers ? impl_->resolvers->table(table_id) : nullptr;
  Run run(impl_->parser, impl_->key_cache, impl_->blocks, encoder, out, table_id, max_rows, max_errors_, keys);
  const bool ok = shape == JsonShape::ndjson ? run.ndjson(body, capacity) : run.document(body, capacity);
  if (!ok) {
    // Bad path: find the offset of the first problem with the strict checker.
    const std::string_view scanned = shape == JsonShape::ndjson ? run.line() : body;
    const size_t base = shape == JsonShape::ndjson ? run.line_start() : 0;
    size_t off = 0;
    if (json_check(scanned, off)) off = 0;  // valid JSON of the wrong shape: point at its start
    reset(out);
    out.syntax_ok = false;
    out.error_offset = base + off;
    out.syntax_error = run.syntax_error();
    return;
  }
  impl_->blocks.finish();
}

}  // namespace sluice
