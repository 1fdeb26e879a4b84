// libFuzzer target: strata-bank's command line after the runtime options, i.e.
// `bank::cli::parse` and `has_data_option` (samples/bank/cli_args.cpp). The input is
// the arguments separated by NUL bytes.
//
// Properties: no crash, no sanitizer finding; exactly one of value / error is set; the
// parsed command respects the documented limits.
#include "bank/cli_args.hpp"
#include "fuzz_util.hpp"

#include <cstdint>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  auto args = fuzz::split_args(data, size);
  std::string program = "strata-bank";
  auto argv = fuzz::make_argv(args, program);
  (void)bank::cli::has_data_option(static_cast<int>(argv.size() - 1), argv.data());
  auto r = bank::cli::parse(args);
  FUZZ_CHECK(r.value.has_value() != !r.error.empty());
  if (!r.value) return 0;
  const auto& c = *r.value;
  FUZZ_CHECK(!(c.as_of_seq && c.as_of_time_ns));
  if (c.what == bank::cli::verb::load)
    FUZZ_CHECK(c.accounts >= 1 && c.accounts <= 10'000'000 && c.clients >= 1 &&
               c.clients <= 100'000 && c.ops <= 1'000'000'000);
  if (c.what == bank::cli::verb::report)
    FUZZ_CHECK(c.timeout_ms >= 1 && c.timeout_ms <= 86'400'000);
  if (c.as_of_time_ns) FUZZ_CHECK(*c.as_of_time_ns >= 0);
  return 0;
}
