// tests/unit/catalog/encoder_test_util.h — hand-built schemas and byte helpers for encoder tests.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "catalog/catalog.h"
#include "catalog/row_encoder.h"

namespace sluice::test {

inline Column make_column(std::string name, PgType type, bool not_null = false, bool has_default = false) {
  Column c;
  c.name = std::move(name);
  c.type = type;
  c.not_null = not_null;
  c.has_default = has_default;
  return c;
}

inline std::string hex(std::string_view bytes) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : bytes) {
    out.push_back(kHex[c >> 4]);
    out.push_back(kHex[c & 15]);
  }
  return out;
}
inline std::string hex(const std::vector<char>& v) { return hex(std::string_view(v.data(), v.size())); }

inline std::string hex64(int64_t v) {
  std::string b(8, '\0');
  for (int i = 0; i < 8; ++i) b[i] = static_cast<char>(static_cast<uint64_t>(v) >> (56 - 8 * i));
  return hex(b);
}
inline std::string hex_text(std::string_view s) { return hex(s); }

inline int64_t read_be(const char* p, int n) {
  uint64_t v = 0;
  for (int i = 0; i < n; ++i) v = v << 8 | static_cast<unsigned char>(p[i]);
  if (n < 8 && (v >> (8 * n - 1)) & 1) v |= ~uint64_t{0} << (8 * n);  // sign-extend
  return static_cast<int64_t>(v);
}

// One decoded binary COPY tuple: each field's bytes, or nullopt-like marker "NULL".
struct DecodedTuple {
  std::vector<std::string> fields;  // "NULL" for a NULL field, else the raw bytes
  size_t bytes = 0;                 // size of the tuple in the buffer
};

// Decodes the tuple at `p`; returns false if the buffer is malformed.
inline bool decode_tuple(const char* p, size_t size, DecodedTuple& out) {
  out.fields.clear();
  if (size < 2) return false;
  const int64_t n = read_be(p, 2);
  size_t off = 2;
  for (int64_t i = 0; i < n; ++i) {
    if (off + 4 > size) return false;
    const int64_t len = read_be(p + off, 4);
    off += 4;
    if (len == -1) {
      out.fields.emplace_back("NULL");
      continue;
    }
    if (len < 0 || off + static_cast<size_t>(len) > size) return false;
    out.fields.emplace_back(p + off, static_cast<size_t>(len));
    off += static_cast<size_t>(len);
  }
  out.bytes = off;
  return true;
}

// All tuples of a block's data.
inline std::vector<DecodedTuple> decode_all(const std::vector<char>& data) {
  std::vector<DecodedTuple> rows;
  size_t off = 0;
  while (off < data.size()) {
    DecodedTuple t;
    if (!decode_tuple(data.data() + off, data.size() - off, t)) {
      rows.clear();
      return rows;
    }
    off += t.bytes;
    rows.push_back(std::move(t));
  }
  return rows;
}

}  // namespace sluice::test
