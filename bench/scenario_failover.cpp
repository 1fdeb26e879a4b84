// Scenario `failover` (issue 11, docs/cluster.md "Failure detection and downing",
// docs/performance.md "Cluster"): three `strata-bank node` processes (replicated
// durability) over an in-process librdkafka mock cluster (3 brokers; strata.account and
// its snapshot topic, 64 partitions), 10,000 accounts opened through a client-mode
// strata::system in this process, then closed-loop deposits through the client while
// one node is killed with SIGKILL. Measured from the kill:
// - `detection_s`: a survivor logs that it finds the killed node unreachable (its
//   stderr is polled every millisecond);
// - `downed_s`: the client's gossiped view shows the killed node down (or removed);
// - `seconds`: every shard the killed node owned is served again: a probe sends one
//   deposit every 50 ms to an account of each lost shard until one is acknowledged (the
//   last shard's first success); `restore_s` = seconds - downed_s.
// Also the client's view of the time until its routes name survivors for every lost
// shard (`routes_s`), the load's deposits per second before and after the kill, and
// its commands that failed (sent to the dead node before the routes changed, they wait
// for cluster-forward-timeout-ms, 5 s, and end `timeout`: outcome unknown).
// Target (issue 11): seconds <= 5 on loopback. Only when named.
#include "scenario.hpp"

#include "bank/account.hpp"
#include "strata/cluster/node.hpp"
#include "strata/kafka/mock.hpp"
#include "strata/persistence/shard.hpp"
#include "strata/runtime/all.hpp"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>

extern char** environ;

namespace strata::bench {
namespace {

namespace sc = strata::cluster;
using clock_type = std::chrono::steady_clock;

constexpr std::uint32_t shards = 64;
constexpr std::size_t node_count = 3;
constexpr std::size_t victim = 2; // not the seed (node 0)

/// One `strata-bank node` process, SIGKILLed and reaped when destroyed.
class node_process {
 public:
  node_process(const std::vector<std::string>& argv, const std::string& log) : log_(log) {
    std::vector<std::string> args = argv;
    std::vector<char*> cargs;
    for (auto& a : args)
      cargs.push_back(a.data());
    cargs.push_back(nullptr);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 2, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int err = ::posix_spawn(&pid_, cargs[0], &fa, nullptr, cargs.data(), environ);
    posix_spawn_file_actions_destroy(&fa);
    if (err != 0) fail("failover: cannot start " + args[0] + ": " + std::strerror(err));
  }
  ~node_process() { kill9(); }
  node_process(const node_process&) = delete;
  node_process& operator=(const node_process&) = delete;

  void kill9() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    int st = 0;
    while (::waitpid(pid_, &st, 0) < 0 && errno == EINTR) {
    }
    pid_ = 0;
  }
  /// What the process wrote to stderr so far.
  std::string log() const {
    std::ifstream in(log_);
    return std::string(std::istreambuf_iterator<char>(in), {});
  }
  const std::string& log_path() const { return log_; }

 private:
  pid_t pid_ = 0;
  std::string log_;
};

std::string id_of(std::uint64_t k) { return "acct-" + std::to_string(k); }

std::uint32_t shard_of_id(const std::string& id) {
  return persistence::shard_of(strata::make_persistence_id("account", id), shards);
}

double since(clock_type::time_point t0) {
  return std::chrono::duration<double>(clock_type::now() - t0).count();
}

/// Closed-loop deposits of 1 cent through the client; remembers, per shard, when the
/// first deposit sent after `mark()` was acknowledged.
class failover_load {
 public:
  failover_load(strata::entities<bank::account>& accounts, const std::vector<std::string>& ids)
    : accounts_(accounts), ids_(ids) {}

  void start(std::size_t clients) {
    for (std::size_t c = 0; c < clients; ++c) {
      {
        std::lock_guard<std::mutex> g{mtx_};
        ++running_;
      }
      next(0x9e3779b97f4a7c15ull * (c + 1));
    }
  }
  /// Remembers how many deposits were acknowledged so far (acked_at_mark()).
  void mark() { acked_at_mark_ = acked_.load(); }
  void stop() {
    stop_ = true;
    std::unique_lock<std::mutex> g{mtx_};
    cv_.wait_for(g, std::chrono::seconds(60), [&] {
      return running_ == 0;
    });
  }
  std::uint64_t acked() const { return acked_.load(); }
  std::uint64_t acked_at_mark() const { return acked_at_mark_; }
  std::uint64_t failed() const { return failed_.load(); }

