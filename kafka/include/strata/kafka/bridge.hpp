// File: strata/kafka/bridge.hpp
//
// The outbox publisher: tails a journal's global log and produces every event to Kafka,
// in order, at least once. See docs/kafka.md.
//
//   strata::kafka::bridge_options o;
//   o.bootstrap_servers = "127.0.0.1:9092";
//   o.types = {{"account:", "account"}};       // optional: checked at start (else the
//                                              // type is the text before the first ':')
//   auto b = strata::kafka::bridge::start(*journal, o);      // result<unique_ptr<…>>
//   …                                                        // journal appends as usual
//   (*b)->notify();                            // optional: wake the bridge after a commit
//   (*b)->wait_acknowledged(res.last_position, 5000);        // `replicated` durability
//   auto left = (*b)->drain(10'000);           // before exit: 0 = everything published
//
//   // Cluster handoff (docs/kafka.md, "Epochs and claim records"):
//   (*b)->wait_published(shard, 10'000);       // old owner: the shard's events are out
//   (*b)->append_claim(shard, epoch, 10'000);  // new owner, after restore_shard (restore.hpp)
//
// What a record looks like: topic `<topic_prefix><type>` (default `strata.account`),
// partition `shard_of(persistence_id, num_partitions)` (shard.hpp), key = persistence
// id, value = the stored Cap'n Proto envelope bytes, headers `strata.type` (event type),
// `strata.aggregate` (aggregate type), `strata.seq`, `strata.position`,
// `strata.schema_version` (decimal text), `content-type`
// (`application/x-capnp; schema=strata.Envelope`) and `strata-epoch` (the shard's
// ownership epoch from set_epoch, decimal text; 0 on a single node); record batches are compressed
// (`compression`, zstd by default), which consumers undo transparently.
//
// Guarantees: the stored offset (offset_store name `consumer_name`) only moves over the
// contiguous prefix of positions Kafka acknowledged (acks=all), so after any crash the
// bridge resumes at or before the first unacknowledged event: at-least-once, and a
// duplicate is an exact repeat of an earlier record. Per key (= per partition) order
// is the journal's order (idempotent producer, at most 5 requests in flight).
// Events imported from another node (persistence::journal::import) are skipped: they
// are in Kafka already (journal::next_imported gives their positions).
// Kafka unreachable: records wait in a bounded window (`max_in_flight_events`), the
// journal is not slowed down, lag grows, and everything goes out in order on return.
//
// Threads: the bridge produces on its own thread and stores its offset on a second one
// (so LMDB's writer lock never stalls producing). Every member function may be called
// from any thread. `on_acknowledged` runs on the producing thread, `on_error` on either;
// they must not block or call into the bridge except acknowledged_position()/stats().
// Lifetime: stop (or destroy) the bridge before closing the journal, and do not delete
// journal events (delete_events_before) above acknowledged_position(): they would never
// reach Kafka.
#pragma once

#include "strata/persistence/shard.hpp"
#include "strata/persistence/status.hpp"

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace strata::persistence {
class journal;
} // namespace strata::persistence

namespace strata::kafka {

/// Maps persistence ids that start with `prefix` to the aggregate type `type`.
struct type_rule {
  std::string prefix; ///< e.g. "acct-"
  std::string type;   ///< e.g. "account" → topic "strata.account"
};

/// The aggregate type of a persistence id, by explicit rules then a fallback:
/// the rule with the longest prefix that starts the id wins; without a match, the text
/// before the first `separator` — the runtime names streams "<type>:<entity id>", so
/// "account:acct-42" → "account"; an id without separator is its own type.
/// Pure, any thread.
std::string stream_type(std::string_view persistence_id, const std::vector<type_rule>& rules,
                        char separator = ':');

struct bridge_options {
  /// `bootstrap.servers`, e.g. "host1:9092,host2:9092". Required.
  std::string bootstrap_servers;
  /// Key of the bridge's position in the journal's offset_store (the last position
  /// whose record and all before it were acknowledged).
  std::string consumer_name = "kafka-bridge";
  /// Topic name = topic_prefix + aggregate type.
  std::string topic_prefix = "strata.";
  /// Partitions of every topic = shards of the cluster. A topic with another count makes
  /// start() fail (or, for a type first seen later, stops the bridge with that error).
  std::uint32_t num_partitions = persistence::default_num_shards;
  /// Persistence id → aggregate type (see stream_type). Types listed here have
  /// their topic checked by start(); others are checked before their first record.
  std::vector<type_rule> types;
  char type_separator = ':';
  /// Replaces the rules entirely when set. Called on the bridge thread.
  std::function<std::string(std::string_view persistence_id)> type_of;

