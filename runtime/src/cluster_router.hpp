// Private: routing of commands and reads to the owner of their shard (docs/cluster.md,
// "Routing"). One per system that has a cluster node. region::dispatch asks it per
// command; it forwards commands for shards another member owns in batches (one
// message per destination carries many commands, one carries their replies), buffers
// commands for moving or ownerless shards (bounded), answers every forwarded command
// within `cluster-forward-timeout-ms`, and on the receiving side dispatches commands
// into the local regions and collects their replies into one batch back.
//
// Threads: every public function from any thread; the node's handlers run on CAF
// worker threads; a timer thread of its own flushes lingering batches and times out
// what waits too long. Callers' callbacks never run under its lock.
#pragma once

#include "strata/cluster/node.hpp"
#include "strata/runtime/detail/envelope.hpp"
#include "strata/runtime/detail/routing.hpp"

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

namespace strata::detail {

class region;
class system_core;

/// Tuning of the router (config keys cluster-*).
struct router_options {
  std::uint32_t forward_timeout_ms = 5'000; ///< a forwarded command's deadline
  std::uint32_t batch_max = 256;            ///< items per batch: flushed when reached
  std::uint32_t batch_linger_us = 500;      ///< a batch waits at most this long
  std::uint32_t max_inflight_batches = 4;   ///< unanswered batches per destination
  std::uint32_t buffer_max = 1'024;         ///< items held per moving/ownerless shard
  std::uint8_t max_hops = 3;                ///< forwards of one item between nodes
};

/// Counters (tests and operators).
struct router_stats {
  std::uint64_t forwarded = 0;    ///< commands and reads sent to another node
  std::uint64_t batches_sent = 0; ///< batch messages sent (commands and reads)
  std::uint64_t replies_sent = 0; ///< reply batch messages sent
  std::uint64_t received = 0;     ///< commands and reads received from other nodes
  std::uint64_t held = 0;         ///< items held for a moving/ownerless/stopped shard
  std::uint64_t timed_out = 0;    ///< items answered `timeout`
  std::uint64_t late_replies = 0; ///< replies dropped (their item had timed out)
};

class cluster_router {
 public:
  static constexpr std::uint32_t no_shard = ~std::uint32_t{0};

  /// Installs the node's handlers (commands, reads, replies, routes changed). The node
  /// must outlive close().
  cluster_router(system_core& core, cluster::node& node, router_options o);
  ~cluster_router();
  cluster_router(const cluster_router&) = delete;
  cluster_router& operator=(const cluster_router&) = delete;

  /// The hook of region::dispatch. Takes `e` (leaves it empty) when it forwarded it,
  /// held it or failed it (not_reachable, shard_moving, shutting_down, a type without
  /// wire codec); otherwise returns the shard of a command this node serves.
  std::uint32_t route_command(region& r, const std::string& id, envelope_ptr& e);
  /// Whether `shard` is stopped for a handoff (stop_shard): checked under the
  /// directory's lock before an entity is reached.
  bool shard_stopped(std::uint32_t shard) const noexcept;
  /// Holds a command of a stopped shard until resume_shard or a route change (bounded:
  /// past cluster-buffer-max it fails with shard_moving).
  void hold(region& r, envelope_ptr e, std::uint32_t shard);

  /// See read_at_owner (routing.hpp).
  std::optional<caf::expected<raw_read>> read(const read_request& req);

  /// Handoff: new commands for `shard` are held, every region stops the shard's entities
  /// after their in-flight writes, then `done` runs (any thread).
  void stop_shard(std::uint32_t shard, std::function<void()> done);
  /// Serves `shard` again: held commands are routed (to this node if it still owns it).
  void resume_shard(std::uint32_t shard);

  /// The node was downed (shard_host::downed): every shard stops (its entities finish
  /// their in-flight writes), and every held and every new command or read fails with
  /// shutting_down naming `reason` and saying to use another member. Forwarded items
  /// still get their answer or time out. Idempotent; never blocks; any thread.
  void down(std::string reason);

  /// Shutdown, first step: fails every waiting item with shutting_down; new ones too.
  void close_outbound();
  /// Shutdown, last step: handlers do nothing any more, the timer stops. Idempotent.
  void close();

  std::uint32_t shards() const noexcept;
  router_stats stats() const;

  struct impl; // cluster_router.cpp; shared with reply batches that outlive a call

 private:
  std::shared_ptr<impl> impl_;
};

/// Every entity id of `type` in the journal of `core`, by shard (empty without a
/// journal). Errors: those of journal::list_streams.
caf::expected<std::vector<std::vector<std::string>>>
local_ids(system_core& core, const std::string& type, std::uint32_t shards);

/// Every entity id of `type` in the cluster, sorted: per shard, the ids its owner holds
/// (this node's journal for the shards it serves). Blocks (one read per shard another
/// member owns). Errors: those of a remote read (not_reachable, timeout, shard_moving).
caf::expected<std::vector<std::string>> cluster_ids(cluster_router& router, system_core& core,
                                                    const std::string& type);

} // namespace strata::detail