 private:
  void next(std::uint64_t rng) {
    if (stop_) {
      std::lock_guard<std::mutex> g{mtx_};
      if (--running_ == 0) cv_.notify_all();
      return;
    }
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    auto k = rng % ids_.size();
    accounts_.ask_async(ids_[k], bank::deposit{1}, [this, rng](auto r) {
      (r ? acked_ : failed_).fetch_add(1, std::memory_order_relaxed);
      next(rng);
    });
  }

  strata::entities<bank::account>& accounts_;
  const std::vector<std::string>& ids_;
  std::mutex mtx_;
  std::condition_variable cv_;
  std::size_t running_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<std::uint64_t> acked_{0}, failed_{0};
  std::uint64_t acked_at_mark_ = 0;
};

/// After the kill: every 50 ms, one deposit to a probe account of each lost shard that
/// has not answered yet (independent of the load, whose clients may be waiting on the
/// dead node until their forward timeout); the time of each shard's first success.
class shard_probe {
 public:
  shard_probe(strata::entities<bank::account>& accounts, std::map<std::uint32_t, std::string> probe,
              clock_type::time_point t0)
    : accounts_(accounts), probe_(std::move(probe)), t0_(t0) {}

  /// Sends the next round (call every 50 ms).
  void round() {
    for (auto& [shard, id] : probe_) {
      {
        std::lock_guard<std::mutex> g{mtx_};
        if (served_.count(shard)) continue;
      }
      accounts_.ask_async(id, bank::deposit{1}, [this, s = shard](auto r) {
        if (!r) return;
        std::lock_guard<std::mutex> g{mtx_};
        served_.emplace(s, std::chrono::duration<double>(clock_type::now() - t0_).count());
      });
    }
  }
  /// Seconds from the kill until the last lost shard served, once all did; else -1.
  double all_served() {
    std::lock_guard<std::mutex> g{mtx_};
    if (served_.size() < probe_.size()) return -1;
    double worst = 0;
    for (auto& kv : served_)
      worst = std::max(worst, kv.second);
    return worst;
  }

