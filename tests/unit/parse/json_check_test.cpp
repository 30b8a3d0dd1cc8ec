// Must-accept / must-reject table for the strict JSON checker.
#include "ingest/parse/json_check.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace sluice {
namespace {

TEST(JsonCheck, MustAccept) {
  const std::vector<std::string> ok = {
      "{}", "[]", " {\"a\": [1, -2.5e+3, 0, 0.0, 1E5, true, false, null, \"x\"]} ", "\"\\u00e9\\ud83d\\ude00\"",
      "\"caf\xc3\xa9 \xf0\x9f\x98\x80\"", "[[[[]]]]", "{\"a\":{\"b\":{}}}", "\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"", "-0",
      "1", "\n\t\r [ 1 , 2 ] \n"};
  for (const auto& t : ok) {
    size_t off = 99;
    EXPECT_TRUE(json_check(t, off)) << t << " failed at " << off;
  }
}

struct Bad {
  std::string text;
  size_t offset;
  std::string what;
};

TEST(JsonCheck, MustReject) {
  const std::vector<Bad> bad = {
      {"", 0, "unexpected end of input"},
      {"   ", 3, "unexpected end of input"},
      {"{\"a\":1", 6, "unexpected end of input"},
      {"{\"a\":1,}", 7, "expected a string key"},
      {"[1,]", 3, "unexpected character"},
      {"[1 2]", 3, "expected ',' or ']'"},
      {"{\"a\" 1}", 5, "expected ':'"},
      {"{} x", 3, "unexpected content after the JSON value"},
      {"01", 1, "unexpected content after the JSON value"},
      {"1.", 2, "unexpected end of input"},
      {"1.e5", 2, "invalid number"},
      {"-", 1, "unexpected end of input"},
      {"+1", 0, "unexpected character"},
      {"1e", 2, "unexpected end of input"},
      {"tru", 3, "unexpected end of input"},
      {"[trux]", 4, "invalid literal"},
      {"nul", 3, "unexpected end of input"},
      {"[nulL]", 4, "invalid literal"},
      {"\"abc", 4, "unexpected end of input"},
      {"\"a\\qb\"", 3, "invalid escape"},
      {"\"\\u12g4\"", 5, "invalid \\u escape"},
      {"\"a\x01\"", 2, "unescaped control character in string"},
      {"\"\xff\"", 1, "invalid UTF-8"},
      {"\"\xc3\"", 1, "invalid UTF-8"},
      {"\"\xc3", 2, "unexpected end of input"},
      {"\"\xc3(\"", 1, "invalid UTF-8"},
      {"\"\xed\xa0\x80\"", 1, "invalid UTF-8"},
      {"\"\\udc00\"", 1, "lone low surrogate in \\u escape"},
      {"\"\\ud800x\"", 7, "high surrogate not followed by a low surrogate in \\u escape"},
      {"\"\\ud800\\u0041\"", 7, "high surrogate not followed by a low surrogate in \\u escape"},
      {"\xc3\xa9", 0, "unexpected character"},
  };
  for (const auto& b : bad) {
    size_t off = 99;
    const char* what = "";
    EXPECT_FALSE(json_check(b.text, off, &what)) << b.text;
    EXPECT_EQ(off, b.offset) << b.text;
    EXPECT_EQ(std::string(what), b.what) << b.text;
  }
}

TEST(JsonCheck, Depth) {
  std::string deep(5, '[');
  deep += std::string(5, ']');
  size_t off = 0;
  EXPECT_TRUE(json_check(deep, off, nullptr, 5));
  EXPECT_FALSE(json_check(deep, off, nullptr, 4));
  EXPECT_EQ(off, 4u);
}

TEST(JsonCheck, NumberTokens) {
  for (const char* t : {"0", "-0", "12", "1.5", "1e5", "1E+5", "-1.25e-3"}) EXPECT_TRUE(is_json_number_token(t)) << t;
  for (const char* t : {"", "-", "01", "1.", ".5", "+1", "1e", "1e+", "0x1", "1 ", "NaN", "Infinity"})
    EXPECT_FALSE(is_json_number_token(t)) << t;
}

}  // namespace
}  // namespace sluice
