// File: strata/cluster/node.hpp
//
// One cluster node: the CAF side of the cluster. It listens on (host, port) with CAF's
// middleman, publishes one well-known actor there, joins through the seeds, gossips the
// member view and the shard table, runs the leader's transitions when it is the leader,
// moves the shards it holds through the handoff state machine (calling the shard_host),
// and keeps the shard routes every region reads per command. Everything it decides is
// computed by the pure code of this module (member_view, leader, allocation, handoff);
// the node only carries messages, holds the current values and calls the host back.
// How it works and what it costs: docs/cluster.md, "The node".
//
// The actor_system must have loaded CAF's middleman before it was created:
//   caf::actor_system_config cfg; cfg.load<caf::io::middleman>();
// (strata::system does so when config::cluster_enabled()).
//
//   strata::cluster::node_config nc;
//   nc.host = "127.0.0.1"; nc.port = 4501; nc.seeds = {{"127.0.0.1", 4500}};
//   auto n = strata::cluster::node::start(actor_system, nc, host);   // result<unique_ptr<node>>
//   n->route(shard);           // local / remote(owner) / moving / unknown, any thread
//   n->send(owner, channel::commands, bytes);
//   n->leave(30000);           // graceful: shards move away (true), then n->stop()
//
// Between nodes every message is an opaque byte string on a channel: CAF carries a
// (atom, channel, sender, bytes) tuple of builtin types only, the receiver decodes the
// bytes itself, and a malformed message is dropped with a log line. Nothing of strata
// is registered with CAF's type system.
//
// Threads: start/stop/leave from a non-actor thread; route(), view(), send() from any
// thread; callbacks (handlers, host) run on CAF worker threads and must not block.
#pragma once

#include "strata/cluster/allocation.hpp"
#include "strata/cluster/member.hpp"
#include "strata/cluster/member_view.hpp"
#include "strata/cluster/reachability.hpp"

#include <caf/expected.hpp>
#include <caf/fwd.hpp>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace strata::cluster {

/// Cluster settings of a node (strata::config carries them: keys cluster-host,
/// cluster-port, cluster-seeds, cluster-shards, ...).
struct node_config {
  std::string host = "127.0.0.1"; ///< bind and advertised address
  std::uint16_t port = 0;         ///< 0: the middleman picks one (node::self() tells)
  std::vector<address> seeds;     ///< any member; empty or only self: first node
  std::uint32_t shards = default_num_shards;
  std::uint32_t gossip_interval_ms = 100;
  /// 0: drawn at start from the wall clock (ms, high bits) and 20 random bits, so that
  /// a restarted process has a larger one than its predecessor (leader.hpp).
  std::uint64_t incarnation = 0;
  /// Client mode (`strata-bank --cluster`): publishes nothing and never joins the view;
  /// connects to the seeds (and the members it learns of), receives their view and
  /// routes by gossip and can send() to any member (replies come back the same way).
  /// self() is then (host, port 0, incarnation).
  bool client = false;

  // Failure detection and downing (docs/cluster.md, "Failure detection and downing").
  // Every member of one cluster must use the same values.

  /// How often this node sends a heartbeat to every other live member (1..60000).
  std::uint32_t heartbeat_interval_ms = 200;
  /// phi at or above which a member is judged unreachable (failure_detector.hpp;
  /// > 0 and <= 100).
  double phi_threshold = 8.0;
  /// A silence this much longer than the usual heartbeat interval is still normal
  /// (0..60000).
  std::uint32_t acceptable_pause_ms = 500;
  /// How long the view and reachability must stay unchanged before the surviving side
  /// downs unreachable members (downing.hpp; 1..600000).
  std::uint32_t stable_after_ms = 1500;
  /// How much sooner a node on the losing side downs itself (< stable_after_ms).
  std::uint32_t self_down_lead_ms = 750;
};

/// How a region reaches one shard right now.
struct shard_route {
  enum class kind : std::uint8_t {
    local,   ///< this node serves it: dispatch locally
    remote,  ///< `owner` serves it: forward (batched)
    moving,  ///< a handoff is under way: buffer (bounded) until it serves again
    unknown, ///< no owner known yet (joining, no member up): buffer (bounded)
  };
  kind state = kind::unknown;
  member_id owner;         ///< meaningful for local and remote
  std::uint64_t epoch = 0; ///< ownership epoch of the shard at its owner
};

/// Byte channels between nodes. Each has at most one handler per node.
enum class channel : std::uint8_t {
  gossip = 1,    ///< member view and shard table (the node's own)
  commands = 2,  ///< batched commands for shards the receiver owns (runtime router)
  replies = 3,   ///< batched replies to them (runtime router)
  handoff = 4,   ///< reserved for the handoff protocol (the shard table travels in gossip)
  reads = 5,     ///< history / current / state-as-of for a remote owner (runtime router)
  heartbeat = 6, ///< the node's own failure-detector heartbeats (no handler)
};

