// strata/cluster/leader.hpp: one deterministic leader and the life-cycle transitions.
#include "strata/cluster/leader.hpp"

#include "cluster_test_util.hpp"

#include <doctest/doctest.h>

#include <algorithm>

using namespace strata::cluster;
using namespace strata::cluster::test;

namespace {

member_view settle(member_view v, const std::set<member_id>& holding = {}) {
  for (int i = 0; i < 10; ++i)
    v = leader_actions(v, holding);
  return v;
}

} // namespace

TEST_CASE("the leader is the lowest up or leaving member, else the lowest joining one") {
  member_id a{{"10.0.0.1", 4500}, 1}, b{{"10.0.0.1", 4501}, 1}, c{{"10.0.0.2", 1}, 1};
  member_view v;
  CHECK_FALSE(leader_of(v));
  v.add_joining(c);
  v.add_joining(b);
  CHECK(leader_of(v) == b);
  v.set_status(c, member_status::up);
  CHECK(leader_of(v) == c);
  v.add_joining(a);
  v.set_status(a, member_status::up);
  CHECK(leader_of(v) == a);
  v.set_status(a, member_status::leaving);
  CHECK(leader_of(v) == a);
  v.set_status(a, member_status::exiting);
  CHECK(leader_of(v) == c);
}

TEST_CASE("every node computes the same leader from the same view, whatever its order") {
  STRATA_CLUSTER_RNG(rng);
  for (int round = 0; round < 500; ++round) {
    auto ms = distinct_members(rng, 1 + pick(rng, 10));
    auto v = random_view(rng, ms, 30);
    auto shuffled = ms;
    std::shuffle(shuffled.begin(), shuffled.end(), rng);
    member_view w; // the same records, inserted in another order
    for (const auto& m : shuffled)
      if (auto r = v.find(m)) {
        w.add_joining(m);
        if (r->status != member_status::joining) w.set_status(m, r->status);
      }
    CHECK(leader_of(w) == leader_of(v));
    // The leader is up or leaving when any member is; it is the lowest such.
    auto up = v.with_status(member_status::up), leaving = v.with_status(member_status::leaving);
    up.insert(up.end(), leaving.begin(), leaving.end());
    if (!up.empty()) CHECK(leader_of(v) == *std::min_element(up.begin(), up.end()));
  }
}

TEST_CASE("the leader moves joining to up and leaving through exiting to removed") {
  member_id a{{"h", 1}, 1}, b{{"h", 2}, 1};
  member_view v;
  v.add_joining(a);
  v = leader_actions(v, {});
  CHECK(v.find(a)->status == member_status::up); // a first node makes itself up
  v.add_joining(b);
  v = leader_actions(v, {});
  CHECK(v.find(b)->status == member_status::up);
  v.set_status(b, member_status::leaving);
  v = leader_actions(v, {b});
  CHECK(v.find(b)->status == member_status::exiting);
  v = leader_actions(v, {b}); // still holds a shard: stays
  CHECK(v.find(b)->status == member_status::exiting);
  v = leader_actions(v, {a});
  CHECK(v.find(b)->status == member_status::removed);
  CHECK(v.find(a)->status == member_status::up);
  CHECK(leader_actions(v, {}) == v); // a fixed point
}

TEST_CASE("a new incarnation takes the old one down and is up once the old one is not live") {
  member_id old_a{{"h", 1}, 1}, new_a{{"h", 1}, 2};
  member_view v;
  v.add_joining(old_a);
  v = leader_actions(v, {});
  v.add_joining(new_a);
  v = leader_actions(v, {old_a});
  CHECK(v.find(old_a)->status == member_status::down);
  CHECK(v.find(new_a)->status == member_status::joining);
  v = leader_actions(v, {old_a});
  CHECK(v.find(new_a)->status == member_status::up);
  CHECK(v.find(old_a)->status == member_status::down); // still holds shards
  v = settle(v);
  CHECK(v.find(old_a)->status == member_status::removed);
  CHECK(v.with_status(member_status::up) == std::vector<member_id>{new_a});
}

TEST_CASE("leader actions settle at a fixed point with at most one up member per address") {
  STRATA_CLUSTER_RNG(rng);
  for (int round = 0; round < 500; ++round) {
    std::vector<member_id> pool;
    for (int i = 0; i < 6; ++i) {
      auto m = random_member(rng);
      m.address.host = "h"; // few addresses, several incarnations each
      m.address.port = static_cast<std::uint16_t>(1 + pick(rng, 3));
      pool.push_back(m);
    }
    auto v = settle(random_view(rng, pool, 20));
    CHECK(leader_actions(v, {}) == v);
    auto up = v.with_status(member_status::up);
    for (std::size_t i = 1; i < up.size(); ++i)
      CHECK(up[i].address != up[i - 1].address);
    CHECK(v.with_status(member_status::joining).empty());
    CHECK(v.with_status(member_status::leaving).empty());
  }
}
