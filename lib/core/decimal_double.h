// core/decimal_double.h — decimal text → double, exactly rounded, for the common short case only.
//
//   "-1234.5" ──digits into a uint64 mantissa m, decimal exponent e──► m ≤ 2^53 and |e| ≤ 22?
//        ├─ yes: m × 10^e (or m / 10^-e) in one IEEE operation = the correctly rounded double
//        └─ no (long mantissa, big exponent, other syntax): false; the caller takes its general path
//
// Clinger's fast path: m and 10^|e| are both exact doubles, so one multiplication or division is
// rounded once, to nearest even, and the result equals std::from_chars of the text. Used by the
// RowEncoder (float8/float4 columns, exact_decimal_double) and by the line protocol and JSON parsers,
// which check and convert a number in one pass (scan_float_text, scan_json_number) and hand the double
// to the encoder (RowEncoder::put_float_value).
#pragma once

#include <cfloat>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>

#include "core/ascii_digits.h"

namespace sluice {

static_assert(FLT_EVAL_METHOD == 0, "the fast float path needs IEEE double arithmetic without excess precision");

namespace decimal_detail {

// Appends the decimal digits from p on to m (8 at a time while 8 bytes remain); returns the end of
// the run. Locals only, so the loop keeps m and p in registers.
inline const char* digit_run(const char* p, const char* e, uint64_t& m_io) {
  uint64_t m = m_io;
  while (e - p >= 8) {
    const uint64_t v = load8(p);
    if (!all_eight_digits(v)) break;
    m = m * 100000000 + eight_digits_value(v);
    p += 8;
  }
  for (; p < e && static_cast<unsigned char>(*p - '0') < 10; ++p) m = m * 10 + static_cast<unsigned>(*p - '0');
  m_io = m;
  return p;
}

// 10^0 .. 10^22: the powers of ten that are exact doubles.
inline constexpr double kPow10[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,  1e10, 1e11,
                                    1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

// The end of a one-pass scan (scan_float_text, scan_json_number) of valid text: 2 with `out` set when
// the mantissa `m` of `digits` digits (`frac` of them after the point) and the written exponent
// (`exp10`, `exp_digits` digits) are within the fast path's limits, else 1.
inline int scanned_value(uint64_t m, size_t digits, size_t frac, int exp10, size_t exp_digits, bool negative,
                         double& out) {
  if (digits > 19 || exp_digits > 4) return 1;
  exp10 -= static_cast<int>(frac);
  if (m > (uint64_t{1} << 53) || exp10 < -22 || exp10 > 22) return 1;
  double v = static_cast<double>(m);
  v = exp10 < 0 ? v / kPow10[-exp10] : v * kPow10[exp10];
  out = negative ? -v : v;
  return 2;
}

// Appends the decimal digits from p on to m, one byte at a time (number tokens are short: the
// 8-byte attempts of digit_run cost more than they save there); returns the end of the run.
inline const char* byte_digit_run(const char* p, const char* e, uint64_t& m) {
  for (unsigned d; p < e && (d = static_cast<unsigned char>(*p - '0')) < 10; ++p) m = m * 10 + d;
  return p;
}

// The rest of a one-pass scan after the mantissa: an optional exponent ([eE][+-]?digits), then the
// end of the text (`p` == `e`); 0 when the text does not end so, else scanned_value().
inline int scan_exponent(const char* p, const char* e, uint64_t m, size_t digits, size_t frac, bool negative,
                         double& out) {
  int exp10 = 0;
  size_t exp_digits = 0;
  if (p < e && (*p == 'e' || *p == 'E')) {
    ++p;
    const bool eneg = p < e && *p == '-';
    if (p < e && (*p == '-' || *p == '+')) ++p;
    for (unsigned d; p < e && (d = static_cast<unsigned char>(*p - '0')) < 10; ++p, ++exp_digits) {
      if (exp_digits < 4) exp10 = exp10 * 10 + static_cast<int>(d);
    }
    if (exp_digits == 0) return 0;
    if (eneg) exp10 = -exp10;
  }
  if (p != e) return 0;
  return scanned_value(m, digits, frac, exp10, exp_digits, negative, out);
}

}  // namespace decimal_detail

// True, with `out` the correctly rounded double of `t`, when `t` is
// [-]digits[.digits][(e|E)[+-]digits] or [-].digits[...] with at most 19 mantissa digits whose value
// is at most 2^53, at most 4 exponent digits, and a resulting decimal exponent within ±22. False for
// every other text (valid or not): the caller then checks the syntax and converts the general way.
inline bool exact_decimal_double(std::string_view t, double& out) {
  const char* p = t.data();
  const char* const e = p + t.size();
  const bool negative = p < e && *p == '-';
  if (negative) ++p;
  // Digits accumulate into m; more than 19 of them may wrap m, and then the fast path is not taken.
  uint64_t m = 0;
  const char* q = decimal_detail::digit_run(p, e, m);
  std::ptrdiff_t digits = q - p, frac = 0;
  p = q;
  if (digits > 19) return false;
  if (p < e && *p == '.') {
    ++p;
    q = decimal_detail::digit_run(p, e, m);
    frac = q - p;
    p = q;
    digits += frac;
    if (digits > 19) return false;
  }
  if (digits == 0) return false;
  int exp10 = 0;
  if (p < e && (*p == 'e' || *p == 'E')) {
    ++p;
    const bool eneg = p < e && *p == '-';
    if (p < e && (*p == '-' || *p == '+')) ++p;
    int ed = 0;
    for (; p < e && static_cast<unsigned char>(*p - '0') < 10; ++p, ++ed) {
      if (ed == 4) return false;
      exp10 = exp10 * 10 + (*p - '0');
    }
    if (ed == 0) return false;
    if (eneg) exp10 = -exp10;
  }
  if (p != e) return false;
  exp10 -= static_cast<int>(frac);
  if (m > (uint64_t{1} << 53) || exp10 < -22 || exp10 > 22) return false;
  double v = static_cast<double>(m);
  v = exp10 < 0 ? v / decimal_detail::kPow10[-exp10] : v * decimal_detail::kPow10[exp10];
  out = negative ? -v : v;
  return true;
}

// Line protocol float text -?(digits[.digits*]|.digits)([eE][+-]?digits)? (no '+' before the mantissa),
// checked and converted in one byte-by-byte pass (short tokens: no 8-byte attempts). Returns 0 when `t`
// is not such text, 1 when it is but outside the fast path, 2 when it is and `out` holds its correctly
// rounded double: the texts and results of exact_decimal_double() exactly (same limits: 19 mantissa
// digits, 4 exponent digits, mantissa <= 2^53, decimal exponent within ±22).
inline int scan_float_text(std::string_view t, double& out) {
  const char* p = t.data();
  const char* const e = p + t.size();
  const bool negative = p < e && *p == '-';
  if (negative) ++p;
  uint64_t m = 0;  // wraps past 19 digits; then the fast path is not taken
  const char* const int_begin = p;
  p = decimal_detail::byte_digit_run(p, e, m);
  size_t digits = static_cast<size_t>(p - int_begin);
  size_t frac = 0;
  if (p < e && *p == '.') {
    ++p;
    const char* const frac_begin = p;
    p = decimal_detail::byte_digit_run(p, e, m);
    frac = static_cast<size_t>(p - frac_begin);
    digits += frac;
  }
  if (digits == 0) return 0;
  return decimal_detail::scan_exponent(p, e, m, digits, frac, negative, out);
}

// JSON number text (RFC 8259) -?(0|[1-9]digits)(.digits)?([eE][+-]?digits)?, checked and converted in
// one pass like scan_float_text: 0 when `t` is not a JSON number, 1 when it is but outside the fast
// path, 2 when it is and `out` holds its correctly rounded double (exactly exact_decimal_double's).
inline int scan_json_number(std::string_view t, double& out) {
  const char* p = t.data();
  const char* const e = p + t.size();
  const bool negative = p < e && *p == '-';
  if (negative) ++p;
  if (p == e) return 0;
  uint64_t m = 0;  // wraps past 19 digits; then the fast path is not taken
  size_t digits = 1;
  if (*p == '0') {
    ++p;  // no more integer digits may follow a leading zero
  } else {
    const char* const int_begin = p;
    p = decimal_detail::byte_digit_run(p, e, m);
    digits = static_cast<size_t>(p - int_begin);
    if (digits == 0) return 0;
  }
  size_t frac = 0;
  if (p < e && *p == '.') {
    ++p;
    const char* const frac_begin = p;
    p = decimal_detail::byte_digit_run(p, e, m);
    frac = static_cast<size_t>(p - frac_begin);
    if (frac == 0) return 0;
    digits += frac;
  }
  return decimal_detail::scan_exponent(p, e, m, digits, frac, negative, out);
}

// The double of exact_decimal_double() rounded to float, when that is the correctly rounded float of
// the text too: a float has 24 significant bits, a double 53, and the 29 bits below the float's last
// bit being exactly 1000...0 marks a halfway point where rounding twice may differ from rounding once
// (then false). The doubles of exact_decimal_double() are 0 or normal floats (1e-22 .. 9.1e37).
inline bool exact_double_to_float(double v, float& out) {
  uint64_t bits;
  std::memcpy(&bits, &v, 8);
  if ((bits & 0x1FFFFFFFu) == 0x10000000u) return false;
  out = static_cast<float>(v);
  return true;
}

}  // namespace sluice
