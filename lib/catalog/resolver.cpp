// catalog/resolver.cpp — see resolver.h.
#include "catalog/resolver.h"

#include <chrono>
#include <cstring>
#include <stdexcept>

#include "pg/connection.h"  // quote_ident, quote_literal

namespace sluice {

namespace {

std::string quote_qualified(std::string_view name) {
  const size_t dot = name.find('.');
  if (dot == std::string_view::npos) return pg::quote_ident(name);
  return pg::quote_ident(name.substr(0, dot)) + "." + pg::quote_ident(name.substr(dot + 1));
}

const std::vector<uint32_t> kNone;

}  // namespace

std::string declarative_lookup_sql(const ResolverSpec& spec) {
  std::string sql = "SELECT " + pg::quote_ident(spec.id_column) + "::text FROM " + quote_qualified(spec.lookup_table) +
                    " WHERE ";
  for (size_t i = 0; i < spec.match.size(); ++i) {
    if (i) sql += " AND ";
    sql += pg::quote_ident(spec.match[i]) + " = $" + std::to_string(i + 1);
  }
  sql += " LIMIT 1";
  return sql;
}

std::string declarative_create_sql(const ResolverSpec& spec) {
  std::string cols, vals;
  for (size_t i = 0; i < spec.match.size(); ++i) {
    if (i) {
      cols += ", ";
      vals += ", ";
    }
    cols += pg::quote_ident(spec.match[i]);
    vals += "$" + std::to_string(i + 1);
  }
  for (const auto& [column, value] : spec.create_values) {
    cols += ", " + pg::quote_ident(column);
    vals += ", " + pg::quote_literal(value);
  }
  return "INSERT INTO " + quote_qualified(spec.lookup_table) + " (" + cols + ") VALUES (" + vals + ")";
}

void append_key_part(std::string& key, std::optional<std::string_view> part) {
  if (!part) {
    key.push_back('\xFF');
    return;
  }
  const auto n = static_cast<uint32_t>(part->size());
  const char len[4] = {static_cast<char>(n & 0xFF), static_cast<char>((n >> 8) & 0xFF),
                       static_cast<char>((n >> 16) & 0xFF), static_cast<char>((n >> 24) & 0xFF)};
  key.push_back('\x01');
  key.append(len, 4);
  key.append(*part);
}

bool decode_key(std::string_view key, std::vector<std::optional<std::string>>& parts) {
  parts.clear();
  size_t i = 0;
  while (i < key.size()) {
    if (key[i] == '\xFF') {
      parts.emplace_back(std::nullopt);
      ++i;
      continue;
    }
    if (key[i] != '\x01' || i + 5 > key.size()) return false;
    const auto* p = reinterpret_cast<const unsigned char*>(key.data() + i + 1);
    const uint32_t n = p[0] | (p[1] << 8) | (p[2] << 16) | (static_cast<uint32_t>(p[3]) << 24);
    i += 5;
    if (n > key.size() - i) return false;
    parts.emplace_back(std::string(key.substr(i, n)));
    i += n;
  }
  return true;
}

std::string describe_key(const Resolver& r, std::string_view key) {
  std::vector<std::optional<std::string>> parts;
  if (!decode_key(key, parts)) return "(malformed key)";
  std::string out;
  for (size_t i = 0; i < parts.size(); ++i) {
    if (i) out += ", ";
    out += i < r.keys.size() ? r.keys[i] : "?";
    out += '=';
    if (!parts[i]) {
      out += "null";
      continue;
    }
    out += '"';
    const std::string& v = *parts[i];
    for (size_t k = 0; k < v.size() && k < 64; ++k) {
      const char c = v[k];
      if (c == '"' || c == '\\') out += '\\';
      out += static_cast<unsigned char>(c) < 0x20 ? '?' : c;
    }
    if (v.size() > 64) out += "...";
    out += '"';
  }
  return out;
}

ResolverSet::ResolverSet(const Catalog& catalog, const std::vector<ResolverSpec>& specs) {
  std::vector<std::string> errors;
  by_table_.resize(catalog.tables.size());
  for (const ResolverSpec& s : specs) {
    const std::string label = "resolver \"" + s.table + "." + s.column + "\"";
    const TableSchema* t = catalog.find(s.table);
    if (!t) {
      errors.push_back(label + ": table \"" + s.table + "\" is not a configured table");
      continue;
    }
    Resolver r;
    r.id = static_cast<uint32_t>(resolvers_.size());
    r.name = s.table + "." + s.column;
    r.table_name = s.table;
    r.column_name = s.column;
    r.table_id = t->id;
    r.column = t->find(s.column);
    if (r.column < 0) {
      errors.push_back(label + ": column \"" + s.column + "\" is not a column of table \"" + s.table + "\"");
      continue;
    }
    r.column_type = t->columns[r.column].type;
    if (r.column == t->time_column) errors.push_back(label + ": the time column cannot be resolved");
    for (uint32_t other : by_table_[t->id]) {
      if (resolvers_[other].column == r.column) errors.push_back(label + ": the column has two resolvers");
    }
    if (s.keys.empty()) errors.push_back(label + ": keys must name at least one key");
    r.keys = s.keys;
    for (size_t i = 0; i < s.keys.size(); ++i) {
      if (s.keys[i].empty()) errors.push_back(label + ": keys[" + std::to_string(i) + "] is empty");
      for (size_t j = 0; j < i; ++j) {
        if (s.keys[j] == s.keys[i]) errors.push_back(label + ": key \"" + s.keys[i] + "\" is listed twice");
      }
      bool nullable = false;
      for (const auto& n : s.nullable_keys) nullable = nullable || n == s.keys[i];
      r.nullable.push_back(nullable);
    }
    for (const auto& n : s.nullable_keys) {
      bool listed = false;
      for (const auto& k : s.keys) listed = listed || k == n;
      if (!listed) errors.push_back(label + ": nullable key \"" + n + "\" is not one of keys");
    }
    r.unknown = s.unknown;
    r.negative_ttl_ns = s.negative_ttl_ms * 1'000'000;
    r.cache_size = s.cache_size;
    const bool declarative = !s.lookup_table.empty();
    if (declarative == !s.lookup_sql.empty()) {
      errors.push_back(label + ": give either lookup_table (declarative) or lookup_sql, not " +
                       (declarative ? "both" : "neither"));
      continue;
    }
    if (declarative) {
      if (s.match.size() != s.keys.size()) {
        errors.push_back(label + ": match lists " + std::to_string(s.match.size()) + " columns for " +
                         std::to_string(s.keys.size()) + " keys");
      }
      if (s.id_column.empty()) errors.push_back(label + ": id_column is required with lookup_table");
      if (!s.create_sql.empty()) errors.push_back(label + ": create_sql belongs to the SQL form (use create_values)");
      r.lookup_sql = declarative_lookup_sql(s);
      if (s.unknown == UnknownKeyRule::create) r.create_sql = declarative_create_sql(s);
    } else {
      if (!s.match.empty() || !s.id_column.empty() || !s.create_values.empty()) {
        errors.push_back(label + ": match, id_column and create_values belong to the declarative form (lookup_table)");
      }
      r.lookup_sql = s.lookup_sql;
      if (s.unknown == UnknownKeyRule::create) {
        if (s.create_sql.empty()) errors.push_back(label + ": unknown \"create\" needs create_sql");
        r.create_sql = s.create_sql;
      } else if (!s.create_sql.empty()) {
        errors.push_back(label + ": create_sql is only used with unknown \"create\"");
      }
    }
    by_table_[t->id].push_back(r.id);
    resolvers_.push_back(std::move(r));
  }
  if (!errors.empty()) {
    std::string message;
    for (const auto& e : errors) {
      if (!message.empty()) message.push_back('\n');
      message += e;
    }
    throw std::runtime_error(message);
  }
}

const std::vector<uint32_t>& ResolverSet::of_table(uint32_t table_id) const {
  return table_id < by_table_.size() ? by_table_[table_id] : kNone;
}

const ResolverCache::Entry* ResolverCache::find(std::string_view key) const {
  auto it = map_.find(key);
  return it == map_.end() ? nullptr : &it->second;
}

void ResolverCache::put(std::string_view key, Entry e) {
  auto it = map_.find(key);
  if (it != map_.end()) {
    it->second = std::move(e);
    return;
  }
  if (map_.size() >= max_) map_.clear();
  map_.emplace(std::string(key), std::move(e));
}

TableKeys::TableKeys(ThreadResolvers& owner, const ResolverSet& set, uint32_t table_id) : owner_(owner), set_(set) {
  for (uint32_t id : set.of_table(table_id)) {
    const Resolver& r = set.resolvers()[id];
    Use use{id, {}};
    for (const std::string& k : r.keys) {
      int s = slot(k);
      if (s < 0) {
        names_.push_back(k);
        s = static_cast<int>(names_.size() - 1);
      }
      use.slots.push_back(static_cast<uint32_t>(s));
    }
    uses_.push_back(std::move(use));
  }
  slots_.resize(names_.size());
  row_.reserve(256);
  key_.reserve(256);
}

TableKeys::Outcome TableKeys::resolve_row(RowEncoder& enc) {
  bool missing = false;
  for (const Use& use : uses_) {
    const Resolver& r = set_.resolvers()[use.resolver];
    ResolverThreadCounters& counters = owner_.counters(use.resolver);
    key_.clear();
    for (size_t k = 0; k < use.slots.size(); ++k) {
      const Slot& s = slots_[use.slots[k]];
      if (s.length < 0) {
        if (!r.nullable[k]) {
          error_ = "resolver \"" + r.name + "\": key \"" + r.keys[k] + "\" is missing";
          error_column_ = r.column_name;
          return Outcome::rejected;
        }
        append_key_part(key_, std::nullopt);
      } else {
        append_key_part(key_, std::string_view(row_.data() + s.offset, static_cast<size_t>(s.length)));
      }
    }
    const ResolverCache::Entry* e = owner_.cache(use.resolver).find(key_);
    if (e && !e->known && ResolverCache::expired(*e, owner_.now_ns())) e = nullptr;
    if (!e) {
      counters.add(counters.misses);
      owner_.record_miss(use.resolver, key_);
      missing = true;
      continue;
    }
    counters.add(counters.hits);
    if (!e->known) {
      counters.add(counters.unknown_rejects);
      error_ = "resolver \"" + r.name + "\": " + (e->value.empty() ? "unknown key " : "key ") + describe_key(r, key_);
      if (!e->value.empty()) {
        error_ += " could not be resolved: " + e->value;
      } else if (r.unknown == UnknownKeyRule::reject) {
        error_ += " (unknown keys are rejected)";
      }
      error_column_ = r.column_name;
      return Outcome::rejected;
    }
    if (missing) continue;  // the row waits anyway; only collect the other misses
    const bool ok = is_number_type(r.column_type) ? enc.put_number(r.column, e->value, NumberKind::any)
                                                   : enc.put_string(r.column, e->value);
    if (!ok) return Outcome::encoder;
  }
  return missing ? Outcome::missing : Outcome::ok;
}

ThreadResolvers::ThreadResolvers(const ResolverSet& set, size_t tables) : set_(set) {
  tables_.resize(tables);
  for (size_t t = 0; t < tables; ++t) {
    if (!set.of_table(static_cast<uint32_t>(t)).empty()) {
      tables_[t] = std::make_unique<TableKeys>(*this, set, static_cast<uint32_t>(t));
    }
  }
  for (const Resolver& r : set.resolvers()) {
    caches_.emplace_back(r.cache_size);
    counters_.push_back(std::make_unique<ResolverThreadCounters>());
  }
}

void ThreadResolvers::record_miss(uint32_t resolver, std::string_view key) {
  std::string id(4, '\0');
  std::memcpy(id.data(), &resolver, 4);
  id.append(key);
  if (!miss_set_.insert(std::move(id)).second) return;
  misses_.push_back(KeyMiss{resolver, std::string(key)});
}

std::vector<KeyMiss> ThreadResolvers::take_misses() {
  std::vector<KeyMiss> out = std::move(misses_);
  clear_misses();
  return out;
}

void ThreadResolvers::clear_misses() {
  misses_.clear();
  miss_set_.clear();
}

void ThreadResolvers::apply(const std::vector<ResolveResult>& results, int64_t now_ns) {
  for (const ResolveResult& res : results) {
    if (res.resolver >= caches_.size()) continue;
    const Resolver& r = set_.resolvers()[res.resolver];
    ResolverCache::Entry e;
    switch (res.status) {
      case ResolveStatus::found:
        e.known = true;
        e.value = res.value;
        break;
      case ResolveStatus::unknown:
        e.expires_ns = now_ns + r.negative_ttl_ns;
        break;
      case ResolveStatus::failed:
        e.value = res.message.empty() ? "lookup failed" : res.message;
        e.expires_ns = now_ns + r.negative_ttl_ns;
        break;
      case ResolveStatus::unavailable:
        continue;
    }
    caches_[res.resolver].put(res.key, std::move(e));
  }
}

int64_t ThreadResolvers::now_ns() const {
  if (fixed_now_ >= 0) return fixed_now_;
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace sluice
