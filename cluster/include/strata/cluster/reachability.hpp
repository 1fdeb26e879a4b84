// File: strata/cluster/reachability.hpp
//
// Who can reach whom: the table of failure-detector observations every node keeps
// beside its member view and spreads with it by gossip, and its merge.
//
//   strata::cluster::reachability r;
//   r.record(me, peer, reachability_status::unreachable);   // my detector gave up on peer
//   auto joined = merge(r, gossip_from_other);              // commutative, associative, idempotent
//   joined.is_unreachable(peer, view);                      // by any live observer?
//   r.record(me, peer, reachability_status::reachable);     // heartbeats again: back to up
//
// One row per observer: the subjects it currently finds unreachable and a version that
// the observer bumps at each change of its row. Only the observer writes its row (from
// its own failure detectors, failure_detector.hpp), so a greater version is a later
// state of that row, and a subject the observer finds reachable again simply leaves the
// set under a higher version. Merge keeps, per observer, the row greater by (version,
// then the set's order as a tie-break that only forged or corrupted input needs): a
// per-observer maximum under a total order, so merge is a lattice join, like the
// member view's (member_view.hpp). Reachability is not a member status because it can
// go back; a lasting unreachable becomes `down` by the downing rule (downing.hpp).
//
// An observation counts only while its observer is live in the view (up, leaving or
// exiting): a down observer's stale complaints do not keep anyone unreachable. prune()
// drops rows of observers and entries of subjects that are down or removed; it is not
// part of the join (stale gossip may bring such a row back), which is harmless because
// the queries ignore it, and the next prune drops it again.
//
// Threads: a value; use one instance from one thread at a time. Copies may live on other
// threads: the rows they share are immutable and reference-counted atomically.
#pragma once

#include "strata/cluster/member_view.hpp"

#include <cstdint>
#include <memory>
#include <set>
#include <vector>

namespace strata::cluster {

/// What one observer finds about one subject.
enum class reachability_status : std::uint8_t { reachable = 0, unreachable = 1 };

/// "reachable" or "unreachable".
const char* to_string(reachability_status s) noexcept;

/// Whether an observer in status `s` counts (up, leaving, exiting): it runs detectors on
/// the members that hold shards, and its verdicts are gossiped. Pure, any thread.
constexpr bool is_observer_status(member_status s) noexcept {
  return s == member_status::up || s == member_status::leaving || s == member_status::exiting;
}

/// One observer's row: the subjects it finds unreachable, under its version.
struct reachability_row {
  std::uint64_t version = 0;
  std::set<member_id> unreachable;
};

inline bool operator==(const reachability_row& a, const reachability_row& b) noexcept {
  return a.version == b.version && a.unreachable == b.unreachable;
}
inline bool operator!=(const reachability_row& a, const reachability_row& b) noexcept {
  return !(a == b);
}

/// The join's order of rows: by version, then (same version, other content: only
/// forged or corrupted input) by the sets' lexicographic order.
bool precedes(const reachability_row& a, const reachability_row& b) noexcept;

/// The gossiped table of observations. At most max_members rows and max_members
/// subjects per row through record(); absorb and merge apply no bound (it would break
/// the merge laws), as in member_view.
///
/// Storage: a vector ordered by observer, each row immutable once stored and shared by
/// the copies and merges of the table (a change stores a new row). A 1,000-member
/// cluster holds up to a million (table, row) pairs across its nodes' copies; sharing
/// keeps that at one pointer each, and merges walk two contiguous vectors.
class reachability {
 public:
  /// One observer's row.
  struct entry {
    member_id observer;
    std::shared_ptr<const reachability_row> row; ///< never null
  };
  using rows_type = std::vector<entry>;

  /// Every row, ordered by observer.
  const rows_type& rows() const noexcept { return rows_; }

  /// The row of `observer`, or nullptr when it has none. Valid until the next change.
  const reachability_row* row(const member_id& observer) const;

  /// What `observer` finds about `subject`: reachable unless its row lists it.
  reachability_status status(const member_id& observer, const member_id& subject) const;

  /// The observer's own verdict about a subject (from its detector). Returns whether
  /// the row changed; it then bumps the observer's version. Recording what the row
  /// already says changes nothing. Returns false and changes nothing when the bound
  /// would be passed.
  bool record(const member_id& observer, const member_id& subject, reachability_status s);

  /// Merges one row (decoding a peer's table). Returns whether anything changed.
  bool absorb(const member_id& observer, const reachability_row& row);

  /// Merges `other` into this table in place (the same result as merge). Returns
  /// whether anything changed: what "the reachability changed" means to downing.hpp.
  bool merge_from(const reachability& other);

  /// Whether a live observer (is_observer_status in `view`) other than `subject` finds
  /// `subject` unreachable.
  bool is_unreachable(const member_id& subject, const member_view& view) const;

  /// Every subject that is unreachable by a live observer and neither down nor removed
  /// in `view` (a subject unknown to the view counts too: the view may be behind).
  std::set<member_id> unreachable(const member_view& view) const;

  /// Drops the rows of observers, and the entries of subjects, that are down or removed
  /// in `view`. Returns whether anything was dropped. Not part of the join (file
  /// comment).
  bool prune(const member_view& view);

  /// A 64-bit hash of the whole table, kept up to date by every change (O(1) to read):
  /// two nodes whose digests are equal almost surely hold the same table, so gossip
  /// can skip sending it. Equal digests do not prove equal tables; use == for that.
  std::uint64_t digest() const noexcept { return digest_; }

  friend bool operator==(const reachability& a, const reachability& b) noexcept;
  friend bool operator!=(const reachability& a, const reachability& b) noexcept {
    return !(a == b);
  }

  /// The join: the union of the observers, each with its greater row.
  friend reachability merge(const reachability& a, const reachability& b);

 private:
  rows_type::iterator find(const member_id& observer);
  void replace_row(entry& at, std::shared_ptr<const reachability_row> row);

  rows_type rows_;
  std::uint64_t digest_ = 0; ///< the wrapping sum of the rows' hashes
};

/// Whether `a` holds everything `b` knows (merge(a, b) == a). Pure, any thread.
bool includes(const reachability& a, const reachability& b);

} // namespace strata::cluster
