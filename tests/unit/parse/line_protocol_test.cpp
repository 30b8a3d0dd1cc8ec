// Table-driven tests of LineProtocolParser: must-parse lines (measurement, tags, fields with kinds,
// timestamps) and must-reject lines (message and byte column), plus bodies mixing good and bad lines.
#include "ingest/parse/line_protocol.h"

#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

namespace sluice {
namespace {

using K = LineFieldKind;
constexpr int64_t kNow = 1234567890123456789;

struct ExpectedField {
  std::string key;
  std::string value;
  K kind;
  bool boolean = false;
};

struct MustParse {
  std::string name;
  std::string body;  // one line
  std::string measurement;
  std::vector<std::pair<std::string, std::string>> tags;
  std::vector<ExpectedField> fields;
  bool has_timestamp = false;
  int64_t timestamp_ns = kNow;
  EpochPrecision precision = EpochPrecision::ns;
};

const std::vector<MustParse>& must_parse() {
  static const std::vector<MustParse> cases = {
      {"typical", "m,host=a,region=b v=1.5,w=2i 1700000000000000000", "m", {{"host", "a"}, {"region", "b"}},
       {{"v", "1.5", K::floating}, {"w", "2", K::integer}}, true, 1700000000000000000},
      {"no tags no timestamp", "cpu usage=0.5", "cpu", {}, {{"usage", "0.5", K::floating}}},
      // measurement escapes: \, \space \\ ; others literal
      {"measurement escapes", R"(my\ meas\,ure\\x v=1)", "my meas,ure\\x", {}, {{"v", "1", K::floating}}},
      {"measurement keeps \\= literally", R"(a\=b v=1)", "a\\=b", {}, {{"v", "1", K::floating}}},
      {"measurement with unescaped =", "a=b v=1", "a=b", {}, {{"v", "1", K::floating}}},
      {"other backslashes are literal", R"(a\b,t\x=y\z f\q=1)", "a\\b", {{"t\\x", "y\\z"}}, {{"f\\q", "1", K::floating}}},
      {"tag escapes", R"(m,k\ 1\,2\=3=v\ 1\,2\=3 f=1)", "m", {{"k 1,2=3", "v 1,2=3"}}, {{"f", "1", K::floating}}},
      {"escaped backslash ends a tag value", R"(m,k=a\\ f=1)", "m", {{"k", "a\\"}}, {{"f", "1", K::floating}}},
      {"escaped backslash before comma", R"(m,k=a\\,j=b f=1)", "m", {{"k", "a\\"}, {"j", "b"}}, {{"f", "1", K::floating}}},
      {"field key escapes", R"(m f\ 1\,x\=y=1,g\\=2i)", "m", {}, {{"f 1,x=y", "1", K::floating}, {"g\\", "2", K::integer}}},
      {"hash inside names", "m,a=#b #f=1", "m", {{"a", "#b"}}, {{"#f", "1", K::floating}}},
      {"string escapes", R"(m s="a \"q\" \\ \n c")", "m", {}, {{"s", "a \"q\" \\ \\n c", K::string}}},
      {"string with delimiters", R"(m s="a, b=c d",v=1)", "m", {}, {{"s", "a, b=c d", K::string}, {"v", "1", K::floating}}},
      {"empty string", R"(m s="")", "m", {}, {{"s", "", K::string}}},
      {"string ending in escaped backslash", R"(m s="a\\" 5)", "m", {}, {{"s", "a\\", K::string}}, true, 5},
      {"utf8 string", "m s=\"caf\xc3\xa9\"", "m", {}, {{"s", "caf\xc3\xa9", K::string}}},
      {"float forms", "m a=1,b=-1.5e-3,c=1E10,d=.5,e=5.,f=-.5,g=1e+5,h=0,i=-0,j=12.5E-07", "m", {},
       {{"a", "1", K::floating}, {"b", "-1.5e-3", K::floating}, {"c", "1E10", K::floating},
        {"d", ".5", K::floating}, {"e", "5.", K::floating}, {"f", "-.5", K::floating},
        {"g", "1e+5", K::floating}, {"h", "0", K::floating}, {"i", "-0", K::floating},
        {"j", "12.5E-07", K::floating}}},
      {"integer forms", "m a=12i,b=-12i,c=9223372036854775807i,d=-9223372036854775808i,e=0i,f=007i", "m", {},
       {{"a", "12", K::integer}, {"b", "-12", K::integer}, {"c", "9223372036854775807", K::integer},
        {"d", "-9223372036854775808", K::integer}, {"e", "0", K::integer}, {"f", "007", K::integer}}},
      {"unsigned forms", "m a=12u,b=18446744073709551615u,c=0u", "m", {},
       {{"a", "12", K::unsigned_integer}, {"b", "18446744073709551615", K::unsigned_integer},
        {"c", "0", K::unsigned_integer}}},
      {"booleans", "m a=t,b=T,c=true,d=True,e=TRUE,f=f,g=F,h=false,i=False,j=FALSE", "m", {},
       {{"a", "t", K::boolean, true}, {"b", "T", K::boolean, true}, {"c", "true", K::boolean, true},
        {"d", "True", K::boolean, true}, {"e", "TRUE", K::boolean, true}, {"f", "f", K::boolean, false},
        {"g", "F", K::boolean, false}, {"h", "false", K::boolean, false}, {"i", "False", K::boolean, false},
        {"j", "FALSE", K::boolean, false}}},
      {"repeated and trailing spaces", "m,t=1  v=1   123  ", "m", {{"t", "1"}}, {{"v", "1", K::floating}}, true, 123},
      {"leading blanks", " \t m v=1", "m", {}, {{"v", "1", K::floating}}},
      {"crlf", "m v=1 5\r\n", "m", {}, {{"v", "1", K::floating}}, true, 5},
      {"negative timestamp", "m v=1 -5", "m", {}, {{"v", "1", K::floating}}, true, -5},
      {"max timestamp", "m v=1 9223372036854775807", "m", {}, {{"v", "1", K::floating}}, true, INT64_MAX},
      {"min timestamp", "m v=1 -9223372036854775808", "m", {}, {{"v", "1", K::floating}}, true, INT64_MIN},
      {"precision s", "m v=1 1700000000", "m", {}, {{"v", "1", K::floating}}, true, 1700000000000000000,
       EpochPrecision::s},
      {"precision ms", "m v=1 -1700000000001", "m", {}, {{"v", "1", K::floating}}, true, -1700000000001000000,
       EpochPrecision::ms},
      {"precision us", "m v=1 1700000000000001", "m", {}, {{"v", "1", K::floating}}, true, 1700000000000001000,
       EpochPrecision::us},
      {"precision s without timestamp uses now", "m v=1", "m", {}, {{"v", "1", K::floating}}, false, kNow,
       EpochPrecision::s},
      {"same key as tag and field", "m,k=a k=1", "m", {{"k", "a"}}, {{"k", "1", K::floating}}},
      {"escaped duplicate-looking keys differ", R"(m a\ b=1,a=2)", "m", {}, {{"a b", "1", K::floating}, {"a", "2", K::floating}}},
  };
  return cases;
}

