// core/pg_time.h — PostgreSQL's binary time representation.
//
// timestamptz/timestamp travel as int64 microseconds since 2000-01-01 00:00:00 UTC; date as
// int32 days since 2000-01-01. These helpers convert from Unix time and civil dates.
#pragma once

#include <cstdint>

namespace sluice {

inline constexpr int64_t kPgEpochUnixSeconds = 946684800;  // 2000-01-01T00:00:00Z
inline constexpr int64_t kMicrosPerSecond = 1000000;
inline constexpr int64_t kMicrosPerDay = 86400LL * kMicrosPerSecond;

// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
constexpr int64_t days_from_civil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

constexpr int64_t unix_micros_to_pg(int64_t unix_us) {
  return unix_us - kPgEpochUnixSeconds * kMicrosPerSecond;
}
constexpr int64_t pg_micros_to_unix(int64_t pg_us) {
  return pg_us + kPgEpochUnixSeconds * kMicrosPerSecond;
}

}  // namespace sluice
