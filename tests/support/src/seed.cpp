#include "strata/test/seed.hpp"

#include <cstdlib>
#include <random>

namespace strata::test {

std::uint64_t test_seed() {
  if (const char* s = std::getenv("STRATA_SEED"); s && *s) return std::strtoull(s, nullptr, 10);
  return (std::uint64_t{std::random_device{}()} << 32) ^ std::random_device{}();
}

} // namespace strata::test
