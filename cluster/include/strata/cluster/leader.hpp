// File: strata/cluster/leader.hpp
//
// The leader and the transitions it makes, as pure functions of the view.
//
//   if (leader_of(view) == me) {
//     auto next = leader_actions(view, members_holding_shards);
//     if (next != view) gossip(next);
//   }
//
// Leader: the lowest member_id (address, then incarnation) among the up and leaving
// members; when there is none, the lowest joining member (so the first node of a
// cluster, which joins through itself, can make itself up). Every node computes the
// same leader from the same view. Two nodes with different views may both act as
// leader for a while; their results merge (member_view.hpp), because every transition
// only moves a status forward.
//
// Threads: pure functions; any thread.
#pragma once

#include "strata/cluster/member_view.hpp"

#include <optional>
#include <set>

namespace strata::cluster {

/// The leader of `view`, or nullopt when it has no joining, up or leaving member.
std::optional<member_id> leader_of(const member_view& view);

/// The view after one round of the leader's decisions on `view`; each member moves at
/// most one step:
/// - joining -> up, unless another incarnation of the same address is still joining,
///   up, leaving or exiting (it is taken down first, below);
/// - an incarnation (joining, up, leaving or exiting) of an address of which the view
///   knows a newer incarnation -> down: the restarted process proves the old one dead;
/// - leaving -> exiting: the leader saw the leave; its shards are now allocated to
///   the up members (allocation.hpp) and move away by handoff (handoff.hpp);
/// - exiting or down -> removed, once the member is not in `holding_shards` (the
///   members that still hold a shard in any handoff phase but `unowned`,
///   see holders() in handoff.hpp).
/// Applying it until nothing changes reaches a fixed point. Never fails.
member_view leader_actions(const member_view& view, const std::set<member_id>& holding_shards);

} // namespace strata::cluster
