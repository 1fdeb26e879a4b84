// strata/cluster/allocation.hpp: the bridge's shard hash, rendezvous owners that every
// node computes alike, an even spread, and moves only where a membership change must.
#include "strata/cluster/allocation.hpp"

#include "cluster_test_util.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <map>

using namespace strata::cluster;
using namespace strata::cluster::test;

namespace {

std::map<member_id, int> counts(const shard_table& t) {
  std::map<member_id, int> out;
  for (const auto& o : t) {
    REQUIRE(o.has_value());
    ++out[*o];
  }
  return out;
}

} // namespace

TEST_CASE("the shard of an entity is the Kafka bridge's partition hash") {
  // strata::cluster::shard_of is a using-declaration of the persistence function (not a
  // copy); these check its contract as the bridge relies on it.
  CHECK(shard_of("account-42", 64) == strata::persistence::shard_of("account-42", 64));
  CHECK(shard_of("account-42", 64) == strata::persistence::fnv1a_64("account-42") % 64);
  CHECK(default_num_shards == 64);
}

TEST_CASE("a member's ranks are a permutation fixed by its address") {
  address a{"10.0.0.1", 4500};
  auto r = member_ranks(a, 64);
  auto sorted = r;
  std::sort(sorted.begin(), sorted.end());
  for (std::uint32_t i = 0; i < 64; ++i)
    CHECK(sorted[i] == i);
  CHECK(member_ranks(a, 64) == r);
  CHECK(member_ranks(address{"10.0.0.1", 4501}, 64) != r);
  CHECK(member_ranks(a, 0).empty());
}

TEST_CASE("only up members own shards; no up member leaves every shard unowned") {
  member_id a{{"h", 1}, 1}, b{{"h", 2}, 1};
  member_view v;
  v.add_joining(a);
  v.add_joining(b);
  auto t = allocate(v, 8);
  CHECK(t.size() == 8);
  CHECK(std::all_of(t.begin(), t.end(), [](const auto& o) {
    return !o;
  }));
  v.set_status(a, member_status::up);
  t = allocate(v, 8);
  CHECK(std::all_of(t.begin(), t.end(), [&](const auto& o) {
    return o == a;
  }));
  CHECK(owner_of(3, v, 8) == a);
  CHECK_FALSE(owner_of(8, v, 8));
  CHECK(allocate(v, 0).empty());
}

TEST_CASE("every node computes the same owner: insertion order and incarnation do not matter") {
  STRATA_CLUSTER_RNG(rng);
  for (int round = 0; round < 200; ++round) {
    auto ms = distinct_members(rng, 1 + pick(rng, 12));
    auto shuffled = ms;
    std::shuffle(shuffled.begin(), shuffled.end(), rng);
    auto t = allocate(all_up(ms));
    CHECK(allocate(all_up(shuffled)) == t);
    // A restarted node (new incarnation, same address) wins the same shards back.
    auto restarted = ms;
    restarted[0].incarnation = 99;
    auto t2 = allocate(all_up(restarted));
    for (shard_id s = 0; s < t.size(); ++s)
      CHECK(t2[s] == (t[s] == ms[0] ? restarted[0] : t[s]));
  }
}

TEST_CASE("three members share 64 shards evenly") {
  STRATA_CLUSTER_RNG(rng);
  const int sets = 300;
  int within = 0, lowest = 64, highest = 0;
  for (int round = 0; round < sets; ++round) {
    auto ms = distinct_members(rng, 3);
    auto c = counts(allocate(all_up(ms), 64));
    REQUIRE(c.size() == 3);
    int lo = 64, hi = 0;
    for (const auto& kv : c)
      lo = std::min(lo, kv.second), hi = std::max(hi, kv.second);
    lowest = std::min(lowest, lo);
    highest = std::max(highest, hi);
    within += lo >= 15 && hi <= 28;
  }
  MESSAGE(within << " of " << sets << " random sets within 15..28; extremes " << lowest << ".."
                 << highest);
  // share_bounds(64, 3) = 15..27 holds for every set (allocation.hpp, "Bounds").
  CHECK(share_bounds(64, 3) == std::make_pair(15u, 27u));
  CHECK(within == sets);
  CHECK(lowest >= 15);
  CHECK(highest <= 27);
}

