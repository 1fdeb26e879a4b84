// File: strata/cluster/handoff.hpp
//
// The move of one shard from one owner to the next (planned, or failing over from a
// down holder), as a small pure state machine: the record the cluster keeps per shard
// and the events that advance it.
//
//   shard_state s;                                        // unowned, epoch 0
//   s = step(s, retarget{b}).state;                       // handed_over to b, epoch 1
//   s = step(s, restore_begun{b, 1}).state;               // b restores its partition
//   s = step(s, restored{b, 1}).state;                    // b appended claim (shard, 1)
//   may_serve(s, b);                                      // true
//   s = step(s, retarget{c}).state;                       // b: stopping (no new commands)
//   s = step(s, flushed{b, 1}).state;                     // b's writes done, bridge published
//   s = step(s, hand_over{b, 1}).state;                   // c holds it at epoch 2
//   // c crashes, the view says it is down: the leader fails the shard over
//   s = step(s, fail_over{c, 2, b}).state;                // handed_over to b, epoch 3
//
// Phases, in order: serving (the holder takes commands) -> stopping (no new commands;
// the holder lets in-flight writes finish and stops the shard's entities) -> flushed
// (the bridge has published every event of the shard) -> handed_over (the new owner
// holds it, under epoch + 1) -> restoring (the new owner restores the shard from its
// Kafka partition and appends the claim record (shard, epoch)) -> serving. A shard never
// owned is `unowned` and goes straight to handed_over when it first gets an owner.
// Every serving period has its own epoch, one more than the last.
//
// Safety, by construction and checked by tests/cluster/handoff_test.cpp: at most one
// member may write a shard at a time (the holder, while serving or stopping); the
// epoch grows by one at every change of holder, so writes carry epochs that never go
// back. Events name their sender and the epoch they were sent under: one from another
// member, an older epoch or the wrong phase is stale or duplicated (the transport may
// deliver late or twice) and is ignored (`applied` false), never an error.
//
// A failed holder (crashed, or cut off and downed: downing.hpp) cannot take part in a
// move, so its shards fail over instead: once the view says the holder is down (or
// removed), the leader writes `fail_over`, which hands the shard from any phase to the
// allocation's target under epoch + 1; the new holder then restores and claims it like
// a planned move. That is the one transition at epoch e not written by the holder at e.
// One writer per (shard, epoch) still holds: a down holder writes nothing any more (a
// crashed one cannot; a live one that learns it is down stops at once, node.hpp), so
// the leader is the only writer left at e, and fail_over names the failed holder and
// its epoch, so it applies once and a late or duplicated one is stale. Two members
// that both believe they lead (different views, for a gossip round) may both write
// fail_over at e to different targets: wire::merge_tables then keeps the same one on
// every node (lowest holder), and the other target never serves once it has merged.
//
// Threads: pure functions; any thread.
#pragma once

#include "strata/cluster/member.hpp"

#include <cstdint>
#include <optional>
#include <set>
#include <variant>
#include <vector>

namespace strata::cluster {

/// Where a shard is in its handoff (see the file comment for the order).
enum class handoff_phase : std::uint8_t {
  unowned,
  serving,
  stopping,
  flushed,
  handed_over,
  restoring,
};

/// "unowned", "serving", "stopping", "flushed", "handed_over" or "restoring".
const char* to_string(handoff_phase p) noexcept;

/// The handoff record of one shard.
struct shard_state {
  handoff_phase phase = handoff_phase::unowned;
  /// serving, stopping, flushed: the owner; handed_over, restoring: the new owner.
  std::optional<member_id> holder;
  /// The owner the latest allocation wants (allocate(), allocation.hpp).
  std::optional<member_id> target;
  /// The epoch of the holder's ownership; 0 = never owned. Grows by one per holder.
  std::uint64_t epoch = 0;
};

inline bool operator==(const shard_state& a, const shard_state& b) noexcept {
  return a.phase == b.phase && a.holder == b.holder && a.target == b.target && a.epoch == b.epoch;
}

/// The allocation's owner changed (or was computed again). From any phase.
struct retarget {
  std::optional<member_id> owner;
};
/// The stopping holder finished its in-flight writes, stopped the shard's entities and
/// saw the bridge publish all of the shard's events.
struct flushed {
  member_id by;
  std::uint64_t epoch = 0;
};
/// The flushed holder hands the shard to the target.
struct hand_over {
  member_id by;
  std::uint64_t epoch = 0;
};
/// The new holder started restoring the shard from its partition.
struct restore_begun {
  member_id by;
  std::uint64_t epoch = 0;
};
/// The new holder restored the shard and appended its claim record: it serves.
struct restored {
  member_id by;
  std::uint64_t epoch = 0;
};

/// The leader moves the shard of a holder the view says is down or removed (and only
/// then: step() cannot see the view, the caller checks it) to `owner`, the allocation's
/// target, under epoch + 1. `failed` and `epoch` name the holder and epoch it replaces.
struct fail_over {
  member_id failed;
  std::uint64_t epoch = 0;
  member_id owner;
};

using handoff_event =
  std::variant<retarget, flushed, hand_over, restore_begun, restored, fail_over>;

/// The outcome of one event.
struct step_result {
  shard_state state;
  bool applied = false; ///< false: stale, duplicate or out of phase; `state` unchanged
};

/// Applies one event:
/// - retarget{t}: records t; serving with t != holder -> stopping; flushed with t ==
///   holder (the move was called off) -> handed_over to the holder itself under
///   epoch + 1; unowned with a t -> handed_over to t under epoch + 1;
/// - flushed: stopping -> flushed, or, when the target is the holder again, straight
///   to handed_over to the holder under epoch + 1;
/// - hand_over: flushed, with a target other than the holder -> handed_over to the
///   target under epoch + 1;
/// - restore_begun: handed_over -> restoring;
/// - restored: restoring -> serving, or stopping when the target moved meanwhile;
/// - fail_over{failed, epoch, owner}: from any phase but unowned, when `failed` holds
///   the shard at `epoch` and `owner` is another member -> handed_over to `owner` (also
///   the new target) under epoch + 1.
/// A holder that serves again after a called-off move does so under a new epoch (and a
/// new claim record), never under the old one: a late message of the old round (a
/// `flushed` sent before the move was called off) must not apply to the new one.
/// flushed, hand_over, restore_begun and restored apply only when sent by the holder
/// under the current epoch. Pure.
step_result step(const shard_state& s, const handoff_event& e);

/// Whether `m` may take new commands for the shard (serving holder).
bool may_serve(const shard_state& s, const member_id& m) noexcept;

/// Whether `m` may still write events of the shard (serving or stopping holder: a
/// stopping holder finishes the writes it accepted).
bool may_write(const shard_state& s, const member_id& m) noexcept;

/// The members that hold at least one shard (any phase but unowned): the input
/// leader_actions (leader.hpp) needs to remove exiting and down members.
std::set<member_id> holders(const std::vector<shard_state>& shards);

} // namespace strata::cluster
