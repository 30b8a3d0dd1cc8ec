// ingest/parse/json_check.cpp — see json_check.h.
#include "ingest/parse/json_check.h"

#include "core/decimal_double.h"

namespace sluice {
namespace {

inline bool is_digit(char c) { return static_cast<unsigned char>(c - '0') < 10; }
inline bool is_ws(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }
inline bool is_hex(char c) {
  return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

class Checker {
 public:
  Checker(std::string_view t, int max_depth) : b_(t.data()), p_(t.data()), e_(t.data() + t.size()), max_depth_(max_depth) {}

  bool document() {
    skip_ws();
    if (!value(0)) return false;
    skip_ws();
    if (p_ != e_) return fail("unexpected content after the JSON value");
    return true;
  }
  size_t offset() const { return static_cast<size_t>(p_ - b_); }
  const char* what() const { return what_; }

 private:
  bool fail(const char* what) {
    what_ = what;
    return false;
  }
  void skip_ws() {
    while (p_ < e_ && is_ws(*p_)) ++p_;
  }
  bool value(int depth) {
    if (p_ == e_) return fail("unexpected end of input");
    switch (*p_) {
      case '{': return object(depth + 1);
      case '[': return array(depth + 1);
      case '"': return string();
      case 't': return literal("true", 4);
      case 'f': return literal("false", 5);
      case 'n': return literal("null", 4);
      default:
        if (*p_ == '-' || is_digit(*p_)) return number();
        return fail("unexpected character");
    }
  }
  bool literal(const char* word, size_t n) {
    for (size_t i = 0; i < n; ++i, ++p_) {
      if (p_ == e_) return fail("unexpected end of input");
      if (*p_ != word[i]) return fail("invalid literal");
    }
    return true;
  }
  bool number() {
    if (*p_ == '-') ++p_;
    if (p_ == e_) return fail("unexpected end of input");
    if (*p_ == '0') {
      ++p_;
    } else if (is_digit(*p_)) {
      while (p_ < e_ && is_digit(*p_)) ++p_;
    } else {
      return fail("invalid number");
    }
    if (p_ < e_ && *p_ == '.') {
      ++p_;
      if (p_ == e_) return fail("unexpected end of input");
      if (!is_digit(*p_)) return fail("invalid number");
      while (p_ < e_ && is_digit(*p_)) ++p_;
    }
    if (p_ < e_ && (*p_ == 'e' || *p_ == 'E')) {
      ++p_;
      if (p_ < e_ && (*p_ == '+' || *p_ == '-')) ++p_;
      if (p_ == e_) return fail("unexpected end of input");
      if (!is_digit(*p_)) return fail("invalid number");
      while (p_ < e_ && is_digit(*p_)) ++p_;
    }
    return true;
  }
  bool string() {
    ++p_;  // opening quote
    while (p_ < e_) {
      const auto c = static_cast<unsigned char>(*p_);
      if (c == '"') {
        ++p_;
        return true;
      }
      if (c == '\\') {
        ++p_;
        if (p_ == e_) return fail("unexpected end of input");
        switch (*p_) {
          case '"': case '\\': case '/': case 'b': case 'f': case 'n': case 'r': case 't':
            ++p_;
            break;
          case 'u': {
            ++p_;
            unsigned cp;
            if (!hex4(cp)) return false;
            if (cp >= 0xDC00 && cp <= 0xDFFF) {
              p_ -= 6;
              return fail("lone low surrogate in \\u escape");
            }
            if (cp >= 0xD800 && cp <= 0xDBFF) {  // must be followed by \uDC00..\uDFFF
              if (e_ - p_ >= 2 && p_[0] == '\\' && p_[1] == 'u') {
                p_ += 2;
                unsigned lo;
                if (!hex4(lo)) return false;
                if (lo >= 0xDC00 && lo <= 0xDFFF) break;
                p_ -= 6;
              }
              return fail("high surrogate not followed by a low surrogate in \\u escape");
            }
            break;
          }
          default:
            return fail("invalid escape");
        }
        continue;
      }
      if (c < 0x20) return fail("unescaped control character in string");
      if (c < 0x80) {
        ++p_;
        continue;
      }
      if (!utf8_sequence()) return false;
    }
    return fail("unexpected end of input");
  }
  bool hex4(unsigned& cp) {
    cp = 0;
    for (int i = 0; i < 4; ++i, ++p_) {
      if (p_ == e_) return fail("unexpected end of input");
      const char c = *p_;
      if (!is_hex(c)) return fail("invalid \\u escape");
      cp = cp << 4 | static_cast<unsigned>(is_digit(c) ? c - '0' : (c | 0x20) - 'a' + 10);
    }
    return true;
  }
  bool utf8_sequence() {
    const auto* u = reinterpret_cast<const unsigned char*>(p_);
    const unsigned c = u[0];
    size_t len;
    if (c >= 0xC2 && c <= 0xDF) len = 2;
    else if ((c & 0xF0) == 0xE0) len = 3;
    else if (c >= 0xF0 && c <= 0xF4) len = 4;
    else return fail("invalid UTF-8");
    const size_t avail = static_cast<size_t>(e_ - p_);
    for (size_t k = 1; k < len; ++k) {
      if (k >= avail) {
        p_ = e_;
        return fail("unexpected end of input");
      }
      if ((u[k] & 0xC0) != 0x80) return fail("invalid UTF-8");
    }
    if (len == 3) {
      const unsigned cp = ((c & 0x0F) << 12) | ((u[1] & 0x3F) << 6) | (u[2] & 0x3F);
      if (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF)) return fail("invalid UTF-8");
    } else if (len == 4) {
      const unsigned cp = ((c & 0x07) << 18) | ((u[1] & 0x3F) << 12) | ((u[2] & 0x3F) << 6) | (u[3] & 0x3F);
      if (cp < 0x10000 || cp > 0x10FFFF) return fail("invalid UTF-8");
    }
    p_ += len;
    return true;
  }
  bool object(int depth) {
    if (depth > max_depth_) return fail("nesting too deep");
    ++p_;  // {
    skip_ws();
    if (p_ < e_ && *p_ == '}') {
      ++p_;
      return true;
    }
    for (;;) {
      if (p_ == e_) return fail("unexpected end of input");
      if (*p_ != '"') return fail("expected a string key");
      if (!string()) return false;
      skip_ws();
      if (p_ == e_) return fail("unexpected end of input");
      if (*p_ != ':') return fail("expected ':'");
      ++p_;
      skip_ws();
      if (!value(depth)) return false;
      skip_ws();
      if (p_ == e_) return fail("unexpected end of input");
      if (*p_ == '}') {
        ++p_;
        return true;
      }
      if (*p_ != ',') return fail("expected ',' or '}'");
      ++p_;
      skip_ws();
    }
  }
  bool array(int depth) {
    if (depth > max_depth_) return fail("nesting too deep");
    ++p_;  // [
    skip_ws();
    if (p_ < e_ && *p_ == ']') {
      ++p_;
      return true;
    }
    for (;;) {
      if (!value(depth)) return false;
      skip_ws();
      if (p_ == e_) return fail("unexpected end of input");
      if (*p_ == ']') {
        ++p_;
        return true;
      }
      if (*p_ != ',') return fail("expected ',' or ']'");
      ++p_;
      skip_ws();
    }
  }

  const char* b_;
  const char* p_;
  const char* e_;
  int max_depth_;
  const char* what_ = "";
};

}  // namespace

bool json_check(std::string_view text, size_t& error_offset, const char** what, int max_depth) {
  Checker c(text, max_depth);
  if (c.document()) return true;
  error_offset = c.offset();
  if (what) *what = c.what();
  return false;
}

bool is_json_number_token(std::string_view t) {
  double ignored;
  return scan_json_number(t, ignored) != 0;
}

}  // namespace sluice
