// File: strata/runtime/system.hpp
//
// strata::system — the embedding entry point: one object owns the CAF actor system,
// the node's LMDB journal, the group commit thread, the entity
// directories and the passivation sweeper.
//
//   #include <strata/runtime/all.hpp>
//
//   auto cfg = strata::config::from_args(argc, argv, &rest);   // strata::result<config>
//   if (!cfg) { std::cerr << strata::describe(cfg.error()); return 2; }
//   auto sys = strata::system::open(*cfg);        // strata::result<unique_ptr<system>>
//   if (!sys) { std::cerr << strata::describe(sys.error()); return 4; }
//   auto accounts = (*sys)->entities<bank::account>();     // type name from the aggregate
//   auto balance = accounts.ask("acct-42", bank::deposit{100});   // blocking helper
//   accounts.ask_async("acct-42", bank::withdraw{5},
//                      [](caf::expected<std::int64_t> r) { /* runtime thread */ });
//   (*sys)->shutdown();   // also done by the destructor
//
// Threads: `open`, `shutdown` and the destructor from one (non-actor) thread;
// `entities<A>()` and the returned handles from any thread.
#pragma once

#include "strata/runtime/config.hpp"
#include "strata/runtime/errors.hpp"

#include <caf/expected.hpp>
#include <caf/fwd.hpp>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <typeinfo>
#include <vector>

namespace strata::persistence {
class journal;
struct snapshot_record;
} // namespace strata::persistence

namespace strata::kafka {
class bridge;
} // namespace strata::kafka

namespace strata::cluster {
class node;
} // namespace strata::cluster

namespace strata {

template <class A>
class entities;

class system;

namespace testing {
struct faults;
/// Declared in strata/runtime/testing.hpp (fault injection for tests).
result<std::unique_ptr<system>> open_with_faults(config cfg, faults f);
} // namespace testing

namespace detail {
class region;
class system_core;
struct wire_codec;
/// Routes this system's commands and reads through `node` (docs/cluster.md, "Routing"):
/// installs the cluster router over it. Call once, right after system::open, before
/// the first command; `node` must outlive the system's shutdown(). What the cluster node
/// (or a test's fake, strata/runtime/testing.hpp) calls.
void attach_cluster(system& sys, cluster::node& node);
using spawn_fn = caf::actor (*)(region& reg, const std::string& entity_id);
using snapshot_fn = std::optional<persistence::snapshot_record> (*)(
  persistence::journal& j, const std::string& pid, const std::string& type, std::string& error);
} // namespace detail

/// Counters for tests, benchmarks and operators. Any thread (values are a snapshot).
struct system_stats {
  std::size_t live_entities = 0;        ///< spawned and not yet stopped
  std::size_t recovering = 0;           ///< holding a recovery permit right now
  std::size_t waiting_for_recovery = 0; ///< queued for a permit
  std::uint64_t recoveries = 0;         ///< completed recoveries since open
  std::uint64_t passivations = 0;       ///< entities stopped for idleness since open
  std::uint64_t commits = 0;            ///< journal transactions by the writer
  std::uint64_t committed_events = 0;   ///< events in those transactions
  std::uint64_t failed_commits = 0;     ///< whole-transaction failures
  std::uint64_t append_ns = 0;          ///< summed time from hand-over to commit callback
  /// Commit times: element i counts commits that took [50·i, 50·(i+1)) µs from the hand-over
  /// of the batch to the journal to its commit callback; the last one, everything longer.
  std::vector<std::uint64_t> commit_us_histogram;
  // Cluster routing (docs/cluster.md, "Routing"); all 0 without a cluster node.
  std::uint64_t cluster_forwarded = 0;    ///< commands and reads sent to their shard's owner
  std::uint64_t cluster_batches_sent = 0; ///< batch messages carrying them
  std::uint64_t cluster_replies_sent = 0; ///< reply batch messages to other members
  std::uint64_t cluster_received = 0;     ///< commands and reads received from other members
  std::uint64_t cluster_held = 0;         ///< held for a moving, ownerless or stopped shard
  std::uint64_t cluster_timed_out = 0;    ///< answered timeout (cluster-forward-timeout-ms)
  std::uint64_t cluster_late_replies = 0; ///< replies dropped: their command had timed out
};

class system {
 public:
  /// Opens the journal in cfg.data_dir, starts CAF and the group commit (and the
  /// Kafka bridge when cfg.kafka is set). Opening for writing takes the data
  /// directory's writer lock for the system's life, waiting up to cfg.lock_wait_ms for
  /// another process to release it. With cfg.read_only: journal::open_read_only, no
  /// writer, no bridge, no lock; commands fail with read_only, reads work.
  /// Errors (runtime category), the data directory in the message: those of
  /// journal::open / open_read_only — io_error, incompatible, corrupt (e.g. an empty
  /// data.mdb in a directory that held a journal), locked (another process writes
  /// there: names its pid, host and since when), not_found (read-only, no journal
  /// there) — and invalid_argument (contradicting settings: replicated without Kafka,
  /// read_only with Kafka; a cluster node without Kafka, read-only, or with
  /// cluster-shards != kafka-partitions; cluster-client without cluster-seeds).
  /// With cluster settings (config::cluster_enabled) it also starts the cluster node
  /// (docs/cluster.md): io_error names the address when it cannot listen there. With
  /// cluster_client it opens no data directory: journal() must not be called then. The same result type as config::from_args (`strata::result`,
  /// errors.hpp).
  static result<std::unique_ptr<system>> open(config cfg);