  /// Records handed to librdkafka but not yet acknowledged, at most. Bounds memory while
  /// Kafka is down (about this many envelopes are held by librdkafka).
  std::size_t max_in_flight_events = 200'000;
  /// ... and at most this many bytes of them (librdkafka `queue.buffering.max.kbytes`).
  std::size_t max_in_flight_bytes = std::size_t{256} << 20;
  /// Events read from the journal per read transaction.
  std::size_t read_batch_events = 4'096;
  /// librdkafka `linger.ms`, `batch.size`, `batch.num.messages`.
  int linger_ms = 5;
  std::size_t batch_size_bytes = 1'000'000;
  std::size_t batch_num_messages = 10'000;
  /// librdkafka `compression.type` of each record batch: "none", "gzip", "snappy",
  /// "lz4" or "zstd" (Debian's librdkafka 2.0.2 has all five). Consumers decompress
  /// transparently; records, keys and headers are unchanged. zstd (default) brings a
  /// record with a 20-byte payload from ~360 bytes on the wire to ~64, lz4 to ~100:
  /// the envelope's layout and the six headers repeat from record to record
  /// (docs/kafka.md, "Bytes on the wire"). An unknown name makes start() fail with
  /// invalid_argument.
  std::string compression = "zstd";
  /// `max.in.flight.requests.per.connection` (1..5 with idempotence).
  int max_in_flight_requests = 5;
  /// How often the acknowledged position is written to the offset store (one small
  /// LMDB write transaction); also written at drain and stop.
  std::uint32_t offset_commit_interval_ms = 100;
  /// How long the bridge thread sleeps when it has nothing to do (notify() wakes it).
  std::uint32_t idle_poll_ms = 2;
  /// start() waits this long for cluster metadata to check the topics of `types`. If
  /// Kafka is unreachable, start() succeeds and the check happens before the first
  /// record of each topic is produced.
  std::uint32_t metadata_timeout_ms = 5'000;
  /// After a producer failure (fatal idempotence error, permanent delivery error) the
  /// bridge recreates its producer after this backoff (doubling up to 10 s) and
  /// resends from the acknowledged position.
  std::uint32_t restart_backoff_ms = 200;
  /// Extra librdkafka properties applied last (they override the above), e.g.
  /// {"security.protocol", "ssl"}. The bridge refuses to override enable.idempotence
  /// and acks.
  std::vector<std::pair<std::string, std::string>> producer_config;
  /// librdkafka `log_level` (syslog levels; 3 = errors such as "connect failed", which
  /// go to stderr; 6 = informational, 7 = debug).
  int log_level = 3;
  /// librdkafka `statistics.interval.ms`: how often bridge_stats::wire_bytes is
  /// refreshed from librdkafka's statistics; 0 = never (wire_bytes stays 0).
  std::uint32_t statistics_interval_ms = 0;

  /// Snapshots (snapshot_saved) go to topic prefix + type + this suffix
  /// ("strata.account.snapshots"), key = persistence id, partition = shard. On a real
  /// cluster that topic needs cleanup.policy=compact (docs/kafka.md).
  std::string snapshot_topic_suffix = ".snapshots";
  /// Streams whose snapshot waits to be published, at most (snapshot_saved beyond it
  /// is dropped with an on_error line; the stream's next snapshot publishes it).
  std::size_t max_pending_snapshots = 100'000;

  /// At start, describe the configs of the topics of `types` and their snapshot topics
  /// (admin API, on a thread of its own) and report through on_error: event topics
  /// with retention.ms other than -1 and snapshot topics without cleanup.policy=compact
  /// (also in stats().last_error), and — as a note only — when the configs could not
  /// be read within config_check_timeout_ms (the librdkafka mock has no admin API) or
  /// a topic is missing. Never stops the bridge.
  bool check_topic_configs = true;
  std::uint32_t config_check_timeout_ms = 5'000;

  /// Cluster mode: publish only the events of shards this bridge holds a claim for
  /// (append_claim or set_epoch gave the shard an epoch > 0). The events of any other
  /// shard are held: not published, left in the journal, counted in
  /// bridge_stats::held_events (and noted once per shard through on_error). The read
  /// position moves past them, so they are never published later either: a restarted
  /// node's events that never reached Kafka wait in its journal until the node acquires
  /// their shard again, when kafka::restore_shard (reconcile) discards those Kafka does
  /// not hold (docs/kafka.md, "Rejoining: reconciliation"). Off (single node): every
  /// event is published, as before.
  bool hold_unclaimed_shards = false;

