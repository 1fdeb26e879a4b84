// A deterministic simulation of 1,000 members driving the very failure detectors,
// reachability tables and downing rule the node uses, with an injected clock: one
// member falls silent; every other member converges on downing it, and it downs itself
// before any of them decides. Heartbeats carry random latency; gossip is random push.
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
  static constexpr std::size_t ring = 4; ///< besides the silenced one, each monitors 4

  std::mt19937_64& rng;
  std::vector<member_id> members;
  member_view view;
  std::size_t silent;
  time_point silenced_at;
  detector_config det;
  downing_config down;
  std::vector<link> links;
  std::vector<sim_node> nodes;
  std::size_t false_suspicions = 0;

  simulation(std::mt19937_64& r, std::size_t n, time_point silence) : rng(r), silenced_at(silence) {
    for (std::size_t i = 0; i < n; ++i)
      members.push_back(member_id{
        address{"10.0." + std::to_string(i / 250) + "." + std::to_string(i % 250), 4500}, 1});
    std::sort(members.begin(), members.end());
    view = all_up(members);
    silent = pick(rng, n);
    nodes.resize(n);
    // Every member monitors the silenced one and 4 ring successors; the silenced one
    // monitors everyone: the detectors whose verdicts matter. (The node monitors every
    // member; the pairs left out here would behave like the ring's healthy pairs.)
    auto add = [&](std::size_t o, std::size_t s) {
      link l{o, s, failure_detector{det}, {}, {}, reachability_status::reachable};
      l.next_send = time_point{} + milliseconds{pick(rng, 200)}; // each sender's phase
      l.next_arrival = l.next_send + latency();
      links.push_back(std::move(l));
    };
    for (std::size_t i = 0; i < n; ++i) {
      if (i != silent) add(i, silent);
      if (i == silent) {
        for (std::size_t j = 0; j < n; ++j)
          if (j != silent) add(i, j);
        continue;
      }
      for (std::size_t k = 1; k <= std::min(ring, n - 1); ++k)
        if ((i + k) % n != silent) add(i, (i + k) % n);
    }
  }

  milliseconds latency() { return milliseconds{1 + pick(rng, 30)}; }

  bool cut(std::size_t a, std::size_t b) const { return a == silent || b == silent; }

  void deliver(time_point now) {
    for (auto& l : links) {
      while (l.next_arrival <= now) {
        bool lost = l.next_send >= silenced_at && cut(l.observer, l.subject);
        if (lost) {
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

  void gossip(time_point now) {
    auto n = members.size();
    for (std::size_t i = 0; i < n; ++i) {
      if (i == silent) continue; // it reaches nobody, nobody reaches it
      if (n < 3) break;
      std::size_t j = i;
      while (j == i || j == silent) // a random member it can reach
        j = pick(rng, n);
      // What a node does to save bandwidth: send the table only when the digests differ.
      if (nodes[j].table.digest() == nodes[i].table.digest()) continue;
      if (nodes[j].table.merge_from(nodes[i].table)) nodes[j].last_change = now;
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

/// Runs one simulation of `n` members and checks the outcome and its timing (ms after
/// the silence): the silent member downs itself within `self_by`, every other member
/// decides to down it within `others_by`, and the silent one decides first.
void check_silence(std::mt19937_64& rng, std::size_t n, long self_by, long others_by) {
  CAPTURE(n);
  const auto silence = time_point{} + 3s;
  simulation sim{rng, n, silence};
  CAPTURE(to_string(sim.members[sim.silent]));
  sim.run(silence + 10s);

  CHECK(sim.false_suspicions == 0);
  REQUIRE(sim.all_decided());
  const auto& x = sim.nodes[sim.silent];
  CHECK(x.decision->kind == downing_kind::down_self);
  time_point first = time_point::max(), last = time_point::min();
  std::size_t agree = 0;
  for (std::size_t i = 0; i < n; ++i) {
    if (i == sim.silent) continue;
    const auto& node = sim.nodes[i];
    agree +=
      *node.decision == downing_decision{downing_kind::down_members, {sim.members[sim.silent]}};
    first = std::min(first, node.decided_at);
    last = std::max(last, node.decided_at);
  }
  CHECK(agree == n - 1);
  auto ms = [&](time_point t) {
    return static_cast<long>(std::chrono::duration_cast<milliseconds>(t - silence).count());
  };
  MESSAGE(n << " members: the silent one downs itself at +" << ms(x.decided_at)
            << " ms; the others decide from +" << ms(first) << " to +" << ms(last) << " ms");
  // The silent member: detection (>= 1.0 s after it fell silent) + stable_after -
  // self_down_lead (0.75 s) after its last verdict.
  CHECK(ms(x.decided_at) >= 1000 + 750);
  CHECK(ms(x.decided_at) <= self_by);
  // The others: detection + gossip + stable_after (1.5 s).
  CHECK(ms(first) >= 1000 + 1500);
  CHECK(ms(last) <= others_by);
  // The timing argument: the losing side stops before anyone decides to take over.
  CHECK(x.decided_at < first);
}

} // namespace

TEST_CASE("3 and 5 members: one falls silent, the others down it within 3.3 s") {
  STRATA_CLUSTER_RNG(rng);
  // Detection <= 1.45 s + evaluation and gossip rounds (100 ms each) + 0.75 s or 1.5 s.
  for (int round = 0; round < 20; ++round) {
    CAPTURE(round);
    check_silence(rng, 3, 1450 + 200 + 750 + 100, 3300);
    check_silence(rng, 5, 1450 + 200 + 750 + 100, 3300);
  }
}

TEST_CASE("1,000 members: one falls silent, all others down it, it downs itself first") {
  STRATA_CLUSTER_RNG(rng);
  // Gossip among 1,000 members takes ~20 rounds to bring every node all 999 verdicts.
  check_silence(rng, 1000, 1450 + 200 + 750 + 100, 6000);
}
