// The fast paths of LineProtocolParser: names and values are found 16 bytes at a time (reading past
// the line's end while inside the body) and duplicate keys of long lines go through a hash set.
// Generated lines with escapes at every offset, tokens of every length around the 16-byte steps, and
// each line alone as the body, followed by more lines, and after other lines.
#include <gtest/gtest.h>

#include <random>
#include <string>
#include <utility>
#include <vector>

#include "core/bytes.h"
#include "ingest/parse/line_protocol.h"

namespace sluice {
namespace {

struct Token {
  std::string raw, unescaped;
};

// A name of `atoms` pieces: plain letters and the escapes of a tag/field key or value (`measurement`:
// the measurement's, where '=' is plain and "\=" stays as written).
Token make_name(std::mt19937& rng, int atoms, bool measurement) {
  static const std::vector<std::pair<std::string, std::string>> kTagAtoms = {
      {"a", "a"}, {"Z", "Z"}, {"_", "_"}, {"7", "7"}, {"\\,", ","}, {"\\ ", " "}, {"\\=", "="},
      {"\\\\", "\\"}, {"\\q", "\\q"}, {"\xc3\xa9", "\xc3\xa9"}};
  static const std::vector<std::pair<std::string, std::string>> kMeasurementAtoms = {
      {"a", "a"}, {"Z", "Z"}, {"=", "="}, {"\\,", ","}, {"\\ ", " "}, {"\\\\", "\\"}, {"\\=", "\\="}, {"\\q", "\\q"}};
  const auto& set = measurement ? kMeasurementAtoms : kTagAtoms;
  Token t;
  for (int i = 0; i < atoms; ++i) {
    // Mostly plain letters, so escapes fall at all offsets of long tokens.
    const auto& a = (rng() % 4 == 0) ? set[rng() % set.size()] : set[rng() % 3];
    t.raw += a.first;
    t.unescaped += a.second;
  }
  return t;
}

struct Generated {
  std::string line;
  Token measurement;
  std::vector<std::pair<Token, Token>> tags;
  std::vector<std::pair<Token, std::string>> fields;  // key, float text
};

Generated generate(std::mt19937& rng) {
  Generated g;
  g.measurement = make_name(rng, 1 + static_cast<int>(rng() % 40), true);
  g.line = g.measurement.raw;
  const int tags = static_cast<int>(rng() % 4);
  for (int k = 0; k < tags; ++k) {
    Token key = make_name(rng, 1 + static_cast<int>(rng() % 34), false);
    key.raw = "t" + std::to_string(k) + key.raw;  // distinct keys
    key.unescaped = "t" + std::to_string(k) + key.unescaped;
    const Token value = make_name(rng, 1 + static_cast<int>(rng() % 34), false);
    g.line += "," + key.raw + "=" + value.raw;
    g.tags.emplace_back(key, value);
  }
  g.line += " ";
  const int fields = 1 + static_cast<int>(rng() % 4);
  for (int k = 0; k < fields; ++k) {
    Token key = make_name(rng, 1 + static_cast<int>(rng() % 34), false);
    key.raw = "f" + std::to_string(k) + key.raw;
    key.unescaped = "f" + std::to_string(k) + key.unescaped;
    std::string value = (rng() % 2) ? "-" : "";
    const int digits = 1 + static_cast<int>(rng() % 33);
    for (int d = 0; d < digits; ++d) value.push_back(static_cast<char>('0' + rng() % 10));
    const size_t sign = value[0] == '-' ? 1 : 0;
    if (rng() % 2) value.insert(sign + static_cast<size_t>(rng() % (value.size() - sign + 1)), ".");
    g.line += (k ? "," : "") + key.raw + "=" + value;
    g.fields.emplace_back(key, value);
  }
  return g;
}

void expect_generated(const Generated& g, const ParsedLine& line) {
  EXPECT_EQ(line.measurement, g.measurement.unescaped);
  ASSERT_EQ(line.tags.size(), g.tags.size());
  for (size_t k = 0; k < g.tags.size(); ++k) {
    EXPECT_EQ(line.tags[k].key, g.tags[k].first.unescaped) << k;
    EXPECT_EQ(line.tags[k].value, g.tags[k].second.unescaped) << k;
  }
  ASSERT_EQ(line.fields.size(), g.fields.size());
  for (size_t k = 0; k < g.fields.size(); ++k) {
    EXPECT_EQ(line.fields[k].key, g.fields[k].first.unescaped) << k;
    EXPECT_EQ(line.fields[k].value, g.fields[k].second) << k;
    EXPECT_EQ(line.fields[k].kind, LineFieldKind::floating) << k;
  }
}

TEST(LineProtocolScan, GeneratedLinesInEveryPositionOfTheBody) {
  std::mt19937 rng(7);
  LineProtocolParser parser;
  ParsedLine line;
  LineError err;
  for (int n = 0; n < 3000; ++n) {
    const Generated g = generate(rng);
    SCOPED_TRACE(g.line);
    // Alone (the scan may not read past the body), before more lines, after a line, with a timestamp.
    const std::string bodies[] = {g.line, g.line + "\nm v=1\n", "m v=1\n" + g.line,
                                  "m v=1\n" + g.line + " 123\r\n" + std::string(40, ',')};
    for (int b = 0; b < 4; ++b) {
      // A copy of exactly the body's size, so reading past its end is caught by ASan.
      const std::vector<char> exact(bodies[b].begin(), bodies[b].end());
      parser.reset(std::string_view(exact.data(), exact.size()), EpochPrecision::ns, 1);
      if (b >= 2) ASSERT_EQ(parser.next(line, err), LineStatus::line);
      ASSERT_EQ(parser.next(line, err), LineStatus::line) << err.message;
      expect_generated(g, line);
      EXPECT_EQ(line.has_timestamp, b == 3);
      if (HasFailure()) return;
    }
  }
}

TEST(LineProtocolScan, TokensAroundTheSixteenByteStep) {
  LineProtocolParser parser;
  ParsedLine line;
  LineError err;
  for (size_t len = 1; len <= 40; ++len) {
    const std::string name(len, 'k');
    for (const std::string body : {name + "," + name + "=" + name + " " + name + "=1",
                                    name + "," + name + "=" + name + " " + name + "=" + std::string(len, '1') + ",x=2\n"}) {
      SCOPED_TRACE(body);
      parser.reset(body, EpochPrecision::ns, 1);
      ASSERT_EQ(parser.next(line, err), LineStatus::line) << err.message;
      EXPECT_EQ(line.measurement, name);
      ASSERT_EQ(line.tags.size(), 1u);
      EXPECT_EQ(line.tags[0].key, name);
      EXPECT_EQ(line.tags[0].value, name);
      ASSERT_GE(line.fields.size(), 1u);
      EXPECT_EQ(line.fields[0].key, name);
    }
    // An escape as the last byte of a 16-byte step, and a backslash at the very end of the body.
    const std::string esc = std::string(len, 'a') + "\\ b";
    const std::string escaped_body = "m," + esc + "=" + esc + " v=1";
    parser.reset(escaped_body, EpochPrecision::ns, 1);
    ASSERT_EQ(parser.next(line, err), LineStatus::line) << err.message;
    ASSERT_EQ(line.tags.size(), 1u);
    EXPECT_EQ(line.tags[0].key, std::string(len, 'a') + " b");
    EXPECT_EQ(line.tags[0].value, std::string(len, 'a') + " b");
    const std::string tail = "m v=1," + std::string(len, 'w') + "\\";
    parser.reset(tail, EpochPrecision::ns, 1);
    ASSERT_EQ(parser.next(line, err), LineStatus::error);
    EXPECT_EQ(err.message, "line 1: invalid field \"" + std::string(len, 'w') + "\\\" (expected key=value) (byte 7)");
  }
}

// Keys of equal length that differ only in the middle, or only at one end, hash alike or nearly:
// the duplicate check must still tell them apart and still find true duplicates.
TEST(LineProtocolScan, DuplicateCheckOfManyKeys) {
  auto key = [](int i, int where) {
    std::string k = "energy_imported_phase_x_active";
    k[static_cast<size_t>(where == 0 ? 0 : where == 1 ? 16 : 29)] = static_cast<char>('A' + i);
    return k;
  };
  LineProtocolParser parser;
  ParsedLine line;
  LineError err;
  for (int where = 0; where < 3; ++where) {
    std::string fields, tags;
    for (int i = 0; i < 20; ++i) {
      fields += (i ? "," : "") + key(i, where) + "=" + std::to_string(i);
      tags += "," + key(i, where) + "=v";
    }
    const std::string ok = "m" + tags + " " + fields + ",short=1,s=2,x=3";
    parser.reset(ok, EpochPrecision::ns, 1);
    ASSERT_EQ(parser.next(line, err), LineStatus::line) << err.message;
    EXPECT_EQ(line.fields.size(), 23u);
    EXPECT_EQ(line.tags.size(), 20u);

    const std::string dup_field = "m " + fields + "," + key(13, where) + "=1";
    parser.reset(dup_field, EpochPrecision::ns, 1);
    ASSERT_EQ(parser.next(line, err), LineStatus::error);
    EXPECT_EQ(err.message, "line 1: duplicate field \"" + key(13, where) + "\" (byte " +
                               std::to_string(dup_field.rfind(key(13, where)) + 1) + ")");

    const std::string dup_tag = "m" + tags + "," + key(0, where) + "=w " + fields;
    parser.reset(dup_tag, EpochPrecision::ns, 1);
    ASSERT_EQ(parser.next(line, err), LineStatus::error);
    EXPECT_EQ(err.message, "line 1: duplicate tag \"" + key(0, where) + "\" (byte " +
                               std::to_string(dup_tag.rfind("," + key(0, where)) + 2) + ")");
  }
  // Short keys (under 8 bytes) of many lengths.
  std::string fields;
  for (int i = 0; i < 40; ++i) fields += (i ? "," : "") + std::string(static_cast<size_t>(1 + i % 7), static_cast<char>('a' + i / 7)) + "=1";
  const std::string short_ok = "m " + fields, short_dup = "m " + fields + ",ccc=2";
  parser.reset(short_ok, EpochPrecision::ns, 1);
  ASSERT_EQ(parser.next(line, err), LineStatus::line) << err.message;
  parser.reset(short_dup, EpochPrecision::ns, 1);
  ASSERT_EQ(parser.next(line, err), LineStatus::error);
  EXPECT_EQ(err.message.rfind("line 1: duplicate field \"ccc\"", 0), 0u) << err.message;
}

}  // namespace
}  // namespace sluice

// core/bytes.h: same_text against std::string_view's == for every length up to 40 and a
// difference at every position (the overlapping loads must cover each byte).
TEST(SameBytes, AgreesWithStringCompareAtEveryLengthAndPosition) {
  for (size_t n = 0; n <= 40; ++n) {
    std::string a(n, 'x');
    for (size_t i = 0; i < n; ++i) a[i] = static_cast<char>('a' + i % 26);
    std::string b = a;
    EXPECT_TRUE(sluice::same_text(a, b)) << n;
    for (size_t i = 0; i < n; ++i) {
      b[i] = static_cast<char>(b[i] ^ 0x20);
      EXPECT_FALSE(sluice::same_text(a, b)) << "length " << n << ", byte " << i;
      b[i] = a[i];
    }
    EXPECT_FALSE(sluice::same_text(a, a + "y"));
  }
}
