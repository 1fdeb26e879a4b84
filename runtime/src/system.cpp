#include "strata/runtime/system.hpp"

#include "replication_gate.hpp"
#include "strata/kafka/restore.hpp"
#include "strata/kafka/stream_reader.hpp"
#include "strata/persistence/assert.hpp"
#include "strata/persistence/journal.hpp"
#include "strata/persistence/offset_store.hpp"
#include "strata/persistence/persistence_id.hpp"
#include "strata/runtime/detail/group_commit.hpp"
#include "strata/runtime/detail/messages.hpp"
#include "strata/runtime/detail/region.hpp"
#include "strata/runtime/ids.hpp"
#include "strata/runtime/testing.hpp"
#include "system_core.hpp"

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/atom.hpp>
#include <caf/io/middleman.hpp>
#include <caf/message.hpp>
#include <caf/send.hpp>

#include <algorithm>
#include <chrono>
#include <iostream>
#include <set>
#include <thread>

namespace strata {

namespace {

std::string ctx_string(const caf::message& ctx, std::size_t i) {
  if (ctx.size() > i && ctx.match_element<std::string>(i)) return ctx.get_as<std::string>(i);
  return {};
}

/// CAF's connection timeout for a cluster node or client: 25 heartbeat intervals (5 s
/// with the default 200 ms), at least stable-after + 2 s, at most 10 min.
std::chrono::milliseconds caf_connection_timeout(const config& cfg) {
  auto by_hb = std::chrono::milliseconds(std::uint64_t{25} * cfg.cluster_heartbeat_ms);
  auto by_downing = std::chrono::milliseconds(std::uint64_t{cfg.cluster_stable_after_ms} + 2000);
  return std::min(std::max(by_hb, by_downing), std::chrono::milliseconds(600'000));
}

class strata_actor_config : public caf::actor_system_config {
 public:
  explicit strata_actor_config(const config& cfg) {
    auto threads = cfg.scheduler_threads;
    if (threads == 0) {
      auto hw = std::thread::hardware_concurrency();
      threads = hw > 1 ? hw - 1 : 1;
    }
    set("scheduler.max-threads", threads);
    set("scheduler.policy", caf::atom_from_string(cfg.scheduler_policy));
    if (cfg.max_throughput > 0) set("scheduler.max-throughput", cfg.max_throughput);
    // A cluster node (strata::cluster::node) talks through CAF's middleman, which must be
    // loaded before the actor_system exists; a single node does without it.
    if (cfg.cluster_enabled()) {
      load<caf::io::middleman>();
      // CAF's own heartbeats (off by default in 0.17.6): without them a frozen or cut-off
      // peer keeps its connection, and its proxies, for hours (TCP keepalive). strata's
      // phi detector decides reachability and downing (cluster-heartbeat-ms); these only
      // let CAF drop dead connections so that the node reconnects. The timeout must be
      // longer than strata's detection plus cluster-stable-after-ms, so that the cluster
      // decides before CAF tears a connection down, and both values must be the same on
      // every node (CAF checks the timeout only where heartbeats are on, against any
      // traffic of the peer: a node without them would see idle links dropped), which
      // is why both derive from cluster-heartbeat-ms, a cluster-wide setting.
      auto hb = std::chrono::milliseconds(cfg.cluster_heartbeat_ms);
      set("middleman.heartbeat-interval", caf::timespan{hb});
      set("middleman.connection-timeout", caf::timespan{caf_connection_timeout(cfg)});
    }
    // 0.17.6: the renderer overload (the templated convenience one does not compile).
    add_error_category(rejected_category,
                       [](uint8_t code, caf::atom_value, const caf::message& ctx) {
                         auto name = ctx_string(ctx, 1);
                         return "rejected(" + ctx_string(ctx, 0) + ", " +
                                (name.empty() ? std::to_string(code) : name) + ")";
                       });
    add_error_category(
      runtime_category, [](uint8_t code, caf::atom_value, const caf::message& ctx) {
        auto msg = ctx_string(ctx, 0);
        return std::string("strata_error(") + to_string(static_cast<runtime_errc>(code)) +
               (msg.empty() ? std::string{} : ", " + msg) + ")";
      });
  }
};

bool any_replicated(const config& c) {
  bool any = c.replicated;
  for (auto& kv : c.replicated_by_type)
    any = any || kv.second;
  return any;
}

} // namespace

namespace {

/// Starts the mock cluster (kafka = "mock"), the replication gate (when a type is
/// `replicated`) and the bridge, whose acknowledgements reach the gate as messages.
persistence::status start_kafka(detail::system_core& core) {
  auto& c = core.cfg;
  kafka::bridge_options bo;
  bo.num_partitions = c.kafka_partitions;
  bo.linger_ms = c.kafka_linger_ms;
  bo.compression = c.kafka_compression;
  if (c.kafka == "mock") {
    auto mock = kafka::mock_cluster::start(3);
    if (!mock) return mock.error();
    core.kafka_mock = std::move(*mock);
    // A fresh cluster per process: publish the whole journal into it, from position 1,
    // under a bridge offset of its own (a real cluster's offset is left alone).
    bo.consumer_name = "kafka-bridge-mock";
    if (auto st = core.journal->offsets().put(bo.consumer_name, 0); !st.ok()) return st;
    // Topics for the types already in the journal; later types get theirs when they
    // are registered (system::region_for).
    auto streams = core.journal->list_streams();
    if (!streams) return streams.error();
    std::set<std::string> types;
    for (auto& pid : *streams)
      types.emplace(persistence::type_of_persistence_id(pid));
    for (auto& t : types)
      for (const auto& topic :
           {bo.topic_prefix + t, bo.topic_prefix + t + bo.snapshot_topic_suffix})
        if (auto st = core.kafka_mock->create_topic(topic, static_cast<int>(c.kafka_partitions));
            !st.ok())
          return st;
    core.kafka_bootstrap = core.kafka_mock->bootstrap_servers();
  } else {
    core.kafka_bootstrap = c.kafka;
  }
  bo.bootstrap_servers = core.kafka_bootstrap;
  // A cluster node publishes only the shards it claimed: what its journal holds of other
  // shards (written before a restart, maybe never published) waits for reconciliation
  // on acquire (cluster_host::restore, docs/cluster.md). Not with the per-process mock:
  // it starts empty, so there the journal is the truth and is published whole again.
  bo.hold_unclaimed_shards = c.cluster_enabled() && !core.kafka_mock;
  if (c.cluster_enabled()) {
    // A cluster node claims and restores shards in every aggregate type's topic, also
    // of types it has not registered yet: the bridge learns them from Kafka.
    auto topics = kafka::list_event_topics(core.kafka_bootstrap, bo.topic_prefix,
                                           bo.snapshot_topic_suffix, c.cluster_handoff_timeout_ms);
    if (!topics) return topics.error();
    for (const auto& t : *topics) {
      auto type = t.substr(bo.topic_prefix.size());
      bo.types.push_back(kafka::type_rule{type + ":", type});
    }
  }
  if (any_replicated(c)) {
    core.gate = detail::spawn_replication_gate(*core.actors, c.replication_timeout_ms);
    bo.on_acknowledged = [gate = core.gate](std::uint64_t pos) {
      caf::anon_send(gate, detail::acked_atom::value, pos);
    };
    // Sent from the bridge thread before the acked_atom that passes `pos`, so the gate
    // knows the write failed before it could release it.
    bo.on_fenced = [gate = core.gate](std::uint64_t pos, const persistence::status& why) {
      caf::anon_send(gate, detail::fenced_atom::value, pos, why.message());
    };
  }
  bo.on_error = [](const persistence::status& st) {
    std::cerr << "strata: kafka: " << st.to_string() << "\n";
  };
  auto bridge = kafka::bridge::start(*core.journal, std::move(bo));
  if (!bridge)
    return {bridge.error().code(), "cannot start the Kafka bridge to '" + core.kafka_bootstrap +
                                     "': " + bridge.error().message()};
  core.bridge = std::move(*bridge);
  return {};
}

/// Publishes what is persisted (bounded wait), answers replies still waiting for Kafka
/// (not_replicated), and stops the bridge. Says how much is left for the next start.
void stop_kafka(detail::system_core& core, std::uint32_t drain_ms) {
  if (!core.bridge) return;
  auto left = core.bridge->drain(drain_ms);
  if (core.gate)
    caf::anon_send(core.gate, detail::close_atom::value,
                   std::string("the system is shutting down; the bridge publishes it at the "
                               "next start"));
  if (left > 0)
    std::cerr << "strata: " << left << " events not yet published to Kafka ("
              << core.kafka_bootstrap << "); they will be published at the next start\n";
}

} // namespace

namespace {

persistence::journal_options journal_options_of(const config& c) {
  persistence::journal_options jo;
  jo.env.path = c.data_dir;
  jo.env.sync = c.durability;
  jo.env.map_size_bytes = c.map_size_bytes;
  jo.env.map_size_max_bytes = c.map_size_max_bytes;
  jo.env.read_only = c.read_only;
  jo.env.lock_wait_ms = c.lock_wait_ms;
  jo.writer_node = c.node_name;
  jo.index_flush_events = c.index_flush_events;
  jo.max_batch_events = std::max<std::size_t>(jo.max_batch_events, c.writer_batch_events_max +
                                                                     c.entity_batch_events_max);
  return jo;
}

/// The cluster settings (docs/cluster.md). Errors: invalid_argument.
persistence::status check_cluster_config(const config& c) {
  auto bad = [](std::string why) {
    return persistence::status{persistence::errc::invalid_argument, std::move(why)};
  };
  if (c.cluster_client) {
    if (c.cluster_seeds.empty())
      return bad("cluster-client needs cluster-seeds: the members to connect to (host:port,…)");
    return {};
  }
  if (!c.cluster_enabled()) return {};
  if (c.cluster_self_down_lead_ms >= c.cluster_stable_after_ms)
    return bad("cluster-self-down-lead-ms (" + std::to_string(c.cluster_self_down_lead_ms) +
               ") must be less than cluster-stable-after-ms (" +
               std::to_string(c.cluster_stable_after_ms) +
               "): the losing side of a partition must stop before the winning side downs it");
  if (c.read_only)
    return bad("a cluster node cannot be read-only (use cluster-client to query one)");
  if (c.kafka.empty())
    return bad("a cluster node needs Kafka (kafka = the cluster's bootstrap list): shards move "
               "between nodes through it");
  if (c.cluster_shards != c.kafka_partitions)
    return bad("cluster-shards (" + std::to_string(c.cluster_shards) +
               ") must equal kafka-partitions (" + std::to_string(c.kafka_partitions) +
               "): shard i is partition i of every topic");
  return {};
}

/// Settings that contradict each other. Errors: invalid_argument.
persistence::status check_config(const config& c) {
  if (c.read_only && (!c.kafka.empty() || any_replicated(c)))
    return {persistence::errc::invalid_argument,
            "read-only: Kafka must be off (no kafka, no replication = replicated): a "
            "read-only system publishes nothing"};
  if (c.kafka.empty() && any_replicated(c))
    return {persistence::errc::invalid_argument,
            "replication = replicated needs Kafka: set kafka (a bootstrap list, or mock)"};
  return check_cluster_config(c);
}

/// Opens the journal (read-only or for writing).
persistence::status open_journal(detail::system_core& core) {
  auto& c = core.cfg;
  auto jo = journal_options_of(c);
  auto j = c.read_only ? persistence::journal::open_read_only(jo) : persistence::journal::open(jo);
  if (!j)
    return {j.error().code(), "cannot open the journal in '" + c.data_dir + "'" +
                                (c.read_only ? " read-only" : "") + ": " + j.error().message()};
  core.journal = std::move(*j);
  core.permits = std::make_unique<detail::recovery_gate>(c.max_recovering);
  return {};
}

/// The testing seam: `inner` with the fault called before it (a failure fails the batch
/// unwritten) and after a successful commit (a failure is reported although the events
/// are stored). Only systems opened through testing::open_with_faults have it; the fault
/// sees a copy of the batch (the group commit's writes are lent only during the call).
detail::group_commit::append_fn
wrap_with_faults(detail::group_commit::append_fn inner,
                 std::function<persistence::status(testing::append_phase,
                                                   const std::vector<persistence::stream_write>&)>
                   fault) {
  return [inner = std::move(inner), fault = std::move(fault)](
           const persistence::write_refs& w, const std::vector<persistence::snapshot_record>& s,
           persistence::append_callback done) {
    auto copy = std::make_shared<std::vector<persistence::stream_write>>();
    copy->reserve(w.size());
    for (auto* x : w)
      copy->push_back(*x);
    if (auto st = fault(testing::append_phase::before, *copy); !st.ok()) {
      done(std::move(st));
      return;
    }
    inner(w, s,
          [fault, copy, done = std::move(done)](
            persistence::result<std::vector<persistence::write_result>> res) {
            if (res)
              if (auto st = fault(testing::append_phase::after, *copy); !st.ok()) {
                done(std::move(st));
                return;
              }
            done(std::move(res));
          });
  };
}

/// For writing: Kafka (bridge and replication gate) and the group commit.
persistence::status start_writing(detail::system_core& core, const testing::faults* faults) {
  auto& c = core.cfg;
  if (c.read_only) return {};
  if (!c.kafka.empty())
    if (auto st = start_kafka(core); !st.ok()) return st;
  auto* jp = core.journal.get();
  detail::group_commit::append_fn append = [jp](const persistence::write_refs& w,
                                                const std::vector<persistence::snapshot_record>& s,
                                                persistence::append_callback done) {
    jp->append_async(w, s, std::move(done));
  };
  if (faults != nullptr && faults->append)
    append = wrap_with_faults(std::move(append), faults->append);
  detail::group_commit::options o;
  o.batch_events_max = c.writer_batch_events_max;
  o.linger_us = c.writer_linger_us;
  o.linger_events = c.writer_linger_events;
  core.router = detail::spawn_reply_router(*core.actors);
  core.writer = std::make_unique<detail::group_commit>(std::move(append), o, core.router, core.gate,
                                                       core.bridge.get());
  return {};
}

void start_sweeper(detail::system_core& core) {
  auto& c = core.cfg;
  if (c.passivate_after_ms == 0) return;
  auto* cp = &core;
  auto period_ms = std::clamp<std::uint64_t>(c.passivate_after_ms / 4, 5, 1000);
  core.sweeper = std::thread([cp, period_ms] {
    std::unique_lock<std::mutex> lk{cp->sweep_mtx};
    while (!cp->sweep_stop) {
      cp->sweep_cv.wait_for(lk, std::chrono::milliseconds(period_ms));
      if (cp->sweep_stop) break;
      lk.unlock();
      auto now = detail::steady_now_ms();
      for (auto& r : cp->all_regions())
        r->passivate_idle(now, cp->cfg.passivate_after_ms);
      lk.lock();
    }
  });
}

} // namespace

result<std::unique_ptr<system>> system::open(config cfg) { return open(std::move(cfg), nullptr); }

namespace {

/// Starts this system's cluster node (config cluster-*) and routes through it.
persistence::status start_node(system& sys, detail::system_core& core) {
  const auto& c = core.cfg;
  cluster::node_config nc;
  nc.host = c.cluster_host;
  nc.port = c.cluster_port;
  for (const auto& s : c.cluster_seeds)
    nc.seeds.push_back(cluster::address{s.host, s.port});
  nc.shards = c.cluster_shards;
  nc.gossip_interval_ms = c.cluster_gossip_ms;
  nc.client = c.cluster_client;
  nc.heartbeat_interval_ms = c.cluster_heartbeat_ms;
  nc.phi_threshold = c.cluster_phi_threshold;
  nc.acceptable_pause_ms = c.cluster_acceptable_pause_ms;
  nc.stable_after_ms = c.cluster_stable_after_ms;
  nc.self_down_lead_ms = c.cluster_self_down_lead_ms;
  if (core.journal && core.bridge) {
    // A shard restored from a checkpoint starts its streams at their snapshots: reads of
    // the events before (history, state as of a seq or time) come from Kafka.
    auto* bridge = core.bridge.get();
    auto bootstrap = core.kafka_bootstrap;
    auto timeout = c.cluster_handoff_timeout_ms;
    core.journal->set_absent_source(
      [bridge, bootstrap, timeout](std::string_view pid, std::uint64_t from, std::uint64_t to) {
        kafka::stream_read_options o;
        o.bootstrap_servers = bootstrap;
        o.topic = bridge->topic_for(pid);
        o.partition = bridge->partition_for(pid);
        o.timeout_ms = timeout;
        return kafka::read_stream_events(o, pid, from, to);
      });
  }
  core.host = std::make_unique<detail::cluster_host>(sys, core);
  auto n = cluster::node::start(*core.actors, nc, *core.host);
  if (!n) {
    core.host->stop();
    auto where = c.cluster_client
                   ? std::string("cluster client")
                   : "cluster node on " + c.cluster_host + ":" + std::to_string(c.cluster_port);
    return {persistence::errc::io_error,
            "cannot start the " + where + ": " + caf::to_string(n.error())};
  }
  core.own_node = std::move(*n);
  detail::attach_cluster(sys, *core.own_node);
  return {};
}

} // namespace

result<std::unique_ptr<system>> system::open(config cfg, const testing::faults* faults) {
  auto core = std::make_unique<detail::system_core>();
  core->cfg = std::move(cfg);
  auto& c = core->cfg;
  if (c.max_inflight_writes == 0) c.max_inflight_writes = 1;
  if (c.entity_batch_events_max == 0) c.entity_batch_events_max = 1;
  if (auto st = check_config(c); !st.ok()) return to_error(st);
  if (c.cluster_client) return open_client(std::move(core));
  if (faults != nullptr) core->before_recover = faults->before_recover;
  if (auto st = open_journal(*core); !st.ok()) return to_error(st);
  core->actor_cfg = std::make_unique<strata_actor_config>(c);
  core->actors = std::make_unique<caf::actor_system>(*core->actor_cfg);
  if (auto st = start_writing(*core, faults); !st.ok()) {
    if (core->bridge) core->bridge->stop(0);
    core->bridge.reset();
    if (core->gate) caf::anon_send_exit(core->gate, caf::exit_reason::user_shutdown);
    core->gate = nullptr;
    return to_error(st);
  }
  start_sweeper(*core);
  auto sys = std::unique_ptr<system>(new system(std::move(core)));
  if (faults != nullptr && faults->node != nullptr)
    detail::attach_cluster(*sys, *faults->node);
  else if (sys->core_->cfg.cluster_enabled())
    if (auto st = start_node(*sys, *sys->core_); !st.ok()) return to_error(st);
  return sys;
}

/// Client mode: no data directory, no journal, no writer; every command and read goes
/// to the owner of its shard.
result<std::unique_ptr<system>> system::open_client(std::unique_ptr<detail::system_core> core) {
  core->actor_cfg = std::make_unique<strata_actor_config>(core->cfg);
  core->actors = std::make_unique<caf::actor_system>(*core->actor_cfg);
  auto sys = std::unique_ptr<system>(new system(std::move(core)));
  if (auto st = start_node(*sys, *sys->core_); !st.ok()) return to_error(st);
  return sys;
}

namespace detail {

void attach_cluster(system& sys, cluster::node& node) {
  auto& core = *sys.core_;
  STRATA_ASSERT(core.cluster == nullptr, "attach_cluster called twice on one system");
  const auto& c = core.cfg;
  router_options o;
  o.forward_timeout_ms = c.cluster_forward_timeout_ms;
  o.batch_max = c.cluster_batch_max;
  o.batch_linger_us = c.cluster_batch_linger_us;
  o.max_inflight_batches = c.cluster_max_inflight_batches;
  o.buffer_max = c.cluster_buffer_max;
  core.node = &node;
  core.cluster = std::make_unique<cluster_router>(core, node, o);
  // The write lease (docs/cluster.md): a member that has not heard from a majority for
  // a while may have been cut off or frozen while the others handed its shards to a
  // new owner, so it commits nothing until it hears from them again (or learns it
  // was downed). One virtual call per group commit.
  if (core.writer && !c.cluster_client)
    core.writer->set_write_permit([&node]() -> persistence::status {
      if (node.holds_write_lease()) return {};
      return {persistence::errc::unavailable,
              "this cluster node has heard from no majority of the members for " +
                std::to_string(node.write_lease_ms()) +
                " ms (cut off, or the process was paused): its shards may have a new owner, so "
                "it commits no write until it hears from them again; nothing was stored"};
    });
}

} // namespace detail

namespace testing {

result<std::unique_ptr<system>> open_with_faults(config cfg, faults f) {
  return system::open(std::move(cfg), &f);
}

} // namespace testing

system::system(std::unique_ptr<detail::system_core> core) : core_(std::move(core)) {}

system::~system() { shutdown(); }

void system::shutdown() {
  if (core_) shutdown(core_->cfg.kafka_drain_ms);
}

void system::shutdown(std::uint32_t kafka_drain_ms) {
  if (!core_ || core_->shut_down) return;
  // One budget for both bridge drains below.
  const auto drain_deadline =
    std::chrono::steady_clock::now() + std::chrono::milliseconds(kafka_drain_ms);
  auto drain_left_ms = [&] {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                  drain_deadline - std::chrono::steady_clock::now())
                  .count();
    return static_cast<std::uint32_t>(std::max<std::int64_t>(left, 0));
  };
  core_->shut_down = true;
  core_->stopping.store(true, std::memory_order_release);
  // Commands and reads waiting for another member are answered shutting_down.
  if (core_->cluster) core_->cluster->close_outbound();
  {
    std::lock_guard<std::mutex> g{core_->sweep_mtx};
    core_->sweep_stop = true;
    core_->sweep_cv.notify_all();
  }
  if (core_->sweeper.joinable()) core_->sweeper.join();
  // Replies waiting for Kafka are answered (acknowledged or not) before the entities
  // are stopped, so stopping never waits on Kafka longer than kafka_drain_ms.
  stop_kafka(*core_, drain_left_ms());
  auto regions = core_->all_regions();
  for (auto& r : regions)
    r->stop_all();
  for (auto& r : regions)
    r->await_all_finished();
  // The replies to other members' commands have gone out; the node's handlers stop here.
  if (core_->cluster) core_->cluster->close();
  // No handoff from here on (system::leave() does that first): the node stops gossiping
  // and the host answers what waits with done(false).
  if (core_->own_node) core_->own_node->stop();
  if (core_->host) core_->host->stop();
  if (core_->writer) core_->writer->stop();
  for (auto* a : {&core_->gate, &core_->router})
    if (*a) {
      caf::anon_send_exit(*a, caf::exit_reason::user_shutdown);
      *a = nullptr;
    }
  if (core_->bridge) {
    // Events persisted while the entities stopped: one more bounded drain.
    auto left = core_->bridge->stop(drain_left_ms());
    if (left > 0)
      std::cerr << "strata: " << left << " events not yet published to Kafka; they will be"
                << " published at the next start\n";
    core_->bridge.reset();
  }
  core_->kafka_mock.reset();
  if (core_->journal) // none in client mode
    if (auto st = core_->journal->close(); !st.ok())
      std::cerr << "strata: closing the journal failed: " << st.to_string() << "\n";
  core_->actors.reset(); // awaits every actor
}

std::size_t system::passivate_idle(std::uint64_t idle_ms) {
  std::size_t n = 0;
  auto now = detail::steady_now_ms();
  for (auto& r : core_->all_regions())
    n += r->passivate_idle(now, idle_ms);
  return n;
}

void system::stop_shard(std::uint32_t shard, std::function<void()> done) {
  if (core_->cluster)
    core_->cluster->stop_shard(shard, std::move(done));
  else if (done)
    done();
}

bool system::leave(std::uint32_t timeout_ms) {
  if (!core_ || core_->shut_down || !core_->own_node) return true;
  return core_->own_node->leave(timeout_ms);
}

cluster::node* system::cluster_node() noexcept { return core_ ? core_->node : nullptr; }

void system::resume_shard(std::uint32_t shard) {
  if (core_->cluster) core_->cluster->resume_shard(shard);
}

system_stats system::stats() const {
  system_stats s;
  for (auto& r : core_->all_regions()) {
    s.live_entities += r->live();
    s.recoveries += r->recoveries();
    s.passivations += r->passivations();
  }
  if (const auto* p = core_->permits.get()) { // none in client mode
    s.recovering = p->in_use();
    s.waiting_for_recovery = p->waiting();
  }
  if (const auto* w = core_->writer.get()) {
    s.commits = w->commits();
    s.committed_events = w->committed_events();
    s.failed_commits = w->failed_commits();
    s.append_ns = w->append_ns();
    s.commit_us_histogram = w->commit_histogram();
  }
  if (const auto* c = core_->cluster.get()) {
    auto r = c->stats();
    s.cluster_forwarded = r.forwarded;
    s.cluster_batches_sent = r.batches_sent;
    s.cluster_replies_sent = r.replies_sent;
    s.cluster_received = r.received;
    s.cluster_held = r.held;
    s.cluster_timed_out = r.timed_out;
    s.cluster_late_replies = r.late_replies;
  }
  return s;
}

const config& system::cfg() const noexcept { return core_->cfg; }
persistence::journal& system::journal() noexcept { return *core_->journal; }
kafka::bridge* system::kafka_bridge() noexcept { return core_->bridge.get(); }
const std::string& system::kafka_bootstrap() const noexcept { return core_->kafka_bootstrap; }
caf::actor_system& system::actor_system() noexcept { return *core_->actors; }

std::shared_ptr<detail::region>
system::region_for(const std::string& type, const std::type_info& agg, detail::spawn_fn spawn,
                   std::uint64_t snapshot_every, const detail::wire_codec* codec,
                   detail::snapshot_fn snapshot) {
  std::lock_guard<std::mutex> g{core_->regions_mtx};
  auto it = core_->regions.find(type);
  if (it != core_->regions.end()) {
    // entities<A>() names the type by A::type_name (or the caller's name): two C++ types
    // under one name would decode each other's events.
    STRATA_ASSERT(*it->second.first == agg,
                  "one aggregate type name registered with two different C++ types");
    return it->second.second;
  }
  if (core_->kafka_mock) {
    const auto& bo = core_->bridge->options();
    for (const auto& topic :
         {bo.topic_prefix + type, bo.topic_prefix + type + bo.snapshot_topic_suffix}) {
      auto st =
        core_->kafka_mock->create_topic(topic, static_cast<int>(core_->cfg.kafka_partitions));
      if (!st.ok() && st.code() != persistence::errc::invalid_argument)
        std::cerr << "strata: creating topic " << topic
                  << " on the mock cluster: " << st.to_string() << "\n";
    }
  }
  auto r = std::make_shared<detail::region>(*core_, type, spawn, snapshot_every, codec, snapshot);
  core_->regions.emplace(type, std::make_pair(&agg, r));
  return r;
}

} // namespace strata
