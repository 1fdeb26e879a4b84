// Scenarios `remote-local`, `remote`, `rebalance` and `rebalance-history` (issue 10,
// docs/cluster.md, docs/performance.md "Cluster"): strata::system cluster nodes in this process on
// loopback, over an in-process librdkafka mock cluster (3 brokers; topics strata.account and
// strata.account.snapshots, 64 partitions), with the bank sample's account (it has
// the wire codec, so commands for another node's shard are forwarded to it).
// All run only when named.
// - remote-local, remote (name both: `strata-bench remote-local remote`): 3 nodes, 10k
//   opened accounts (not timed), shared by the two in a round; closed-loop clients
//   (ask_async) deposit 1 cent, in remote-local each on the node that owns the
//   account's shard, in remote each on a node that does not; remote's `ratio` is
//   remote/local (target >= 0.3). remote checks every command was acknowledged and
//   every balance equals the deposits acknowledged to it (both loads).
// - rebalance: 3 nodes, 10k accounts with 10 events each (open + 9 deposits, through
//   the cluster), every bridge drained; then a fourth node starts: the time from its
//   start until every node's routes show the allocation of the 4-member view with every
//   shard served (`seconds`), the moved shards, the events their new owners hold (every
//   moved account is at its last seq there: checked; `events`), and those events per
//   second against a raw librdkafka consumer reading all of them from the same
//   partitions in the same run (`raw_ratio`, target >= 0.5; a restore from a checkpoint
//   reads snapshots and the events after the checkpoint, not the history, so it can pass
//   1), and kafka::restore_shard alone on them into a scratch journal
//   (`restore_shard_alone_*`: the restore without the handoff; records read, events
//   imported, streams started at a snapshot).
// - rebalance-history: rebalance with 40 events per account instead of 10: its times
//   beside rebalance's show whether a join's time grows with the history.
#include "kafka_raw.hpp"
#include "scenario.hpp"

#include "bank/account.hpp"
#include "strata/cluster/allocation.hpp"
#include "strata/cluster/node.hpp"
#include "strata/kafka/bridge.hpp"
#include "strata/kafka/mock.hpp"
#include "strata/kafka/restore.hpp"
#include "strata/persistence/journal.hpp"
#include "strata/persistence/shard.hpp"
#include "strata/runtime/all.hpp"

#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <set>
#include <thread>

namespace strata::bench {
namespace {

namespace sc = strata::cluster;

constexpr std::uint32_t shards = 64;
const std::string topic = "strata.account";
using clock_type = std::chrono::steady_clock;
using accounts = strata::entities<bank::account>;

/// The mock, the nodes (node 0 is the seed) and their account handles.
class test_cluster {
 public:
  test_cluster(context& ctx, std::string name) : ctx_(ctx), name_(std::move(name)) {
    auto m = strata::kafka::mock_cluster::start(3);
    if (!m) fail("kafka mock: " + m.error().to_string());
    mock_ = std::move(*m);
    for (const auto& t : {topic, topic + ".snapshots"})
      if (auto st = mock_->create_topic(t, static_cast<int>(shards)); !st.ok())
        fail("kafka mock: " + st.to_string());
    seed_port_ = free_loopback_port();
  }
  ~test_cluster() {
    for (auto it = nodes_.rbegin(); it != nodes_.rend(); ++it)
      (*it)->shutdown();
  }

  /// Starts one more node (the first listens on the seed port, the others on any).
  void add_node() {
    strata::config c;
    c.data_dir = ctx_.fresh_dir(name_ + "-node" + std::to_string(nodes_.size())).string();
    c.durability =
      ctx_.opts().nosync ? persistence::sync_mode::nosync : persistence::sync_mode::sync;
    c.map_size_bytes = std::size_t{1} << 30;
    c.passivate_after_ms = 0;
    c.snapshot_every = 0;
    c.kafka = mock_->bootstrap_servers();
    c.kafka_partitions = shards;
    c.cluster_port = nodes_.empty() ? seed_port_ : 0;
    c.cluster_seeds = {{"127.0.0.1", seed_port_}};
    auto s = strata::system::open(c);
    if (!s)
      fail("system::open (node " + std::to_string(nodes_.size()) +
           "): " + strata::describe(s.error()));
    if ((*s)->cluster_node() == nullptr) fail("system::open: no cluster node");
    handles_.push_back((*s)->entities<bank::account>());
    nodes_.push_back(std::move(*s));
  }

