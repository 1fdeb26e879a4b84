// strata::format_iso8601 / parse_iso8601 (persistence/src/timestamp.cpp): UTC
// timestamps with nanoseconds, as the tools and samples print and read them.
#include "strata/persistence/timestamp.hpp"

#include <doctest/doctest.h>
#include <rapidcheck.h>

#include <cstdint>

using strata::format_iso8601;
using strata::parse_iso8601;

TEST_CASE("iso8601: known instants") {
  CHECK(format_iso8601(0) == "1970-01-01T00:00:00.000000000Z");
  // 2026-11-22T06:40:00Z = 20779 days + 6h40m after the epoch.
  const std::int64_t t = (20779LL * 86400 + 6 * 3600 + 40 * 60) * 1'000'000'000LL + 123456789;
  CHECK(format_iso8601(t) == "2026-11-22T06:40:00.123456789Z");
  CHECK(parse_iso8601("2026-11-22T06:40:00.123456789Z") == t);
  CHECK(parse_iso8601("2026-11-22T06:40:00Z") == t - 123456789);
  CHECK(parse_iso8601("2026-11-22T06:40:00.1Z") == t - 123456789 + 100'000'000);
  CHECK(parse_iso8601("2024-02-29T00:00:00Z").has_value());
}

TEST_CASE("iso8601: malformed input is refused") {
  for (const char* bad :
       {"", "2026-11-22", "2026-11-22T06:40:00", "2026-11-22T06:40:00+01:00",
        "2026-11-22 06:40:00Z", "2026-13-01T00:00:00Z", "2025-02-29T00:00:00Z",
        "2026-11-22T24:00:00Z", "2026-11-22T06:40:00.Z", "2026-11-22T06:40:00.1234567890Z",
        "2026-11-22T06:40:00ZZ", "1969-12-31T23:59:59Z", "2026-1-22T06:40:00Z",
        "2263-01-01T00:00:00Z", "9999-12-31T23:59:59Z"})
    CHECK_MESSAGE(!parse_iso8601(bad).has_value(), bad);
}

TEST_CASE("iso8601: parse(format(t)) == t for any instant 1970..2255") {
  const bool ok = rc::check("round trip", [] {
    const auto t = *rc::gen::inRange<std::int64_t>(0, 9'000'000'000'000'000'000LL);
    RC_ASSERT(parse_iso8601(format_iso8601(t)) == t);
  });
  CHECK(ok);
}

TEST_CASE("iso8601: instants before 1970 format, with the fraction counted forward") {
  CHECK(format_iso8601(-1) == "1969-12-31T23:59:59.999999999Z");
  CHECK(format_iso8601(-1'000'000'000) == "1969-12-31T23:59:59.000000000Z");
}

TEST_CASE("iso8601: lower-case t and z, and a leap second reads as the next minute") {
  CHECK(parse_iso8601("2026-11-22t06:40:00z") == parse_iso8601("2026-11-22T06:40:00Z"));
  CHECK(parse_iso8601("2016-12-31T23:59:60Z") == parse_iso8601("2017-01-01T00:00:00Z"));
}
