// Shared helpers of the strata::cluster tests: the seed of a randomised test and
// random members and views.
#pragma once

#include "strata/cluster/member_view.hpp"
#include "strata/test/seed.hpp"

#include <doctest/doctest.h>

#include <cstdint>
#include <random>
#include <string>
#include <vector>

/// Declares `std::mt19937_64 name` seeded from $STRATA_SEED or fresh (tests/support), and
/// logs the seed with every failure of the enclosing scope ("repeat with STRATA_SEED=…").
#define STRATA_CLUSTER_RNG(name)                                                                   \
  STRATA_TEST_SEED(name##_seed);                                                                   \
  std::mt19937_64 name(name##_seed)

namespace strata::cluster::test {

inline std::uint64_t pick(std::mt19937_64& rng, std::uint64_t n) {
  return std::uniform_int_distribution<std::uint64_t>(0, n - 1)(rng);
}

/// A random member: one of a few hosts, ports over a wide range, small incarnations.
inline member_id random_member(std::mt19937_64& rng) {
  static const char* hosts[] = {"10.0.0.1", "10.0.0.2", "127.0.0.1", "node-a", "::1"};
  return member_id{address{hosts[pick(rng, 5)], static_cast<std::uint16_t>(1 + pick(rng, 65535))},
                   pick(rng, 3)};
}

/// `n` distinct members at distinct addresses, incarnation 1.
inline std::vector<member_id> distinct_members(std::mt19937_64& rng, std::size_t n) {
  std::vector<member_id> out;
  while (out.size() < n) {
    auto m = random_member(rng);
    m.incarnation = 1;
    bool dup = false;
    for (const auto& o : out)
      dup = dup || o.address == m.address;
    if (!dup) out.push_back(m);
  }
  return out;
}

/// A view built from random add / forward-status steps over members drawn from `pool`.
inline member_view random_view(std::mt19937_64& rng, const std::vector<member_id>& pool,
                               std::size_t steps) {
  member_view v;
  for (std::size_t i = 0; i < steps; ++i) {
    const auto& m = pool[pick(rng, pool.size())];
    if (!v.find(m)) {
      v.add_joining(m);
    } else {
      v.set_status(m, static_cast<member_status>(pick(rng, 6)));
    }
  }
  return v;
}

/// A view with every member of `ms` up.
inline member_view all_up(const std::vector<member_id>& ms) {
  member_view v;
  for (const auto& m : ms) {
    v.add_joining(m);
    v.set_status(m, member_status::up);
  }
  return v;
}

} // namespace strata::cluster::test

namespace doctest {
template <>
struct StringMaker<strata::cluster::member_id> {
  static String convert(const strata::cluster::member_id& m) {
    return strata::cluster::to_string(m).c_str();
  }
};
} // namespace doctest
