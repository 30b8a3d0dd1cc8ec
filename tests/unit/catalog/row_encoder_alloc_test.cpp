// RowEncoder must not allocate per row once warm: counts every operator new in this binary.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <new>

#include "catalog/row_encoder.h"
#include "encoder_test_util.h"

namespace {
std::atomic<long> g_allocations{0};
}

void* operator new(std::size_t n) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }

namespace sluice::test {
namespace {

TEST(RowEncoderAlloc, NoAllocationPerRowOnceWarm) {
  TableSchema t;
  t.columns.push_back(make_column("id", PgType::int8, true, true));
  t.columns.push_back(make_column("time", PgType::timestamptz, true));
  t.columns.push_back(make_column("device", PgType::varchar));
  t.columns.back().max_chars = 32;
  t.columns.push_back(make_column("value", PgType::float8));
  Column n = make_column("amount", PgType::numeric);
  n.numeric_precision = 12;
  n.numeric_scale = 3;
  t.columns.push_back(n);
  t.columns.push_back(make_column("ok", PgType::boolean));
  t.columns.push_back(make_column("sid", PgType::uuid));
  t.columns.push_back(make_column("meta", PgType::jsonb));
  t.columns.push_back(make_column("n", PgType::int4));
  t.time_column = 1;
  finish_table_schema(t);

  RowEncoder enc(t);
  std::vector<char> out;
  out.reserve(1 << 16);
  uint64_t mask = 0;
  int64_t mn = INT64_MAX, mx = INT64_MIN;
  auto row = [&](int i) {
    enc.begin_row();
    bool ok = enc.put_string(1, "2024-01-02T03:04:05.123Z") && enc.put_string(2, "device-0001") &&
              enc.put_number(3, "21.5") && enc.put_number(4, "12345.6789") && enc.put_bool(5, i % 2 == 0) &&
              enc.put_string(6, "123e4567-e89b-12d3-a456-426614174000") &&
              enc.put_json(7, "{\"fw\":\"1.2\",\"tags\":[1,2]}") && enc.put_number(8, "1e3") &&
              enc.end_row(out, mask, mn, mx);
    // A failing value on the way (error path may allocate; not counted below).
    return ok;
  };
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(row(i)) << enc.error();
  out.clear();
  const long before = g_allocations.load();
  for (int i = 0; i < 1000; ++i) {
    if (!row(i)) break;
    if (out.size() > 60000) out.clear();
  }
  EXPECT_EQ(g_allocations.load() - before, 0);
  EXPECT_TRUE(enc.error().empty());
}

}  // namespace
}  // namespace sluice::test
