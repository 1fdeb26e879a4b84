// A fake strata::cluster::node for the router tests: several strata::system instances of
// one process, each with a fake_node, connected by a fake_network that delivers bytes
// to the receiver's handlers on its own thread (in order), with a route table per node
// that the test sets. It counts messages per channel, can cut links, and can hold back
// or lose the messages of a channel.
#pragma once

#include "strata/cluster/node.hpp"

#include <caf/logger.hpp>

#include <algorithm>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace test_cluster {

using strata::cluster::channel;
using strata::cluster::member_id;
using strata::cluster::shard_route;

class fake_network;

class fake_node final : public strata::cluster::node {
 public:
  fake_node(fake_network& net, member_id self, std::uint32_t shards)
    : net_(net), self_(std::move(self)), routes_(shards) {}

  const member_id& self() const noexcept override { return self_; }
  strata::cluster::member_view view() const override {
    std::lock_guard<std::mutex> g{mtx_};
    return view_;
  }
  /// Sets the view this node reports (no notification).
  void set_view(strata::cluster::member_view v) {
    std::lock_guard<std::mutex> g{mtx_};
    view_ = std::move(v);
  }
  std::vector<shard_route> routes() const override {
    std::lock_guard<std::mutex> g{mtx_};
    return routes_;
  }
  shard_route route(strata::cluster::shard_id s) const noexcept override {
    std::lock_guard<std::mutex> g{mtx_};
    return s < routes_.size() ? routes_[s] : shard_route{};
  }
  void on_routes_changed(std::function<void()> f) override {
    std::lock_guard<std::mutex> g{mtx_};
    changed_ = std::move(f);
  }
  bool send(const member_id& to, channel c, std::string bytes) override;
  void on_receive(channel c, handler h) override {
    std::lock_guard<std::mutex> g{mtx_};
    handlers_[c] = std::move(h);
  }
  bool leave(std::uint32_t) override { return false; }
  void stop() override {}
  std::uint64_t dropped_messages() const noexcept override { return 0; }

  /// Sets one shard's route as this node sees it (no notification).
  void set_route(std::uint32_t s, shard_route r) {
    std::lock_guard<std::mutex> g{mtx_};
    routes_[s] = r;
  }
  void set_all(shard_route r) {
    std::lock_guard<std::mutex> g{mtx_};
    for (auto& x : routes_)
      x = r;
  }
  /// Calls the router's routes-changed callback (on the caller's thread).
  void notify() {
    std::function<void()> f;
    {
      std::lock_guard<std::mutex> g{mtx_};
      f = changed_;
    }
    if (f) f();
  }
  void deliver(channel c, const member_id& from, std::string bytes) {
    handler h;
    {
      std::lock_guard<std::mutex> g{mtx_};
      auto i = handlers_.find(c);
      if (i == handlers_.end()) return;
      h = i->second;
    }
    h(from, std::move(bytes));
  }

 private:
  fake_network& net_;
  member_id self_;
  mutable std::mutex mtx_;
  std::vector<shard_route> routes_;
  strata::cluster::member_view view_;
  std::function<void()> changed_;
  std::map<channel, handler> handlers_;
};

class fake_network {
 public:
  fake_network()
    : thread_([this] {
        run();
      }) {}
  ~fake_network() {
    {
      std::lock_guard<std::mutex> g{mtx_};
      stop_ = true;
      cv_.notify_all();
    }
    thread_.join();
  }

  /// A new node "127.0.0.1:port#1" with every shard unknown.
  fake_node& add(std::uint16_t port, std::uint32_t shards = 64) {
    std::lock_guard<std::mutex> g{mtx_};
    nodes_.push_back(std::make_unique<fake_node>(*this, member_id{{"127.0.0.1", port}, 1}, shards));
    return *nodes_.back();
  }

