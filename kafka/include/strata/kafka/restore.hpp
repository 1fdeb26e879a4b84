// File: strata/kafka/restore.hpp
//
// Restores one shard from Kafka into a journal: what a new shard owner does on a
// planned move (docs/cluster.md, "Handoff"; docs/kafka.md, "Restoring a shard"). With
// snapshots, reads partition `shard` of each snapshot topic first: the latest snapshot
// per stream and the latest checkpoint (record_format.hpp) per event topic. Where a
// checkpoint exists, each stream with a snapshot starts at it (journal::import_bases)
// and the event partition is read from the checkpoint's offset on, so the time does not
// grow with the history before it; elsewhere from its first retained offset. Reads up to
// the end offsets found at the start, decodes each envelope, skips claim records and
// events a snapshot it started at covers, skips (and counts in `fenced`) records that
// are invalid by the validity rule (claim_tracker, record_format.hpp: written under an
// epoch other than the claim in force; reading from a checkpoint starts with the
// checkpoint's epoch in force), and imports the events with journal::import in
// batches: each keeps its persistence id, seq and timestamp, duplicates of what the
// journal holds are skipped (so a second restore is a no-op), and the imported events
// are not published again by the journal's bridge.
//
//   restore_options o;
//   o.bootstrap_servers = bootstrap;
//   o.topics = bridge->known_topics();            // {"strata.account", …}
//   o.shard = 17;
//   o.reconcile = true;                           // a cluster node: Kafka's history wins
//   o.num_shards = 64;
//   auto r = restore_shard(*journal, o);          // result<restore_report>
//   if (r) log(r->records, r->imported, r->duplicates, r->discarded);
//
// Threads: call from the journal's writer thread (journal::import is a writer call), or
// from any thread with `restore_options::import` serialising the imports with the
// writer; blocks until done or timeout_ms. Uses a Kafka consumer of its own (assigned
// partitions, no consumer group).
#pragma once

#include "strata/persistence/journal.hpp"
#include "strata/persistence/status.hpp"

#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

namespace strata::persistence {
class journal;
} // namespace strata::persistence

