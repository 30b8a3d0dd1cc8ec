// core/ascii_digits.h — eight ASCII decimal digits at a time (SWAR), for the number parsers.
//
//   text ──memcpy 8 bytes──► uint64 ──all_eight_digits()? ──► eight_digits_value() (0..99999999)
//                                              └─ no: the caller goes on byte by byte
//
// Plain integer arithmetic on a little-endian 64-bit load (the technique of fast_float/simdjson):
// no instruction-set requirement, so the binary runs on any x86-64. Callers must have 8 readable bytes.
#pragma once

#include <cstdint>
#include <cstring>

namespace sluice {

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "ascii_digits.h assumes a little-endian load");

inline uint64_t load8(const char* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
  return v;
}

// True when all 8 bytes are '0'..'9'.
inline bool all_eight_digits(uint64_t v) {
  return (((v & 0xF0F0F0F0F0F0F0F0ull) | (((v + 0x0606060606060606ull) & 0xF0F0F0F0F0F0F0F0ull) >> 4)) ==
          0x3333333333333333ull);
}

// The value of 8 digits (first byte most significant); `v` must pass all_eight_digits().
inline uint32_t eight_digits_value(uint64_t v) {
  const uint64_t mask = 0x000000FF000000FFull;
  const uint64_t mul1 = 0x000F424000000064ull;  // 100 + (1000000 << 32)
  const uint64_t mul2 = 0x0000271000000001ull;  // 1 + (10000 << 32)
  v -= 0x3030303030303030ull;
  v = (v * 10) + (v >> 8);  // pairs of digits
  v = (((v & mask) * mul1) + (((v >> 16) & mask) * mul2)) >> 32;
  return static_cast<uint32_t>(v);
}

}  // namespace sluice
