// File: strata/cluster/member_view.hpp
//
// The member view every node holds and spreads by gossip, and its merge.
//
//   strata::cluster::member_view v;
//   v.add_joining(me);                          // a node joining through a seed
//   v.set_status(me, member_status::up);        // the leader's decision (leader.hpp)
//   auto converged = merge(v, gossip_from_peer); // commutative, associative, idempotent
//
// Each member carries a record (status, version). The version counts the changes made
// to that member's record; a change always moves the status forward (member.hpp) and
// bumps the version. Merge keeps, per member, the record that is greater by (status,
// version) and the union of the members. That is the join of a lattice (a per-member
// maximum under a total order), so merge is commutative, associative and idempotent,
// and any order of gossip exchanges among nodes that all end up seeing each other's
// views yields one view. The per-member versions play the part of a vector clock:
// `includes(a, b)` says a already holds everything b knows.
//
// Removed members stay as tombstones (status removed): dropping them would let a stale
// gossip message bring them back. Pruning tombstones once every member has seen them is
// not done yet; an incarnation is never reused, so they do not collide.
//
// Threads: a value; use one instance from one thread at a time.
#pragma once

#include "strata/cluster/member.hpp"

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <vector>

namespace strata::cluster {

/// One member's entry in the view.
struct member_record {
  member_status status = member_status::joining;
  std::uint64_t version = 0; ///< changes made to this record so far
};

inline bool operator==(const member_record& a, const member_record& b) noexcept {
  return a.status == b.status && a.version == b.version;
}
inline bool operator!=(const member_record& a, const member_record& b) noexcept {
  return !(a == b);
}

/// The lattice order of records: by status (life order), then version.
inline bool precedes(const member_record& a, const member_record& b) noexcept {
  if (a.status != b.status) return is_forward(a.status, b.status);
  return a.version < b.version;
}

/// Upper bound of members a view accepts through add_joining (tombstones included).
inline constexpr std::size_t max_members = 10000;

/// A versioned set of members and their statuses.
class member_view {
 public:
  using map_type = std::map<member_id, member_record>;

  /// Every member known, tombstones included, ordered by member_id.
  const map_type& members() const noexcept { return members_; }

  /// The member's record, or nullopt when it is unknown.
  std::optional<member_record> find(const member_id& m) const;

  /// Adds `m` as joining (version 1). Returns false and changes nothing when `m` is
  /// already known (in any status) or the view holds max_members members.
  bool add_joining(const member_id& m);

  /// Moves a known member to `s` and bumps its version. Returns false and changes
  /// nothing when `m` is unknown or `s` is not later than its status (is_forward).
  bool set_status(const member_id& m, member_status s);

  /// Merges one record into the view (the merge with a one-member view): adds `m` with
  /// `r`, or replaces its record when `r` is later (precedes). Returns whether anything
  /// changed. For decoding a view received from a peer. Like merge, no max_members.
  bool absorb(const member_id& m, const member_record& r);

  /// The members in status `s`, ordered by member_id.
  std::vector<member_id> with_status(member_status s) const;

  /// A number that grows with every change and with every merge that adds something
  /// (the sum over the records of status * 2^32 + version): a cheap "has anything
  /// changed" for gossip. Equal numbers do not imply equal views; use ==.
  std::uint64_t version() const noexcept;

  friend bool operator==(const member_view& a, const member_view& b) noexcept {
    return a.members_ == b.members_;
  }
  friend bool operator!=(const member_view& a, const member_view& b) noexcept { return !(a == b); }

  /// The join of two views: the union of their members, each with the greater record.
  /// It does not apply max_members (a bound there would break the merge laws).
  friend member_view merge(const member_view& a, const member_view& b);

 private:
  map_type members_;
};

/// Whether `a` holds everything `b` knows (merge(a, b) == a). Pure, any thread.
bool includes(const member_view& a, const member_view& b);

} // namespace strata::cluster