 private:
  strata::entities<bank::account>& accounts_;
  std::map<std::uint32_t, std::string> probe_;
  clock_type::time_point t0_;
  std::mutex mtx_;
  std::map<std::uint32_t, double> served_;
};

result run_failover(context& ctx) {
  const char* bank_bin = STRATA_BANK_PATH;
  auto m = strata::kafka::mock_cluster::start(3);
  if (!m) fail("kafka mock: " + m.error().to_string());
  auto mock = std::move(*m);
  for (const auto& t : {std::string("strata.account"), std::string("strata.account.snapshots")})
    if (auto st = mock->create_topic(t, static_cast<int>(shards)); !st.ok())
      fail("kafka mock: " + st.to_string());

  // The nodes.
  std::vector<std::uint16_t> ports;
  for (std::size_t i = 0; i < node_count; ++i)
    ports.push_back(free_loopback_port());
  const std::string seed = "127.0.0.1:" + std::to_string(ports[0]);
  std::vector<std::unique_ptr<node_process>> nodes;
  for (std::size_t i = 0; i < node_count; ++i) {
    auto dir = ctx.fresh_dir("failover-node" + std::to_string(i));
    std::vector<std::string> argv{bank_bin,
                                  "--data",
                                  dir.string(),
                                  "--kafka",
                                  mock->bootstrap_servers(),
                                  "--replication",
                                  "replicated",
                                  "--kafka-partitions",
                                  std::to_string(shards)};
    if (ctx.opts().nosync) argv.insert(argv.end(), {"--durability", "nosync"});
    argv.insert(argv.end(), {"node", "--port", std::to_string(ports[i]), "--seeds", seed});
    // The log beside the data directory: a data directory holds only strata's files.
    nodes.push_back(std::make_unique<node_process>(argv, dir.string() + ".err"));
  }

  // The client.
  strata::config c;
  c.data_dir = ctx.fresh_dir("failover-client").string();
  c.cluster_client = true;
  c.cluster_seeds = {{"127.0.0.1", ports[0]}};
  auto s = strata::system::open(c);
  if (!s) fail("system::open (client): " + strata::describe(s.error()));
  auto& sys = **s;
  auto* client = sys.cluster_node();
  if (client == nullptr) fail("failover: the client has no cluster node");
  auto accounts = sys.entities<bank::account>();

  // Wait until the three are up and every shard serves (at one of them).
  auto deadline = clock_type::now() + std::chrono::seconds(60);
  for (;;) {
    auto v = client->view();
    auto routes = client->routes();
    bool ready = v.with_status(sc::member_status::up).size() == node_count &&
                 routes.size() == shards &&
                 std::all_of(routes.begin(), routes.end(), [](const sc::shard_route& r) {
                   return r.state == sc::shard_route::kind::remote;
                 });
    if (ready) break;
    if (clock_type::now() > deadline) fail("failover: the three nodes did not settle in 60 s");
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }

  // 10k accounts (not timed).
  const std::size_t n_accounts = ctx.opts().quick ? 2'000 : 10'000;
  std::vector<std::string> ids;
  for (std::size_t k = 0; k < n_accounts; ++k)
    ids.push_back(id_of(k));
  {
    std::mutex mx;
    std::condition_variable cv;
    std::size_t outstanding = 0, failed = 0;
    for (auto& id : ids) {
      std::unique_lock<std::mutex> g{mx};
      cv.wait(g, [&] {
        return outstanding < 1024;
      });
      ++outstanding;
      g.unlock();
      accounts.ask_async(id, bank::open_account{"bench"}, [&](auto r) {
        std::lock_guard<std::mutex> g2{mx};
        --outstanding;
        if (!r && !strata::rejection_of<bank::account>(r.error())) ++failed;
        cv.notify_all();
      });
    }
    std::unique_lock<std::mutex> g{mx};
    cv.wait(g, [&] {
      return outstanding == 0;
    });
    if (failed > 0) fail("failover: " + std::to_string(failed) + " opens failed");
  }

  // The victim's shards, as the client routes them.
  const sc::address victim_addr{"127.0.0.1", ports[victim]};
  std::set<std::uint32_t> lost;
  {
    auto routes = client->routes();
    for (std::uint32_t sh = 0; sh < shards; ++sh)
      if (routes[sh].owner.address == victim_addr) lost.insert(sh);
  }
  if (lost.empty()) fail("failover: the victim owns no shard");

  failover_load load{accounts, ids};
  load.start(256);
  std::this_thread::sleep_for(std::chrono::seconds(2)); // steady load before the kill
  const auto before_rate = static_cast<double>(load.acked()) / 2.0;

  std::map<std::uint32_t, std::string> probe_ids;
  for (const auto& id : ids)
    if (lost.count(shard_of_id(id)) && !probe_ids.count(shard_of_id(id)))
      probe_ids.emplace(shard_of_id(id), id);
  load.mark();
  const auto t0 = clock_type::now();
  nodes[victim]->kill9();
  auto probe = std::make_unique<shard_probe>(accounts, probe_ids, t0);
  auto next_round = t0;

  double detection = -1, downed = -1, routes_s = -1, served = -1;
  deadline = t0 + std::chrono::seconds(60);
  while (clock_type::now() < deadline &&
         (detection < 0 || downed < 0 || routes_s < 0 || served < 0)) {
    if (detection < 0)
      for (std::size_t i = 0; i < node_count; ++i)
        if (i != victim && nodes[i]->log().find("unreachable") != std::string::npos)
          detection = since(t0);
    if (downed < 0) {
      auto v = client->view();
      for (auto& [id, rec] : v.members())
        if (id.address == victim_addr &&
            (rec.status == sc::member_status::down || rec.status == sc::member_status::removed))
          downed = since(t0);
    }
    if (routes_s < 0) {
      auto routes = client->routes();
      bool all = true;
      for (auto sh : lost)
        all = all && routes[sh].state == sc::shard_route::kind::remote &&
              routes[sh].owner.address != victim_addr;
      if (all) routes_s = since(t0);
    }
    if (served < 0) {
      if (clock_type::now() >= next_round) {
        probe->round();
        next_round += std::chrono::milliseconds(50);
      }
      served = probe->all_served();
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  const auto acked_after_kill = load.acked() - load.acked_at_mark();
  const auto after_s = since(t0);
  load.stop();
  sys.shutdown(); // answers whatever is still outstanding, probes included
  probe.reset();
  if (served < 0 || downed < 0)
    fail("failover: the killed node's shards did not serve again within 60 s (detection " +
         std::to_string(detection) + " s, downed " + std::to_string(downed) + " s)");

  result r;
  r.events = 0; // a time, not a rate: `seconds` is the failover
  r.seconds = served;
  r.add("deposits_acked_after_kill", acked_after_kill);
  r.add("target_s", 5.0);
  r.add("detection_s", detection);
  r.add("downed_s", downed);
  r.add("restore_s", served - downed);
  r.add("routes_s", routes_s);
  r.add("lost_shards", static_cast<std::uint64_t>(lost.size()));
  r.add("accounts", static_cast<std::uint64_t>(n_accounts));
  r.add("deposits_per_s_before", before_rate);
  r.add("deposits_per_s_after_kill", static_cast<double>(acked_after_kill) / after_s);
  r.add("failed_commands", load.failed());
  return r;
}

const registrar reg{{"failover",
                     "kill -9 one of 3 node processes under load: detection, downing and "
                     "restore times until its shards serve again (target <= 5 s)",
                     220, "", false, run_failover}};

} // namespace
} // namespace strata::bench
