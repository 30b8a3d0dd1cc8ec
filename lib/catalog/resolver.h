// catalog/resolver.h — dimension resolvers: business keys senders know → the key a column stores.
//
//   parser: key names of the row ──TableKeys::set()──► per-row key slots
//           end of row ──TableKeys::resolve_row()──► per-thread cache ─hit──► RowEncoder.put_*(column, id)
//                                                        │ miss: recorded in ThreadResolvers::misses()
//                                                        ▼
//   write service (after the parse): misses ──ResolverService (own thread, own libpq connection)──►
//           results posted back to the IO thread ──ThreadResolvers::apply()──► cache ──► parse again
//
// A Resolver (built at start-up from the config and checked against the Catalog) fills one column of
// one table from an ordered list of key names (line protocol tag/field names, JSON member names). The
// key names are consumed by the resolver: they never go to columns of their own (a key may carry the
// target column's name, e.g. sensor_readings.sensor_id, whose value passes through after the sensor
// is registered). Keys not listed in nullable_keys are required: a row without them is rejected.
//
// Everything here belongs to one IO thread (no locks): ThreadResolvers holds a TableKeys per table with
// resolvers and a bounded cache per resolver. Once a key is cached, a row costs the key concatenation
// into a reused buffer and one hash lookup (heterogeneous: no allocation). Negative results (unknown
// keys under `reject`, keys whose creation failed) are cached with a TTL; at the cache's bound it is
// cleared (the next rows refill it through the service).
//
// Key encoding (append_key_part / decode_key): per key, 0xFF for NULL, else 0x01, a 4-byte
// little-endian length and the bytes — unambiguous for any content.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "catalog/catalog.h"
#include "config/resolver_config.h"
#include "catalog/row_encoder.h"

namespace sluice {

// Parses of one request (or datagram) that may wait for resolver keys before it is answered 503
// (keys evicted again between the answer and the new parse, e.g. by a tiny cache).
inline constexpr int kMaxResolveRounds = 4;

// What the config says about one resolver (config/resolver_config.h).
using ResolverSpec = ResolverConfig;

// Builds the SQL of the declarative form (identifiers quoted): SELECT "id"::text FROM "s"."t"
// WHERE "m1" = $1 AND ...; INSERT INTO "s"."t" ("m1", ..., "c1", ...) VALUES ($1, ..., 'v1', ...).
std::string declarative_lookup_sql(const ResolverSpec& spec);
std::string declarative_create_sql(const ResolverSpec& spec);

// One resolver, validated against the Catalog.
struct Resolver {
  uint32_t id = 0;                      // index in the ResolverSet
  std::string name;                     // "observations.series_id": errors and metric labels
  std::string table_name, column_name;  // for metric labels
  uint32_t table_id = 0;
  int column = -1;
  PgType column_type = PgType::text;
  std::vector<std::string> keys;
  std::vector<bool> nullable;           // by key
  UnknownKeyRule unknown = UnknownKeyRule::reject;
  std::string lookup_sql, create_sql;   // create_sql empty under reject
  int64_t negative_ttl_ns = 30'000'000'000;
  size_t cache_size = 100000;
};

// Appends one key part (nullopt = NULL) to an encoded key.
void append_key_part(std::string& key, std::optional<std::string_view> part);
// Splits an encoded key; false when malformed.
bool decode_key(std::string_view key, std::vector<std::optional<std::string>>& parts);
// ba="PJM", type="demand", subtype=null — for error messages (values cut at 64 bytes).
std::string describe_key(const Resolver& r, std::string_view key);

// All resolvers of the daemon; built at start-up. Throws std::runtime_error naming the resolver and
// the problem (unknown table or column, key count ≠ match count, a key that is also a column mapped
// elsewhere is fine, create without create SQL, ...), all problems at once.
class ResolverSet {
 public:
  ResolverSet() = default;
  ResolverSet(const Catalog& catalog, const std::vector<ResolverSpec>& specs);
  const std::vector<Resolver>& resolvers() const { return resolvers_; }
  bool empty() const { return resolvers_.empty(); }
  // Resolver ids of one table (empty when none).
  const std::vector<uint32_t>& of_table(uint32_t table_id) const;

