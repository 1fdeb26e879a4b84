// strata/cluster/downing.hpp: keep-majority with the lowest-address tie-break, the
// stability wait, and the losing side deciding before the winning side.
#include "strata/cluster/downing.hpp"

#include "cluster_test_util.hpp"

#include <doctest/doctest.h>

#include <algorithm>

using namespace strata::cluster;
using namespace strata::cluster::test;
using namespace std::chrono_literals;

namespace {

constexpr auto unreachable = reachability_status::unreachable;
constexpr auto reachable = reachability_status::reachable;
const time_point t0{};

member_id node(std::uint16_t port) { return member_id{{"10.0.0.1", port}, 1}; }

/// Each member of `side` records every member outside it as unreachable.
reachability cut(const std::vector<member_id>& side, const std::vector<member_id>& all) {
  reachability r;
  for (const auto& o : side)
    for (const auto& s : all)
      if (std::find(side.begin(), side.end(), s) == side.end()) r.record(o, s, unreachable);
  return r;
}

downing_decision down_members(std::vector<member_id> ms) {
  return {downing_kind::down_members, std::move(ms)};
}
const downing_decision down_self{downing_kind::down_self, {}};
const downing_decision nothing{};

} // namespace

TEST_CASE("3 nodes, one cut off: the majority downs it, the minority downs itself") {
  auto a = node(1), b = node(2), c = node(3);
  std::vector<member_id> all{a, b, c};
  auto view = all_up(all);
  downing_config cfg;
  CHECK(cfg.stable_after == 1500ms);
  CHECK(cfg.self_down_lead == 750ms);
  auto majority = cut({a, b}, all), minority = cut({c}, all);
  auto now = t0 + 1500ms;
  CHECK(decide_downing(view, majority, a, cfg, t0, now) == down_members({c}));
  CHECK(decide_downing(view, majority, b, cfg, t0, now) == down_members({c}));
  CHECK(decide_downing(view, minority, c, cfg, t0, now) == down_self);
  auto sides = downing_sides_of(view, majority);
  CHECK(sides.side == std::vector<member_id>{a, b});
  CHECK(sides.survives);
  CHECK_FALSE(downing_sides_of(view, minority).survives);
  // The cut-off node is the leader (lowest): it still loses, and the others down it.
  auto m2 = cut({b, c}, all), m1 = cut({a}, all);
  CHECK(decide_downing(view, m2, b, cfg, t0, now) == down_members({a}));
  CHECK(decide_downing(view, m1, a, cfg, t0, now) == down_self);
}

TEST_CASE("4 nodes split 2|2: the side holding the lowest address survives") {
  auto a = node(1), b = node(2), c = node(3), d = node(4);
  std::vector<member_id> all{a, b, c, d};
  auto view = all_up(all);
  downing_config cfg;
  auto now = t0 + 2s;
  for (const auto& [low, high] : {std::pair{std::vector{a, b}, std::vector{c, d}},
                                  std::pair{std::vector{a, d}, std::vector{b, c}}}) {
    auto low_side = cut(low, all), high_side = cut(high, all);
    for (const auto& m : low)
      CHECK(decide_downing(view, low_side, m, cfg, t0, now) == down_members(high));
    for (const auto& m : high)
      CHECK(decide_downing(view, high_side, m, cfg, t0, now) == down_self);
  }
  // 1|3 and 3|1 by the lowest: the majority wins either way.
  CHECK(decide_downing(view, cut({b, c, d}, all), b, cfg, t0, now) == down_members({a}));
  CHECK(decide_downing(view, cut({a}, all), a, cfg, t0, now) == down_self);
}

TEST_CASE("no decision until the picture has been stable long enough") {
  auto a = node(1), b = node(2), c = node(3);
  std::vector<member_id> all{a, b, c};
  auto view = all_up(all);
  downing_config cfg;
  auto majority = cut({a, b}, all), minority = cut({c}, all);
  // The winning side waits stable_after; the losing side stable_after - self_down_lead.
  CHECK(decide_downing(view, majority, a, cfg, t0, t0 + 1499ms) == nothing);
  CHECK(decide_downing(view, majority, a, cfg, t0, t0 + 1500ms) == down_members({c}));
  CHECK(decide_downing(view, minority, c, cfg, t0, t0 + 749ms) == nothing);
  CHECK(decide_downing(view, minority, c, cfg, t0, t0 + 750ms) == down_self);
  // A change in the future of `now` counts as a change now.
  CHECK(decide_downing(view, majority, a, cfg, t0 + 1h, t0) == nothing);
  // Nobody unreachable: nothing, however long stable.
  CHECK(decide_downing(view, reachability{}, a, cfg, t0, t0 + 1h) == nothing);
  // A node that does not count (joining, down) decides nothing.
  auto d = node(4);
  view.add_joining(d);
  CHECK(decide_downing(view, cut({d}, all), d, cfg, t0, t0 + 1h) == nothing);
}

