#include "node_actor.hpp"

#include "strata/cluster/allocation.hpp"
#include "strata/cluster/leader.hpp"

#include <caf/all.hpp>

#include <algorithm>
#include <iostream>

namespace strata::cluster::detail {

namespace {

bool is_live(member_status s) noexcept {
  return s == member_status::joining || s == member_status::up || s == member_status::leaving ||
         s == member_status::exiting;
}

/// Handles remembered per map, at most (members plus clients that sent to this node;
/// a handle is forgotten when its connection goes down).
constexpr std::size_t peers_max = 10000;

bool same_route(const shard_route& a, const shard_route& b) noexcept {
  return a.state == b.state && a.owner == b.owner && a.epoch == b.epoch;
}

detector_config detector_of(const node_config& c) {
  detector_config d;
  d.threshold = c.phi_threshold;
  d.heartbeat_interval = milliseconds(c.heartbeat_interval_ms);
  d.acceptable_pause = milliseconds(c.acceptable_pause_ms);
  return d;
}

downing_config downing_of(const node_config& c) {
  downing_config d;
  d.stable_after = milliseconds(c.stable_after_ms);
  d.self_down_lead = milliseconds(c.self_down_lead_ms);
  return d;
}

std::string list(const std::vector<member_id>& ms) {
  std::string out;
  for (const auto& m : ms)
    out += (out.empty() ? "" : ", ") + to_string(m);
  return out;
}

/// A downed node routes nothing to itself: what it held is `unknown` until the
/// surviving members have failed it over.
shard_route route_of(const shard_state& s, const member_id& self, bool downed) {
  shard_route r;
  r.epoch = s.epoch;
  if (s.holder) r.owner = *s.holder;
  if (s.phase == handoff_phase::unowned || (downed && s.holder == self))
    r.state = shard_route::kind::unknown;
  else if (s.phase != handoff_phase::serving)
    r.state = shard_route::kind::moving;
  else
    r.state = *s.holder == self ? shard_route::kind::local : shard_route::kind::remote;
  return r;
}

} // namespace

node_actor::node_actor(caf::actor_config& ac, std::shared_ptr<node_shared> shared, node_config cfg,
                       shard_host* host, bool client)
  : caf::event_based_actor(ac), shared_(std::move(shared)), cfg_(std::move(cfg)), host_(host),
    client_(client), table_(cfg_.shards), progress_(cfg_.shards), rng_(cfg_.incarnation),
    detectors_(detector_of(cfg_)), downing_(downing_of(cfg_)),
    last_change_(std::chrono::steady_clock::now()) {}

caf::behavior node_actor::make_behavior() {
  // Until the port is bound and the identity known, everything else waits its turn.
  set_default_handler(caf::skip);
  return {
    [this](init_atom, const std::string& self_text, std::uint16_t port) {
      on_init(self_text, port);
      become(running());
    },
  };
}

caf::behavior node_actor::running() {
  set_default_handler(
    [this](caf::scheduled_actor*, caf::message_view& x) -> caf::result<caf::message> {
      drop("unexpected message " + to_string(x.content()).substr(0, 200));
      return caf::make_error(caf::sec::unexpected_message);
    });
  set_down_handler([this](caf::down_msg& dm) {
    on_down(dm);
  });
  send(this, tick_atom::value);
  send(this, hb_tick_atom::value);
  return {
    [this](wire_atom, std::uint8_t ch, const std::string& from, std::string& bytes) {
      on_wire(ch, from, bytes);
    },
    [this](tick_atom) {
      on_tick();
      delayed_send(this, std::chrono::milliseconds(cfg_.gossip_interval_ms), tick_atom::value);
    },
    [this](hb_tick_atom) {
      on_heartbeat_tick();
      delayed_send(this, std::chrono::milliseconds(cfg_.heartbeat_interval_ms),
                   hb_tick_atom::value);
    },
    [this](peer_atom, const std::string& addr, const caf::actor& h) {
      remember(&node_shared::by_addr, addr, h);
      flush_pending(addr, h);
      send_gossip(h, wire::gossip_kind::push); // join / catch up without waiting a round
    },
    [this](leave_req_atom) {
      if (client_ || downed_ || !view_.set_status(self_, member_status::leaving)) return;
      leave_requested_ = true;
      broadcast();
      after_change();
    },
    [this](host_done_atom, std::uint8_t kind, shard_id shard, std::uint64_t epoch, bool ok) {
      on_host_done(kind, shard, epoch, ok);
    },
  };
}

void node_actor::on_init(const std::string& self_text, std::uint16_t port) {
  self_text_ = self_text;
  self_ = member_id{cluster::address{cfg_.host, port}, cfg_.incarnation};
  if (!client_) view_.add_joining(self_);
  publish();
}

void node_actor::drop(const std::string& why) {
  auto n = ++shared_->dropped;
  // Bounded logging: the first ten, then one in a thousand.
  if (n <= 10 || n % 1000 == 0)
    std::cerr << "strata: cluster: node " << self_text_ << " dropped a message (" << n
              << " so far): " << why << "\n";
}

void node_actor::remember(std::map<std::string, caf::actor> node_shared::*map,
                          const std::string& key, const caf::actor& h) {
  if (!h) return;
  {
    std::lock_guard<std::mutex> lk(shared_->mu);
    auto& m = (*shared_).*map;
    auto i = m.find(key);
    if (i != m.end() && i->second == h) return;
    if (i == m.end() && m.size() >= peers_max) return; // send() to it says not reachable
    m[key] = h;
  }
  monitor(h);
}

void node_actor::flush_pending(const std::string& addr, const caf::actor& h) {
  if (!h) return;
  std::vector<std::pair<std::uint8_t, std::string>> out;
  {
    std::lock_guard<std::mutex> lk(shared_->mu);
    auto i = shared_->pending.find(addr);
    if (i == shared_->pending.end()) return;
    out.swap(i->second);
    shared_->pending.erase(i);
  }
  for (auto& [ch, bytes] : out)
    send(h, wire_atom::value, ch, self_text_, std::move(bytes));
}

void node_actor::on_wire(std::uint8_t ch, const std::string& from, std::string& bytes) {
  auto sender = wire::parse_member_id(from);
  if (!sender) return drop("sender '" + from.substr(0, 80) + "' is not a member id");
  if (ch == 0 || ch > channel_max) return drop("unknown channel " + std::to_string(ch));
  if (bytes.size() > message_max_bytes)
    return drop("a message of " + std::to_string(bytes.size()) + " bytes on channel " +
                std::to_string(ch) + " from " + from.substr(0, 80) + " (at most " +
                std::to_string(message_max_bytes) + ")");
  auto peer = caf::actor_cast<caf::actor>(current_sender());
  remember(&node_shared::by_sender, from, peer);
  flush_pending(to_string(sender->address), peer);
  auto c = static_cast<channel>(ch);
  if (c == channel::gossip) return on_gossip(*sender, bytes);
  if (c == channel::heartbeat) return on_heartbeat(*sender, bytes);
  if (c == channel::handoff) return drop("channel handoff is reserved (no message uses it yet)");
  node::handler h;
  {
    std::lock_guard<std::mutex> lk(shared_->mu);
    h = shared_->handlers[ch];
  }
  if (!h) return drop("no handler on channel " + std::to_string(ch));
  h(*sender, std::move(bytes));
}

void node_actor::on_gossip(const member_id& from, const std::string& bytes) {
  auto g = wire::decode_gossip(bytes, cfg_.shards);
  if (!g) return drop("malformed gossip from " + to_string(from));
  for (auto& kv : g->view.members())
    if (kv.first != self_) contacted_ = true;
  auto merged = merge(view_, g->view);
  auto table = wire::merge_tables(table_, g->table);
  bool changed = merged != view_ || !(table == table_);
  view_ = std::move(merged);
  table_ = std::move(table);
  reach_.merge_from(g->reach);
  note_changes(std::chrono::steady_clock::now());
  // Before anything else: a node the cluster declared down must not serve one more
  // command (a frozen node waking up learns it here).
  if (check_self_down("in gossip from " + to_string(from))) return;
  if (g->kind == wire::gossip_kind::push)
    send_gossip(caf::actor_cast<caf::actor>(current_sender()), wire::gossip_kind::reply);
  if (changed) after_change();
}

void node_actor::on_heartbeat(const member_id& from, const std::string& bytes) {
  auto hb = wire::decode_heartbeat(bytes);
  if (!hb) return drop("malformed heartbeat from " + to_string(from));
  if (client_ || downed_) return;
  auto rec = view_.find(from);
  if (!rec || !is_live(rec->status)) return;
  auto now = std::chrono::steady_clock::now();
  if (!hb->echo) {
    // A ping: the detector judges the arrivals; the echo returns the pinger's time.
    detectors_.heartbeat(from, now);
    hb->echo = true;
    send(caf::actor_cast<caf::actor>(current_sender()), wire_atom::value,
         static_cast<std::uint8_t>(channel::heartbeat), self_text_, wire::encode_heartbeat(*hb));
    return;
  }
  // An echo of this node's ping: `from` was alive after the ping's time, which is on
  // this node's clock (never later than now).
  auto sent = time_point(std::chrono::nanoseconds(hb->sent_ns));
  if (sent > now) return drop("heartbeat echo from " + to_string(from) + " names a future time");
  auto& heard = last_heard_[from];
  heard = std::max(heard, sent);
  refresh_lease(now);
}

std::uint32_t lease_ms_of(const node_config& cfg) {
  // As long as a node cut off at its last contact takes to down itself (its detectors
  // give up, then stable_after - self_down_lead): the timing argument in docs/cluster.md
  // puts that before the earliest moment the others can down it.
  auto d = detection_delay(detector_of(cfg), milliseconds(cfg.heartbeat_interval_ms));
  return static_cast<std::uint32_t>(d.count()) + cfg.stable_after_ms - cfg.self_down_lead_ms;
}

void node_actor::refresh_lease(time_point now) {
  if (client_ || downed_ || self_text_.empty()) return;
  auto me = view_.find(self_);
  if (!me || !is_observer_status(me->status)) return; // holds no shard: nothing to write
  // The counted members (as downing counts them), most recently heard first; this
  // node hears itself now.
  std::vector<std::pair<time_point, member_id>> heard{{now, self_}};
  std::size_t counted = 1;
  member_id lowest = self_;
  for (auto& [m, rec] : view_.members()) {
    if (m == self_ || !is_observer_status(rec.status)) continue;
    ++counted;
    lowest = std::min(lowest, m);
    if (auto i = last_heard_.find(m); i != last_heard_.end()) heard.emplace_back(i->second, m);
  }
  for (auto i = last_heard_.begin(); i != last_heard_.end();) {
    auto rec = view_.find(i->first);
    i = rec && is_live(rec->status) ? std::next(i) : last_heard_.erase(i);
  }
  std::sort(heard.begin(), heard.end(), [](const auto& a, const auto& b) {
    return a.first > b.first;
  });
  // The smallest group heard most recently that would survive keep-majority (more than
  // half, or exactly half holding the lowest member): the lease runs from the time the
  // last of them was heard.
  bool has_lowest = false;
  for (std::size_t k = 1; k <= heard.size(); ++k) {
    has_lowest = has_lowest || heard[k - 1].second == lowest;
    if (2 * k > counted || (2 * k == counted && has_lowest)) {
      auto until = heard[k - 1].first + milliseconds(shared_->lease_ms);
      shared_->lease_until_ns.store(until.time_since_epoch() / std::chrono::nanoseconds(1),
                                    std::memory_order_release);
      return;
    }
  }
}

void node_actor::on_heartbeat_tick() {
  if (client_ || downed_ || self_text_.empty()) return;
  auto now = std::chrono::steady_clock::now();
  refresh_lease(now);
  auto bytes =
    wire::encode_heartbeat({false, now.time_since_epoch() / std::chrono::nanoseconds(1)});
  // All-to-all: fine for the small clusters strata targets (docs/cluster.md).
  for (auto& kv : view_.members()) {
    if (kv.first == self_ || !is_live(kv.second.status)) continue;
    if (auto h = handle_of(kv.first))
      send(h, wire_atom::value, static_cast<std::uint8_t>(channel::heartbeat), self_text_, bytes);
  }
}

bool node_actor::record_verdicts(time_point now) {
  for (auto& kv : view_.members()) {
    // A member that turned up is expected to send from now on: one that never does
    // (it crashed right after joining) is then found like any other.
    if (kv.first != self_ && is_observer_status(kv.second.status) && !detectors_.phi(kv.first, now))
      detectors_.heartbeat(kv.first, now);
  }
  bool changed = false;
  for (auto& m : detectors_.monitored()) {
    auto rec = view_.find(m);
    if (!rec || !is_live(rec->status)) {
      detectors_.remove(m);
      continue;
    }
    if (!is_observer_status(rec->status)) continue;
    bool available = detectors_.is_available(m, now);
    auto verdict = available ? reachability_status::reachable : reachability_status::unreachable;
    if (!reach_.record(self_, m, verdict)) continue;
    changed = true;
    std::cerr << "strata: cluster: node " << self_text_ << ": member " << to_string(m)
              << (available
                    ? " is reachable again"
                    : " is unreachable (phi " + std::to_string(*detectors_.phi(m, now)) + ")")
              << "\n";
  }
  return changed;
}

void node_actor::failure_round(time_point now) {
  if (client_ || downed_ || self_text_.empty()) return;
  bool recorded = record_verdicts(now);
  reach_.prune(view_);
  note_changes(now);
  if (recorded) broadcast();
  apply_downing(decide_downing(view_, reach_, self_, downing_, last_change_, now), now);
}

void node_actor::apply_downing(const downing_decision& d, time_point now) {
  if (d.kind == downing_kind::down_self) {
    auto sides = downing_sides_of(view_, reach_);
    go_down("on the losing side of a partition: unreachable " + list(sides.unreachable) +
            "; this side has " + std::to_string(sides.side.size()) + " of " +
            std::to_string(sides.counted.size()) + " members");
    return;
  }
  if (d.kind != downing_kind::down_members) return;
  // The leader of the view after downing acts: the current leader may be among them.
  auto next = view_;
  for (auto& m : d.members)
    next.set_status(m, member_status::down);
  if (!may_lead() || leader_of(next) != self_ || next == view_) return;
  std::cerr << "strata: cluster: node " << self_text_ << " (leader) downs unreachable "
            << list(d.members) << "\n";
  view_ = std::move(next);
  note_changes(now);
  broadcast();
  after_change();
}

void node_actor::note_changes(time_point now) {
  auto v = view_.version();
  auto d = reach_.digest();
  if (v == seen_view_version_ && d == seen_reach_digest_) return;
  seen_view_version_ = v;
  seen_reach_digest_ = d;
  last_change_ = now;
}

bool node_actor::check_self_down(const std::string& where) {
  if (client_ || downed_ || self_text_.empty()) return downed_;
  auto rec = view_.find(self_);
  if (!rec || (rec->status != member_status::down && rec->status != member_status::removed))
    return false;
  // Removed after its own graceful leave: it holds no shard and keeps forwarding what
  // stale routes still send it until the process stops; that is not a downing.
  if (rec->status == member_status::removed && leave_requested_) return false;
  go_down("the cluster declared this node " + std::string(to_string(rec->status)) + " (" + where +
          ")");
  return true;
}

void node_actor::go_down(const std::string& reason) {
  if (downed_) return;
  downed_ = true;
  view_.set_status(self_, member_status::down); // no-op when already down or removed
  {
    std::lock_guard<std::mutex> lk(shared_->mu);
    shared_->downed_reason = reason;
  }
  shared_->downed.store(true);
  publish(); // no route says local from here on
  std::cerr << "strata: cluster: node " << self_text_
            << " is DOWN and serves no shard any more: " << reason << "\n";
  host_->downed(reason);
  broadcast(); // the others fail its shards over without waiting for their detectors
}

bool node_actor::fail_over_down_holders() {
  auto targets = allocate(view_, cfg_.shards);
  std::map<member_id, std::size_t> moved;
  for (shard_id s = 0; s < cfg_.shards; ++s) {
    const auto& st = table_[s];
    if (st.phase == handoff_phase::unowned || !st.holder || !targets[s]) continue;
    auto rec = view_.find(*st.holder);
    if (!rec || (rec->status != member_status::down && rec->status != member_status::removed))
      continue;
    auto r = step(st, fail_over{*st.holder, st.epoch, *targets[s]});
    if (!r.applied) continue;
    ++moved[*st.holder];
    table_[s] = r.state;
  }
  for (auto& [m, n] : moved)
    std::cerr << "strata: cluster: node " << self_text_ << " (leader) fails over " << n
              << " shard(s) of down member " << to_string(m) << "\n";
  return !moved.empty();
}

void node_actor::on_tick() {
  failure_round(std::chrono::steady_clock::now());
  request_connects();
  auto targets = gossip_targets();
  if (!targets.empty())
    send_gossip(targets[std::uniform_int_distribution<std::size_t>(0, targets.size() - 1)(rng_)],
                wire::gossip_kind::push);
  leader_round();
  drive_local();
  publish();
}

void node_actor::on_host_done(std::uint8_t kind, shard_id shard, std::uint64_t epoch, bool ok) {
  if (shard >= progress_.size()) return;
  auto& p = progress_[shard];
  if (kind == 1) {
    if (ok)
      p.release_done = epoch;
    else if (p.release_started == epoch)
      p.release_started = 0; // try again next round
  } else {
    if (ok)
      p.acquire_done = epoch;
    else if (p.acquire_started == epoch)
      p.acquire_started = 0;
  }
  drive_local();
}

void node_actor::on_down(const caf::down_msg& dm) {
  std::lock_guard<std::mutex> lk(shared_->mu);
  for (auto* m : {&shared_->by_addr, &shared_->by_sender})
    for (auto i = m->begin(); i != m->end();)
      i = i->second.address() == dm.source ? m->erase(i) : std::next(i);
  // request_connects() on the next tick reconnects to members still in the view.
}

bool node_actor::may_lead() const {
  if (client_) return false;
  bool bootstrap = cfg_.seeds.empty() || cfg_.seeds.front() == self_.address;
  return bootstrap || contacted_;
}

bool node_actor::is_leader() const { return may_lead() && leader_of(view_) == self_; }

void node_actor::leader_round() {
  if (downed_ || !is_leader()) return;
  auto next = leader_actions(view_, holders(table_));
  bool changed = next != view_;
  view_ = std::move(next);
  changed = fail_over_down_holders() || changed;
  changed = assign_unowned() || changed;
  if (!changed) return;
  broadcast();
  drive_local();
  publish();
}

bool node_actor::assign_unowned() {
  auto targets = allocate(view_, cfg_.shards);
  bool changed = false;
  for (shard_id s = 0; s < cfg_.shards; ++s) {
    if (table_[s].phase != handoff_phase::unowned || !targets[s]) continue;
    table_[s] = step(table_[s], retarget{targets[s]}).state;
    changed = true;
  }
  return changed;
}

bool node_actor::advance(shard_id s, const std::optional<member_id>& target) {
  auto st = step(table_[s], retarget{target}).state;
  auto& p = progress_[s];
  auto e = st.epoch;
  auto me = caf::actor_cast<caf::actor>(this);
  if (st.phase == handoff_phase::stopping) {
    if (p.release_started != e) {
      p.release_started = e;
      host_->release(s, e, [me, s, e](bool ok) {
        caf::anon_send(me, host_done_atom::value, std::uint8_t{1}, s, e, ok);
      });
    }
    if (p.release_done == e) st = step(st, flushed{self_, e}).state;
  }
  if (st.phase == handoff_phase::flushed && st.target && st.target != st.holder)
    st = step(st, hand_over{self_, e}).state;
  if (st.phase == handoff_phase::handed_over && st.holder == self_) {
    e = st.epoch;
    if (p.acquire_started != e) {
      p.acquire_started = e;
      host_->acquire(s, e, [me, s, e](bool ok) {
        caf::anon_send(me, host_done_atom::value, std::uint8_t{2}, s, e, ok);
      });
    }
    st = step(st, restore_begun{self_, e}).state;
  }
  // Serving starts only with the write lease: a node just up (its first echoes still on
  // the way) would otherwise take commands it must refuse. drive_local runs every gossip
  // round, so the shard serves at the first round after the lease holds.
  if (st.phase == handoff_phase::restoring && p.acquire_done == st.epoch && holds_lease())
    st = step(st, restored{self_, st.epoch}).state;
  bool news =
    st.phase != table_[s].phase || st.epoch != table_[s].epoch || st.holder != table_[s].holder;
  table_[s] = st;
  return news;
}

bool node_actor::holds_lease() const {
  auto now = std::chrono::steady_clock::now().time_since_epoch() / std::chrono::nanoseconds(1);
  return now < shared_->lease_until_ns.load(std::memory_order_acquire);
}

void node_actor::drive_local() {
  if (client_ || downed_ || self_text_.empty()) return;
  refresh_lease(std::chrono::steady_clock::now());
  auto targets = allocate(view_, cfg_.shards);
  bool changed = false;
  for (shard_id s = 0; s < cfg_.shards; ++s) {
    // A shard may pass several phases at once (a called-off move hands it back to this
    // node, which acquires it again): advance to a fixed point, at most a few steps.
    for (int i = 0; i < 8 && table_[s].holder == self_ && advance(s, targets[s]); ++i)
      changed = true;
  }
  if (!changed) return;
  broadcast();
  leader_round(); // holders changed: an exiting member may be removable
  publish();
}

void node_actor::after_change() {
  leader_round();
  drive_local();
  publish();
}

void node_actor::publish() {
  auto snap = std::make_shared<node_snapshot>();
  snap->view = view_;
  snap->reach = reach_;
  snap->table = table_;
  snap->routes.reserve(table_.size());
  for (auto& st : table_)
    snap->routes.push_back(route_of(st, self_, downed_));
  auto old = shared_->load();
  bool routes_changed =
    !old || old->routes.size() != snap->routes.size() ||
    !std::equal(old->routes.begin(), old->routes.end(), snap->routes.begin(), same_route);
  bool anything = routes_changed || old->view != snap->view || !(old->table == snap->table) ||
                  old->reach.digest() != snap->reach.digest();
  if (!anything) return;
  std::function<void()> f;
  {
    std::lock_guard<std::mutex> lk(shared_->mu);
    shared_->store(std::move(snap));
    if (routes_changed) f = shared_->routes_changed;
  }
  shared_->changed.notify_all();
  if (f) f();
}

void node_actor::request_connects() {
  std::vector<cluster::address> wanted;
  for (auto& kv : view_.members())
    if (kv.first != self_ && is_live(kv.second.status)) wanted.push_back(kv.first.address);
  for (auto& s : cfg_.seeds)
    if (s != self_.address) wanted.push_back(s);
  bool any = false;
  {
    std::lock_guard<std::mutex> lk(shared_->mu);
    for (auto& a : wanted) {
      auto key = to_string(a);
      if (shared_->by_addr.count(key) || !shared_->connecting.insert(key).second) continue;
      shared_->connect_queue.push_back(a);
      any = true;
    }
  }
  if (any) shared_->connect_cv.notify_all();
}

std::vector<caf::actor> node_actor::gossip_targets() {
  std::vector<caf::actor> out;
  std::set<std::string> keys;
  for (auto& kv : view_.members())
    if (kv.first != self_ && is_live(kv.second.status)) keys.insert(to_string(kv.first.address));
  if (!contacted_ || client_)
    for (auto& s : cfg_.seeds)
      if (s != self_.address) keys.insert(to_string(s));
  std::lock_guard<std::mutex> lk(shared_->mu);
  for (auto& k : keys)
    if (auto i = shared_->by_addr.find(k); i != shared_->by_addr.end()) out.push_back(i->second);
  return out;
}

caf::actor node_actor::handle_of(const member_id& m) {
  std::lock_guard<std::mutex> lk(shared_->mu);
  if (auto i = shared_->by_sender.find(to_string(m)); i != shared_->by_sender.end())
    return i->second;
  if (auto i = shared_->by_addr.find(to_string(m.address)); i != shared_->by_addr.end())
    return i->second;
  return {};
}

void node_actor::send_gossip(const caf::actor& to, wire::gossip_kind kind) {
  if (!to || self_text_.empty()) return;
  send(to, wire_atom::value, static_cast<std::uint8_t>(channel::gossip), self_text_,
       wire::encode_gossip({kind, view_, table_, reach_}));
}

void node_actor::broadcast() {
  auto bytes = wire::encode_gossip({wire::gossip_kind::reply, view_, table_, reach_});
  for (auto& kv : view_.members()) {
    if (kv.first == self_ || !is_live(kv.second.status)) continue;
    if (auto h = handle_of(kv.first))
      send(h, wire_atom::value, static_cast<std::uint8_t>(channel::gossip), self_text_, bytes);
  }
}

} // namespace strata::cluster::detail