void expect_line(const MustParse& c, const ParsedLine& line) {
  EXPECT_EQ(line.measurement, c.measurement);
  ASSERT_EQ(line.tags.size(), c.tags.size());
  for (size_t i = 0; i < c.tags.size(); ++i) {
    EXPECT_EQ(line.tags[i].key, c.tags[i].first) << i;
    EXPECT_EQ(line.tags[i].value, c.tags[i].second) << i;
  }
  ASSERT_EQ(line.fields.size(), c.fields.size());
  for (size_t i = 0; i < c.fields.size(); ++i) {
    EXPECT_EQ(line.fields[i].key, c.fields[i].key) << i;
    EXPECT_EQ(line.fields[i].value, c.fields[i].value) << i;
    EXPECT_EQ(line.fields[i].kind, c.fields[i].kind) << i;
    EXPECT_EQ(line.fields[i].boolean, c.fields[i].boolean) << i;
  }
  EXPECT_EQ(line.has_timestamp, c.has_timestamp);
  EXPECT_EQ(line.timestamp_ns, c.timestamp_ns);
  EXPECT_EQ(line.line_no, 1u);
}

TEST(LineProtocol, MustParse) {
  LineProtocolParser parser;  // reused across cases
  for (const MustParse& c : must_parse()) {
    SCOPED_TRACE(c.name);
    parser.reset(c.body, c.precision, kNow);
    ParsedLine line;
    LineError err;
    ASSERT_EQ(parser.next(line, err), LineStatus::line) << err.message;
    expect_line(c, line);
    EXPECT_EQ(parser.next(line, err), LineStatus::end);
  }
}

struct MustReject {
  std::string name;
  std::string body;  // one line
  std::string message;  // exact
  EpochPrecision precision = EpochPrecision::ns;
};

