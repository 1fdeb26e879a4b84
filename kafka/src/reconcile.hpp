// Private: the reconciliation step of kafka::restore_shard (restore_options::reconcile):
// a shard's local streams compared with its Kafka partition, and the local events that
// Kafka does not hold — a different event under the same seq, or a tail beyond what
// Kafka holds — discarded (journal::discard_after) so that the journal ends equal to
// Kafka. See docs/kafka.md, "Rejoining: reconciliation".
//
// Cheap when nothing differs: no comparison beyond the one journal::import makes anyway
// (a cut is looked for only when an import reports a conflict), one head lookup per
// local stream of the shard at the end, and no write transaction.
//
// Threads: `seen` on the restore's reader thread (and the calling thread while the
// snapshot partitions are read), the others on the calling (importing) thread; `cut_tails`
// only after the reader thread was joined.
#pragma once

#include "strata/kafka/restore.hpp"
#include "strata/persistence/journal.hpp"

#include <cstdint>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

namespace strata::kafka::detail {

class reconciler {
 public:
  reconciler(persistence::journal& j, const restore_options& o, restore_report& rep)
    : j_(j), o_(o), rep_(rep) {}

  bool enabled() const noexcept { return o_.reconcile; }

  /// Before the streams start at their snapshots (checkpoints): when the journal holds
  /// streams of the shard, the events before a checkpoint could differ from them, and
  /// only reading them can tell: every entry of `start` (event partitions' start
  /// offsets) becomes 0, `whole` is set (no stream is started at a snapshot), and
  /// `based` gets, per local stream that an earlier restore started at a snapshot, the
  /// seqs it does not hold (the reader skips them: nothing to compare). Without local
  /// streams of the shard nothing changes. Errors: those of list_streams, first_held_seq.
  persistence::status before_bases(std::vector<std::int64_t>& start,
                                   std::unordered_map<std::string, std::uint64_t>& based,
                                   bool& whole);

  /// Kafka holds seq `seq` of `pid`: an event read, or a snapshot at that seq (its
  /// events are in Kafka, maybe before a checkpoint the restore started at). At most one
  /// entry per stream of the partition.
  void seen(const std::string& pid, std::uint64_t seq) {
    auto& last = kafka_last_[pid];
    if (seq > last) last = seq;
  }

  /// The import of `events` (Kafka's, in partition order) failed with conflict: cuts
  /// each of their streams before the first seq whose stored event differs from Kafka's.
  /// `cut` tells whether anything was discarded (if not, the conflict is not the
  /// journal's: e.g. Kafka holds two different events under one seq). Errors: those of
  /// journal reads and of discard_after.
  persistence::status cut_divergent(const std::vector<persistence::event_record>& events,
                                    bool& cut);

  /// After every event was read and imported: cuts each local stream of the shard back
  /// to the last seq Kafka holds of it (0: the whole stream). With `retention_cut` (a
  /// partition no longer starts at offset 0) streams Kafka shows nothing of are left
  /// alone: retention may have removed what they hold. Errors: invalid_argument
  /// (num_shards 0), those of list_streams, highest_seq and discard_after.
  persistence::status cut_tails(bool retention_cut);

 private:
  persistence::status discard(const std::vector<persistence::discard_point>& points);
  /// The streams of the shard the journal holds before the restore (listed once).
  persistence::status list_local();

  persistence::journal& j_;
  const restore_options& o_;
  restore_report& rep_;
  std::unordered_map<std::string, std::uint64_t> kafka_last_; // pid → highest seq in Kafka
  std::set<std::string> cut_streams_;                         // counted once each
  std::vector<std::string> local_;                            // list_local
  bool listed_ = false;
};

} // namespace strata::kafka::detail
