// libFuzzer target: `strata::parse_iso8601` and `strata::format_iso8601`
// (persistence/src/timestamp.cpp), the time arguments of `strata-bank balance --as-of-time`
// and the times `history` prints.
//
// Properties: no crash, no sanitizer finding; a parsed time is not before 1970 and
// formats to text that parses back to the same time; any time from 1970 to 2261
// formats to text that parses back to itself.
#include "fuzz_util.hpp"
#include "strata/persistence/timestamp.hpp"

#include <cstdint>
#include <cstring>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  if (auto t = strata::persistence::parse_iso8601(text)) {
    FUZZ_CHECK(*t >= 0);
    auto back = strata::persistence::parse_iso8601(strata::persistence::format_iso8601(*t));
    FUZZ_CHECK(back && *back == *t);
  }
  if (size >= 8) {
    std::int64_t ns = 0;
    std::memcpy(&ns, data, 8);
    auto s = strata::persistence::format_iso8601(ns);
    auto back = strata::persistence::parse_iso8601(s);
    // int64 nanoseconds reach April 2262; parse_iso8601 stops a little before.
    if (ns >= 0 && ns < 9'200'000'000'000'000'000) FUZZ_CHECK(back && *back == ns);
    if (back) FUZZ_CHECK(*back == ns);
  }
  return 0;
}