const std::vector<MustReject>& must_reject() {
  static const std::vector<MustReject> cases = {
      {"measurement only", "m", "line 1: missing field set (byte 2)"},
      {"measurement and tags only", "m,a=b", "line 1: missing field set (byte 6)"},
      {"measurement and a space", "m ", "line 1: missing field set (byte 3)"},
      {"empty measurement", ",a=b v=1", "line 1: missing measurement (byte 1)"},
      {"empty tag key", "m,=b v=1", "line 1: missing tag key (byte 3)"},
      {"trailing comma in tags", "m,a=b, v=1", "line 1: missing tag key (byte 7)"},
      {"tag without value", "m,a v=1", "line 1: invalid tag \"a\" (expected key=value) (byte 3)"},
      {"empty tag value", "m,a= v=1", "line 1: missing tag value for \"a\" (byte 5)"},
      {"unescaped = in tag value", "m,a=b=c v=1", "line 1: invalid tag value for \"a\": unescaped '=' (write \\=) (byte 6)"},
      {"field without =", "m v", "line 1: invalid field \"v\" (expected key=value) (byte 3)"},
      {"field without = then more", "m v,w=1", "line 1: invalid field \"v\" (expected key=value) (byte 3)"},
      {"empty field key", "m =1", "line 1: missing field key (byte 3)"},
      {"empty field value", "m v=", "line 1: missing field value for \"v\" (byte 5)"},
      {"empty field value before comma", "m v=,w=1", "line 1: missing field value for \"v\" (byte 5)"},
      {"trailing comma in fields", "m v=1,", "line 1: missing field key (byte 7)"},
      {"double comma in fields", "m v=1,,w=2", "line 1: missing field key (byte 7)"},
      {"float with i", "m v=1.5i", "line 1: invalid field value for \"v\": 1.5i (byte 5)"},
      {"iu suffix", "m v=12iu", "line 1: invalid field value for \"v\": 12iu (byte 5)"},
      {"two dots", "weather,loc=x temp=12.5.3", "line 1: invalid field value for \"temp\": 12.5.3 (byte 20)"},
      {"bare exponent", "m v=1e", "line 1: invalid field value for \"v\": 1e (byte 5)"},
      {"plus sign", "m v=+1", "line 1: invalid field value for \"v\": +1 (byte 5)"},
      {"NaN", "m v=NaN", "line 1: invalid field value for \"v\": NaN (byte 5)"},
      {"inf", "m v=inf", "line 1: invalid field value for \"v\": inf (byte 5)"},
      {"bad boolean", "m v=tru", "line 1: invalid field value for \"v\": tru (byte 5)"},
      {"mixed case boolean", "m v=tRUE", "line 1: invalid field value for \"v\": tRUE (byte 5)"},
      {"lone dot", "m v=.", "line 1: invalid field value for \"v\": . (byte 5)"},
      {"lone minus", "m v=-", "line 1: invalid field value for \"v\": - (byte 5)"},
      {"bare i", "m v=i", "line 1: invalid field value for \"v\": i (byte 5)"},
      {"minus i", "m v=-i", "line 1: invalid field value for \"v\": -i (byte 5)"},
      {"bare u", "m v=u", "line 1: invalid field value for \"v\": u (byte 5)"},
      {"negative unsigned", "m v=-1u", "line 1: invalid field value for \"v\": -1u (byte 5)"},
      {"unquoted string", "m v=abc", "line 1: invalid field value for \"v\": abc (byte 5)"},
      {"integer too big", "m v=9223372036854775808i",
       "line 1: integer field value out of range for \"v\": 9223372036854775808i (byte 5)"},
      {"integer too small", "m v=-9223372036854775809i",
       "line 1: integer field value out of range for \"v\": -9223372036854775809i (byte 5)"},
      {"integer far too big", "m v=99999999999999999999999i",
       "line 1: integer field value out of range for \"v\": 99999999999999999999999i (byte 5)"},
      {"unsigned too big", "m v=18446744073709551616u",
       "line 1: unsigned field value out of range for \"v\": 18446744073709551616u (byte 5)"},
      {"unterminated string", "m s=\"abc", "line 1: unterminated string value for \"s\" (byte 5)"},
      {"string ending in escaped quote", R"(m s="abc\")", "line 1: unterminated string value for \"s\" (byte 5)"},
      {"content after string", R"(m s="a"b)", "line 1: invalid field value for \"s\": content after the closing quote (byte 8)"},
      {"bad timestamp", "m v=1 12x", "line 1: invalid timestamp: 12x (byte 7)"},
      {"timestamp minus only", "m v=1 -", "line 1: invalid timestamp: - (byte 7)"},
      {"float timestamp", "m v=1 1.5", "line 1: invalid timestamp: 1.5 (byte 7)"},
      {"content after timestamp", "m v=1 1 2", "line 1: unexpected content after the timestamp (byte 9)"},
      {"timestamp too big", "m v=1 9223372036854775808", "line 1: timestamp out of range: 9223372036854775808 (byte 7)"},
      {"timestamp too big for precision", "m v=1 9300000000", "line 1: timestamp out of range: 9300000000 (byte 7)",
       EpochPrecision::s},
      {"timestamp too small for precision", "m v=1 -9300000000000", "line 1: timestamp out of range: -9300000000000 (byte 7)",
       EpochPrecision::ms},
      {"tab is not a separator", "m\tv=1", "line 1: missing field set (byte 6)"},
      {"fields before tags", "m v=1,host=a", "line 1: invalid field value for \"host\": a (byte 12)"},
      {"duplicate tag", "m,a=1,a=2 v=1", "line 1: duplicate tag \"a\" (byte 7)"},
      {"duplicate field", "m v=1,w=2,v=3", "line 1: duplicate field \"v\" (byte 11)"},
      {"duplicate escaped field", R"(m a\ b=1,a\ b=2)", "line 1: duplicate field \"a b\" (byte 1)"},
      {"duplicate field among many",
       "m f0=0,f1=1,f2=2,f3=3,f4=4,f5=5,f6=6,f7=7,f8=8,f9=9,f10=0,f11=1,f12=2,f13=3,f14=4,f15=5,f16=6,f7=7",
       "line 1: duplicate field \"f7\""},
      {"long value is cut in the message", "m v=" + std::string(100, '9') + "x",
       "line 1: invalid field value for \"v\": " + std::string(64, '9') + "... (byte 5)"},
  };
  return cases;
}

