// A deterministic simulation of 3 to 1,000 members driving the very failure detectors,
// reachability tables and downing rule the node uses, with an injected clock: one
// member falls silent, or a group is cut off: the surviving side converges on downing it,
// and it downs itself before any of them decides. Heartbeats carry random latency;
// gossip is random push-pull within each side, as the node's.
#include "strata/cluster/downing.hpp"
#include "strata/cluster/failure_detector.hpp"
#include "strata/cluster/reachability.hpp"

#include "cluster_test_util.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <string>

using namespace strata::cluster;
using namespace strata::cluster::test;
using namespace std::chrono_literals;

namespace {

/// One observer's detector of one subject, and the next heartbeat on its way.
struct link {
  std::size_t observer = 0, subject = 0;
  failure_detector detector;
  time_point next_send{};
  time_point next_arrival{};
  reachability_status verdict = reachability_status::reachable; ///< the last one recorded
};

/// What one simulated node knows and decided.
struct sim_node {
  reachability table;
  time_point last_change{};
  time_point evaluated_change{}; ///< last_change at the last full evaluation
  int evaluations = 0;           ///< full evaluations for evaluated_change (at most 2)
  std::optional<downing_decision> decision;
  time_point decided_at{};
};

struct simulation {
  static constexpr milliseconds tick{10};
  static constexpr milliseconds gossip_every{100};
  static constexpr std::size_t full_mesh_up_to = 16;
  static constexpr std::size_t ring = 4; ///< above that, healthy pairs: 4 ring successors

  std::mt19937_64& rng;
  std::vector<member_id> members;
  member_view view;
  std::vector<bool> cut_off; ///< the group cut from the rest at `cut_at`
  std::vector<std::size_t> group, rest;
  time_point cut_at;
  detector_config det;
  downing_config down;
  std::vector<link> links;
  std::vector<sim_node> nodes;
  std::size_t false_suspicions = 0;

  /// `n` members, `cut` of them (chosen at random) cut off from the others at `at`.
  simulation(std::mt19937_64& r, std::size_t n, std::size_t cut, time_point at)
    : rng(r), cut_off(n, false), cut_at(at) {
    for (std::size_t i = 0; i < n; ++i)
      members.push_back(member_id{
        address{"10.0." + std::to_string(i / 250) + "." + std::to_string(i % 250), 4500}, 1});
    std::sort(members.begin(), members.end());
    view = all_up(members);
    while (group.size() < cut) {
      auto i = pick(rng, n);
      if (!cut_off[i]) group.push_back(i);
      cut_off[i] = true;
    }
    std::sort(group.begin(), group.end());
    for (std::size_t i = 0; i < n; ++i)
      if (!cut_off[i]) rest.push_back(i);
    nodes.resize(n);
    // Every member monitors every other one (the node's full mesh). Above 16 members
    // only the pairs whose verdicts matter are simulated: every pair across the cut,
    // and 4 ring successors per member for the healthy pairs (the others would behave
    // like these).
    for (std::size_t i = 0; i < n; ++i)
      for (std::size_t j = 0; j < n; ++j) {
        bool ring_pair = (j + n - i) % n <= ring;
        if (i != j && (n <= full_mesh_up_to || cut_off[i] != cut_off[j] || ring_pair)) add(i, j);
      }
  }

  void add(std::size_t o, std::size_t s) {
    link l{o, s, failure_detector{det}, {}, {}, reachability_status::reachable};
    l.next_send = time_point{} + milliseconds{pick(rng, 200)}; // each sender's phase
    l.next_arrival = l.next_send + latency();
    links.push_back(std::move(l));
  }

  milliseconds latency() { return milliseconds{1 + pick(rng, 30)}; }

  bool cut(std::size_t a, std::size_t b) const { return cut_off[a] != cut_off[b]; }

  void deliver(time_point now) {
    for (auto& l : links) {
      while (l.next_arrival <= now) {
        if (l.next_send >= cut_at && cut(l.observer, l.subject)) {
          l.next_arrival = time_point::max();
          break;
        }
        l.detector.heartbeat(l.next_arrival);
        l.next_send += det.heartbeat_interval;
        l.next_arrival = l.next_send + latency();
      }
    }
  }

  void judge(time_point now) {
    for (auto& l : links) {
      auto verdict = l.detector.is_available(now) ? reachability_status::reachable
                                                  : reachability_status::unreachable;
      if (verdict == l.verdict) continue;
      l.verdict = verdict;
      auto& node = nodes[l.observer];
      if (node.table.record(members[l.observer], members[l.subject], verdict)) {
        node.last_change = now;
        if (!cut(l.observer, l.subject)) ++false_suspicions;
      }
    }
  }

  /// Push-pull, as the node gossips: each member sends its table to a random member of
  /// its own side (after the cut), which merges it and replies with its own.
  void gossip(time_point now) {
    for (const auto* side : {&group, &rest}) {
      if (side->size() < 2) continue;
      for (auto i : *side) {
        auto j = i;
        while (j == i)
          j = (*side)[pick(rng, side->size())];
        // What a node can do to save bandwidth: skip the table when the digests agree.
        if (nodes[j].table.digest() == nodes[i].table.digest()) continue;
        if (nodes[j].table.merge_from(nodes[i].table)) nodes[j].last_change = now;
        if (nodes[i].table.digest() == nodes[j].table.digest()) continue; // nothing to reply
        if (nodes[i].table.merge_from(nodes[j].table)) nodes[i].last_change = now;
      }
    }
  }

