// File: strata/runtime/config.hpp
//
// Configuration of a strata::system, from code, an INI-style file or the command line
// (later sources override earlier ones: defaults < file < command line).
//
//   strata::config cfg;                       // from code
//   cfg.data_dir = "data";
//   cfg.durability = strata::persistence::sync_mode::nosync;
//
//   auto c = strata::config::from_args(argc, argv, &rest);   // strata::result<config>
//   if (!c) std::cerr << strata::describe(c.error()) << "\n";  // like every runtime error
//   // --data-dir=DIR (or --data DIR) --durability=sync|nosync --snapshot-every=N
//   // --snapshot-every.account=N --passivate-after-ms=N --max-recovering=N
//   // --stash-max=N --writer-batch-events-max=N --max-inflight-writes=N
//   // --scheduler-threads=N --directory-shards=N --replication-timeout-ms=N
//   // --read-only --lock-wait-ms=N
//   // --cluster-host=H --cluster-port=P --cluster-seeds=H:P,... --cluster-shards=N
//   // --cluster-gossip-ms=N --cluster-heartbeat-ms=N --cluster-phi-threshold=X
//   // --cluster-acceptable-pause-ms=N --cluster-stable-after-ms=N
//   // --cluster-self-down-lead-ms=N
//   // --config-file=PATH
//   // Arguments it does not know are returned in `rest` (in order), so a CLI can
//   // parse its own sub-commands after it.
//
//   auto f = strata::config::from_file("strata.ini");       // key = value lines
//   // data-dir = /var/lib/strata        (optional [strata] section header; # comments)
//
// Threads: a plain value.
#pragma once

