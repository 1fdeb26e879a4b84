#include "strata/test/certs.hpp"

#include "strata/test/process.hpp"

#include <filesystem>
#include <stdexcept>

#ifndef STRATA_SOURCE_DIR
#error "STRATA_SOURCE_DIR must name the repository root (tests/support/CMakeLists.txt)"
#endif

namespace strata::test {

test_pki make_certs(const std::string& dir, const std::vector<std::string>& names) {
  // One generator for the scripts and the tests: the tests check what operators use.
  std::vector<std::string> args{"certs", dir};
  args.insert(args.end(), names.begin(), names.end());
  std::filesystem::create_directories(dir);
  auto r = run(dir, std::string(STRATA_SOURCE_DIR) + "/scripts/cluster", args);
  if (r.exit_code != 0)
    throw std::runtime_error("scripts/cluster certs " + dir + " failed (exit " +
                             std::to_string(r.exit_code) + "): " + r.err + r.out);
  return test_pki{dir};
}

} // namespace strata::test
