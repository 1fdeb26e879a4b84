// File: strata/cluster/allocation.hpp
//
// Which member owns which shard: pure functions of the member view.
//
//   auto shard = strata::cluster::shard_of("account:42", 64);   // == its Kafka partition
//   auto table = strata::cluster::allocate(view, 64);          // owner per shard
//   for (auto& m : strata::cluster::moves(before, table)) ...   // what a change moves
//
// The shard of an entity is strata::persistence::shard_of (shard.hpp), the very hash
// the Kafka bridge uses for the partition, so shard i is partition i of every topic.
//
// The owner of a shard is chosen by rendezvous (highest random weight) hashing over the
// up members: each up member has a weight for the shard and the highest weight wins.
// So every node computes the same owner from the same view, a member that joins takes
// only shards it wins (nothing moves between the others), and a member that goes takes
// only its own shards elsewhere. The weight of member m for shard s is
//   (rank_m(s), tiebreak(m, s))  compared lexicographically, where
//   rank_m is a permutation of 0 .. shards-1 drawn from the member's address alone
//   (member_ranks below), and tiebreak a 64-bit mix of the address hash and s.
// Ranks that are permutations make a member's weights sum to the same total for every
// member, which spreads shards more evenly than independent random weights (64 shards,
// 3 members: each within 15..28 for about 99% of random address sets, against about
// 85% with independent weights; tests/cluster/allocation_test.cpp measures it).
// Weights depend on the address, not the incarnation: a restarted node wins the same
// shards back (its own journal already holds most of their events).
//
// Threads: pure functions; any thread.
#pragma once

#include "strata/cluster/member_view.hpp"
#include "strata/persistence/shard.hpp"

#include <cstdint>
#include <optional>
#include <utility>
#include <vector>

namespace strata::cluster {

using persistence::default_num_shards;
/// The shard of a persistence id: strata::persistence::shard_of (the bridge's hash).
using persistence::shard_of;

/// The owner of each shard (index = shard); nullopt where no member is up.
using shard_table = std::vector<std::optional<member_id>>;

/// rank(s) for s in 0 .. shards-1: a permutation of 0 .. shards-1 that depends only on
/// `a` (Fisher-Yates from i = shards-1 down to 1, swapping i with j = r % (i + 1), r
/// the next splitmix64 output seeded with fnv1a_64(to_string(a))). Pure.
std::vector<std::uint32_t> member_ranks(const address& a, std::uint32_t shards);

/// Bounds: every up member owns between lo and hi shards, (lo, hi) = share_bounds(shards,
/// up members) = (ceil(mean - 1.4·sqrt(mean)), floor(mean + 1.4·sqrt(mean))), widened to
/// (shards / members, ceil(shards / members)) where they are tighter than that (64
/// shards, 3 members: 15..27; 4 members: 11..21). Rendezvous alone stays within them
/// for most address sets; for the rest, allocate() moves shards one at a time, each to
/// the eligible member that weighs it highest (so then a join or a leave may move a few
/// shards between other members too).
std::pair<std::uint32_t, std::uint32_t> share_bounds(std::uint32_t shards, std::uint32_t members);

/// The owner of every shard 0 .. shards-1 among the up members of `view`, by rendezvous
/// within the bounds above: O(members * shards) (more in the rare bounded case).
/// `shards` 0 yields an empty table.
shard_table allocate(const member_view& view, std::uint32_t shards = default_num_shards);

/// The owner of one shard (computes allocate(); use allocate() for many shards);
/// nullopt when no member is up or `shard` >= `shards`.
std::optional<member_id> owner_of(shard_id shard, const member_view& view,
                                  std::uint32_t shards = default_num_shards);

/// A shard whose owner differs between two tables.
struct shard_move {
  shard_id shard = 0;
  std::optional<member_id> from; ///< nullopt: the shard had no owner
  std::optional<member_id> to;   ///< nullopt: no member is up to take it
};

inline bool operator==(const shard_move& a, const shard_move& b) noexcept {
  return a.shard == b.shard && a.from == b.from && a.to == b.to;
}

/// The shards whose owner differs between `before` and `after`, by shard. Tables of
/// different sizes (a changed shard count) are a broken invariant: STRATA_ASSERT.
std::vector<shard_move> moves(const shard_table& before, const shard_table& after);

} // namespace strata::cluster
