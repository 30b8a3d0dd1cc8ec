#include "ingest/http/body_inflater.h"

#include <gtest/gtest.h>

#include "test_zlib.h"

namespace sluice {
namespace {

using test::compress;
using test::Wrap;

std::string sample(std::size_t n) {
  std::string s;
  s.reserve(n);
  for (std::size_t i = 0; s.size() < n; ++i) s += "{\"ts\":" + std::to_string(i) + ",\"v\":1.5}\n";
  s.resize(n);
  return s;
}

TEST(BodyInflater, GzipRoundTrip) {
  BodyInflater inflater;
  std::string out;
  auto plain = sample(300000);
  ASSERT_EQ(inflater.inflate(compress(plain), true, out, 1 << 20), BodyInflater::Result::ok);
  EXPECT_EQ(out, plain);
  // The same inflater is reused (reset, not reinitialised) for the next body.
  auto second = sample(10);
  ASSERT_EQ(inflater.inflate(compress(second), true, out, 1 << 20), BodyInflater::Result::ok);
  EXPECT_EQ(out, second);
}

TEST(BodyInflater, DeflateZlibAndRaw) {
  BodyInflater inflater;
  std::string out;
  auto plain = sample(5000);
  ASSERT_EQ(inflater.inflate(compress(plain, Wrap::zlib), false, out, 1 << 20),
            BodyInflater::Result::ok);
  EXPECT_EQ(out, plain);
  ASSERT_EQ(inflater.inflate(compress(plain, Wrap::raw), false, out, 1 << 20),
            BodyInflater::Result::ok);
  EXPECT_EQ(out, plain);
}

TEST(BodyInflater, MultiMemberGzip) {
  BodyInflater inflater;
  std::string out;
  auto body = compress("first\n") + compress("second\n");
  ASSERT_EQ(inflater.inflate(body, true, out, 1000), BodyInflater::Result::ok);
  EXPECT_EQ(out, "first\nsecond\n");
}

TEST(BodyInflater, LimitIsExact) {
  BodyInflater inflater;
  std::string out;
  auto plain = sample(1000);
  EXPECT_EQ(inflater.inflate(compress(plain), true, out, 1000), BodyInflater::Result::ok);
  EXPECT_EQ(out.size(), 1000u);
  EXPECT_EQ(inflater.inflate(compress(plain), true, out, 999), BodyInflater::Result::too_large);
}

TEST(BodyInflater, GzipBombStopsAtTheLimit) {
  BodyInflater inflater;
  std::string out;
  std::string zeros(64 << 20, '\0');
  auto bomb = compress(zeros);
  ASSERT_LT(bomb.size(), 100000u);
  EXPECT_EQ(inflater.inflate(bomb, true, out, 1 << 20), BodyInflater::Result::too_large);
  EXPECT_LE(out.capacity(), (2u << 20) + 16);  // never grew far past the limit
}

TEST(BodyInflater, InvalidInputs) {
  BodyInflater inflater;
  std::string out;
  EXPECT_EQ(inflater.inflate("definitely not gzip", true, out, 1000),
            BodyInflater::Result::invalid);
  EXPECT_FALSE(inflater.error().empty());
  auto good = compress(sample(2000));
  EXPECT_EQ(inflater.inflate(std::string_view(good).substr(0, good.size() / 2), true, out, 1 << 20),
            BodyInflater::Result::invalid);
  EXPECT_EQ(inflater.error(), "unexpected end of compressed data");
  EXPECT_EQ(inflater.inflate(good + "junk", true, out, 1 << 20), BodyInflater::Result::invalid);
  EXPECT_EQ(inflater.error(), "trailing data after compressed stream");
  EXPECT_EQ(inflater.inflate("", true, out, 1000), BodyInflater::Result::invalid);
  // Still usable after errors.
  EXPECT_EQ(inflater.inflate(compress("ok"), true, out, 1000), BodyInflater::Result::ok);
  EXPECT_EQ(out, "ok");
}

}  // namespace
}  // namespace sluice