  /// Calls shutdown().
  ~system();
  system(const system&) = delete;
  system& operator=(const system&) = delete;

  /// A handle to the entities of aggregate `A` under `type` (default A::type_name).
  /// The first call for a type creates its directory; later calls return a handle to
  /// the same one. Calling it for one type with two different aggregates is a bug
  /// (asserted). Defined in entities.hpp (include strata/runtime/all.hpp).
  template <class A>
  strata::entities<A> entities(std::string type = A::type_name);

  /// Clean shutdown: new commands fail with `shutting_down`; every live entity finishes
  /// its in-flight writes (their replies are sent) and stops; the writer commits what
  /// is queued; the journal flushes its index and syncs; CAF stops. Idempotent.
  /// Must not be called from an actor or a runtime callback. With Kafka, the bridge
  /// publishes what is persisted for at most `kafka_drain_ms` in all (default: the
  /// config's `kafka-drain-ms`); replies still waiting for Kafka then fail with
  /// not_replicated, and what is left is published at the next start.
  void shutdown();
  void shutdown(std::uint32_t kafka_drain_ms);

  /// Passivates every entity (of every type) idle for at least `idle_ms` now, as the
  /// sweeper does after `passivate_after_ms`. Returns how many were asked to stop (they
  /// stop asynchronously). Any thread.
  std::size_t passivate_idle(std::uint64_t idle_ms = 0);

  /// Cluster handoff of `shard` (a no-op calling `done` at once without cluster): new
  /// commands for it wait (held, bounded: cluster-buffer-max), every entity of the shard
  /// finishes its in-flight writes and stops, then `done` runs once (any thread, must not
  /// block). Any thread but an actor's.
  void stop_shard(std::uint32_t shard, std::function<void()> done);
  /// Graceful leave of a cluster node (config cluster-*): this node's shards move to
  /// the other members (each one's entities stop after their in-flight writes, Kafka
  /// gets every event of the shard, the new owner restores it from there), then the
  /// node is exiting. True once every former shard serves elsewhere; false after
  /// `timeout_ms` (e.g. no other member is up to take them). Call shutdown() after it.
  /// True at once without a cluster node. Not from an actor.
  bool leave(std::uint32_t timeout_ms);
  /// The cluster node this system routes through (members: view(); owners: routes()),
  /// or nullptr on a single node. Valid until shutdown.
  cluster::node* cluster_node() noexcept;

  /// Serves `shard` again after stop_shard (the handoff was called off, or the shard came
  /// back): held commands are routed to its owner now. Any thread.
  void resume_shard(std::uint32_t shard);

  system_stats stats() const;
  const config& cfg() const noexcept;
  /// The node's journal (reads from any thread; never append: the writer owns that).
  /// Opened with journal::open_read_only when cfg().read_only. None in client mode
  /// (config::cluster_client): do not call it there.
  persistence::journal& journal() noexcept;
  /// The Kafka bridge publishing this system's journal (config::kafka), or nullptr when
  /// Kafka is off. Lag and progress: kafka_bridge()->stats(). Valid until shutdown.
  kafka::bridge* kafka_bridge() noexcept;
  /// The bootstrap list the bridge uses: config::kafka, or the in-process mock
  /// cluster's own list when config::kafka is "mock"; empty when Kafka is off.
  const std::string& kafka_bootstrap() const noexcept;
  caf::actor_system& actor_system() noexcept;

 private:
  friend result<std::unique_ptr<system>> testing::open_with_faults(config cfg, testing::faults f);
  friend void detail::attach_cluster(system& sys, cluster::node& node);
  static result<std::unique_ptr<system>> open(config cfg, const testing::faults* faults);
  static result<std::unique_ptr<system>> open_client(std::unique_ptr<detail::system_core> core);
  explicit system(std::unique_ptr<detail::system_core> core);
  std::shared_ptr<detail::region> region_for(const std::string& type, const std::type_info& agg,
                                             detail::spawn_fn spawn, std::uint64_t snapshot_every,
                                             const detail::wire_codec* codec,
                                             detail::snapshot_fn snapshot);
  std::unique_ptr<detail::system_core> core_;
};

} // namespace strata
