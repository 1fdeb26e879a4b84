// File: strata/test/seed.hpp — the seed of a randomised test, printed on failure.
//
//   TEST_CASE("random writes") {
//     STRATA_TEST_SEED(seed);            // $STRATA_SEED or fresh; INFO'd with every failure
//     std::mt19937_64 rng{seed};
//
// Threads: any.
#pragma once

#include <cstdint>

namespace strata::test {

/// The seed of a randomised test: $STRATA_SEED when set, otherwise fresh. Use through
/// STRATA_TEST_SEED in doctest tests, which prints it when an assertion fails.
std::uint64_t test_seed();

} // namespace strata::test

/// Declares `const std::uint64_t name` = strata::test::test_seed() and logs it with
/// every failure of the enclosing scope ("repeat with STRATA_SEED=…"). Needs doctest.
#define STRATA_TEST_SEED(name)                                                                     \
  const std::uint64_t name = ::strata::test::test_seed();                                          \
  INFO("seed " << name << " (repeat with STRATA_SEED=" << name << ")")