 private:
  std::vector<Resolver> resolvers_;
  std::vector<std::vector<uint32_t>> by_table_;
};

// What the service found for one key.
enum class ResolveStatus : uint8_t {
  found,        // value holds the id (text)
  unknown,      // no such key and the rule is reject (or the create inserted nothing)
  failed,       // lookup/create failed for this key (message); cached like unknown
  unavailable,  // the database could not be asked (message); not cached, the sender retries
};

struct ResolveResult {
  uint32_t resolver = 0;
  std::string key;      // encoded
  ResolveStatus status = ResolveStatus::unknown;
  std::string value;    // found: the id as text
  std::string message;  // failed/unavailable
};

struct KeyMiss {
  uint32_t resolver = 0;
  std::string key;  // encoded
};

// Where the IO threads send their misses (pg::ResolverService; a fake in tests). submit() is
// thread-safe and calls `done` exactly once, on any thread.
class KeyResolverService {
 public:
  virtual ~KeyResolverService() = default;
  virtual void submit(std::vector<KeyMiss> misses, std::function<void(std::vector<ResolveResult>)> done) = 0;
};

// Single-writer counters of one IO thread, by resolver (summed at scrape time).
struct ResolverThreadCounters {
  std::atomic<uint64_t> hits{0}, misses{0}, unknown_rejects{0};
  void add(std::atomic<uint64_t>& c) { c.store(c.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed); }
};

// A bounded cache of one resolver on one thread. find() allocates nothing.
class ResolverCache {
 public:
  struct Entry {
    bool known = false;      // found: value is the id
    std::string value;       // id, or for !known the reason ("" = unknown key)
    int64_t expires_ns = 0;  // !known only: monotonic ns after which the entry is ignored
  };
  explicit ResolverCache(size_t max_entries) : max_(max_entries == 0 ? 1 : max_entries) {}
  // nullptr when absent; a negative entry is returned whatever its age (see expired()).
  const Entry* find(std::string_view key) const;
  static bool expired(const Entry& e, int64_t now_ns) { return !e.known && now_ns >= e.expires_ns; }
  void put(std::string_view key, Entry e);  // clears everything first when full
  size_t size() const { return map_.size(); }

 private:
  struct Hash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  size_t max_;
  std::unordered_map<std::string, Entry, Hash, std::equal_to<>> map_;
};

class ThreadResolvers;

// Per-row key state of one table on one thread (used by the parsers).
class TableKeys {
 public:
  enum class Outcome : uint8_t {
    ok,         // every resolver's column was put into the encoder
    missing,    // some key is not cached: recorded; the row is neither accepted nor rejected
    rejected,   // unknown key, failed key or missing required key: error() names the resolver and key
    encoder,    // the encoder refused the resolved value: see the encoder's error
  };
  TableKeys(ThreadResolvers& owner, const ResolverSet& set, uint32_t table_id);
  // Slot of a key name (>= 0), or -1 when the name is not a key of this table.
  int slot(std::string_view name) const {
    for (size_t i = 0; i < names_.size(); ++i) {
      if (names_[i] == name) return static_cast<int>(i);
    }
    return -1;
  }
  const std::string& name(int slot) const { return names_[static_cast<size_t>(slot)]; }
  void begin_row() {
    for (auto& s : slots_) s.length = -1;
    row_.clear();
  }
  void set(int slot, std::string_view value) {
    slots_[slot].offset = static_cast<uint32_t>(row_.size());
    slots_[slot].length = static_cast<int32_t>(value.size());
    row_.append(value);
  }
  Outcome resolve_row(RowEncoder& enc);
  const std::string& error() const { return error_; }
  // The target column of the resolver that rejected the row (for RowError::column).
  const std::string& error_column() const { return error_column_; }

 private:
  struct Slot {
    uint32_t offset = 0;
    int32_t length = -1;  // -1: not in this row
  };
  struct Use {
    uint32_t resolver;
    std::vector<uint32_t> slots;  // by key position
  };
  ThreadResolvers& owner_;
  const ResolverSet& set_;
  std::vector<std::string> names_;
  std::vector<Slot> slots_;
  std::vector<Use> uses_;
  std::string row_, key_, error_, error_column_;
};

// Everything resolver-related one IO thread owns.
class ThreadResolvers {
 public:
  explicit ThreadResolvers(const ResolverSet& set, size_t tables);
  const ResolverSet& set() const { return set_; }
  // nullptr when the table has no resolvers.
  TableKeys* table(uint32_t table_id) { return table_id < tables_.size() ? tables_[table_id].get() : nullptr; }
  ResolverCache& cache(uint32_t resolver) { return caches_[resolver]; }
  ResolverThreadCounters& counters(uint32_t resolver) { return *counters_[resolver]; }
  const ResolverThreadCounters& counters(uint32_t resolver) const { return *counters_[resolver]; }

  // Misses recorded since the last take_misses(), each key once.
  bool has_misses() const { return !misses_.empty(); }
  std::vector<KeyMiss> take_misses();
  void clear_misses();
  void record_miss(uint32_t resolver, std::string_view key);
  // Stores the service's answers in this thread's caches (unavailable ones are not cached).
  void apply(const std::vector<ResolveResult>& results, int64_t now_ns);

  // UDP datagrams waiting for resolution, and those dropped (queue full, or keys never settled).
  std::atomic<uint64_t> udp_pending{0}, udp_dropped{0};

  // Monotonic clock used for negative TTLs (tests may set a fixed time).
  int64_t now_ns() const;
  void set_fixed_now_ns(int64_t ns) { fixed_now_ = ns; }

 private:
  const ResolverSet& set_;
  std::vector<std::unique_ptr<TableKeys>> tables_;
  std::vector<ResolverCache> caches_;
  std::vector<std::unique_ptr<ResolverThreadCounters>> counters_;
  std::vector<KeyMiss> misses_;
  std::unordered_set<std::string> miss_set_;  // resolver id (4 bytes) + key
  int64_t fixed_now_ = -1;
};

}  // namespace sluice