TEST(LineProtocol, MustReject) {
  LineProtocolParser parser;
  for (const MustReject& c : must_reject()) {
    SCOPED_TRACE(c.name);
    parser.reset(c.body, c.precision, kNow);
    ParsedLine line;
    LineError err;
    ASSERT_EQ(parser.next(line, err), LineStatus::error) << c.body;
    EXPECT_EQ(err.line_no, 1u);
    if (c.name == "duplicate field among many") {
      EXPECT_EQ(err.message.rfind(c.message, 0), 0u) << err.message;
    } else {
      EXPECT_EQ(err.message, c.message);
      EXPECT_EQ(err.message, "line 1: " + err.message.substr(8));
      EXPECT_NE(err.message.find("(byte " + std::to_string(err.byte) + ")"), std::string::npos);
    }
    EXPECT_EQ(parser.next(line, err), LineStatus::end);
  }
}

TEST(LineProtocol, BodyMixingGoodAndBadLines) {
  const std::string body =
      "# a comment\n"
      "m,host=a v=1 10\r\n"
      "\n"
      "weather,loc=x temp=12.5.3\n"
      "   \t\r\n"
      "  # indented comment\n"
      "m,host=b v=2 20\n"
      "m s=\"open\n"
      "m v=3i";  // no final newline
  LineProtocolParser parser(body, EpochPrecision::ns, kNow);
  ParsedLine line;
  LineError err;
  ASSERT_EQ(parser.next(line, err), LineStatus::line);
  EXPECT_EQ(line.line_no, 2u);
  EXPECT_EQ(line.tags[0].value, "a");
  EXPECT_EQ(line.timestamp_ns, 10);
  ASSERT_EQ(parser.next(line, err), LineStatus::error);
  EXPECT_EQ(err.line_no, 4u);
  EXPECT_EQ(err.byte, 20u);
  EXPECT_EQ(err.message, "line 4: invalid field value for \"temp\": 12.5.3 (byte 20)");
  ASSERT_EQ(parser.next(line, err), LineStatus::line);
  EXPECT_EQ(line.line_no, 7u);
  EXPECT_EQ(line.tags[0].value, "b");
  EXPECT_EQ(line.timestamp_ns, 20);
  ASSERT_EQ(parser.next(line, err), LineStatus::error);
  EXPECT_EQ(err.message, "line 8: unterminated string value for \"s\" (byte 5)");
  ASSERT_EQ(parser.next(line, err), LineStatus::line);
  EXPECT_EQ(line.line_no, 9u);
  EXPECT_EQ(line.fields[0].value, "3");
  EXPECT_EQ(line.fields[0].kind, LineFieldKind::integer);
  EXPECT_FALSE(line.has_timestamp);
  EXPECT_EQ(line.timestamp_ns, kNow);
  EXPECT_EQ(parser.next(line, err), LineStatus::end);
  EXPECT_EQ(parser.next(line, err), LineStatus::end);
  EXPECT_EQ(parser.line_no(), 9u);
}

