// Private: what a cluster node asks of this system during a planned shard move
// (strata::cluster::shard_host, docs/cluster.md "Handoff"), done with the runtime's and
// the Kafka bridge's own parts:
//   release(shard): the router holds new commands, the shard's entities finish their
//     in-flight writes and stop (system::stop_shard), then the bridge publishes every
//     event of the shard the journal holds (bridge::when_published); done(true).
//   acquire(shard, epoch): on one of the host's threads, the shard's partitions of every
//     strata topic are restored into the journal (kafka::restore_shard; each import
//     batch runs under the group commit's writer lock) and reconciled with what the
//     journal holds of the shard (restore_options::reconcile: local events Kafka lacks
//     are discarded, one log line per shard that had some), then a claim record (shard,
//     epoch) is appended to partition `shard` of every topic (bridge::append_claim),
//     which also stamps the epoch on the shard's later records; done(true).
//   downed(reason): the cluster downed this node (node::is_downed): the router stops
//     every shard's entities and refuses every command and read from then on
//     (shutting_down, naming the reason: cluster_router::down); acquires not yet started
//     are answered done(false). The process should shut down (strata-bank node exits).
// A step that cannot finish (Kafka unreachable, a conflict in the partition) logs one
// line naming the shard and calls done(false); the node then keeps the shard moving.
//
// Threads: release/acquire from CAF workers (they never block); acquires run on
// `acquire_threads` threads of the host (a join moves about shards/(n+1) shards at once;
// their Kafka reads overlap, their imports take turns under the writer lock); stop()
// from the thread that shuts the system down.
#pragma once

#include "strata/cluster/node.hpp"

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace strata {
class system;
}

namespace strata::detail {

class system_core;

class cluster_host final : public cluster::shard_host {
 public:
  cluster_host(system& sys, system_core& core);
  ~cluster_host() override;
  cluster_host(const cluster_host&) = delete;
  cluster_host& operator=(const cluster_host&) = delete;

  void release(cluster::shard_id shard, std::uint64_t epoch,
               std::function<void(bool)> done) override;
  void acquire(cluster::shard_id shard, std::uint64_t epoch,
               std::function<void(bool)> done) override;
  void downed(std::string reason) override;
  /// Names the node's member id in the bridge's claim and checkpoint records.
  void started(const cluster::member_id& self) override;

  /// Acquires not yet started are answered done(false); the one running finishes; the
  /// thread is joined. Idempotent.
  void stop();

 private:
  bool restore(cluster::shard_id shard, std::uint64_t epoch);
  void checkpoint(cluster::shard_id shard, std::uint64_t epoch);
  std::vector<std::string> shard_streams(cluster::shard_id shard) const;
  /// Runs `job` on a host thread (job(true) at once when stopping).
  void post(std::function<void(bool stopping)> job);
  void run();

  system& sys_;
  system_core& core_;
  std::mutex mtx_;
  std::condition_variable cv_;
  std::deque<std::function<void(bool stopping)>> jobs_;
  bool stopping_ = false;
  bool downed_ = false; ///< under mtx_: acquires are refused
  std::vector<std::thread> threads_;
};

/// Threads restoring shards at once on a new owner.
inline constexpr std::size_t acquire_threads = 4;

} // namespace strata::detail
