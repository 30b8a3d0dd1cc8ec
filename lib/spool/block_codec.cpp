// spool/block_codec.cpp — see block_codec.h.
#include "spool/block_codec.h"

#include <cstring>
#include <vector>

namespace sluice::spool {
namespace {

constexpr uint8_t kVersion = 1;

template <typename T>
void put(std::string& out, T v) {
  out.append(reinterpret_cast<const char*>(&v), sizeof v);
}
void put_str(std::string& out, std::string_view s) {
  put<uint16_t>(out, static_cast<uint16_t>(s.size()));
  out.append(s);
}

struct Reader {
  std::string_view in;
  bool ok = true;
  template <typename T>
  T get() {
    T v{};
    if (in.size() < sizeof v) {
      ok = false;
      return v;
    }
    std::memcpy(&v, in.data(), sizeof v);
    in.remove_prefix(sizeof v);
    return v;
  }
  std::string_view bytes(size_t n) {
    if (in.size() < n) {
      ok = false;
      return {};
    }
    auto s = in.substr(0, n);
    in.remove_prefix(n);
    return s;
  }
  std::string_view str() { return bytes(get<uint16_t>()); }
};

uint16_t be16(const char* p) { return static_cast<uint16_t>((uint8_t(p[0]) << 8) | uint8_t(p[1])); }
int32_t be32(const char* p) {
  return static_cast<int32_t>((uint32_t(uint8_t(p[0])) << 24) | (uint32_t(uint8_t(p[1])) << 16) |
                              (uint32_t(uint8_t(p[2])) << 8) | uint32_t(uint8_t(p[3])));
}
void put_be16(std::vector<char>& out, uint16_t v) {
  out.push_back(static_cast<char>(v >> 8));
  out.push_back(static_cast<char>(v));
}

}  // namespace

void encode_block(const TableSchema& table, const Block& block, std::string& out) {
  out.clear();
  out.reserve(64 + table.config_name.size() + table.columns.size() * 16 + block.data.size());
  put<uint8_t>(out, kVersion);
  put_str(out, table.config_name);
  uint16_t n = 0;
  for (const Column& c : table.columns) n += !(c.omit_bit >= 0 && !(block.column_mask & (uint64_t{1} << c.omit_bit)));
  put<uint16_t>(out, n);
  for (const Column& c : table.columns) {
    if (c.omit_bit >= 0 && !(block.column_mask & (uint64_t{1} << c.omit_bit))) continue;
    put_str(out, c.name);
  }
  put<uint32_t>(out, block.rows);
  put<int64_t>(out, block.min_time);
  put<int64_t>(out, block.max_time);
  put<uint64_t>(out, block.data.size());
  out.append(block.data.data(), block.data.size());
  if (block.idempotency_key) {  // optional trailer
    put_str(out, *block.idempotency_key);
    put<uint32_t>(out, block.idempotency_index);
  }
}

bool decode_block(const Catalog& catalog, std::string_view payload, Block& out, std::string& error) {
  Reader r{payload};
  if (r.get<uint8_t>() != kVersion || !r.ok) {
    error = "unknown spool record version";
    return false;
  }
  const std::string_view table_name = r.str();
  const uint16_t ncols = r.get<uint16_t>();
  std::vector<std::string_view> names;
  for (uint16_t i = 0; i < ncols && r.ok; ++i) names.push_back(r.str());
  const uint32_t rows = r.get<uint32_t>();
  const int64_t min_time = r.get<int64_t>();
  const int64_t max_time = r.get<int64_t>();
  const uint64_t size = r.get<uint64_t>();
  const std::string_view data = r.bytes(r.ok ? size : 0);
  std::string_view key;
  uint32_t key_index = 0;
  if (r.ok && !r.in.empty()) {
    key = r.str();
    key_index = r.get<uint32_t>();
  }
  if (!r.ok || !r.in.empty()) {
    error = "malformed spool record";
    return false;
  }
  const TableSchema* table = catalog.find(table_name);
  if (!table) {
    error = "table \"" + std::string(table_name) + "\" of a spooled block is no longer configured";
    return false;
  }
  // Stored column i → today's column index.
  std::vector<int> where(names.size());
  uint64_t mask = 0;
  for (size_t i = 0; i < names.size(); ++i) {
    where[i] = table->find(names[i]);
    if (where[i] < 0) {
      error = "column \"" + std::string(names[i]) + "\" of table \"" + table->config_name +
              "\" (in a spooled block) no longer exists";
      return false;
    }
    const Column& c = table->columns[where[i]];
    if (c.omit_bit >= 0) mask |= uint64_t{1} << c.omit_bit;
  }
  // Today's COPY order for that mask: stored index per position, -1 = NULL (new column).
  std::vector<int> order;
  bool same = true;
  for (size_t ci = 0; ci < table->columns.size(); ++ci) {
    const Column& c = table->columns[ci];
    if (c.omit_bit >= 0 && !(mask & (uint64_t{1} << c.omit_bit))) continue;
    int stored = -1;
    for (size_t i = 0; i < where.size(); ++i) {
      if (where[i] == static_cast<int>(ci)) stored = static_cast<int>(i);
    }
    if (stored != static_cast<int>(order.size())) same = false;
    order.push_back(stored);
  }
  if (order.size() != names.size()) same = false;

  out.table_id = table->id;
  out.column_mask = mask;
  out.rows = rows;
  out.min_time = min_time;
  out.max_time = max_time;
  out.ack = nullptr;
  out.idempotency_key = key.empty() ? nullptr : std::make_shared<const std::string>(key);
  out.idempotency_index = key_index;
  if (same) {
    out.data.assign(data.begin(), data.end());
    return true;
  }
  // Rewrite every tuple in today's order.
  out.data.clear();
  out.data.reserve(data.size() + rows * 4 * order.size());
  std::vector<std::string_view> fields(names.size());
  size_t pos = 0;
  for (uint32_t t = 0; t < rows; ++t) {
    if (data.size() - pos < 2 || be16(data.data() + pos) != names.size()) {
      error = "malformed tuple in a spooled block";
      return false;
    }
    pos += 2;
    for (size_t f = 0; f < names.size(); ++f) {
      if (data.size() - pos < 4) {
        error = "malformed tuple in a spooled block";
        return false;
      }
      const int32_t len = be32(data.data() + pos);
      const size_t total = 4 + (len < 0 ? 0 : static_cast<size_t>(len));
      if (data.size() - pos < total) {
        error = "malformed tuple in a spooled block";
        return false;
      }
      fields[f] = data.substr(pos, total);
      pos += total;
    }
    put_be16(out.data, static_cast<uint16_t>(order.size()));
    for (int stored : order) {
      if (stored < 0) {
        const char null_field[4] = {'\xff', '\xff', '\xff', '\xff'};
        out.data.insert(out.data.end(), null_field, null_field + 4);
      } else {
        out.data.insert(out.data.end(), fields[stored].begin(), fields[stored].end());
      }
    }
  }
  if (pos != data.size()) {
    error = "malformed spooled block (bytes after the last tuple)";
    return false;
  }
  return true;
}

}  // namespace sluice::spool