/// What the node asks of the application (strata::system implements it) during a
/// planned move. Each call gets a `done` to call once (from any thread) when the step
/// has finished; the node does not block meanwhile.
class shard_host {
 public:
  virtual ~shard_host() = default;
  /// Stop serving `shard`: refuse or buffer new commands, let in-flight writes finish,
  /// stop its entities, and wait until the Kafka bridge has published every event of
  /// the shard. Then done(true); done(false) when that cannot finish (e.g. Kafka gone).
  virtual void release(shard_id shard, std::uint64_t epoch, std::function<void(bool)> done) = 0;
  /// Take `shard` under `epoch`: restore it from Kafka into the local journal (events
  /// after the latest snapshots), append the claim record, then done(true).
  virtual void acquire(shard_id shard, std::uint64_t epoch, std::function<void(bool)> done) = 0;
  /// This node was downed (it is on the losing side of a partition, or the cluster
  /// declared it dead: node::is_downed()): it no longer owns any shard, and the members
  /// that survive will restore its shards elsewhere. Called once, on the node's actor
  /// thread, right after the routes stopped saying `local`: stop serving every shard at
  /// once (refuse commands and reads with an error naming `reason`, stop the shards'
  /// entities) and do not block. release/acquire calls still running may finish; their
  /// done() is ignored. The default does nothing.
  virtual void downed(std::string reason) { static_cast<void>(reason); }
  /// The node's identity is known (its port bound): called once by node::start, before
  /// the node asks for any release or acquire. The default does nothing.
  virtual void started(const member_id& self) { static_cast<void>(self); }
};

class node {
 public:
  using handler = std::function<void(const member_id& from, std::string bytes)>;

  /// Binds cfg.host:cfg.port (publishing the node actor there; nothing in client mode),
  /// then joins through the seeds in the background (a connector thread of its own
  /// connects; never an actor). `host` must outlive the node; the node must be stopped
  /// (or destroyed) before `sys`. Errors (caf::sec): invalid_argument when `sys` has no
  /// middleman (the message says how to load it) or for a bad config (shards 0, gossip
  /// interval 0, empty host, a seed without host or port, a failure-detection or
  /// downing setting out of its range); cannot_open_port naming
  /// the address when the port cannot be bound.
  static caf::expected<std::unique_ptr<node>> start(caf::actor_system& sys, node_config cfg,
                                                    shard_host& host);
  virtual ~node() = default;

  /// This node's identity (the port actually bound when cfg.port was 0).
  virtual const member_id& self() const noexcept = 0;
  /// The current member view (a copy).
  virtual member_view view() const = 0;
  /// The reachability table as this node knows it (its own row and the gossiped ones;
  /// a copy sharing the immutable rows). Any thread. The default (a node without
  /// failure detection, e.g. a test's fake) is empty.
  virtual reachability reachability_table() const { return {}; }
  /// The current owner and epoch of every shard (index = shard), as this node knows it.
  virtual std::vector<shard_route> routes() const = 0;
  /// The route of one shard: cheap (one atomic load), for every command.
  virtual shard_route route(shard_id shard) const noexcept = 0;
  /// Called (CAF thread) after routes changed; the router flushes its buffers then.
  virtual void on_routes_changed(std::function<void()> f) = 0;

  /// Sends bytes to a member on a channel. `to` may be any member of the view or any
  /// peer that has sent to this node (a client-mode node: it gets replies the same
  /// way). False when there is no connection to it (the caller answers not_reachable);
  /// true does not mean delivered.
  virtual bool send(const member_id& to, channel c, std::string bytes) = 0;
  /// Installs the handler of a channel (before traffic on it; once).
  virtual void on_receive(channel c, handler h) = 0;

  /// Graceful leave: this node becomes leaving, hands every shard it holds to its new
  /// owner (release() per shard, then the new owner's acquire()), and the leader makes it
  /// exiting, then removed. Returns true once it is exiting, holds no shard and every
  /// shard serves at its owner (so its former shards live elsewhere); false when
  /// `timeout_ms` passed first (also when no other member is up to take the shards).
  /// The node keeps gossiping until stop(). A client-mode node returns true at once.
  /// Not from an actor.
  virtual bool leave(std::uint32_t timeout_ms) = 0;
  /// Stops gossip and closes connections (no handoff). Idempotent. Not from an actor.
  virtual void stop() = 0;

  /// Whether this node was downed: it found itself on the losing side (downing.hpp's
  /// down_self) or saw itself `down` (or `removed` without having called leave()) in a
  /// gossiped view. Final: a downed node serves no
  /// shard (no route is `local`), sends no heartbeats, takes no part in handoffs or
  /// leader decisions, and should be shut down (the process restarted as a new
  /// incarnation). Any thread. The default (a test's fake node) is false.
  virtual bool is_downed() const noexcept { return false; }
  /// Why it was downed (one line), empty while it is not. Any thread.
  virtual std::string downed_reason() const { return {}; }

  /// The write lease: whether this node heard heartbeats from a majority of the counted
  /// members (up, leaving, exiting; itself included) within the last
  /// write_lease_ms(), and is not downed. A node without the lease may have been cut
  /// off or frozen long enough for the others to down it and hand its shards to a new
  /// owner, so the runtime commits no write while it does not hold it (the writes fail
  /// with `unavailable`; docs/cluster.md, "The write lease"). One atomic load and a
  /// clock read: the runtime asks once per group commit. Any thread. The default (a
  /// test's fake node) always holds it.
  virtual bool holds_write_lease() const noexcept { return true; }
  /// How long a majority's heartbeats keep the lease: the time a node cut off at its
  /// last contact takes to down itself — the detector's detection delay for the
  /// heartbeat interval plus stable_after - self_down_lead (1223 + 750 = 1973 ms by
  /// default) — which is before the others can down it (detection + stable_after).
  virtual std::uint32_t write_lease_ms() const noexcept { return 0; }

  /// Messages dropped so far: malformed or unexpected (each logged, the first ten and
  /// then one in a thousand, to stderr). Any thread.
  virtual std::uint64_t dropped_messages() const noexcept = 0;
};

} // namespace strata::cluster