TEST(LineProtocol, EmptyAndBlankBodies) {
  for (const std::string body : {"", "\n", "\r\n\r\n", "  \n\t\n", "# only\n#comments"}) {
    LineProtocolParser parser(body, EpochPrecision::ns, kNow);
    ParsedLine line;
    LineError err;
    EXPECT_EQ(parser.next(line, err), LineStatus::end) << body;
  }
}

TEST(LineProtocol, EscapedTokensOfOneLineDoNotOverlap) {
  // Every token has escapes, so all of them live in the unescape buffer at once.
  const std::string body = R"(m\ 1,t\ 1=v\ 1,t\ 2=v\ 2 f\ 1="s\"1",f\ 2="s\\2" 7)" "\n" R"(n\,x,a=b c="d\"")";
  LineProtocolParser parser(body, EpochPrecision::ns, kNow);
  ParsedLine line;
  LineError err;
  ASSERT_EQ(parser.next(line, err), LineStatus::line) << err.message;
  EXPECT_EQ(line.measurement, "m 1");
  ASSERT_EQ(line.tags.size(), 2u);
  EXPECT_EQ(line.tags[0].key, "t 1");
  EXPECT_EQ(line.tags[0].value, "v 1");
  EXPECT_EQ(line.tags[1].key, "t 2");
  EXPECT_EQ(line.tags[1].value, "v 2");
  ASSERT_EQ(line.fields.size(), 2u);
  EXPECT_EQ(line.fields[0].key, "f 1");
  EXPECT_EQ(line.fields[0].value, "s\"1");
  EXPECT_EQ(line.fields[1].key, "f 2");
  EXPECT_EQ(line.fields[1].value, "s\\2");
  EXPECT_EQ(line.timestamp_ns, 7);
  ASSERT_EQ(parser.next(line, err), LineStatus::line) << err.message;
  EXPECT_EQ(line.measurement, "n,x");
  EXPECT_EQ(line.fields[0].value, "d\"");
  EXPECT_EQ(line.line_no, 2u);
}

TEST(LineProtocol, UnescapedTokensPointIntoTheBody) {
  const std::string body = "m,host=a v=1.5";
  LineProtocolParser parser(body, EpochPrecision::ns, kNow);
  ParsedLine line;
  LineError err;
  ASSERT_EQ(parser.next(line, err), LineStatus::line);
  EXPECT_EQ(line.measurement.data(), body.data());
  EXPECT_EQ(line.tags[0].value.data(), body.data() + 7);
  EXPECT_EQ(line.fields[0].value.data(), body.data() + 11);
}

TEST(LineProtocol, MessagesShowSenderTextPrintably) {
  LineProtocolParser parser("m,t\x01=a v=\xff\x01\xc3\xa9\xe2\x82", EpochPrecision::ns, kNow);
  ParsedLine line;
  LineError err;
  ASSERT_EQ(parser.next(line, err), LineStatus::error);
  EXPECT_EQ(err.message, "line 1: invalid field value for \"v\": ??\xc3\xa9?? (byte 10)");

  struct Case {
    std::string in;
    size_t max;
    std::string out;
  };
  const std::vector<Case> cases = {
      {"plain", 64, "plain"},
      {"tab\there\x7f", 64, "tab?here?"},
      {"caf\xc3\xa9 \xf0\x9f\x98\x80", 64, "caf\xc3\xa9 \xf0\x9f\x98\x80"},
      {"\xc0\xaf \xed\xa0\x80 \xf4\x90\x80\x80 \xe0\x80\x80", 64, "?? ??? ???? ???"},  // overlong, surrogate, > U+10FFFF
      {"abcdef", 3, "abc..."},
      {"ab\xc3\xa9", 3, "ab\xc3\xa9"},  // a sequence that starts inside the limit is kept whole
      {"", 64, ""},
  };
  for (const Case& c : cases) {
    std::string out = "x";
    append_for_message(out, c.in, c.max);
    EXPECT_EQ(out, "x" + c.out) << c.in;
  }
}

TEST(LineProtocol, KindNames) {
  EXPECT_STREQ(line_field_kind_name(LineFieldKind::floating), "float");
  EXPECT_STREQ(line_field_kind_name(LineFieldKind::integer), "integer");
  EXPECT_STREQ(line_field_kind_name(LineFieldKind::unsigned_integer), "unsigned");
  EXPECT_STREQ(line_field_kind_name(LineFieldKind::string), "string");
  EXPECT_STREQ(line_field_kind_name(LineFieldKind::boolean), "boolean");
}

}  // namespace
}  // namespace sluice