  std::size_t size() const { return nodes_.size(); }
  strata::system& node(std::size_t i) { return *nodes_[i]; }
  accounts& handle(std::size_t i) { return handles_[i]; }
  const std::string& bootstrap() const { return mock_->bootstrap_servers(); }

  /// The node index whose cluster identity is `m`.
  std::size_t index_of(const sc::member_id& m) {
    for (std::size_t i = 0; i < nodes_.size(); ++i)
      if (nodes_[i]->cluster_node()->self() == m) return i;
    fail("cluster: a route names a member that is none of the nodes");
  }

  /// Waits (up to `limit`) until every node's view has all nodes up; returns `sw`'s
  /// seconds then.
  double wait_up(std::chrono::seconds limit, const stopwatch& sw) {
    auto deadline = clock_type::now() + limit;
    for (;;) {
      bool all = true;
      for (auto& n : nodes_)
        all = all &&
              n->cluster_node()->view().with_status(sc::member_status::up).size() == nodes_.size();
      if (all) return sw.seconds();
      if (clock_type::now() > deadline) fail("cluster: a node is not up in every view in time");
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  }

  /// Waits (up to `limit`) until every node's view has all nodes up and its routes
  /// equal the allocation of that view with every shard local or remote; returns the
  /// owner index per shard.
  /// `poll` (if any) runs before each check.
  std::vector<std::size_t> wait_settled(std::chrono::seconds limit,
                                        const std::function<void()>& poll = {}) {
    auto deadline = clock_type::now() + limit;
    for (;;) {
      if (poll) poll();
      if (auto owners = settled()) return *owners;
      if (clock_type::now() > deadline)
        fail("cluster: the " + std::to_string(nodes_.size()) +
             " nodes did not agree on the members and serve every shard in time");
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  }

 private:
  std::optional<std::vector<std::size_t>> settled() {
    auto view = nodes_[0]->cluster_node()->view();
    if (view.with_status(sc::member_status::up).size() != nodes_.size()) return std::nullopt;
    auto table = sc::allocate(view, shards);
    std::vector<std::size_t> owners(shards);
    for (std::uint32_t s = 0; s < shards; ++s) {
      if (!table[s]) return std::nullopt;
      owners[s] = index_of(*table[s]);
    }
    for (std::size_t i = 0; i < nodes_.size(); ++i) {
      auto* n = nodes_[i]->cluster_node();
      if (n->view().with_status(sc::member_status::up).size() != nodes_.size()) return std::nullopt;
      auto routes = n->routes();
      if (routes.size() != shards) return std::nullopt;
      for (std::uint32_t s = 0; s < shards; ++s) {
        auto want = owners[s] == i ? sc::shard_route::kind::local : sc::shard_route::kind::remote;
        if (routes[s].state != want || !(routes[s].owner == *table[s])) return std::nullopt;
      }
    }
    return owners;
  }

  context& ctx_;
  std::string name_;
  std::unique_ptr<strata::kafka::mock_cluster> mock_;
  std::uint16_t seed_port_ = 0;
  std::vector<std::unique_ptr<strata::system>> nodes_;
  std::vector<accounts> handles_;
};

std::string id_of(std::uint64_t k) { return "acct-" + std::to_string(k); }

std::uint32_t shard_of_id(const std::string& id) {
  return persistence::shard_of(strata::make_persistence_id("account", id), shards);
}

/// Runs `n` asynchronous calls, at most `window` outstanding; `call(k, done)` starts
/// call k and must call done(ok) once. Returns the calls that failed.
std::uint64_t
run_windowed(std::size_t n, std::size_t window,
             const std::function<void(std::size_t, std::function<void(bool)>)>& call) {
  std::mutex m;
  std::condition_variable cv;
  std::size_t outstanding = 0, finished = 0;
  std::uint64_t failed = 0;
  for (std::size_t k = 0; k < n; ++k) {
    {
      std::unique_lock<std::mutex> g{m};
      cv.wait(g, [&] {
        return outstanding < window;
      });
      ++outstanding;
    }
    call(k, [&](bool ok) {
      std::lock_guard<std::mutex> g{m};
      --outstanding;
      ++finished;
      if (!ok) ++failed;
      cv.notify_all();
    });
  }
  std::unique_lock<std::mutex> g{m};
  cv.wait(g, [&] {
    return finished == n;
  });
  return failed;
}

/// Closed-loop deposits of 1 cent: `clients` chains, `total` commands; command for
/// account k goes to node via(k). Counts acknowledged deposits per account.
class deposit_load {
 public:
  deposit_load(test_cluster& tc, const std::vector<std::string>& ids, std::vector<std::size_t> via,
               std::vector<std::atomic<std::int64_t>>& acked)
    : tc_(tc), ids_(ids), via_(std::move(via)), acked_(acked) {}

  /// Returns the seconds taken; throws when a command failed.
  double run(std::uint64_t total, std::size_t clients) {
    total_ = total;
    clients_ = clients;
    stopwatch sw;
    for (std::size_t c = 0; c < clients; ++c)
      next(0x9e3779b97f4a7c15ull * (c + 1));
    std::unique_lock<std::mutex> g{mtx_};
    cv_.wait(g, [&] {
      return finished_ == clients_;
    });
    double s = sw.seconds();
    if (errors_ > 0)
      fail("cluster load: " + std::to_string(errors_) + " commands failed, first: " + first_error_);
    if (done_ != total)
      fail("cluster load: " + std::to_string(done_.load()) + " of " + std::to_string(total) +
           " acknowledged");
    return s;
  }

 private:
  void next(std::uint64_t rng) {
    if (sent_.fetch_add(1, std::memory_order_relaxed) >= total_ || stop_) {
      std::lock_guard<std::mutex> g{mtx_};
      if (++finished_ == clients_) cv_.notify_all();
      return;
    }
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    auto k = rng % ids_.size();
    tc_.handle(via_[k]).ask_async(ids_[k], bank::deposit{1}, [this, k, rng](auto r) {
      if (r) {
        acked_[k].fetch_add(1, std::memory_order_relaxed);
        done_.fetch_add(1, std::memory_order_relaxed);
      } else {
        std::lock_guard<std::mutex> g{mtx_};
        if (errors_++ == 0) first_error_ = ids_[k] + ": " + strata::describe(r.error());
        stop_ = true;
      }
      next(rng);
    });
  }

  test_cluster& tc_;
  const std::vector<std::string>& ids_;
  std::vector<std::size_t> via_;
  std::vector<std::atomic<std::int64_t>>& acked_;
  std::uint64_t total_ = 0;
  std::size_t clients_ = 0;
  std::atomic<std::uint64_t> sent_{0}, done_{0};
  std::atomic<bool> stop_{false};
  std::mutex mtx_;
  std::condition_variable cv_;
  std::size_t finished_ = 0;
  std::uint64_t errors_ = 0;
  std::string first_error_;
};

/// Opens every account through node (k % nodes) (not timed).
void open_accounts(test_cluster& tc, const std::vector<std::string>& ids) {
  auto failed = run_windowed(ids.size(), 2048, [&](std::size_t k, std::function<void(bool)> done) {
    tc.handle(k % tc.size()).ask_async(ids[k], bank::open_account{"bench"}, [done](auto r) {
      done(static_cast<bool>(r));
    });
  });
  if (failed) fail("cluster: " + std::to_string(failed) + " accounts failed to open");
}

/// Checks every balance (asked through node k % nodes) equals expected(k).
void check_balances(test_cluster& tc, const std::vector<std::string>& ids,
                    const std::function<std::int64_t(std::size_t)>& expected) {
  std::atomic<std::uint64_t> wrong{0};
  auto failed = run_windowed(ids.size(), 2048, [&](std::size_t k, std::function<void(bool)> done) {
    tc.handle(k % tc.size()).ask_async(ids[k], bank::get_balance{}, [&, k, done](auto r) {
      if (r && r->balance != expected(k)) wrong.fetch_add(1);
      done(static_cast<bool>(r));
    });
  });
  if (failed || wrong)
    fail("cluster: balances: " + std::to_string(failed) + " queries failed, " +
         std::to_string(wrong.load()) + " differ from the acknowledged deposits");
}

std::vector<std::string> make_ids(std::size_t n) {
  std::vector<std::string> ids;
  for (std::size_t k = 0; k < n; ++k)
    ids.push_back(id_of(k));
  return ids;
}

// -- remote ------------------------------------------------------------------------------

/// The cluster `remote-local` and `remote` share in one round: 3 nodes, opened accounts.
struct remote_fixture {
  std::unique_ptr<test_cluster> tc;
  std::vector<std::string> ids;
  std::vector<std::size_t> local, remote; // node per account
  std::vector<std::atomic<std::int64_t>> acked;
  std::uint64_t total = 0;
  std::size_t clients = 4096;
  explicit remote_fixture(std::size_t n) : ids(make_ids(n)), local(n), remote(n), acked(n) {}
};
std::unique_ptr<remote_fixture> remote_fx;

remote_fixture& start_remote_fixture(context& ctx) {
  remote_fx.reset();
  const auto& o = ctx.opts();
  auto f = std::make_unique<remote_fixture>(10'000);
  f->tc = std::make_unique<test_cluster>(ctx, "remote");
  for (int i = 0; i < 3; ++i)
    f->tc->add_node();
  auto owners = f->tc->wait_settled(std::chrono::seconds(30));
  progress("remote: 3 nodes serve the 64 shards; opening " + std::to_string(f->ids.size()) +
           " accounts (not timed)");
  open_accounts(*f->tc, f->ids);
  for (std::size_t k = 0; k < f->ids.size(); ++k) {
    f->local[k] = owners[shard_of_id(f->ids[k])];
    f->remote[k] = (f->local[k] + 1 + k % 2) % 3; // both other nodes
  }
  f->total = o.quick ? 50'000 : std::max<std::uint64_t>(o.events / 5, 100'000);
  remote_fx = std::move(f);
  return *remote_fx;
}

result load_result(const remote_fixture& f, double seconds, const char* where) {
  result r;
  r.events = f.total;
  r.seconds = seconds;
  return r.add("submitted_on", where)
    .add("nodes", 3)
    .add("accounts", static_cast<std::uint64_t>(f.ids.size()))
    .add("clients", static_cast<std::uint64_t>(f.clients));
}

result run_remote_local(context& ctx) {
  auto& f = start_remote_fixture(ctx);
  progress("remote-local: " + std::to_string(f.total) + " deposits from " +
           std::to_string(f.clients) + " clients, each on the node owning the account");
  double cpu0 = process_cpu_seconds();
  double s = deposit_load{*f.tc, f.ids, f.local, f.acked}.run(f.total, f.clients);
  return load_result(f, s, "owner")
    .add("load_cpu_us_per_cmd",
         (process_cpu_seconds() - cpu0) * 1e6 / static_cast<double>(f.total));
}

result run_remote(context& ctx) {
  const auto& o = ctx.opts();
  // Without remote-local in this round (not named): a cluster of its own.
  auto& f = remote_fx ? *remote_fx : start_remote_fixture(ctx);
  struct drop {
    ~drop() { remote_fx.reset(); }
  } at_end;
  auto& tc = *f.tc;
  std::vector<strata::system_stats> before;
  for (std::size_t i = 0; i < tc.size(); ++i)
    before.push_back(tc.node(i).stats());
  progress("remote: " + std::to_string(f.total) + " deposits from " + std::to_string(f.clients) +
           " clients, each on a node that does not own the account");
  double cpu0 = process_cpu_seconds();
  double s = deposit_load{tc, f.ids, f.remote, f.acked}.run(f.total, f.clients);
  double cpu_us = (process_cpu_seconds() - cpu0) * 1e6 / static_cast<double>(f.total);
  std::uint64_t forwarded = 0, batches = 0, replies = 0, received = 0;
  for (std::size_t i = 0; i < tc.size(); ++i) {
    auto st = tc.node(i).stats();
    forwarded += st.cluster_forwarded - before[i].cluster_forwarded;
    batches += st.cluster_batches_sent - before[i].cluster_batches_sent;
    replies += st.cluster_replies_sent - before[i].cluster_replies_sent;
    received += st.cluster_received - before[i].cluster_received;
  }
  check_balances(tc, f.ids, [&](std::size_t k) {
    return f.acked[k].load();
  });
  if (forwarded < f.total)
    fail("remote: only " + std::to_string(forwarded) + " of " + std::to_string(f.total) +
         " commands were forwarded");
  auto per = [](std::uint64_t a, std::uint64_t b) {
    return b ? static_cast<double>(a) / static_cast<double>(b) : 0.0;
  };
  return load_result(f, s, "non-owner")
    .add("load_cpu_us_per_cmd", cpu_us)
    .add("forwarded", forwarded)
    .add("batches_sent", batches)
    .add("commands_per_batch", per(forwarded, batches))
    .add("reply_batches_sent", replies)
    .add("replies_per_batch", per(received, replies))
    .add("durability", o.nosync ? "nosync" : "sync");
}

// -- rebalance ------------------------------------------------------------------------------

/// Writes `deposits` deposits of 1 cent to every account, each through a node chosen by
/// the account, then waits until every node's bridge published its journal (not timed).
void write_history(test_cluster& tc, const std::vector<std::string>& ids, int deposits) {
  for (int d = 0; d < deposits; ++d) {
    auto failed =
      run_windowed(ids.size(), 2048, [&](std::size_t k, std::function<void(bool)> done) {
        tc.handle((k + static_cast<std::size_t>(d)) % tc.size())
          .ask_async(ids[k], bank::deposit{1}, [done](auto r) {
            done(static_cast<bool>(r));
          });
      });
    if (failed) fail("rebalance: " + std::to_string(failed) + " deposits failed");
  }
  for (std::size_t i = 0; i < tc.size(); ++i)
    if (auto left = tc.node(i).kafka_bridge()->drain(120'000); left != 0)
      fail("rebalance: node " + std::to_string(i) + ": " + std::to_string(left) +
           " events not published to Kafka");
}

/// Raw consumer over the partitions `moved` of the event topic; returns (records, s).
std::pair<std::uint64_t, double> raw_consume(const std::string& bootstrap,
                                             const std::vector<std::uint32_t>& moved) {
  std::vector<std::int64_t> lo, hi;
  watermarks(bootstrap, topic, shards, lo, hi);
  for (auto s : moved)
    if (lo[s] != 0)
      fail("rebalance: partition " + std::to_string(s) + " lost records (mock limit)");
  std::uint64_t n = 0, checksum = 0;
  stopwatch sw;
  for (auto s : moved)
    n += raw_read(bootstrap, topic, s, hi[s], checksum);
  return {n, sw.seconds()};
}

/// What kafka::restore_shard alone did on the moved partitions.
struct plain_report {
  std::uint64_t records = 0;  ///< Kafka records read (snapshots, checkpoints, events)
  std::uint64_t imported = 0; ///< events imported
  std::uint64_t bases = 0;    ///< streams started at a snapshot
  double seconds = 0;
};

/// kafka::restore_shard of the partitions `moved`, one after the other, into a fresh
/// journal, as the cluster host calls it (event topic + snapshot topic); checks that
/// every account of `ids` in them reaches `events` there.
plain_report plain_restore(context& ctx, const std::string& bootstrap,
                           const std::vector<std::uint32_t>& moved,
                           const std::vector<std::string>& ids, std::uint64_t events) {
  persistence::journal_options jo;
  jo.env.path = ctx.fresh_dir("rebalance-plain-restore").string();
  jo.env.sync = ctx.opts().nosync ? persistence::sync_mode::nosync : persistence::sync_mode::sync;
  jo.env.map_size_bytes = std::size_t{1} << 30;
  auto j = persistence::journal::open(jo);
  if (!j) fail("journal::open: " + j.error().to_string());
  strata::kafka::restore_options ro;
  ro.bootstrap_servers = bootstrap;
  ro.topics = {topic};
  ro.snapshots = true;
  plain_report out;
  stopwatch sw;
  for (auto s : moved) {
    ro.shard = s;
    auto rep = strata::kafka::restore_shard(**j, ro);
    if (!rep) fail("restore_shard: " + rep.error().to_string());
    out.records += rep->records;
    out.imported += rep->imported;
    out.bases += rep->bases;
  }
  out.seconds = sw.seconds();
  std::set<std::uint32_t> in(moved.begin(), moved.end());
  for (const auto& id : ids) {
    if (in.count(shard_of_id(id)) == 0) continue;
    auto pid = strata::make_persistence_id("account", id);
    auto head = (*j)->highest_seq(pid);
    if (!head || *head != events)
      fail("rebalance: restore_shard alone: " + pid + " is not at seq " + std::to_string(events));
  }
  return out;
}

/// When each shard's old owner stops serving it, when the new node sees it handed over
/// and when the new node serves it (as their own routes say): where a join's time goes.
/// A route's epoch is the shard's epoch as the node knows it: the new node (index 3)
/// seeing a higher one than before the join means the old owner released the shard
/// (stopped, published) and handed it over, so the restore can begin.
struct handoff_timeline {
  test_cluster& tc;
  std::vector<std::size_t> before; // owner index per shard before the join
  std::vector<double> stopped, handed, served;
  std::vector<std::uint64_t> epoch0;
  double first_stop = 0, last_stop = 0, last_handed = 0, longest = 0;

  handoff_timeline(test_cluster& c, std::vector<std::size_t> owners)
    : tc(c), before(std::move(owners)), stopped(shards, -1), handed(shards, -1), served(shards, -1),
      epoch0(shards) {
    for (std::uint32_t s = 0; s < shards; ++s)
      epoch0[s] = tc.node(0).cluster_node()->route(s).epoch;
  }

  void poll(double now) {
    auto r3 = tc.node(3).cluster_node()->routes();
    for (std::uint32_t s = 0; s < shards && s < r3.size(); ++s) {
      if (handed[s] < 0 && r3[s].epoch > epoch0[s]) handed[s] = now;
      if (stopped[s] < 0 &&
          tc.node(before[s]).cluster_node()->route(s).state != sc::shard_route::kind::local)
        stopped[s] = now;
      if (served[s] < 0 && stopped[s] >= 0 && r3[s].state == sc::shard_route::kind::local)
        served[s] = now;
    }
  }

  void summarize() {
    first_stop = 1e9;
    for (std::uint32_t s = 0; s < shards; ++s)
      if (stopped[s] >= 0) {
        first_stop = std::min(first_stop, stopped[s]);
        last_stop = std::max(last_stop, stopped[s]);
        last_handed = std::max(last_handed, handed[s]);
        if (served[s] >= 0) longest = std::max(longest, served[s] - stopped[s]);
      }
    if (first_stop > last_stop) first_stop = 0;
  }
};

/// Checks that every account's owner after the join holds its `events` events and the
/// new node (index 3) no account it does not own; returns (events, accounts) of the
/// moved shards. Rendezvous moves shards only to the new node, except for the rare
/// address sets where the share bounds move a few between old nodes too
/// (allocation.hpp): those count as moved as well.
std::pair<std::uint64_t, std::uint64_t> check_moved(test_cluster& tc,
                                                    const std::vector<std::string>& ids,
                                                    const std::vector<std::size_t>& before,
                                                    const std::vector<std::size_t>& after,
                                                    std::uint64_t events) {
  std::uint64_t restored = 0, accounts = 0;
  for (const auto& id : ids) {
    auto pid = strata::make_persistence_id("account", id);
    auto s = shard_of_id(id);
    bool was_moved = after[s] != before[s];
    auto head = tc.node(after[s]).journal().highest_seq(pid);
    if (!head) fail("rebalance: highest_seq(" + pid + "): " + head.error().to_string());
    if (*head != events)
      fail("rebalance: " + pid + " has " + std::to_string(*head) + " events on its owner (node " +
           std::to_string(after[s]) + (was_moved ? ", moved" : "") + "), not " +
           std::to_string(events));
    if (after[s] != 3)
      if (auto h3 = tc.node(3).journal().highest_seq(pid); !h3 || *h3 != 0)
        fail("rebalance: the new node holds " + pid + " it does not own");
    if (was_moved) {
      restored += *head;
      ++accounts;
    }
  }
  return {restored, accounts};
}

/// What the cluster host does per acquired shard besides restore_shard: listing the
/// topics (a metadata request on a new handle) and appending the claim record (a new
/// producer, flushed); timed on the new node (index 3) for the shards it now owns,
/// re-claiming each under the epoch it holds (same member and epoch: a restore skips
/// claims). Returns the mean ms of each. After every other measurement.
std::pair<double, double> per_shard_extras(test_cluster& tc,
                                           const std::vector<std::uint32_t>& mine) {
  auto* bridge = tc.node(3).kafka_bridge();
  auto routes = tc.node(3).cluster_node()->routes();
  double list_s = 0, claim_s = 0;
  for (auto s : mine) {
    stopwatch sw;
    auto l =
      strata::kafka::list_event_topics(tc.bootstrap(), bridge->options().topic_prefix, "", 60'000);
    if (!l) fail("rebalance: list_event_topics: " + l.error().to_string());
    list_s += sw.seconds();
    sw.restart();
    if (auto st = bridge->append_claim(s, routes[s].epoch, 60'000); !st.ok())
      fail("rebalance: append_claim: " + st.to_string());
    claim_s += sw.seconds();
  }
  auto n = static_cast<double>(std::max<std::size_t>(mine.size(), 1));
  return {list_s * 1000 / n, claim_s * 1000 / n};
}

result run_rebalance_with(context& ctx, int deposits) {
  test_cluster tc{ctx, "rebalance"};
  for (int i = 0; i < 3; ++i)
    tc.add_node();
  auto before = tc.wait_settled(std::chrono::seconds(30));
  std::size_t n_ids = ctx.opts().quick ? 2'000 : 10'000;
  auto ids = make_ids(n_ids);
  progress("rebalance: writing " + std::to_string(n_ids) + " accounts x " +
           std::to_string(deposits + 1) + " events through 3 nodes (not timed)");
  open_accounts(tc, ids);
  write_history(tc, ids, deposits);
  progress("rebalance: a fourth node joins");
  stopwatch sw;
  tc.add_node();
  double open_s = sw.seconds();
  double up_s = tc.wait_up(std::chrono::seconds(60), sw);
  handoff_timeline tl{tc, before};
  auto after = tc.wait_settled(std::chrono::seconds(120), [&] {
    tl.poll(sw.seconds());
  });
  double join_s = sw.seconds();
  tl.summarize();
  std::vector<std::uint32_t> moved;
  for (std::uint32_t s = 0; s < shards; ++s)
    if (after[s] != before[s]) moved.push_back(s);
  auto [restored, moved_accounts] = check_moved(tc, ids, before, after, deposits + 1);
  std::uint64_t to_new = 0;
  for (auto s : moved)
    to_new += after[s] == 3 ? 1 : 0;
  check_balances(tc, ids, [&](std::size_t) {
    return std::int64_t{deposits};
  });
  progress("rebalance: raw librdkafka consumer on the " + std::to_string(moved.size()) +
           " moved partitions");
  auto [raw_n, raw_s] = raw_consume(tc.bootstrap(), moved);
  double raw_rate = static_cast<double>(raw_n) / raw_s;
  progress("rebalance: kafka::restore_shard alone on the same partitions");
  auto plain = plain_restore(ctx, tc.bootstrap(), moved, ids, deposits + 1);
  double plain_rate = static_cast<double>(restored) / plain.seconds;
  std::vector<std::uint32_t> mine;
  for (auto s : moved)
    if (after[s] == 3) mine.push_back(s);
  auto [list_ms, claim_ms] = per_shard_extras(tc, mine);
  double rate = static_cast<double>(restored) / join_s;
  progress("rebalance: this round: " + std::to_string(moved.size()) + " shards, " +
           std::to_string(restored) + " events serving after " + std::to_string(join_s) +
           " s: " + std::to_string(static_cast<long>(rate)) + "/s; raw consumer " +
           std::to_string(static_cast<long>(raw_rate)) + "/s (raw_ratio " +
           std::to_string(rate / raw_rate) + "); restore_shard alone " +
           std::to_string(static_cast<long>(plain_rate)) + "/s; up everywhere " +
           std::to_string(up_s) + " s, old owners stop serving " + std::to_string(tl.first_stop) +
           ".." + std::to_string(tl.last_stop) + " s, last handed over " +
           std::to_string(tl.last_handed) + " s, longest stop-to-serve " +
           std::to_string(tl.longest) + " s; per shard: list topics " + std::to_string(list_ms) +
           " ms, claim " + std::to_string(claim_ms) + " ms");
  result r;
  r.events = restored;
  r.seconds = join_s;
  return r.add("moved_shards", static_cast<std::uint64_t>(moved.size()))
    .add("moved_to_new_node", to_new)
    .add("moved_accounts", moved_accounts)
    .add("open_s", open_s)
    .add("up_everywhere_s", up_s)
    .add("first_stop_s", tl.first_stop)
    .add("last_stop_s", tl.last_stop)
    .add("longest_handoff_s", tl.longest)
    .add("last_handed_over_s", tl.last_handed)
    .add("serving_after_s", join_s)
    .add("restore_per_s_after_up", static_cast<double>(restored) / (join_s - up_s))
    .add("list_topics_ms", list_ms)
    .add("append_claim_ms", claim_ms)
    .add("raw_consumer_records", raw_n)
    .add("raw_consumer_per_s", raw_rate)
    .add("raw_ratio", r.events_per_s() / raw_rate)
    .add("restore_shard_alone_s", plain.seconds)
    .add("restore_shard_alone_records", plain.records)
    .add("restore_shard_alone_imported", plain.imported)
    .add("restore_shard_alone_bases", plain.bases)
    .add("restore_shard_alone_per_s", plain_rate)
    .add("restore_shard_alone_ratio", plain_rate / raw_rate)
    .add("accounts", static_cast<std::uint64_t>(n_ids))
    .add("events_per_account", deposits + 1);
}

result run_rebalance(context& ctx) { return run_rebalance_with(ctx, 9); }
result run_rebalance_history(context& ctx) { return run_rebalance_with(ctx, 39); }

const registrar reg_remote_local{{"remote-local",
                                  "cluster of 3 nodes on loopback (Kafka mock), 10k accounts: "
                                  "closed-loop deposits, each submitted on the account's owner",
                                  295, "", false, run_remote_local}};
const registrar reg_remote{{"remote",
                            "the same cluster: each deposit submitted on a node that does not "
                            "own the account (forwarded, batched); ratio vs remote-local",
                            300, "remote-local", false, run_remote}};
const registrar reg_rebalance{{"rebalance",
                               "cluster: a 4th node joins 3 holding 10k accounts x 10 events: "
                               "time until every moved shard serves, restored events/s vs a "
                               "raw consumer of the same partitions",
                               310, "", false, run_rebalance}};
const registrar reg_rebalance_history{{"rebalance-history",
                                       "rebalance with 4x the history (40 events per account): "
                                       "the join's time must not grow with it",
                                       311, "", false, run_rebalance_history}};

} // namespace
} // namespace strata::bench
