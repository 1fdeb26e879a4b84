// File: cluster/src/node_shared.hpp (private to strata::cluster)
//
// What a node object, its actor and its connector thread share: the handles of the
// peers, the channel handlers, the published snapshot (view, shard table, routes) and
// the connector's queue. The actor writes it; any thread reads it.
//
// Threads: `mu` guards every field but `snap` (std::atomic_load/store), `dropped` and
// `downed`.
#pragma once

#include "strata/cluster/handoff.hpp"
#include "strata/cluster/node.hpp"

#include <caf/actor.hpp>

#include <array>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

namespace strata::cluster::detail {

/// What route() and view() read: replaced as a whole, never changed in place.
struct node_snapshot {
  member_view view;
  reachability reach;
  std::vector<shard_state> table;
  std::vector<shard_route> routes;
};

/// Messages waiting per address for a connection, at most (send() is false beyond).
inline constexpr std::size_t pending_max = 4096;

/// Channels are 1 .. channel_max.
inline constexpr std::size_t channel_max = 6;

/// The largest message a node accepts from a peer (bytes of one channel message); a
/// larger one is dropped with a log line. Far above any real one: a batch of
/// cluster-batch-max commands or a gossip of max_members members is a few MiB at most.
inline constexpr std::size_t message_max_bytes = std::size_t{64} << 20;

struct node_shared {
  std::mutex mu;
  /// Handles of peers that sent to this node, by their member id text.
  std::map<std::string, caf::actor> by_sender;
  /// Handles the connector obtained, by address text ("host:port").
  std::map<std::string, caf::actor> by_addr;
  std::array<node::handler, channel_max + 1> handlers;
  std::function<void()> routes_changed;
  /// Notified after every new snapshot (leave() waits on it).
  std::condition_variable changed;
  std::shared_ptr<const node_snapshot> snap;
  std::atomic<std::uint64_t> dropped{0};
  /// Set once by the actor when this node is downed (node::is_downed); the reason under mu.
  std::atomic<bool> downed{false};
  /// Until when (steady_clock, ns since its epoch) this node may write: node::holds_write_lease.
  std::atomic<std::int64_t> lease_until_ns{0};
  /// The lease's length (lease_ms_of), computed once by node::start before the actor runs.
  std::uint32_t lease_ms = 0;
  std::string downed_reason;

  /// Messages send() took for a live member it has no handle for yet, by address text:
  /// sent when the connector's handle arrives (or the member connects here), dropped
  /// when the connection attempt fails (the router's deadline then answers `timeout`).
  std::map<std::string, std::vector<std::pair<std::uint8_t, std::string>>> pending;

  // The connector's queue: addresses to connect to, each at most once at a time.
  std::deque<address> connect_queue;
  std::set<std::string> connecting;
  std::condition_variable connect_cv;
  bool stopping = false;

  std::shared_ptr<const node_snapshot> load() const { return std::atomic_load(&snap); }
  void store(std::shared_ptr<const node_snapshot> s) { std::atomic_store(&snap, std::move(s)); }
};

} // namespace strata::cluster::detail
