#include "strata/cluster/node.hpp"

#include "node_actor.hpp"
#include "node_shared.hpp"

#include <caf/all.hpp>
#include <caf/io/middleman.hpp>

#include <chrono>
#include <iostream>
#include <random>
#include <thread>

namespace strata::cluster {

namespace {

using detail::node_shared;
using detail::node_snapshot;

/// Later processes get larger incarnations: leader_actions downs an incarnation of an
/// address once the view knows a newer (larger) one, so a restarted node must not draw
/// a smaller one than its predecessor (it would be downed itself). Milliseconds since
/// the epoch in the high 44 bits (until the year 2527), 20 random bits below so that
/// processes started in one millisecond differ. Assumes the wall clock does not go back
/// between two starts of one address by more than the restart took.
std::uint64_t draw_incarnation() {
  std::random_device rd;
  auto ms = static_cast<std::uint64_t>(std::chrono::system_clock::now().time_since_epoch() /
                                       std::chrono::milliseconds(1));
  auto x = (ms << 20) | (std::uint64_t{rd()} & 0xfffffu);
  return x == 0 ? 1 : x;
}

/// The connector thread: connects to the addresses the actor asks for, one attempt per
/// request (the actor asks again every gossip round while it still wants one: that is
/// the retry). remote_actor blocks, which is why it never runs inside an actor.
void connector_loop(std::shared_ptr<node_shared> sh, caf::actor_system* sys, caf::actor target) {
  std::map<std::string, std::uint64_t> failures;
  std::unique_lock<std::mutex> lk(sh->mu);
  while (!sh->stopping) {
    if (sh->connect_queue.empty()) {
      sh->connect_cv.wait(lk, [&] {
        return sh->stopping || !sh->connect_queue.empty();
      });
      continue;
    }
    auto a = sh->connect_queue.front();
    sh->connect_queue.pop_front();
    auto key = to_string(a);
    lk.unlock();
    auto h = sys->middleman().remote_actor(a.host, a.port);
    if (h) {
      failures.erase(key);
      caf::anon_send(target, detail::peer_atom::value, key, *h);
    } else if (auto n = ++failures[key]; n == 1 || n % 100 == 0) {
      std::cerr << "strata: cluster: cannot connect to " << key << " (attempt " << n
                << ", retrying every gossip round): " << sys->render(h.error()) << "\n";
    }
    lk.lock();
    if (!h) sh->pending.erase(key); // their senders' deadlines answer them
    sh->connecting.erase(key);
  }
}

class node_impl final : public node {
 public:
  node_impl(caf::actor_system& sys, node_config cfg, std::shared_ptr<node_shared> sh,
            caf::actor actor, member_id self, std::uint16_t published_port)
    : sys_(sys), cfg_(std::move(cfg)), shared_(std::move(sh)), actor_(std::move(actor)),
      self_(std::move(self)), self_text_(to_string(self_)), published_port_(published_port) {
    connector_ = std::thread(connector_loop, shared_, &sys_, actor_);
  }
  ~node_impl() override { stop(); }

  const member_id& self() const noexcept override { return self_; }

  member_view view() const override {
    auto s = shared_->load();
    return s ? s->view : member_view{};
  }

  reachability reachability_table() const override {
    auto s = shared_->load();
    return s ? s->reach : reachability{};
  }

  std::vector<shard_route> routes() const override {
    auto s = shared_->load();
    return s ? s->routes : std::vector<shard_route>(cfg_.shards);
  }

  shard_route route(shard_id shard) const noexcept override {
    auto s = shared_->load();
    if (!s || shard >= s->routes.size()) return {};
    return s->routes[shard];
  }

  void on_routes_changed(std::function<void()> f) override {
    std::lock_guard<std::mutex> lk(shared_->mu);
    shared_->routes_changed = std::move(f);
  }

  bool send(const member_id& to, channel c, std::string bytes) override {
    if (stopped_) return false;
    caf::actor h;
    {
      std::lock_guard<std::mutex> lk(shared_->mu);
      const auto addr = to_string(to.address);
      if (auto i = shared_->by_sender.find(to_string(to)); i != shared_->by_sender.end())
        h = i->second;
      else if (auto j = shared_->by_addr.find(addr); j != shared_->by_addr.end())
        h = j->second;
      else if (is_live_member(to)) // connecting (a client's first commands, a new member)
        return hold_until_connected(to.address, addr, c, std::move(bytes));
    }
    if (!h) return false;
    // As the node actor, so that the receiver can answer through current_sender().
    caf::send_as(actor_, h, detail::wire_atom::value, static_cast<std::uint8_t>(c), self_text_,
                 std::move(bytes));
    return true;
  }

