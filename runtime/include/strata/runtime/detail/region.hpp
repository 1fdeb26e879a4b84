// File: strata/runtime/detail/region.hpp (internal)
//
// The entity directory of one aggregate type on this node: entity id → actor, spawned
// on demand, striped over several mutex-protected shards so callers on any thread
// route a command with one lock and one message (no directory actor hop). Handles the
// passivation handshake: an entry being passivated buffers new commands until the old
// incarnation has stopped (after its in-flight writes), then they go to a new one.
#pragma once

#include "strata/persistence/status.hpp"
#include "strata/runtime/config.hpp"
#include "strata/runtime/detail/envelope.hpp"
#include "strata/runtime/ids.hpp"

#include <caf/actor.hpp>
#include <caf/actor_addr.hpp>
#include <caf/expected.hpp>
#include <caf/fwd.hpp>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace strata::persistence {
class journal;
}

namespace strata::detail {

class region;
class system_core;
class group_commit;
class cluster_router;
struct wire_codec;
using spawn_fn = caf::actor (*)(region& reg, const std::string& entity_id);
/// A snapshot of stream `pid` at its head, folded from the journal (snapshot_of_stream,
/// recovery.hpp); nullopt with `error` empty when its latest snapshot is at its head
/// already or the type has no state codec; nullopt with `error` set when it failed.
using snapshot_fn = std::optional<persistence::snapshot_record> (*)(
  persistence::journal& j, const std::string& pid, const std::string& type, std::string& error);

/// Limits how many entities recover at once (node-wide).
class recovery_gate {
 public:
  explicit recovery_gate(std::size_t permits) : permits_(permits == 0 ? 1 : permits) {}
  /// True: a permit is granted now. False: `who` is queued and will get a
  /// (recover_atom) message when a permit frees up.
  bool acquire(const caf::actor& who);
  /// Removes `who` from the queue. False when it was not queued any more (then a permit
  /// has been handed to it and it must release() it).
  bool cancel(const caf::actor_addr& who);
  /// Returns a permit (hands it to the next queued entity, if any).
  void release();
  std::size_t in_use() const;
  std::size_t waiting() const;

 private:
  mutable std::mutex mtx_;
  std::size_t permits_;
  std::size_t in_use_ = 0;
  std::deque<caf::actor> queue_;
};

/// What an entity of a region works with, given explicitly (set once by the region).
struct entity_context {
  region* home = nullptr;                  ///< passivated, entity_finished, count_recovery
  group_commit* writer = nullptr;          ///< where writes go
  recovery_gate* permits = nullptr;        ///< node-wide recovery permits
  persistence::journal* journal = nullptr; ///< recovery reads
  std::string type;                        ///< the aggregate type name
  bool replicated = false;                 ///< replies wait for Kafka (config replication)
  std::uint64_t snapshot_every = 0;        ///< 0 = no snapshots
  std::size_t stash_max = 0;               ///< config stash_max
  std::size_t max_inflight_writes = 1;     ///< config max_inflight_writes
  std::size_t batch_events_max = 1;        ///< config entity_batch_events_max
  /// Testing seam (strata/runtime/testing.hpp): called before a recovery reads.
  std::function<void(const std::string& persistence_id)> before_recover;
};

class region {
 public:
  /// `codec`: the type's wire codec (routing.hpp), nullptr when it has none.
  region(system_core& core, std::string type, spawn_fn spawn, std::uint64_t snapshot_every,
         const wire_codec* codec = nullptr, snapshot_fn snapshot = nullptr);
  ~region();

  const std::string& type() const noexcept { return ctx_.type; }
  std::string persistence_id(const std::string& id) const {
    return make_persistence_id(type(), id);
  }
  const entity_context& context() const noexcept { return ctx_; }
  /// How a shard handoff snapshots this type's streams (nullptr: it cannot).
  snapshot_fn snapshotter() const noexcept { return snapshot_; }

