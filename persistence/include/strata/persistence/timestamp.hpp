// File: strata/persistence/timestamp.hpp
//
// UTC timestamps in ISO-8601 with nanoseconds, as strata prints and reads them (event
// and snapshot `timestamp_ns` are nanoseconds since the Unix epoch):
//
//   strata::format_iso8601(1795329600123456789) == "2026-11-22T06:40:00.123456789Z"
//   strata::parse_iso8601("2026-11-22T06:40:00Z")            // whole seconds
//   strata::parse_iso8601("2026-11-22T06:40:00.123Z")        // 1..9 fraction digits
//
// (Also reachable as strata::persistence::format_iso8601 / parse_iso8601.)
//
// Threads: pure functions; any thread.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace strata::persistence {

/// Nanoseconds since the Unix epoch → "YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ" (UTC, always nine
/// fraction digits, so the text sorts like the number). Instants before 1970 print
/// too (the fraction counts forward from the second before).
std::string format_iso8601(std::int64_t ns_since_epoch);

/// "YYYY-MM-DDTHH:MM:SS[.f{1,9}]Z" (UTC; `t`/`z` accepted in lower case) → nanoseconds
/// since the epoch. nullopt for anything else: another offset than Z, out-of-range
/// fields (month 13, February 30, hour 24), more than nine fraction digits, instants
/// before 1970-01-01 or from 2262-04-11 on (where int64 nanoseconds end). A leap
/// second (:60) reads as the first instant of the next minute.
std::optional<std::int64_t> parse_iso8601(std::string_view text);

} // namespace strata::persistence

namespace strata {
using persistence::format_iso8601;
using persistence::parse_iso8601;
} // namespace strata