  /// Whether `to` is a live member of the current view.
  bool is_live_member(const member_id& to) const {
    auto snap = shared_->load();
    if (!snap) return false;
    auto rec = snap->view.find(to);
    return rec && static_cast<std::uint8_t>(rec->status) <=
                    static_cast<std::uint8_t>(member_status::exiting);
  }

  /// Queues a message for a member being connected to (node_shared::pending) and asks
  /// the connector for it. Caller holds shared_->mu.
  bool hold_until_connected(const address& a, const std::string& key, channel c,
                            std::string bytes) {
    auto& q = shared_->pending[key];
    if (q.size() >= detail::pending_max) return false;
    q.emplace_back(static_cast<std::uint8_t>(c), std::move(bytes));
    if (shared_->connecting.insert(key).second) {
      shared_->connect_queue.push_back(a);
      shared_->connect_cv.notify_all();
    }
    return true;
  }

  void on_receive(channel c, handler h) override {
    auto i = static_cast<std::size_t>(c);
    if (i == 0 || i > detail::channel_max) return;
    std::lock_guard<std::mutex> lk(shared_->mu);
    shared_->handlers[i] = std::move(h);
  }

  bool leave(std::uint32_t timeout_ms) override;
  void stop() override;

  std::uint64_t dropped_messages() const noexcept override { return shared_->dropped.load(); }

  bool is_downed() const noexcept override { return shared_->downed.load(); }
  bool holds_write_lease() const noexcept override {
    if (cfg_.client || shared_->downed.load()) return false;
    auto now = std::chrono::steady_clock::now().time_since_epoch() / std::chrono::nanoseconds(1);
    return now < shared_->lease_until_ns.load(std::memory_order_acquire);
  }
  std::uint32_t write_lease_ms() const noexcept override { return shared_->lease_ms; }

  std::string downed_reason() const override {
    std::lock_guard<std::mutex> lk(shared_->mu);
    return shared_->downed_reason;
  }

 private:
  /// Whether this node's leave has finished: it is exiting (or later), holds no shard,
  /// and every owned shard serves (its former shards live elsewhere).
  bool left(const node_snapshot& s) const;

