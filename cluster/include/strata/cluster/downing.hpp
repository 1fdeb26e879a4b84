// File: strata/cluster/downing.hpp
//
// The split-brain decision: which unreachable members to down, or whether this node is
// on the losing side and must stop. Keep-majority, as a pure function of the member
// view, the reachability table as this node sees it, and times (clock.hpp).
//
//   auto d = decide_downing(view, reach, me, downing_config{}, last_change, now);
//   switch (d.kind) {
//     case downing_kind::none: break;                   // nothing, or not stable yet
//     case downing_kind::down_members: /* leader: set_status(m, down) for d.members */ break;
//     case downing_kind::down_self: /* stop every shard now, leave the cluster */ break;
//   }
//
// `last_change` is when this node last saw its view or its reachability table change
// (a status, a merge_from or record that returned true); the caller keeps it. The rule
// (docs/cluster.md, "Failure detection and downing"):
//
// 1. The counted members are the view's up, leaving and exiting members (those that
//    hold or may hold shards); joining, down and removed ones do not count. A node that
//    is not counted itself decides nothing.
// 2. U = the members unreachable by some live observer (reachability.hpp).
// 3. This node's side: the counted members not in U, then, in member order, each counted
//    member of U that no member already on the side finds unreachable and that finds
//    none of them unreachable (an indirectly connected member joins the side it still
//    talks to both ways; the greedy order makes every node compute the same side from
//    the same table).
// 4. The side survives when it holds more than half of the counted members, or exactly
//    half and the lowest counted member (by address, then incarnation).
// 5. Surviving, with this node on the side: down every member of U not on the side
//    (joining ones included), once nothing changed for stable_after. Otherwise (the side
//    loses, or this node is not on it): down myself, once nothing changed for
//    stable_after - self_down_lead, which is earlier, so that the losing side has
//    stopped before the winning side decides (the timing argument is in docs).
//
// In a clean partition the two sides compute different tables and each finds the
// other's members unreachable: exactly one side can hold a majority (or the lowest
// member on equal halves), so at most one side survives. A member cut off from everyone
// sees every other member unreachable and downs itself.
//
// Threads: pure functions; any thread.
#pragma once

#include "strata/cluster/clock.hpp"
#include "strata/cluster/member_view.hpp"
#include "strata/cluster/reachability.hpp"

#include <cstdint>
#include <vector>

namespace strata::cluster {

/// The downing rule's timing (defaults: docs/cluster.md, "Failure detection and
/// downing": detection 1.0-1.45 s + stable_after 1.5 s + restore ~1 s <= 5 s).
struct downing_config {
  /// How long the view and reachability must stay unchanged before the surviving side
  /// downs the unreachable members. Akka uses 20 s for 100 nodes; small clusters on
  /// one network converge in a few gossip rounds (100 ms each).
  milliseconds stable_after{1500};
  /// How much sooner than stable_after a node on the losing side downs itself: it must
  /// cover how much later the losing side may have seen its last change than the
  /// winning side (a heartbeat interval of detection spread, plus phi's spread under
  /// jitter, plus gossip within the side). Clamped to stable_after.
  milliseconds self_down_lead{750};
};

/// What decide_downing asks of this node.
enum class downing_kind : std::uint8_t {
  none,         ///< nothing to do, or not stable long enough yet
  down_members, ///< this node's side survives: down `members` (the leader applies it)
  down_self,    ///< this node is on the losing side: stop its shards and leave
};

/// "none", "down_members" or "down_self".
const char* to_string(downing_kind k) noexcept;

/// decide_downing's answer.
struct downing_decision {
  downing_kind kind = downing_kind::none;
  std::vector<member_id> members; ///< down_members: whom to down, ordered; else empty
};

inline bool operator==(const downing_decision& a, const downing_decision& b) noexcept {
  return a.kind == b.kind && a.members == b.members;
}
inline bool operator!=(const downing_decision& a, const downing_decision& b) noexcept {
  return !(a == b);
}

/// The sides as `self` sees them (steps 1-4 of the rule, without the timing).
struct downing_sides {
  std::vector<member_id> counted;     ///< up, leaving, exiting members, ordered
  std::vector<member_id> unreachable; ///< U: unreachable by a live observer, ordered
  std::vector<member_id> side;        ///< this node's side (step 3), ordered
  bool survives = false;              ///< step 4
};

/// Steps 1-4: the counted members, U, the side and whether it survives. Pure.
downing_sides downing_sides_of(const member_view& view, const reachability& reach);

/// The decision of `self` at `now` (rules in the file comment). `last_change` after
/// `now` counts as a change at `now`. Cheap when not stable long enough for any
/// decision (before stable_after - self_down_lead), so it may be called every tick.
downing_decision decide_downing(const member_view& view, const reachability& reach,
                                const member_id& self, const downing_config& cfg,
                                time_point last_change, time_point now);

} // namespace strata::cluster