  /// Each node runs the rule; a full evaluation only when the result can differ from
  /// the last one (a change, or stable_after - self_down_lead or stable_after reached).
  void decide(time_point now) {
    for (std::size_t i = 0; i < members.size(); ++i) {
      auto& node = nodes[i];
      if (node.decision) continue;
      if (node.evaluated_change != node.last_change) {
        node.evaluated_change = node.last_change;
        node.evaluations = 0;
      }
      auto stable = now - node.last_change;
      int due = stable >= down.stable_after ? 2 : stable >= down.stable_after - down.self_down_lead;
      if (due <= node.evaluations) continue;
      node.evaluations = due;
      auto d = decide_downing(view, node.table, members[i], down, node.last_change, now);
      if (d.kind == downing_kind::none) continue;
      node.decision = d;
      node.decided_at = now;
    }
  }

  bool all_decided() const {
    return std::all_of(nodes.begin(), nodes.end(), [](const sim_node& s) {
      return s.decision;
    });
  }

  void run(time_point until) {
    for (time_point now{}; now <= until && !all_decided(); now += tick) {
      deliver(now);
      if ((now - time_point{}) % gossip_every == 0ms) {
        judge(now); // a node evaluates its detectors once per gossip round
        gossip(now);
        decide(now);
      }
    }
  }
};

} // namespace

namespace {

/// Runs one simulation: `n` members, `cut` of them cut off from the rest at +3 s.
/// Checks the outcome and its timing (ms after the cut): the losing side downs itself
/// within `losers_by`, every member of the surviving side decides to down exactly the
/// other side within `winners_by`, and every loser decides before any winner.
void check_cut(std::mt19937_64& rng, std::size_t n, std::size_t cut, long losers_by,
               long winners_by) {
  CAPTURE(n);
  CAPTURE(cut);
  const auto at = time_point{} + 3s;
  simulation sim{rng, n, cut, at};
  std::string cut_text;
  for (auto i : sim.group)
    cut_text += to_string(sim.members[i]) + " ";
  CAPTURE(cut_text);
  sim.run(at + 10s);

  CHECK(sim.false_suspicions == 0);
  REQUIRE(sim.all_decided());
  // Keep-majority: the larger side; on equal halves the side of the lowest member (0).
  bool group_wins = 2 * cut > n || (2 * cut == n && sim.cut_off[0]);
  const auto& winners = group_wins ? sim.group : sim.rest;
  const auto& losers = group_wins ? sim.rest : sim.group;
  downing_decision expected{downing_kind::down_members, {}};
  for (auto i : losers)
    expected.members.push_back(sim.members[i]);
  auto ms = [&](time_point t) {
    return static_cast<long>(std::chrono::duration_cast<milliseconds>(t - at).count());
  };
  long first_loser = 1L << 40, last_loser = 0, first_winner = 1L << 40, last_winner = 0;
  std::size_t agree = 0;
  for (auto i : losers) {
    agree += sim.nodes[i].decision->kind == downing_kind::down_self;
    first_loser = std::min(first_loser, ms(sim.nodes[i].decided_at));
    last_loser = std::max(last_loser, ms(sim.nodes[i].decided_at));
  }
  for (auto i : winners) {
    agree += *sim.nodes[i].decision == expected;
    first_winner = std::min(first_winner, ms(sim.nodes[i].decided_at));
    last_winner = std::max(last_winner, ms(sim.nodes[i].decided_at));
  }
  CHECK(agree == n);
  MESSAGE(n << " members, " << cut << " cut off: the losing side downs itself at +" << first_loser
            << ".." << last_loser << " ms, the winning side decides at +" << first_winner << ".."
            << last_winner << " ms");
  // The losing side: detection (>= 1.0 s after the cut) + stable_after - self_down_lead
  // (0.75 s) after its last change.
  CHECK(first_loser >= 1000 + 750);
  CHECK(last_loser <= losers_by);
  // The winning side: detection + gossip + stable_after (1.5 s).
  CHECK(first_winner >= 1000 + 1500);
  CHECK(last_winner <= winners_by);
  // The timing argument: the losing side stops before anyone decides to take over.
  CHECK(last_loser < first_winner);
}

} // namespace

// Detection <= 1.45 s + evaluation and gossip rounds (100 ms each) + 0.75 s or 1.5 s.
constexpr long losers_by = 1450 + 200 + 750 + 100;
constexpr long winners_by = 3300;

TEST_CASE("3 members, one cut off: it downs itself, the other two down it within 3.3 s") {
  STRATA_CLUSTER_RNG(rng);
  for (int round = 0; round < 20; ++round) {
    CAPTURE(round);
    check_cut(rng, 3, 1, losers_by, winners_by);
  }
}

TEST_CASE("5 members split 2|3 and 4 members split 2|2: one side survives, the other stops first") {
  STRATA_CLUSTER_RNG(rng);
  for (int round = 0; round < 20; ++round) {
    CAPTURE(round);
    check_cut(rng, 5, 2, losers_by, winners_by);
    check_cut(rng, 4, 2, losers_by, winners_by); // the side of the lowest address survives
    check_cut(rng, 5, 1, losers_by, winners_by);
  }
}

TEST_CASE("1,000 members: one falls silent, all others down it, it downs itself first") {
  STRATA_CLUSTER_RNG(rng);
  // Push-pull gossip among 1,000 members takes ~15 rounds to bring every node all 999
  // verdicts: detection 1.45 s + 1.5 s of gossip + stable_after 1.5 s.
  check_cut(rng, 1000, 1, losers_by, 4500);
}
