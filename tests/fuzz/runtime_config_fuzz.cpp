// libFuzzer target: the runtime options every strata CLI accepts before its command,
// `strata::config::from_args` and `config::set` (runtime/src/config.cpp). The input is
// the arguments separated by NUL bytes; `--config-file` is left out (it reads files).
//
// Properties: no crash, no sanitizer finding; errors are statuses, never exceptions.
#include "fuzz_util.hpp"
#include "strata/runtime/config.hpp"

#include <cstdint>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  auto args = fuzz::split_args(data, size);
  std::vector<std::string> kept;
  for (auto& a : args)
    if (a.find("config-file") == std::string::npos) kept.push_back(a);
  std::string program = "strata-bank";
  auto argv = fuzz::make_argv(kept, program);
  std::vector<std::string> rest;
  auto c = strata::config::from_args(static_cast<int>(argv.size() - 1), argv.data(), &rest);
  FUZZ_CHECK(rest.size() <= kept.size());
  if (kept.size() >= 2) {
    strata::config base;
    (void)base.set(kept[0], kept[1]);
  }
  return 0;
}