namespace strata::kafka {

struct restore_options {
  std::string bootstrap_servers;   ///< required
  std::vector<std::string> topics; ///< required: every topic of the shard's aggregates
  std::uint32_t shard = 0;         ///< = the partition read in each topic
  /// Events per journal::import call (one write transaction each); at most the
  /// journal's max_batch_events.
  std::size_t batch_events = 10'000;
  /// The whole restore, metadata included.
  std::uint32_t timeout_ms = 120'000;
  /// librdkafka `log_level` (3 = errors to stderr).
  int log_level = 3;
  /// Also read partition `shard` of each topic + snapshot_topic_suffix (the bridge's
  /// snapshot topics): keep the latest snapshot per persistence id and the latest
  /// checkpoint. With a checkpoint, streams start at their snapshots (import_bases) and
  /// the events are read from the checkpoint on; without, every retained event is
  /// imported and each latest snapshot is saved once its stream's events reach it.
  bool snapshots = false;
  std::string snapshot_topic_suffix = ".snapshots";
  /// Imports one batch; empty = `j.import(events)`. A runtime whose group commit owns
  /// the journal's writer calls passes one that runs the import under the writer's lock
  /// (so the restore may run on a thread of its own while other shards commit).
  std::function<persistence::result<persistence::import_report>(
    const std::vector<persistence::event_record>&)>
    import;
  /// Starts streams at their snapshots; empty = `j.import_bases(snaps)`. Like `import`,
  /// a runtime passes one that runs under the writer's lock.
  std::function<persistence::result<std::vector<persistence::base_report>>(
    const std::vector<persistence::snapshot_record>&)>
    import_bases;
  /// Reconcile the shard's local streams with Kafka (what a cluster node does on every
  /// acquire, docs/kafka.md "Rejoining: reconciliation"): where the journal holds a
  /// different event than Kafka under the same seq, the stream's events from that seq on
  /// are discarded (journal::discard_after) and Kafka's imported; a local stream of the
  /// shard that goes beyond the last seq Kafka holds of it is cut back to it (a stream
  /// Kafka holds nothing of is removed). Afterwards the shard's streams in the journal
  /// equal Kafka's. Needs num_shards. Off: a difference is a `conflict` error, a longer
  /// local stream stays as it is.
  bool reconcile = false;
  /// The cluster's shard count (persistence::shard_of): which local streams are the
  /// shard's. Required with reconcile.
  std::uint32_t num_shards = 0;
  /// Discards for reconcile; empty = `j.discard_after(points)`. Like `import`, a runtime
  /// passes one that runs under the writer's lock.
  std::function<persistence::result<persistence::discard_report>(
    const std::vector<persistence::discard_point>&)>
    discard;
  /// Extra librdkafka consumer properties, applied last.
  std::vector<std::pair<std::string, std::string>> consumer_config;
};

/// One partition as the restore found and read it.
struct restore_partition {
  std::string topic;
  bool snapshots = false;        ///< a snapshot topic (restore_options::snapshots)
  std::int64_t first_offset = 0; ///< low watermark at the start (> 0: retention dropped some)
  std::int64_t end_offset = 0;   ///< high watermark at the start: read up to here
  /// Where reading started: the checkpoint's offset (events), else 0.
  std::int64_t start_offset = 0;
  /// The epoch in force at end_offset by the validity rule (claim_tracker): the highest
  /// claim read (or the checkpoint's epoch); 0 when none. A new owner passes it to
  /// bridge::append_claim (claim_basis), which refuses an epoch below it.
  std::uint64_t epoch_in_force = 0;
};

/// What restore_shard did.
struct restore_report {
  std::uint64_t records = 0; ///< records read (events and claims)
  std::uint64_t claims = 0;  ///< claim records skipped
  /// Event records skipped as invalid (claim_tracker, record_format.hpp): written under
  /// an epoch other than the one in force, i.e. by an owner a newer claim had fenced.
  std::uint64_t fenced = 0;
  /// The first fenced_records_max of them: "topic 'T' partition P offset O: epoch E,
  /// claim in force C" (for the caller's log).
  std::vector<std::string> fenced_records;
  static constexpr std::size_t fenced_records_max = 100;
  std::uint64_t imported = 0;         ///< events appended to the journal
  std::uint64_t duplicates = 0;       ///< events the journal already held (skipped)
  std::uint64_t bytes = 0;            ///< record values read
  std::uint64_t snapshots_read = 0;   ///< snapshot records read (all versions)
  std::uint64_t snapshots_saved = 0;  ///< latest snapshots saved into the snapshot store
  std::uint64_t checkpoints_read = 0; ///< checkpoint records read (all versions)
  std::uint64_t bases = 0;            ///< streams started (or moved forward) at their snapshot
  std::uint64_t covered =
    0; ///< events read but skipped: a snapshot a stream started at covers them
  /// Latest snapshots not saved: the store already had one at or past it, or (a
  /// Kafka gap) the stream's events do not reach its seq.
  std::uint64_t snapshots_skipped = 0;
  /// restore_options::reconcile: local events Kafka does not hold, discarded (in
  /// replicated mode never acknowledged; in local mode acknowledged but never published:
  /// lost, docs/kafka.md), the streams they were of, and snapshots past the cuts.
  std::uint64_t discarded = 0;
  std::uint64_t discarded_streams = 0;
  std::uint64_t discarded_snapshots = 0;
  std::vector<restore_partition> partitions;
  double seconds = 0;        ///< the whole restore
  double import_seconds = 0; ///< of which in journal::import
};

/// Restores `o.shard` into `j` (see the file comment). Events are imported in batches,
/// so after an error the batches before it stay imported; running the restore again
/// continues idempotently.
/// Errors: invalid_argument (no servers or topics, batch_events 0 or above the
/// journal's max_batch_events, reconcile without num_shards, a bad consumer property;
/// from import: a gap in a stream
/// — the message says when the partition no longer starts at offset 0, i.e. retention
/// removed events the journal lacks), not_found (a topic or the partition does not
/// exist), unavailable (Kafka did not answer, or the partitions were not read to their
/// end offsets within timeout_ms: names topic, partition and offsets), corrupt (a record
/// is not an envelope: names topic, partition, offset), conflict (Kafka holds an event
/// that differs from the journal's under the same persistence id and seq; with
/// reconcile only when Kafka itself holds two different events under one seq), those of
/// journal::import and journal::discard_after (closed, io_error, map_full).
persistence::result<restore_report> restore_shard(persistence::journal& j,
                                                  const restore_options& o);

/// The topics on `bootstrap_servers` whose name starts with `prefix`, except those ending
/// in `snapshot_suffix` (when not empty), sorted: what a new shard owner restores from.
/// Errors: unavailable (no metadata within timeout_ms), invalid_argument (no servers).
persistence::result<std::vector<std::string>>
list_event_topics(const std::string& bootstrap_servers, const std::string& prefix,
                  const std::string& snapshot_suffix, std::uint32_t timeout_ms);

} // namespace strata::kafka
