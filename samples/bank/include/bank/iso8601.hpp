// File: bank/iso8601.hpp
//
// UTC timestamps as the strata-bank CLI prints and reads them:
//
//   bank::format_iso8601(1795329600123456789) == "2026-11-22T06:40:00.123456789Z"
//   bank::parse_iso8601("2026-11-22T06:40:00Z")            // whole seconds
//   bank::parse_iso8601("2026-11-22T06:40:00.123Z")        // 1..9 fraction digits
//
// Threads: pure functions; any thread.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace bank {

/// Nanoseconds since the Unix epoch → "YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ" (always 9
/// fraction digits, UTC).
std::string format_iso8601(std::int64_t ns_since_epoch);

/// "YYYY-MM-DDTHH:MM:SS[.f{1,9}]Z" (UTC; also a lowercase `z`) → nanoseconds since the
/// epoch. nullopt for anything else (other offsets, out-of-range fields, instants
/// before 1970 or after 2262-04-10, where int64 nanoseconds end).
std::optional<std::int64_t> parse_iso8601(std::string_view text);

} // namespace bank