  /// Routes `e` to entity `id` (spawning it if needed). Any thread. Fails the envelope
  /// with shutting_down / invalid_argument (bad id) / read_only instead when it cannot
  /// be routed. In a cluster, a command for a shard another member owns goes to the
  /// cluster router (forwarded, or held while the shard moves: docs/cluster.md,
  /// "Routing"), as does one for a shard stopped for a handoff.
  void dispatch(const std::string& id, envelope_ptr e);

  /// The type's wire codec, or nullptr (it cannot be routed to another node).
  const wire_codec* codec() const noexcept { return codec_; }
  /// The system's cluster router, or nullptr when the system has no cluster node.
  cluster_router* cluster() const noexcept;
  /// Handoff of cluster shard `shard` (of `shards`): every entity of the shard is asked
  /// to stop after its in-flight writes; `done` runs (any thread, once) when all have
  /// stopped. The caller (cluster_router::stop_shard) has already made new commands for
  /// the shard wait. Any thread.
  void stop_shard(std::uint32_t shard, std::uint32_t shards, std::function<void()> done);

  /// An envelope whose last reference was dropped before completion.
  void redeliver(envelope_base* e) noexcept;

  /// Called by an entity that stops: removes its entry if it still maps to `me` and
  /// routes the commands buffered meanwhile (to a new incarnation).
  void passivated(const std::string& id, const caf::actor_addr& me);
  /// Called once per incarnation when it has finished (live count).
  void entity_finished();
  /// A recovery completed (stats).
  void count_recovery() noexcept { recoveries_.fetch_add(1, std::memory_order_relaxed); }

  /// Asks every entity idle for >= idle_ms to stop. Returns how many were asked.
  std::size_t passivate_idle(std::uint64_t now_ms, std::uint64_t idle_ms);
  /// Shutdown: asks every entity to stop (after its in-flight writes).
  void stop_all();
  /// Blocks until no entity of this region is live.
  void await_all_finished();

  std::size_t live() const noexcept { return live_.load(std::memory_order_acquire); }
  std::uint64_t recoveries() const noexcept { return recoveries_.load(std::memory_order_relaxed); }
  std::uint64_t passivations() const noexcept {
    return passivations_.load(std::memory_order_relaxed);
  }

  caf::expected<std::vector<std::string>> ids() const;

  persistence::journal& journal() noexcept { return *ctx_.journal; }
  caf::actor_system& actor_system() noexcept;

 private:
  struct shard;      // runtime/src/region.cpp: a mutex and a flat id → entry table
  struct shard_stop; // runtime/src/region.cpp: entities of a cluster shard left to stop
  shard& shard_of(std::uint64_t h) noexcept;
  void send_passivate(const caf::actor& a);

  bool stopping() const noexcept;

  system_core& core_;
  entity_context ctx_;
  persistence::status type_status_; // validate_type_name, once
  spawn_fn spawn_;
  std::vector<std::unique_ptr<shard>> shards_;
  std::atomic<std::size_t> live_{0};
  std::atomic<std::uint64_t> recoveries_{0};
  std::atomic<std::uint64_t> passivations_{0};
  std::mutex live_mtx_;
  std::condition_variable live_cv_;
  const wire_codec* codec_ = nullptr;
  snapshot_fn snapshot_ = nullptr;
  // stop_shard: cluster shard → its stop in progress (lock order: shard mtx, then this)
  std::mutex stops_mtx_;
  std::vector<std::pair<std::uint32_t, std::shared_ptr<shard_stop>>> stops_;
  std::atomic<std::uint32_t> cluster_shards_{0};
  void finish_stop(std::uint32_t cluster_shard);
};

/// The entity actor whose message handler runs on this thread, or null. A caller
/// continuing inside an entity (e.g. an ask_async callback sending the next command)
/// then routes with that actor's send, which schedules on the current worker, instead
/// of an anonymous send through the scheduler's shared entry point.
caf::event_based_actor* current_entity() noexcept;

/// Milliseconds of a coarse monotonic clock (idle tracking: a few ms of resolution, and
/// far cheaper than steady_clock per command).
std::uint64_t steady_now_ms() noexcept;

} // namespace strata::detail