  /// This node's identity as written into claim records (append_claim); empty = the
  /// journal's writer_node.
  std::string member;

  /// Acknowledgement fencing (docs/kafka.md, "Fencing"): a record of a shard under an
  /// epoch > 0 whose offset does not follow this bridge's previous record (or claim) in
  /// its partition is acknowledged only after the records in between were read and
  /// hold no claim of a higher epoch; this bounds that read. When it does not finish in
  /// time the record stays unacknowledged and the producer is recreated (resent, read
  /// again).
  std::uint32_t gap_check_timeout_ms = 5'000;
  /// Called on the bridge thread for each journal position whose record is not
  /// acknowledged because its shard was fenced (a newer owner's claim precedes it in the
  /// partition), and for each later record of that shard under the old epoch (not
  /// published); always before on_acknowledged reports a position at or past it (the
  /// acknowledged position moves over fenced records: nothing will be published for
  /// them). `why` is the shard's `fenced` status (names shard, epoch, the newer claim:
  /// topic, offset, epoch, member). Must not block or call into the bridge.
  std::function<void(std::uint64_t position, const persistence::status& why)> on_fenced;
  /// Called on the bridge thread whenever the acknowledged position advances.
  std::function<void(std::uint64_t acknowledged_position)> on_acknowledged;
  /// Called on a bridge thread for every problem worth a log line (broker down,
  /// producer restart, topic mismatch). The bridge keeps running unless `failed()`.
  std::function<void(const persistence::status&)> on_error;
};

/// A snapshot of the bridge's progress. Positions are global journal positions.
struct bridge_stats {
  std::uint64_t journal_position = 0;      ///< last position of the journal (last_position)
  std::uint64_t produced_position = 0;     ///< highest position handed to librdkafka
  std::uint64_t acknowledged_position = 0; ///< contiguous prefix acknowledged by Kafka
  std::uint64_t stored_position = 0;       ///< what the offset store holds
  std::uint64_t lag_events = 0;            ///< journal_position - acknowledged_position
  std::int64_t lag_ms = 0;                 ///< age of the oldest unacknowledged event (0 when none)
  std::uint64_t in_flight = 0;             ///< records produced, not yet acknowledged
  std::uint64_t delivered = 0;             ///< acknowledged records since start
  std::uint64_t queue_full_waits = 0;      ///< times librdkafka's queue pushed back
  std::uint64_t producer_restarts = 0;
  std::uint64_t delivery_errors = 0; ///< failed delivery reports (then resent)
  /// Bytes written to the brokers' sockets since start (produce requests with their
  /// compressed batches, metadata, …): librdkafka's `tx_bytes`, as of its last
  /// statistics report (options: statistics_interval_ms; 0 when that is 0).
  std::uint64_t wire_bytes = 0;
  std::uint64_t wire_reports = 0;        ///< statistics reports received since start
  std::string last_error;                ///< empty when none
  std::uint64_t snapshots_published = 0; ///< snapshot records acknowledged since start
  std::uint64_t snapshots_pending = 0;   ///< streams whose snapshot waits to be published
  /// Events not published since start because their shard had no claim here
  /// (bridge_options::hold_unclaimed_shards).
  std::uint64_t held_events = 0;
  /// Gap checks since start (bridge_options::gap_check_timeout_ms): 0 while this bridge
  /// is the only writer of its partitions (contiguous offsets need no read).
  std::uint64_t gap_checks = 0;
  /// Records not acknowledged (or not published) because their shard was fenced.
  std::uint64_t fenced_records = 0;
};

/// What bridge::publish_checkpoint did.
struct checkpoint_report {
  /// Each event topic checkpointed and the offset its checkpoint names.
  std::vector<std::pair<std::string, std::int64_t>> topics;
  std::size_t snapshots = 0; ///< snapshot records published with them
  /// Per type left without a checkpoint: its first stream past its latest snapshot.
  std::vector<std::string> uncovered;
};

/// What a new owner read of a topic's partition before it claims the shard (from its
/// restore_report: restore_partition::topic, end_offset, epoch_in_force).
struct claim_basis {
  std::string topic;
  std::int64_t offset = 0;          ///< read up to here (exclusive)
  std::uint64_t epoch_in_force = 0; ///< the highest claim's epoch before `offset`
};

class bridge {
 public:
  /// Reads the stored offset, creates the producer, checks that every topic of
  /// `opts.types` exists with `num_partitions` partitions (when Kafka answers within
  /// metadata_timeout_ms) and starts the bridge thread. `j` must outlive the bridge.
  /// Errors: invalid_argument (no bootstrap servers, bad librdkafka property, a topic
  /// with the wrong partition count or missing — the message names topic, counts and
  /// the command to fix it), io_error (offset store).
  static persistence::result<std::unique_ptr<bridge>> start(persistence::journal& j,
                                                            bridge_options opts);

