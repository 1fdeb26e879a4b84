// Shared pieces of the node tests: an actor_system with the middleman per node, a fake
// shard_host that records calls and checks one owner per shard, and conditions.
#pragma once

#include "strata/cluster/allocation.hpp"
#include "strata/cluster/leader.hpp"
#include "strata/cluster/node.hpp"

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/io/middleman.hpp>

#include <doctest/doctest.h>

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace strata::cluster::test {

/// One in-process "machine": its own actor_system with the middleman loaded.
struct machine {
  caf::actor_system_config cfg;
  std::unique_ptr<caf::actor_system> sys;
  machine() {
    cfg.load<caf::io::middleman>();
    cfg.set("scheduler.max-threads", 2);
    sys = std::make_unique<caf::actor_system>(cfg);
  }
};

/// One shard_host call as the fake saw it.
struct host_call {
  int host = 0;
  bool acquire = false;
  shard_id shard = 0;
  std::uint64_t epoch = 0;
};

/// Ownership as the fakes of all nodes see it together: one owner per shard at every
/// call, epochs growing by one per acquire.
struct ownership {
  std::mutex mu;
  std::map<shard_id, int> owner;
  std::map<shard_id, std::uint64_t> epoch;
  std::vector<host_call> calls;
  std::vector<std::string> problems;

  std::vector<host_call> calls_copy() {
    std::lock_guard<std::mutex> lk(mu);
    return calls;
  }
  std::vector<std::string> problems_copy() {
    std::lock_guard<std::mutex> lk(mu);
    return problems;
  }
  std::size_t held_by(int host) {
    std::lock_guard<std::mutex> lk(mu);
    std::size_t n = 0;
    for (auto& kv : owner)
      n += kv.second == host ? 1 : 0;
    return n;
  }
  /// The host stopped serving all at once (it crashed, or was downed): it holds nothing.
  void forget(int host) {
    std::lock_guard<std::mutex> lk(mu);
    for (auto i = owner.begin(); i != owner.end();)
      i = i->second == host ? owner.erase(i) : std::next(i);
  }
};

/// Records every call in `o` and answers done(true): at once on the calling thread, or
/// (async) from a thread of its own, as a real host that waits for Kafka would.
class fake_host : public shard_host {
 public:
  fake_host(int index, ownership& o, bool async = false) : index_(index), o_(o), async_(async) {}
  ~fake_host() override {
    for (auto& t : threads_)
      t.join();
  }

  void release(shard_id s, std::uint64_t e, std::function<void(bool)> done) override {
    {
      std::lock_guard<std::mutex> lk(o_.mu);
      auto i = o_.owner.find(s);
      if (i == o_.owner.end() || i->second != index_ || o_.epoch[s] != e)
        o_.problems.push_back("host " + std::to_string(index_) + " released shard " +
                              std::to_string(s) + " epoch " + std::to_string(e) +
                              " it does not hold");
      if (i != o_.owner.end() && i->second == index_) o_.owner.erase(i);
      o_.calls.push_back({index_, false, s, e});
    }
    finish(std::move(done));
  }

  /// Records the call (downed_calls(), downed_reason()) and gives up every shard.
  void downed(std::string reason) override {
    o_.forget(index_);
    std::lock_guard<std::mutex> lk(mu_);
    ++downed_calls_;
    downed_reason_ = std::move(reason);
  }
  int downed_calls() {
    std::lock_guard<std::mutex> lk(mu_);
    return downed_calls_;
  }
  std::string downed_reason() {
    std::lock_guard<std::mutex> lk(mu_);
    return downed_reason_;
  }

  void acquire(shard_id s, std::uint64_t e, std::function<void(bool)> done) override {
    {
      std::lock_guard<std::mutex> lk(o_.mu);
      if (auto i = o_.owner.find(s); i != o_.owner.end())
        o_.problems.push_back("host " + std::to_string(index_) + " acquired shard " +
                              std::to_string(s) + " while host " + std::to_string(i->second) +
                              " holds it");
      if (e != o_.epoch[s] + 1)
        o_.problems.push_back("shard " + std::to_string(s) + " acquired at epoch " +
                              std::to_string(e) + " after epoch " + std::to_string(o_.epoch[s]));
      o_.epoch[s] = e;
      o_.owner[s] = index_;
      o_.calls.push_back({index_, true, s, e});
    }
    finish(std::move(done));
  }

 private:
  void finish(std::function<void(bool)> done) {
    if (!async_) return done(true);
    std::lock_guard<std::mutex> lk(mu_);
    threads_.emplace_back([d = std::move(done)] {
      d(true);
    });
  }

  int index_;
  ownership& o_;
  bool async_;
  std::mutex mu_;
  std::vector<std::thread> threads_;
  int downed_calls_ = 0;
  std::string downed_reason_;
};

/// Milliseconds since `t0`.
inline double ms_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

/// A node on 127.0.0.1, any port, joining through `seeds` (none: the first node).
inline node_config config_with(std::vector<address> seeds) {
  node_config nc;
  nc.host = "127.0.0.1";
  nc.port = 0;
  nc.seeds = std::move(seeds);
  return nc;
}

/// node::start, failing the test on an error.
inline std::unique_ptr<node> start_node(machine& m, node_config nc, shard_host& host) {
  auto n = node::start(*m.sys, std::move(nc), host);
  if (!n) FAIL("node::start: " << m.sys->render(n.error()));
  return std::move(*n);
}

/// `count` machines, each with a fake host (index i; `answers_later(i)`: it answers
/// its calls from a thread of its own), sharing one ownership record; start() starts
/// nodes on the first of them, node 0 the seed of the others.
struct node_set {
  ownership own;
  std::vector<std::unique_ptr<machine>> machines;
  std::vector<std::unique_ptr<fake_host>> hosts;
  std::vector<std::unique_ptr<node>> nodes;

  explicit node_set(int count, const std::function<bool(int)>& answers_later = {}) {
    for (int i = 0; i < count; ++i) {
      machines.push_back(std::make_unique<machine>());
      hosts.push_back(std::make_unique<fake_host>(i, own, answers_later && answers_later(i)));
    }
  }
  node_set(const node_set&) = delete;
  node_set& operator=(const node_set&) = delete;

  /// Starts nodes 0 .. n-1 (node 0 first, the seed of the others).
  void start(int n) {
    for (int i = static_cast<int>(nodes.size()); i < n; ++i) {
      auto seeds = i == 0 ? std::vector<address>{} : std::vector<address>{nodes[0]->self().address};
      nodes.push_back(start_node(*machines[i], config_with(std::move(seeds)), *hosts[i]));
    }
  }
  /// The started nodes as plain pointers.
  std::vector<node*> all() const {
    std::vector<node*> out;
    for (auto& n : nodes)
      out.push_back(n.get());
    return out;
  }
};

/// Whether `nodes` agree: one view in which each of them is up and nothing else is
/// live, and every shard served at its allocated owner, the same on every node.
inline bool converged(const std::vector<node*>& nodes, std::uint32_t shards = 64) {
  if (nodes.empty()) return false;
  auto v0 = nodes.front()->view();
  auto r0 = nodes.front()->routes();
  auto table = allocate(v0, shards);
  for (auto* n : nodes) {
    auto v = n->view();
    if (v != v0) return false;
    auto rec = v.find(n->self());
    if (!rec || rec->status != member_status::up) return false;
    auto routes = n->routes();
    for (shard_id s = 0; s < shards; ++s) {
      auto& r = routes[s];
      if (!table[s] || r.owner != *table[s] || r.epoch != r0[s].epoch) return false;
      auto want = r.owner == n->self() ? shard_route::kind::local : shard_route::kind::remote;
      if (r.state != want) return false;
    }
  }
  std::size_t live = 0;
  for (auto& kv : v0.members())
    live += kv.second.status <= member_status::exiting ? 1 : 0;
  return live == nodes.size();
}

} // namespace strata::cluster::test