  /// Every node routes `shard` to `owner` (local there, remote elsewhere) and hears of it.
  void set_owner(std::uint32_t shard, fake_node& owner, std::uint64_t epoch = 1) {
    for (auto& n : all())
      n->set_route(shard,
                   shard_route{n == &owner ? shard_route::kind::local : shard_route::kind::remote,
                               owner.self(), epoch});
    for (auto& n : all())
      n->notify();
  }
  void set_owner_all(fake_node& owner, std::uint32_t shards = 64) {
    for (std::uint32_t s = 0; s < shards; ++s)
      for (auto& n : all())
        n->set_route(s,
                     shard_route{n == &owner ? shard_route::kind::local : shard_route::kind::remote,
                                 owner.self(), 1});
    for (auto& n : all())
      n->notify();
  }

  void set_reachable(const member_id& to, bool up) {
    std::lock_guard<std::mutex> g{mtx_};
    if (up)
      down_.erase(to);
    else
      down_.insert(to);
  }
  /// Messages on `c` are held back (not delivered) until release(c).
  void hold(channel c) {
    std::lock_guard<std::mutex> g{mtx_};
    held_channels_.insert(c);
  }
  void release(channel c) {
    std::lock_guard<std::mutex> g{mtx_};
    held_channels_.erase(c);
    for (auto& m : held_msgs_)
      if (m.c == c) queue_.push_back(std::move(m));
    held_msgs_.erase(std::remove_if(held_msgs_.begin(), held_msgs_.end(),
                                    [&](const msg& m) {
                                      return m.c == c;
                                    }),
                     held_msgs_.end());
    cv_.notify_all();
  }
  std::size_t held_count(channel c) const {
    std::lock_guard<std::mutex> g{mtx_};
    std::size_t n = 0;
    for (auto& m : held_msgs_)
      n += m.c == c;
    return n;
  }
  /// Messages sent on `c` so far.
  std::size_t sent(channel c) const {
    std::lock_guard<std::mutex> g{mtx_};
    auto i = sent_.find(c);
    return i == sent_.end() ? 0 : i->second;
  }

  bool send(const member_id& from, const member_id& to, channel c, std::string bytes) {
    std::lock_guard<std::mutex> g{mtx_};
    if (down_.count(to)) return false;
    fake_node* target = nullptr;
    for (auto& n : nodes_)
      if (n->self() == to) target = n.get();
    if (target == nullptr) return false;
    ++sent_[c];
    msg m{target, from, c, std::move(bytes)};
    if (held_channels_.count(c))
      held_msgs_.push_back(std::move(m));
    else
      queue_.push_back(std::move(m));
    cv_.notify_all();
    return true;
  }

 private:
  struct msg {
    fake_node* to;
    member_id from;
    channel c;
    std::string bytes;
  };
  std::vector<fake_node*> all() {
    std::lock_guard<std::mutex> g{mtx_};
    std::vector<fake_node*> out;
    for (auto& n : nodes_)
      out.push_back(n.get());
    return out;
  }
  void run() {
    std::unique_lock<std::mutex> g{mtx_};
    while (true) {
      cv_.wait(g, [&] {
        return stop_ || !queue_.empty();
      });
      if (stop_) return;
      auto m = std::move(queue_.front());
      queue_.pop_front();
      g.unlock();
      m.to->deliver(m.c, m.from, std::move(m.bytes));
      // A handler that spawned an entity left this thread holding that system's CAF
      // logger, and ~actor_system waits for the last reference to it: drop it.
      caf::logger::set_current_actor_system(nullptr);
      g.lock();
    }
  }

  mutable std::mutex mtx_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::vector<std::unique_ptr<fake_node>> nodes_;
  std::deque<msg> queue_;
  std::vector<msg> held_msgs_;
  std::set<channel> held_channels_;
  std::set<member_id> down_;
  std::map<channel, std::size_t> sent_;
  std::thread thread_;
};

inline bool fake_node::send(const member_id& to, channel c, std::string bytes) {
  return net_.send(self_, to, c, std::move(bytes));
}

} // namespace test_cluster