#include "strata/persistence/environment.hpp"
#include "strata/persistence/event.hpp"
#include "strata/persistence/status.hpp"
#include "strata/runtime/errors.hpp"

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace strata {

struct config {
  /// LMDB data directory (created if missing). Key `data-dir` (alias `data`).
  std::string data_dir = "strata-data";
  /// sync = fsync per group commit (default); nosync = survives a process crash only.
  /// Key `durability`.
  persistence::sync_mode durability = persistence::sync_mode::sync;
  /// Open the data directory for reading only (key `read-only`: true|false; on the
  /// command line `--read-only` alone means true): the journal is opened with
  /// journal::open_read_only (writes nothing, takes no writer lock, works while another
  /// process writes), no group commit and no Kafka bridge start, and every command
  /// fails with runtime_errc::read_only; the read side of entities<A> (history,
  /// current, state_at_seq, state_at_time, ids) and system::journal() reads work. Kafka
  /// must be off (`kafka` empty, no `replicated`).
  bool read_only = false;
  /// How long opening for writing waits for the data directory's writer lock held by
  /// another process, then fails with runtime_errc::locked naming the holder (0 = fail
  /// at once). Key `lock-wait-ms`.
  std::uint32_t lock_wait_ms = 0;
  /// Initial / maximum LMDB map size. Keys `map-size-mb`, `map-size-max-mb`.
  std::size_t map_size_bytes = std::size_t{256} << 20;
  std::size_t map_size_max_bytes = std::size_t{1} << 40;
  /// Take a snapshot when this many events were persisted since the last one
  /// (0 = never). Key `snapshot-every`; per aggregate type `snapshot-every.<type>`.
  std::uint64_t snapshot_every = 1000;
  std::map<std::string, std::uint64_t> snapshot_every_by_type;
  /// Passivate an entity after it received no command for this long (0 = never).
  /// Key `passivate-after-ms`.
  std::uint64_t passivate_after_ms = 120'000;
  /// At most this many entities recover at once; others queue (their commands stash).
  /// Key `max-recovering`.
  std::size_t max_recovering = 2;
  /// Commands an entity buffers while recovering or while its write pipeline is full;
  /// beyond that a command is answered with `stash_full`. Key `stash-max`.
  std::size_t stash_max = 4096;
  /// Events in one journal transaction, at most (group commit). Key
  /// `writer-batch-events-max`.
  std::size_t writer_batch_events_max = 8192;
  /// Group-commit linger: under load (the previous commit ended less than
  /// `writer_linger_us` ago) and with fewer than `writer_linger_events` events queued,
  /// the writer waits up to `writer_linger_us` for more before it commits; an idle
  /// writer commits at once (0 = never linger). Fewer, larger transactions: measured
  /// 120k → 210k commands/s on the e2e bench with nosync. Keys `writer-linger-us`,
  /// `writer-linger-events`.
  std::uint64_t writer_linger_us = 250;
  std::size_t writer_linger_events = 1024;
  /// Writes one entity may have queued or in flight at the writer (pipelining).
  /// Key `max-inflight-writes`.
  std::size_t max_inflight_writes = 2;
  /// Events one entity puts into one write, at most. Key `entity-batch-events-max`.
  std::size_t entity_batch_events_max = 1024;
  /// CAF worker threads; 0 = one less than the hardware threads (at least 1), which
  /// leaves a core to the group commit and the journal's commit thread (on this 2-core box: 1
  /// worker — measured faster than 2 for both many entities and one hot entity). Key
  /// `scheduler-threads`.
  std::size_t scheduler_threads = 0;
  /// CAF scheduler policy: "stealing" (CAF's default) or "sharing" (one shared queue;
  /// no idle workers spinning to steal, which leaves more CPU to the group commit on
  /// small machines). Key `scheduler-policy`.
  std::string scheduler_policy = "sharing";
  /// Messages an actor handles before yielding its worker (fairness). Key
  /// `max-throughput`.
  std::size_t max_throughput = 300;
  /// Entity directory shards (lock striping). Key `directory-shards`.
  std::size_t directory_shards = 64;
  /// Stamped into every envelope. Key `node-name`.
  std::string node_name = "local";
  /// Index entries buffered before the journal writes them (journal_options).
  /// Key `index-flush-events`.
  std::size_t index_flush_events = 100'000;

  /// Kafka (the bridge publishes the journal, docs/kafka.md): "" = off (default),
  /// "mock" = an in-process librdkafka mock cluster (3 brokers, topics created with
  /// `kafka_partitions` partitions for every registered aggregate type), anything else =
  /// a bootstrap list "host:port,…" of a real cluster whose topics `strata.<type>` exist
  /// with `kafka_partitions` partitions. Key `kafka`.
  std::string kafka;
  /// Partitions per topic = shards. Key `kafka-partitions`.
  std::uint32_t kafka_partitions = 64;
  /// librdkafka linger.ms of the bridge (latency of `replicated` replies vs batching).
  /// Key `kafka-linger-ms`.
  int kafka_linger_ms = 1;
  /// Compression of the bridge's record batches (librdkafka compression.type):
  /// none|gzip|snappy|lz4|zstd; consumers decompress transparently (docs/kafka.md,
  /// "Bytes on the wire"). Key `kafka-compression`.
  std::string kafka_compression = "zstd";
  /// At shutdown, wait this long for the bridge to publish what is persisted; what is
  /// left goes out at the next start (a message says how many). Key `kafka-drain-ms`.
  std::uint32_t kafka_drain_ms = 10'000;
  /// When a command's reply is sent: `local` (false, default) = after the LMDB commit;
  /// `replicated` (true) = also after Kafka acknowledged its events (needs `kafka`).
  /// Keys `replication = local|replicated`, per aggregate type `replication.<type>`.
  bool replicated = false;
  std::map<std::string, bool> replicated_by_type;
  /// `replicated` only: a reply waits at most this long for Kafka's acknowledgement;
  /// then the command fails with `not_replicated` (its events stay stored locally and
  /// the bridge keeps publishing them). While a timed-out event is still unacknowledged,
  /// later replicated writes do not wait: they are answered `not_replicated` right after
  /// their local commit (Kafka is known to be behind; see docs/kafka.md). Must be >= 1.
  /// The default (10 s) outlasts a broker failover of a few seconds and stays well below
  /// a blocking ask's 30 s. Key `replication-timeout-ms`.
  std::uint32_t replication_timeout_ms = 10'000;

  /// Cluster (docs/cluster.md): the node listens on `cluster_host`:`cluster_port` and
  /// joins through `cluster_seeds` (any member; none, or itself first: the first node of
  /// a cluster). Without `cluster-port` and `cluster-seeds` the system is a single node,
  /// exactly as without a cluster (cluster_enabled() false). Keys `cluster-host`
  /// (default 127.0.0.1), `cluster-port` (0 = any free port; a first node needs one its
  /// peers can name), `cluster-seeds` (`host:port,…`, IPv6 as `[::1]:4500`),
  /// `cluster-shards` (default 64; the same on every node, and equal to
  /// `kafka-partitions` when Kafka is on: shard i is partition i), `cluster-gossip-ms`
  /// (the gossip round, default 100).
  struct cluster_seed {
    std::string host;
    std::uint16_t port = 0;
  };
  std::string cluster_host = "127.0.0.1";
  std::uint16_t cluster_port = 0;
  std::vector<cluster_seed> cluster_seeds;
  std::uint32_t cluster_shards = 64;
  std::uint32_t cluster_gossip_ms = 100;
  /// Failure detection and downing (docs/cluster.md, "Failure detection and downing");
  /// the same on every member. Every `cluster-heartbeat-ms` (1..60000, default 200) a
  /// node sends a heartbeat to every other member, which also sets CAF's middleman
  /// heartbeat; a member whose phi reaches `cluster-phi-threshold` (> 0, <= 100,
  /// default 8) is unreachable, a silence up to `cluster-acceptable-pause-ms` (0..60000,
  /// default 500) longer than usual being normal. Once nothing changed for
  /// `cluster-stable-after-ms` (1..600000, default 1500) the majority side downs the
  /// unreachable members; a node on the losing side downs itself
  /// `cluster-self-down-lead-ms` (default 750, less than stable-after) sooner.
  std::uint32_t cluster_heartbeat_ms = 200;
  double cluster_phi_threshold = 8.0;
  std::uint32_t cluster_acceptable_pause_ms = 500;
  std::uint32_t cluster_stable_after_ms = 1'500;
  std::uint32_t cluster_self_down_lead_ms = 750;
  /// Whether the cluster is on: a `cluster-port` or `cluster-seeds` was given.
  bool cluster_enabled() const noexcept { return cluster_port != 0 || !cluster_seeds.empty(); }

  /// Cluster routing (docs/cluster.md, "Routing"; used only when the system has a
  /// cluster node). A command or read forwarded to the owner of its shard, or held while
  /// the shard moves, is answered `timeout` after `cluster_forward_timeout_ms` (>= 1);
  /// a later reply is dropped. Key `cluster-forward-timeout-ms`.
  std::uint32_t cluster_forward_timeout_ms = 5'000;
  /// Commands (or reads) in one batch to a member, at most (>= 1). Key
  /// `cluster-batch-max`.
  std::uint32_t cluster_batch_max = 256;
  /// A batch leaves at once while fewer than `cluster_max_inflight_batches` (>= 1)
  /// batches to that member are unanswered; else it waits for an answer, for
  /// `cluster_batch_max` items, or `cluster_batch_linger_us` at most. Keys
  /// `cluster-batch-linger-us`, `cluster-max-inflight-batches`.
  std::uint32_t cluster_batch_linger_us = 500;
  std::uint32_t cluster_max_inflight_batches = 4;
  /// Commands held per shard while it moves or has no owner (>= 1); more fail with
  /// `shard_moving`. Key `cluster-buffer-max`.
  std::uint32_t cluster_buffer_max = 1'024;
  /// One step of a planned shard move at most: the old owner waiting for Kafka to
  /// acknowledge the shard's events, or the new owner restoring the shard from Kafka
  /// and appending its claim record. Key `cluster-handoff-timeout-ms` (>= 1).
  std::uint32_t cluster_handoff_timeout_ms = 60'000;
  /// Client mode (`strata-bank --cluster HOST:PORT`): the system connects to
  /// `cluster_seeds`, learns the members and shard owners from them and sends every
  /// command and read to the owner; it opens no data directory (data_dir is ignored),
  /// hosts no entity and never joins the member view. Key `cluster-client` (a switch on
  /// the command line).
  bool cluster_client = false;

  /// Whether replies of aggregate type `type` wait for Kafka.
  bool replicated_for(std::string_view type) const;

  /// The snapshot interval for aggregate type `type`.
  std::uint64_t snapshot_every_for(std::string_view type) const;

  /// Sets one key (names as above, `-` or `_` accepted). Errors: invalid_argument
  /// naming the key and the expected form.
  persistence::status set(std::string_view key, std::string_view value);

  /// Reads `key = value` lines (an optional `[strata]` section; `#`/`;` comments) on
  /// top of `base`. Returns the same result type as `system::open` (errors in category
  /// `strata`, printed by `strata::describe`). Errors: not_found (no such file),
  /// invalid_argument (names the file, the line and the key).
  static result<config> from_file(const std::string& path);
  static result<config> from_file(const std::string& path, config base);

  /// Parses `--key=value` / `--key value` options for the keys above, and
  /// `--config-file=PATH` (applied first). Unknown arguments (and everything after
  /// `--`) go to `rest` when given, else they are an invalid_argument error. Errors:
  /// invalid_argument (names the option and the expected form), and those of
  /// `from_file` for `--config-file`.
  static result<config> from_args(int argc, const char* const* argv,
                                  std::vector<std::string>* rest = nullptr);
  static result<config> from_args(int argc, const char* const* argv, std::vector<std::string>* rest,
                                  config base);
};

} // namespace strata