  /// Stops without waiting for Kafka (stop(0)).
  ~bridge();
  bridge(const bridge&) = delete;
  bridge& operator=(const bridge&) = delete;

  /// Tells the bridge the journal has new events (it also polls every idle_poll_ms).
  /// Cheap, never blocks; call it after each commit.
  void notify() noexcept;

  /// The highest position p such that every event at or before p was acknowledged by
  /// Kafka (or was already published before this start).
  std::uint64_t acknowledged_position() const noexcept;

  /// Blocks until acknowledged_position() >= position or `timeout_ms` passed. Returns
  /// true when acknowledged. Any thread except the bridge thread.
  bool wait_acknowledged(std::uint64_t position, std::uint32_t timeout_ms);

  /// Waits up to `timeout_ms` until everything the journal held when drain was called
  /// is acknowledged, stores the offset, and returns the number of events still
  /// unpublished (0 = all published; the rest go out at the next start).
  std::uint64_t drain(std::uint32_t timeout_ms);

  /// drain(drain_timeout_ms), then stops the thread and destroys the producer (records
  /// not yet acknowledged are dropped from memory; they are resent at the next start).
  /// Returns the number of events left unpublished. Idempotent.
  std::uint64_t stop(std::uint32_t drain_timeout_ms = 0);

  bridge_stats stats() const;

  /// Tells the bridge that a snapshot of `persistence_id` was saved in the journal's
  /// snapshot store (call it after the commit that saved it). Once every event the
  /// journal held at this call is acknowledged — so the events the snapshot covers are
  /// in Kafka first — the bridge publishes the stream's latest snapshot then
  /// (snapshot_store::load_latest) to `<prefix><type><snapshot_topic_suffix>`: key =
  /// persistence id, partition = shard, value = the snapshot envelope
  /// (persistence::encode_snapshot), headers `strata.seq`, `strata-epoch`,
  /// `content-type`. Calls for one stream coalesce; a failed delivery is retried. Not
  /// durable: after a crash, the stream's next snapshot is published. A missing
  /// snapshot topic (or one with another partition count) drops that snapshot with an
  /// on_error line; events are not affected. Any thread; never blocks.
  void snapshot_saved(std::string_view persistence_id);

  /// Sets the ownership epoch of `shard`, stamped as header `strata-epoch` on every
  /// record of that shard produced from now on (records already handed to librdkafka
  /// keep theirs). Every shard starts at 0 (single node: no ownership, never changed);
  /// the cluster's epochs start at 1. Any thread. Errors: invalid_argument (shard >=
  /// num_partitions).
  persistence::status set_epoch(std::uint32_t shard, std::uint64_t epoch);
  /// Ok, or the `fenced` status of `shard`: a newer owner's claim preceded one of its
  /// records under the shard's epoch (the message names shard, epoch and the claim).
  /// Records of the shard under that (or an older) epoch are neither published nor
  /// acknowledged any more; set_epoch with a newer epoch (the shard taken again)
  /// publishes again. Any thread.
  persistence::status fenced(std::uint32_t shard) const;
  /// The epoch set for `shard` (0 when none or out of range). Any thread.
  std::uint64_t epoch(std::uint32_t shard) const noexcept;

  /// Names this node in the claim and checkpoint records it appends from now on
  /// (bridge_options::member): a cluster node sets its member id once it is known.
  /// Call it before the first append_claim or checkpoint, with a happens-before to them
  /// (e.g. before the cluster node that asks for them starts); not concurrently with them.
  void set_member(std::string member);

