// libFuzzer target: the `strata` tool's argument parser (tools/strata_cli_args.hpp)
// with the option names of `strata journal dump`, and `strata::cli::parse_u64`.
//
// Properties: no crash, no sanitizer finding; failures are usage_error only; parse_u64
// accepts exactly the decimal numbers that fit in 64 bits.
#include "fuzz_util.hpp"
#include "strata_cli_args.hpp"

#include <cstdint>
#include <string>
#include <vector>

namespace {

/// Reference for parse_u64: digits only, 1..20 of them, value below 2^64.
bool reference_u64(const std::string& s, std::uint64_t& out) {
  if (s.empty()) return false;
  unsigned __int128 v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + static_cast<unsigned>(c - '0');
    if (v > ~std::uint64_t{0}) return false;
  }
  out = static_cast<std::uint64_t>(v);
  return true;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  auto args = fuzz::split_args(data, size);
  for (const auto& a : args) {
    std::uint64_t got = 0, want = 0;
    bool ok = strata::cli::parse_u64(a, got);
    bool ref = reference_u64(a, want);
    // parse_u64 also refuses more than 20 characters (leading zeros included).
    FUZZ_CHECK(ok == (ref && a.size() <= 20));
    if (ok) FUZZ_CHECK(got == want);
  }
  std::string program = "strata";
  auto argv = fuzz::make_argv(args, program);
  try {
    auto a = strata::cli::args::parse(static_cast<int>(argv.size() - 1), argv.data(), 1,
                                      {"data", "stream", "from", "limit"}, {"json"});
    (void)a.flag("json");
    (void)a.get("stream");
    (void)a.u64("limit", 100);
    (void)a.u64("from", 1);
    (void)a.require("data");
  } catch (const strata::cli::usage_error&) {
  }
  return 0;
}
