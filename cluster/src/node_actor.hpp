// File: cluster/src/node_actor.hpp (private to strata::cluster)
//
// The actor a node publishes: it carries the pure decisions of this module. It merges
// gossip (member view + shard table), runs leader_actions when it is the leader, moves
// the shards it holds through the handoff state machine (calling the shard_host), and
// publishes the snapshot route() reads.
//
// Who writes the shard table: every transition of a shard at epoch e is made by the
// member holding it at e (retarget to its own allocation, stopping, flushed, hand_over
// to the target; then the new holder: restore_begun, restored), so each (shard, epoch)
// has one writer and tables merge without conflict (wire::merge_tables). The leader
// only gives never-owned shards their first owner (at bootstrap) and fails over the
// shards of holders the view says are down (handoff.hpp, fail_over): a down holder
// writes nothing any more.
//
// Failure detection (docs/cluster.md, "Failure detection and downing"): every
// heartbeat_interval the actor sends a heartbeat to every other live member; each one
// received feeds that member's phi detector. Every gossip round it records its
// detectors' verdicts in its own row of the reachability table (gossiped and merged
// with the view), runs decide_downing, and either lets the leader of the surviving
// side down the unreachable members or downs this node. A downed node (also one that
// sees itself down in a gossiped view) stops serving at once: its routes stop being
// local, the host's downed() runs, and it takes no further part.
//
// Messages between nodes: (wire_atom, uint8 channel, string sender member id, string
// bytes), builtin types only. Anything else that reaches the actor is counted as
// dropped and logged.
#pragma once

#include "node_shared.hpp"
#include "strata/cluster/downing.hpp"
#include "strata/cluster/failure_detector.hpp"
#include "strata/cluster/reachability.hpp"
#include "wire.hpp"

#include <caf/atom.hpp>
#include <caf/event_based_actor.hpp>

#include <cstdint>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

namespace strata::cluster::detail {

/// The tag of every message between nodes (10 characters: CAF 0.17's limit).
using wire_atom = caf::atom_constant<caf::atom("strata_msg")>;
/// Local only: the node's identity once its port is bound (string self, uint16 port).
using init_atom = caf::atom_constant<caf::atom("cl_init")>;
/// Local only: the connector reached an address (string address, actor).
using peer_atom = caf::atom_constant<caf::atom("cl_peer")>;
/// Local only: leave() was called.
using leave_req_atom = caf::atom_constant<caf::atom("cl_leave")>;
/// Local only: a shard_host call finished (uint8 1 release / 2 acquire, shard, epoch, ok).
using host_done_atom = caf::atom_constant<caf::atom("cl_done")>;
/// Local only: the periodic gossip round.
using tick_atom = caf::atom_constant<caf::atom("cl_tick")>;
/// Local only: the periodic heartbeat round.
using hb_tick_atom = caf::atom_constant<caf::atom("cl_hb")>;

class node_actor : public caf::event_based_actor {
 public:
  node_actor(caf::actor_config& ac, std::shared_ptr<node_shared> shared, node_config cfg,
             shard_host* host, bool client);

  const char* name() const override { return "strata.cluster.node"; }

 protected:
  caf::behavior make_behavior() override;

 private:
  /// Per shard: the epochs of this node's shard_host calls (0 = none).
  struct local_progress {
    std::uint64_t release_started = 0, release_done = 0;
    std::uint64_t acquire_started = 0, acquire_done = 0;
  };

  caf::behavior running();
  void on_init(const std::string& self_text, std::uint16_t port);
  void on_wire(std::uint8_t ch, const std::string& from, std::string& bytes);
  void on_gossip(const member_id& from, const std::string& bytes);
  void on_tick();
  void on_heartbeat_tick();
  /// Whether the write lease holds now (node::holds_write_lease without the downed test).
  bool holds_lease() const;
  /// Extends the write lease to (the time a majority was last heard) + node_shared::lease_ms.
  void refresh_lease(time_point now);
  void on_heartbeat(const member_id& from, const std::string& bytes);
  /// Detectors -> own reachability row, then decide_downing and act on it.
  void failure_round(time_point now);
  /// Starts and stops monitoring as members come and go; records the verdicts.
  bool record_verdicts(time_point now);
  void apply_downing(const downing_decision& d, time_point now);
  /// Sets last_change_ when the view or the reachability table changed since last seen.
  void note_changes(time_point now);
  /// Stops serving everything at once, tells the host, logs one line. Idempotent.
  void go_down(const std::string& reason);
  /// go_down when the view says this node is down or removed; whether it did.
  bool check_self_down(const std::string& where);
  /// The leader's fail_over of shards whose holder is down or removed.
  bool fail_over_down_holders();
  void on_host_done(std::uint8_t kind, shard_id shard, std::uint64_t epoch, bool ok);
  void on_down(const caf::down_msg& dm);
  /// Sends what send() held for `addr` (node_shared::pending) through `h`.
  void flush_pending(const std::string& addr, const caf::actor& h);
  void remember(std::map<std::string, caf::actor> node_shared::*map, const std::string& key,
                const caf::actor& h);

  bool may_lead() const;
  bool is_leader() const;
  /// leader_actions and first owners for never-owned shards; broadcast on a change.
  void leader_round();
  bool assign_unowned();
  /// Moves the shards this node holds on (calling the shard_host); broadcast on a change.
  void drive_local();
  /// One pass over shard `s` held by this node; whether its phase, epoch or holder moved.
  bool advance(shard_id s, const std::optional<member_id>& target);
  void after_change();
  void publish();

  void request_connects();
  std::vector<caf::actor> gossip_targets();
  caf::actor handle_of(const member_id& m);
  void send_gossip(const caf::actor& to, wire::gossip_kind kind);
  void broadcast();
  void drop(const std::string& why);

  std::shared_ptr<node_shared> shared_;
  node_config cfg_;
  shard_host* host_;
  bool client_;
  member_id self_;
  std::string self_text_;
  member_view view_;
  std::vector<shard_state> table_;
  std::vector<local_progress> progress_;
  bool contacted_ = false; ///< merged a view naming another member
  std::mt19937_64 rng_;
  member_detectors detectors_;
  reachability reach_;
  downing_config downing_;
  time_point last_change_;              ///< of the view or the reachability table
  std::uint64_t seen_view_version_ = 0; ///< view_.version() at the last note_changes
  std::uint64_t seen_reach_digest_ = 0; ///< reach_.digest() at the last note_changes
  bool downed_ = false;
  bool leave_requested_ = false; ///< leave() was called (then `removed` is no downing)
  /// Per member, the latest time (this node's clock) at which it is known to have been
  /// alive: the send time of the latest of this node's pings it echoed. Not arrival
  /// times: a message that waited in a frozen node's socket buffer arrives "now".
  std::map<member_id, time_point> last_heard_;
};

/// The write lease's length for `cfg` (node::write_lease_ms).
std::uint32_t lease_ms_of(const node_config& cfg);

} // namespace strata::cluster::detail