  caf::actor_system& sys_;
  node_config cfg_;
  std::shared_ptr<node_shared> shared_;
  caf::actor actor_;
  member_id self_;
  std::string self_text_;
  std::uint16_t published_port_ = 0;
  std::thread connector_;
  std::atomic<bool> stopped_{false};
};

bool node_impl::left(const node_snapshot& s) const {
  auto rec = s.view.find(self_);
  if (!rec ||
      static_cast<std::uint8_t>(rec->status) < static_cast<std::uint8_t>(member_status::exiting))
    return false;
  for (auto& st : s.table) {
    if (st.phase == handoff_phase::unowned) continue;
    if (st.holder == self_ || st.phase != handoff_phase::serving) return false;
  }
  return true;
}

bool node_impl::leave(std::uint32_t timeout_ms) {
  if (cfg_.client) return true;
  if (stopped_) return false;
  caf::anon_send(actor_, detail::leave_req_atom::value);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  std::unique_lock<std::mutex> lk(shared_->mu);
  return shared_->changed.wait_until(lk, deadline, [&] {
    auto s = shared_->load();
    return s && left(*s);
  });
}

void node_impl::stop() {
  if (stopped_.exchange(true)) return;
  {
    std::lock_guard<std::mutex> lk(shared_->mu);
    shared_->stopping = true;
  }
  shared_->connect_cv.notify_all();
  if (connector_.joinable()) connector_.join();
  if (published_port_ != 0) static_cast<void>(sys_.middleman().unpublish(actor_, published_port_));
  {
    caf::scoped_actor s{sys_};
    s->monitor(actor_);
    s->send_exit(actor_, caf::exit_reason::user_shutdown);
    s->receive([](const caf::down_msg&) {},
               caf::after(std::chrono::seconds(10)) >>
                 [] {
                   std::cerr << "strata: cluster: the node actor did not stop within 10 s\n";
                 });
  }
  std::lock_guard<std::mutex> lk(shared_->mu);
  shared_->by_addr.clear();
  shared_->by_sender.clear();
  shared_->handlers = {};
  shared_->routes_changed = nullptr;
}

caf::error check_failure_settings(const node_config& cfg) {
  auto bad = [](const std::string& what) {
    return caf::make_error(caf::sec::invalid_argument, "cluster " + what);
  };
  if (cfg.heartbeat_interval_ms == 0 || cfg.heartbeat_interval_ms > 60000)
    return bad("heartbeat interval must be 1..60000 ms, got " +
               std::to_string(cfg.heartbeat_interval_ms));
  if (!(cfg.phi_threshold > 0.0 && cfg.phi_threshold <= 100.0))
    return bad("phi threshold must be > 0 and <= 100, got " + std::to_string(cfg.phi_threshold));
  if (cfg.acceptable_pause_ms > 60000)
    return bad("acceptable pause must be 0..60000 ms, got " +
               std::to_string(cfg.acceptable_pause_ms));
  if (cfg.stable_after_ms == 0 || cfg.stable_after_ms > 600000)
    return bad("stable-after must be 1..600000 ms, got " + std::to_string(cfg.stable_after_ms));
  if (cfg.self_down_lead_ms >= cfg.stable_after_ms)
    return bad("self-down lead (" + std::to_string(cfg.self_down_lead_ms) +
               " ms) must be less than stable-after (" + std::to_string(cfg.stable_after_ms) +
               " ms): the losing side must stop before the winning side decides");
  return caf::none;
}

caf::error check_config(const caf::actor_system& sys, const node_config& cfg) {
  if (!sys.has_middleman())
    return caf::make_error(caf::sec::invalid_argument,
                           "strata::cluster::node needs CAF's middleman: call "
                           "cfg.load<caf::io::middleman>() before creating the actor_system");
  if (cfg.shards == 0)
    return caf::make_error(caf::sec::invalid_argument, "cluster shards must be >= 1");
  if (cfg.gossip_interval_ms == 0)
    return caf::make_error(caf::sec::invalid_argument, "cluster gossip interval must be >= 1 ms");
  if (cfg.host.empty())
    return caf::make_error(caf::sec::invalid_argument, "cluster host must not be empty");
  if (auto err = check_failure_settings(cfg)) return err;
  for (auto& s : cfg.seeds)
    if (s.host.empty() || s.port == 0)
      return caf::make_error(caf::sec::invalid_argument,
                             "cluster seed '" + to_string(s) + "' needs a host and a port");
  return caf::none;
}

} // namespace

caf::expected<std::unique_ptr<node>> node::start(caf::actor_system& sys, node_config cfg,
                                                 shard_host& host) {
  if (auto err = check_config(sys, cfg)) return err;
  if (cfg.incarnation == 0) cfg.incarnation = draw_incarnation();
  auto sh = std::make_shared<node_shared>();
  sh->lease_ms = detail::lease_ms_of(cfg); // a search over phi: once, not per heartbeat
  auto actor = sys.spawn<detail::node_actor>(sh, cfg, &host, cfg.client);
  std::uint16_t port = 0;
  if (!cfg.client) {
    auto p = sys.middleman().publish(actor, cfg.port, cfg.host.c_str(), true);
    if (!p) {
      caf::anon_send_exit(actor, caf::exit_reason::user_shutdown);
      return caf::make_error(caf::sec::cannot_open_port,
                             "cannot listen on " + to_string(address{cfg.host, cfg.port}) +
                               " for the cluster: " + sys.render(p.error()) +
                               " (is the port in use?)");
    }
    port = *p;
  }
  member_id self{address{cfg.host, port}, cfg.incarnation};
  if (!cfg.client) host.started(self); // before init: nothing is released or acquired yet
  caf::anon_send(actor, detail::init_atom::value, to_string(self), port);
  return std::unique_ptr<node>(
    new node_impl(sys, std::move(cfg), std::move(sh), std::move(actor), std::move(self), port));
}

} // namespace strata::cluster