TEST_CASE("the bounds hold for every member count and are feasible") {
  STRATA_CLUSTER_RNG(rng);
  for (std::uint32_t shards : {1u, 4u, 7u, 64u, 256u})
    for (std::size_t n = 1; n <= 12; ++n) {
      auto [lo, hi] = share_bounds(shards, static_cast<std::uint32_t>(n));
      INFO(shards << " shards, " << n << " members: " << lo << ".." << hi);
      REQUIRE(lo * n <= shards);
      REQUIRE(hi * n >= shards);
      for (int round = 0; round < 20; ++round) {
        auto ms = distinct_members(rng, n);
        auto t = allocate(all_up(ms), shards);
        std::map<member_id, std::uint32_t> c;
        for (auto& o : t)
          ++c[*o];
        for (auto& m : ms) {
          CHECK(c[m] >= lo);
          CHECK(c[m] <= hi);
        }
      }
    }
}

TEST_CASE("a fourth member takes about a quarter of the shards, all from the others") {
  STRATA_CLUSTER_RNG(rng);
  int moved_total = 0, clean = 0;
  const int sets = 200;
  for (int round = 0; round < sets; ++round) {
    auto ms = distinct_members(rng, 4);
    auto three = std::vector<member_id>(ms.begin(), ms.begin() + 3);
    auto before = allocate(all_up(three));
    auto after = allocate(all_up(ms));
    auto mv = moves(before, after);
    bool only_to_new = true;
    for (const auto& m : mv) {
      only_to_new = only_to_new && m.to == ms[3];
      CHECK(m.from == before[m.shard]);
    }
    // Rendezvous moves shards only to the new member; the bounds (allocation.hpp) may
    // move a few more between the others in rare sets.
    clean += only_to_new;
    CHECK(mv.size() >= 6);
    CHECK(mv.size() <= 28);
    moved_total += static_cast<int>(mv.size());
  }
  double mean = double(moved_total) / sets;
  MESSAGE("mean shards moved to a 4th member: " << mean << " of 64; " << clean << " of " << sets
                                                << " sets moved only to it");
  CHECK(clean >= sets * 85 / 100); // measured: 93..98%
  CHECK(mean > 14.0);
  CHECK(mean < 18.0);
}

TEST_CASE("a member that goes moves only its own shards, to the members that stay") {
  STRATA_CLUSTER_RNG(rng);
  int clean = 0;
  const int sets = 200;
  for (int round = 0; round < sets; ++round) {
    auto ms = distinct_members(rng, 2 + pick(rng, 8));
    auto gone = ms[pick(rng, ms.size())];
    auto before_view = all_up(ms);
    auto after_view = before_view;
    after_view.set_status(gone, pick(rng, 2) ? member_status::leaving : member_status::down);
    auto before = allocate(before_view);
    auto mv = moves(before, allocate(after_view));
    int owned = static_cast<int>(std::count(before.begin(), before.end(), gone));
    CHECK(static_cast<int>(mv.size()) >= owned);
    CHECK(static_cast<int>(mv.size()) <= owned + 8); // the bounds move only a few more
    bool only_own = static_cast<int>(mv.size()) == owned;
    for (const auto& m : mv) {
      only_own = only_own && m.from == gone;
      REQUIRE(m.to.has_value());
      CHECK(*m.to != gone);
    }
    clean += only_own; // the bounds may move a few more in rare sets
  }
  MESSAGE(clean << " of " << sets << " sets moved only the leaver's shards");
  CHECK(clean >= sets * 75 / 100); // measured: 85..91% (2..9 members)
}
