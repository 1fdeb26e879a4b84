#include "strata/persistence/assert.hpp"

#include <cstdio>
#include <cstdlib>

namespace strata::detail {

void assertion_failed(const char* expr, const char* file, int line, const char* message) noexcept {
  std::fprintf(stderr, "strata: invariant violated at %s:%d: %s (%s)\n", file, line, expr, message);
  std::fflush(stderr);
  std::abort();
}

} // namespace strata::detail