TEST_CASE("unreachable, then reachable again before stable_after: nothing is downed") {
  auto a = node(1), b = node(2), c = node(3);
  std::vector<member_id> all{a, b, c};
  auto view = all_up(all);
  downing_config cfg;
  reachability r;
  time_point last_change = t0;
  auto record = [&](const member_id& o, const member_id& s, reachability_status st, time_point at) {
    if (r.record(o, s, st)) last_change = at;
  };
  record(a, c, unreachable, t0 + 1200ms);
  record(b, c, unreachable, t0 + 1300ms);
  CHECK(decide_downing(view, r, a, cfg, last_change, t0 + 2700ms) == nothing);
  record(a, c, reachable, t0 + 2700ms); // c answers again
  record(b, c, reachable, t0 + 2750ms);
  CHECK(r.unreachable(view).empty());
  for (auto t = t0 + 2750ms; t < t0 + 10s; t += 100ms)
    REQUIRE(decide_downing(view, r, a, cfg, last_change, t) == nothing);
  // If only a found it reachable again, b's verdict still stands and restarts nothing:
  // the change at 2.7 s delays the decision to 4.2 s.
  r.record(b, c, unreachable);
  last_change = t0 + 2700ms;
  CHECK(decide_downing(view, r, a, cfg, last_change, t0 + 4199ms) == nothing);
  CHECK(decide_downing(view, r, a, cfg, last_change, t0 + 4200ms) == down_members({c}));
}

TEST_CASE("an indirectly connected member joins the side it talks to both ways") {
  // Only the link a-c is cut; b sees both. Gossip through b gives everyone one table.
  auto a = node(1), b = node(2), c = node(3);
  auto view = all_up({a, b, c});
  reachability r;
  r.record(a, c, unreachable);
  r.record(c, a, unreachable);
  auto sides = downing_sides_of(view, r);
  CHECK(sides.unreachable == std::vector<member_id>{a, c});
  CHECK(sides.side == std::vector<member_id>{a, b}); // a, lowest, joins b first
  CHECK(sides.survives);
  downing_config cfg;
  auto now = t0 + 2s;
  CHECK(decide_downing(view, r, a, cfg, t0, now) == down_members({c}));
  CHECK(decide_downing(view, r, b, cfg, t0, now) == down_members({c}));
  CHECK(decide_downing(view, r, c, cfg, t0, now) == down_self);
}

TEST_CASE("unreachable joining members are downed by the surviving side; leaving ones count") {
  auto a = node(1), b = node(2), c = node(3), j = node(9);
  auto view = all_up({a, b, c});
  view.set_status(c, member_status::leaving); // still holds shards: counts
  view.add_joining(j);
  reachability r;
  r.record(a, c, unreachable);
  r.record(a, j, unreachable);
  auto sides = downing_sides_of(view, r);
  CHECK(sides.counted == std::vector<member_id>{a, b, c});
  CHECK(decide_downing(view, r, b, downing_config{}, t0, t0 + 2s) == down_members({c, j}));
}

TEST_CASE(
  "in any clean split of a random view, at most one side stays, exactly one if both count") {
  STRATA_CLUSTER_RNG(rng);
  downing_config cfg;
  for (int round = 0; round < 500; ++round) {
    CAPTURE(round);
    auto ms = distinct_members(rng, 1 + pick(rng, 9));
    auto view = random_view(rng, ms, 20);
    std::vector<member_id> left, right;
    for (const auto& m : ms)
      (pick(rng, 2) == 0 ? left : right).push_back(m);
    std::sort(left.begin(), left.end());
    std::sort(right.begin(), right.end());
    auto rl = cut(left, ms), rr = cut(right, ms);
    int taking_over = 0, with_counted = 0, stopping = 0; // sides that stay / stop
    for (const auto& [side, table] : {std::pair{left, rl}, std::pair{right, rr}}) {
      bool counted = false, all_stay = true, all_down_self = true;
      for (const auto& m : side) {
        auto rec = view.find(m);
        if (!rec || !is_observer_status(rec->status)) continue;
        counted = true;
        auto d = decide_downing(view, table, m, cfg, t0, t0 + 1h);
        all_stay = all_stay && d.kind != downing_kind::down_self; // down_members, or none to down
        all_down_self = all_down_self && d.kind == downing_kind::down_self;
      }
      if (!counted) continue;
      ++with_counted;
      // One side, one verdict: all its counted members stay, or all stop.
      CHECK((all_stay || all_down_self));
      taking_over += all_stay;
      stopping += all_down_self;
    }
    // Exactly one side survives when both hold counted members.
    if (with_counted == 2) {
      CHECK(taking_over == 1);
      CHECK(stopping == 1);
    }
    CHECK(taking_over <= 1);
  }
}