  /// Appends a claim record (record_format.hpp: key `strata-claim`, headers
  /// `strata-claim` = member and `strata-epoch`, value "shard=… epoch=… member=…") to
  /// partition `shard` of every topic in known_topics(), and returns once Kafka
  /// acknowledged all of them (acks=all), then sets the shard's epoch (set_epoch). Uses
  /// a producer of its own (idempotent, the bridge's producer_config), so it does not
  /// wait behind the bridge's backlog. Blocks up to `timeout_ms`; not on the bridge
  /// thread. Errors: invalid_argument (shard out of range, no topic known yet, a bad
  /// producer property), unavailable (not every claim acknowledged in time — Kafka
  /// unreachable or a topic missing: the message names the topics; some claims may
  /// have landed, so retry with the same epoch: a repeated claim says nothing new).
  /// The claims' offsets are remembered: the shard's first record under `epoch` in each
  /// partition is acknowledged at once only when it directly follows the claim
  /// (bridge_options::gap_check_timeout_ms, docs/kafka.md "Fencing").
  /// With `basis` (what the owner's restore read of each topic), the claim itself is
  /// fenced too: an epoch in force above `epoch` fails at once with `fenced` (nothing
  /// appended), and where a claim landed past the basis offset, the records in between
  /// are read (gap_check_timeout_ms) for a claim above `epoch`: found → `fenced` and the
  /// epoch is not set (the claim landed behind a newer one and counts for nothing).
  persistence::status append_claim(std::uint32_t shard, std::uint64_t epoch,
                                   std::uint32_t timeout_ms = 10'000,
                                   const std::vector<claim_basis>& basis = {});

  /// Checkpoints `shard` for a new owner (docs/kafka.md, "Checkpoints"): for each type
  /// of `persistence_ids` (the shard's streams in the journal) whose streams all have a
  /// snapshot at their head, reads the high watermark H of partition `shard` of the
  /// type's event topic, publishes each stream's latest snapshot and then a checkpoint
  /// record (record_format.hpp, offset H) to partition `shard` of the snapshot topic, and
  /// returns once Kafka acknowledged all of them. A restore then reads the snapshots and
  /// only the events from H on. Call it when the shard takes no more writes and its
  /// events are published (wait_published): every event below H is then one of these
  /// streams'. A type with a stream past its latest snapshot gets no checkpoint (named
  /// in `uncovered`). Uses a producer of its own like append_claim; blocks up to about
  /// 2 × `timeout_ms`; not on the bridge thread. Errors: fenced (this bridge found a
  /// newer owner's claim of the shard above `epoch`: fenced(shard)), invalid_argument
  /// (shard out of range, a bad producer property), unavailable (no watermark, or not every record
  /// acknowledged in time: retry; a repeated checkpoint says nothing new), those of the
  /// journal's reads.
  persistence::result<checkpoint_report>
  publish_checkpoint(std::uint32_t shard, std::uint64_t epoch,
                     const std::vector<std::string>& persistence_ids,
                     std::uint32_t timeout_ms = 10'000);

  /// The topics this bridge publishes to: those of `types` and every topic it has
  /// checked since start (types first seen at run time). Sorted. Any thread.
  std::vector<std::string> known_topics() const;

  /// Blocks until every event of `shard` that the journal held when it was called
  /// (positions <= last_position() at the call) has been acknowledged by Kafka, or
  /// `timeout_ms` passed. Cheap: the bridge counts its unacknowledged records per
  /// shard, so events of other shards do not delay the answer. True when published;
  /// false on timeout, when the bridge failed (health()) or was stopped. False is lag,
  /// not loss: the events stay in the journal and the bridge keeps publishing them.
  /// Any thread except the bridge thread (and its callbacks).
  bool wait_published(std::uint32_t shard, std::uint32_t timeout_ms);

  /// wait_published without blocking: `done(true/false)` is called once, on the
  /// bridge thread (must not block or call into the bridge), when the shard's events
  /// as of this call are acknowledged or `timeout_ms` passed; done(false) at once on
  /// the calling thread when the bridge is stopped or 4,096 waits are pending, and
  /// from stop() for waits still pending then.
  void when_published(std::uint32_t shard, std::uint32_t timeout_ms,
                      std::function<void(bool)> done);

  /// Ok, or the error that stopped the bridge (a topic with the wrong partition count).
  /// A failed bridge does not produce; its lag grows until it is restarted.
  persistence::status health() const;

  /// The topic and partition an event of `persistence_id` goes to.
  std::string topic_for(std::string_view persistence_id) const;
  std::uint32_t partition_for(std::string_view persistence_id) const noexcept;

  const bridge_options& options() const noexcept;

 private:
  struct impl;
  explicit bridge(std::unique_ptr<impl> p);
  std::unique_ptr<impl> impl_;
};

} // namespace strata::kafka
