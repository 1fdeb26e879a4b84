// strata/cluster/member_view.hpp: the merge is a lattice join (commutative,
// associative, idempotent, monotone) and random gossip converges to one view.
#include "strata/cluster/member_view.hpp"

#include "cluster_test_util.hpp"

#include <doctest/doctest.h>

using namespace strata::cluster;
using namespace strata::cluster::test;

namespace {

std::vector<member_id> pool_of(std::mt19937_64& rng) {
  std::vector<member_id> pool;
  auto n = 1 + pick(rng, 8);
  for (std::uint64_t i = 0; i < n; ++i)
    pool.push_back(random_member(rng));
  return pool;
}

} // namespace

TEST_CASE("a member moves only forward in life, and each change bumps its version") {
  member_id a{{"10.0.0.1", 4500}, 1};
  member_view v;
  CHECK(v.add_joining(a));
  CHECK_FALSE(v.add_joining(a));
  CHECK(v.find(a) == member_record{member_status::joining, 1});
  CHECK(v.set_status(a, member_status::up));
  CHECK_FALSE(v.set_status(a, member_status::up));
  CHECK_FALSE(v.set_status(a, member_status::joining));
  CHECK(v.set_status(a, member_status::leaving));
  CHECK(v.find(a) == member_record{member_status::leaving, 3});
  CHECK_FALSE(v.set_status(member_id{{"10.0.0.1", 4500}, 2}, member_status::up));
  CHECK(v.with_status(member_status::leaving) == std::vector<member_id>{a});
  CHECK(to_string(a) == "10.0.0.1:4500#1");
  CHECK(to_string(member_id{{"::1", 7}, 3}) == "[::1]:7#3");
}

TEST_CASE("merge keeps the later record per member and the union of members") {
  member_id a{{"h", 1}, 1}, b{{"h", 2}, 1};
  member_view x, y;
  x.add_joining(a);
  x.set_status(a, member_status::up);
  y.add_joining(a);
  y.add_joining(b);
  auto m = merge(x, y);
  CHECK(m.find(a) == member_record{member_status::up, 2});
  CHECK(m.find(b) == member_record{member_status::joining, 1});
  CHECK(includes(m, x));
  CHECK(includes(m, y));
  CHECK_FALSE(includes(x, y));
  // A removed member is a tombstone: stale gossip cannot bring it back.
  m.set_status(a, member_status::removed);
  CHECK(merge(m, x).find(a)->status == member_status::removed);
}

TEST_CASE("merge laws hold over random views") {
  STRATA_CLUSTER_RNG(rng);
  for (int round = 0; round < 2000; ++round) {
    CAPTURE(round);
    auto pool = pool_of(rng);
    auto a = random_view(rng, pool, pick(rng, 20));
    auto b = random_view(rng, pool, pick(rng, 20));
    auto c = random_view(rng, pool, pick(rng, 20));
    auto ab = merge(a, b);
    CHECK(ab == merge(b, a));                     // commutative
    CHECK(merge(ab, c) == merge(a, merge(b, c))); // associative
    CHECK(merge(a, a) == a);                      // idempotent
    CHECK(includes(ab, a));                       // monotone: loses nothing
    CHECK(includes(ab, b));
    CHECK(ab.version() >= std::max(a.version(), b.version()));
    // Monotone in its arguments: a later view of a merges to a later result.
    auto later = a;
    later.set_status(pool[pick(rng, pool.size())], member_status::removed);
    CHECK(includes(merge(later, b), ab));
  }
}

TEST_CASE("random gossip among N nodes converges to one view") {
  STRATA_CLUSTER_RNG(rng);
  for (std::size_t n : {2u, 5u, 40u}) {
    CAPTURE(n);
    auto members = distinct_members(rng, n);
    std::vector<member_view> views(n);
    // Each node knows itself and makes local changes while gossip is under way.
    for (std::size_t i = 0; i < n; ++i)
      views[i].add_joining(members[i]);
    member_view expected;
    for (std::size_t i = 0; i < n; ++i)
      expected.add_joining(members[i]);
    for (std::size_t tick = 0; tick < 50 * n; ++tick) {
      auto from = pick(rng, n), to = pick(rng, n);
      if (pick(rng, 10) == 0) {
        auto who = members[pick(rng, n)];
        auto s = static_cast<member_status>(pick(rng, 6));
        views[from].set_status(who, s);
      }
      views[to] = merge(views[to], views[from]);
    }
    // Then random push-pull gossip without further changes ends in the join of all.
    member_view join;
    for (const auto& v : views)
      join = merge(join, v);
    auto converged = [&] {
      for (const auto& v : views)
        if (v != join) return false;
      return true;
    };
    std::size_t exchanges = 0;
    for (; !converged() && exchanges < 100 * n; ++exchanges) {
      auto x = pick(rng, n), y = pick(rng, n);
      views[x] = views[y] = merge(views[x], views[y]);
    }
    INFO("exchanges " << exchanges);
    CHECK(converged());
    CHECK(includes(views[0], expected));
  }
}
