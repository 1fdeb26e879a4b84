#include "cluster_router.hpp"

#include "cluster_wire.hpp"
#include "strata/persistence/journal.hpp"
#include "strata/persistence/shard.hpp"
#include "strata/runtime/detail/region.hpp"
#include "strata/runtime/ids.hpp"
#include "system_core.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <future>
#include <iostream>
#include <map>
#include <mutex>
#include <queue>
#include <set>
#include <shared_mutex>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

namespace strata::detail {

using cluster::channel;
using cluster::member_id;
using cluster::shard_route;
using steady = std::chrono::steady_clock;
using bytes_result = caf::expected<std::string>;

namespace {

/// Hops of the command being dispatched on this thread by the receiving side (0: it
/// came from a local caller). Lets route_command count forwards without an API change.
thread_local std::uint8_t t_hops = 0;

/// persistence::shard_of(make_persistence_id(type, id), n) without building the string
/// (FNV-1a runs over the bytes in order): once per command on a cluster node.
std::uint32_t shard_of_entity(std::string_view type, std::string_view id, std::uint32_t n) {
  std::uint64_t h = 0xcbf29ce484222325ull;
  auto mix = [&h](std::string_view b) {
    for (char c : b) {
      h ^= static_cast<unsigned char>(c);
      h *= 0x100000001b3ull;
    }
  };
  mix(type);
  mix(":");
  mix(id);
  return n == 0 ? 0u : static_cast<std::uint32_t>(h % n);
}

/// One command or read from the moment it leaves the local path until its answer.
struct item {
  std::uint32_t shard = 0;
  std::uint8_t hops = 0;
  steady::time_point deadline;
  region* reg = nullptr; ///< a command: its region and envelope
  envelope_ptr env;
  std::optional<read_request> rd; ///< a read: the request and where its bytes go
  std::function<void(bytes_result)> done;
  std::optional<member_id> dest; ///< set once queued for a member
  std::uint64_t batch = 0;       ///< set once sent
  bool held = false;

  std::string what() const {
    return env ? make_persistence_id(reg->type(), env->entity_id) : rd->persistence_id;
  }
};

/// Completes an item with the owner's bytes or an error. Never under a lock.
void finish(item& x, bytes_result r) {
  if (x.env) {
    if (r)
      x.reg->codec()->complete(*x.env, *r);
    else
      x.env->fail(std::move(r.error()));
    x.env.reset();
  } else if (x.done) {
    x.done(std::move(r));
  }
}

struct outgoing {
  member_id to;
  channel ch;
  std::string bytes;
  std::vector<std::uint64_t> ids;
};

struct completion {
  item x;
  bytes_result r;
};

} // namespace

/// The replies to one incoming batch: sent as one batch when every command of it is
/// answered, when `batch_max` are collected, or `batch_linger_us` after the first
/// unsent one (a slow command does not hold back the others' replies).
class reply_collector : public std::enable_shared_from_this<reply_collector> {
 public:
  reply_collector(std::shared_ptr<cluster_router::impl> owner, member_id origin,
                  std::uint32_t outstanding)
    : owner_(std::move(owner)), origin_(std::move(origin)), outstanding_(outstanding) {}

  void add(std::uint64_t request, bytes_result r);
  /// Sends what is collected (the linger timer).
  void flush();

 private:
  std::shared_ptr<cluster_router::impl> owner_;
  member_id origin_;
  std::mutex mtx_;
  std::string bytes_;
  std::uint32_t count_ = 0;
  std::uint32_t outstanding_;
};

struct cluster_router::impl : std::enable_shared_from_this<impl> {
  struct batch {
    std::string bytes;
    std::vector<std::uint64_t> ids;
    steady::time_point first;
  };
  struct dest {
    batch cmds, reads;
    std::uint32_t inflight = 0;
    std::uint64_t next_batch = 1;
    std::unordered_map<std::uint64_t, std::uint32_t> outstanding; // batch → unanswered
  };
  using deadline_entry = std::pair<steady::time_point, std::uint64_t>;

  impl(system_core& c, cluster::node& n, router_options o)
    : core(c), node(n), opt(o), nshards(static_cast<std::uint32_t>(n.routes().size())),
      stopped(new std::atomic<bool>[nshards == 0 ? 1 : nshards]), held(nshards),
      held_count(nshards, 0) {
    for (std::uint32_t i = 0; i < nshards; ++i)
      stopped[i].store(false, std::memory_order_relaxed);
  }

  system_core& core;
  cluster::node& node;
  router_options opt;
  std::uint32_t nshards;
  std::unique_ptr<std::atomic<bool>[]> stopped;

  mutable std::mutex mtx; // everything below up to `st`
  std::condition_variable timer_cv;
  std::unordered_map<std::uint64_t, item> pending;
  std::uint64_t next_request = 1;
  std::priority_queue<deadline_entry, std::vector<deadline_entry>, std::greater<>> deadlines;
  std::vector<std::deque<std::uint64_t>> held;
  std::vector<std::uint32_t> held_count;
  std::map<member_id, dest> dests;
  /// Members seen leaving or exiting (abandon_departed): removed later, they left.
  std::set<member_id> leavers;
  std::vector<std::pair<steady::time_point, std::weak_ptr<reply_collector>>> lingering;
  bool outbound_closed = false;
  bool timer_stop = false;
  std::string downed_reason; // set once by down()
  /// Set once when the node was downed: every item is refused from then on.
  std::atomic<bool> downed{false};
  /// Bumped before every release of held items (routes changed, shard resumed).
  std::atomic<std::uint64_t> route_gen{0};
  router_stats st;

  // Handlers vs close(): handlers count themselves in `active`; sends hold `life`.
  std::atomic<bool> closed{false};
  std::mutex active_mtx;
  std::condition_variable active_cv;
  std::size_t active = 0;
  std::shared_mutex life;
  std::thread timer;

  steady::duration linger() const { return std::chrono::microseconds(opt.batch_linger_us); }
  steady::time_point new_deadline() const {
    return steady::now() + std::chrono::milliseconds(opt.forward_timeout_ms);
  }

  bool send(const member_id& to, channel ch, std::string bytes) {
    std::shared_lock<std::shared_mutex> g{life};
    if (closed.load(std::memory_order_acquire)) return false;
    return node.send(to, ch, std::move(bytes));
  }

  // -- placing an item -------------------------------------------------------------
  /// Fails `x` when this node was downed (down()); whether it did.
  bool refuse_if_downed(item& x);
  void place(item x);
  void run_local(item x);
  void enqueue(item x, const member_id& owner);
  /// `gen`: route_gen when the caller read the route (nullopt: a stopped local shard).
  void hold(item x, const char* why, std::optional<std::uint64_t> gen);
  void take_batch(const member_id& to, dest& d, bool reads, std::vector<outgoing>& out);
  void maybe_flush(const member_id& to, dest& d, std::vector<outgoing>& out);
  void settle(item& x, std::vector<outgoing>& out);
  void do_sends(std::vector<outgoing> sends);
  void release_held(std::optional<std::uint32_t> shard);
  void abandon_departed();

  // -- receiving -------------------------------------------------------------------
  bool enter();
  void leave();
  void on_commands(const member_id& from, const std::string& bytes);
  void on_reads(const member_id& from, const std::string& bytes);
  void on_replies(const member_id& from, const std::string& bytes);
  bytes_result local_read(const read_request& req);
  std::shared_ptr<region> region_of(std::string_view type);

  // -- timer -----------------------------------------------------------------------
  void run_timer();
  void expire(steady::time_point now, std::vector<completion>& out, std::vector<outgoing>& sends);
  steady::time_point next_wake() const;
  void linger_collector(const std::shared_ptr<reply_collector>& c) {
    std::lock_guard<std::mutex> g{mtx};
    lingering.emplace_back(steady::now() + linger(), c);
    timer_cv.notify_one();
  }
};

// -- reply_collector ------------------------------------------------------------------

void remote_reply_sink::operator()(caf::expected<std::string> reply_bytes) const {
  to->add(request, std::move(reply_bytes));
}

void reply_collector::add(std::uint64_t request, bytes_result r) {
  std::string frame;
  bool first = false;
  {
    std::lock_guard<std::mutex> g{mtx_};
    if (count_ == 0) wire::start_frame(bytes_);
    wire::put_u64(bytes_, request);
    if (r) {
      wire::put_u8(bytes_, 0);
      wire::put_str(bytes_, *r);
    } else {
      wire::put_u8(bytes_, 1);
      wire::put_error(bytes_, r.error());
    }
    first = ++count_ == 1;
    if (outstanding_ > 0) --outstanding_;
    if (outstanding_ == 0 || count_ >= owner_->opt.batch_max) {
      wire::finish_frame(bytes_, count_);
      frame = std::move(bytes_);
      bytes_.clear();
      count_ = 0;
      first = false;
    }
  }
  if (!frame.empty()) {
    if (owner_->send(origin_, channel::replies, std::move(frame))) {
      std::lock_guard<std::mutex> g{owner_->mtx};
      ++owner_->st.replies_sent;
    }
  } else if (first) {
    owner_->linger_collector(shared_from_this());
  }
}

void reply_collector::flush() {
  std::string frame;
  {
    std::lock_guard<std::mutex> g{mtx_};
    if (count_ == 0) return;
    wire::finish_frame(bytes_, count_);
    frame = std::move(bytes_);
    bytes_.clear();
    count_ = 0;
  }
  if (owner_->send(origin_, channel::replies, std::move(frame))) {
    std::lock_guard<std::mutex> g{owner_->mtx};
    ++owner_->st.replies_sent;
  }
}

// -- placing -------------------------------------------------------------------------

bool cluster_router::impl::refuse_if_downed(item& x) {
  if (!downed.load(std::memory_order_acquire)) return false;
  std::string why;
  {
    std::lock_guard<std::mutex> g{mtx};
    why = downed_reason;
  }
  finish(x, make_runtime_error(runtime_errc::shutting_down,
                               "this node was downed by the cluster and serves nothing any "
                               "more (" +
                                 why + "); '" + x.what() +
                                 "' was not handled: send it to another member"));
  return true;
}

void cluster_router::impl::place(item x) {
  if (refuse_if_downed(x)) return;
  auto gen = route_gen.load(std::memory_order_acquire);
  auto rt = node.route(x.shard);
  bool self_owned = rt.state == shard_route::kind::local ||
                    (rt.state == shard_route::kind::remote && rt.owner == node.self());
  if (self_owned && !stopped[x.shard].load(std::memory_order_acquire)) {
    run_local(std::move(x));
    return;
  }
  if (!self_owned && rt.state == shard_route::kind::remote && x.hops < opt.max_hops) {
    enqueue(std::move(x), rt.owner);
    return;
  }
  hold(std::move(x),
       self_owned ? "is stopped for a handoff"
       : rt.state == shard_route::kind::remote
         ? "was forwarded too often (the members disagree on its owner)"
       : rt.state == shard_route::kind::moving ? "is moving"
                                               : "has no known owner",
       gen);
}

void cluster_router::impl::run_local(item x) {
  if (x.env) {
    auto id = x.env->entity_id;
    x.reg->dispatch(id, std::move(x.env)); // the hook finds it local (or routes it again)
    return;
  }
  auto r = local_read(*x.rd);
  x.done(std::move(r));
}

void cluster_router::impl::enqueue(item x, const member_id& owner) {
  std::string cmd;
  if (x.env) {
    const auto* codec = x.reg->codec();
    if (codec == nullptr) {
      finish(x, make_runtime_error(runtime_errc::invalid_argument,
                                   "aggregate type '" + x.reg->type() +
                                     "' has no wire codec (encode_command, decode_command, "
                                     "encode_reply, decode_reply): '" +
                                     x.what() + "' lives on member " + to_string(owner) +
                                     " and cannot be reached from here"));
      return;
    }
    try {
      cmd = codec->encode_command(*x.env);
    } catch (...) {
      finish(x, make_runtime_error(runtime_errc::internal,
                                   "encoding the command for '" + x.what() + "' threw"));
      return;
    }
  }
  std::vector<outgoing> sends;
  {
    std::unique_lock<std::mutex> g{mtx};
    if (outbound_closed) {
      g.unlock();
      finish(x,
             make_runtime_error(runtime_errc::shutting_down, "the system is shutting down; '" +
                                                               x.what() + "' was not forwarded"));
      return;
    }
    auto req = next_request++;
    auto& d = dests[owner];
    auto& b = x.env ? d.cmds : d.reads;
    if (b.ids.empty()) {
      wire::start_frame(b.bytes);
      b.first = steady::now();
      timer_cv.notify_one();
    }
    wire::put_u64(b.bytes, req);
    wire::put_u8(b.bytes, x.hops);
    if (x.env) {
      wire::put_str(b.bytes, x.reg->type());
      wire::put_str(b.bytes, x.env->entity_id);
      wire::put_str(b.bytes, cmd);
    } else {
      wire::put_u8(b.bytes, static_cast<std::uint8_t>(x.rd->what));
      wire::put_str(b.bytes, x.rd->persistence_id);
      wire::put_u64(b.bytes, x.rd->from_seq);
      wire::put_u64(b.bytes, x.rd->to_seq);
      wire::put_u8(b.bytes, x.rd->use_snapshot ? 1 : 0);
    }
    b.ids.push_back(req);
    x.dest = owner;
    deadlines.emplace(x.deadline, req);
    pending.emplace(req, std::move(x));
    ++st.forwarded;
    maybe_flush(owner, d, sends);
  }
  do_sends(std::move(sends));
}

void cluster_router::impl::hold(item x, const char* why, std::optional<std::uint64_t> gen) {
  if (refuse_if_downed(x)) return;
  {
    std::unique_lock<std::mutex> g{mtx};
    if (outbound_closed) {
      g.unlock();
      finish(x,
             make_runtime_error(runtime_errc::shutting_down, "the system is shutting down; '" +
                                                               x.what() + "' was not delivered"));
      return;
    }
    // Routes changed (or the shard resumed) since the caller looked: a release_held may
    // already have run and would never see this item. Route it again instead.
    if (gen ? route_gen.load(std::memory_order_acquire) != *gen
            : !stopped[x.shard].load(std::memory_order_acquire)) {
      g.unlock();
      place(std::move(x));
      return;
    }
    if (held_count[x.shard] < opt.buffer_max) {
      auto req = next_request++;
      held[x.shard].push_back(req);
      ++held_count[x.shard];
      x.held = true;
      deadlines.emplace(x.deadline, req);
      pending.emplace(req, std::move(x));
      ++st.held;
      timer_cv.notify_one();
      return;
    }
  }
  finish(x, make_runtime_error(runtime_errc::shard_moving,
                               "shard " + std::to_string(x.shard) + " of '" + x.what() + "' " +
                                 why + " and already holds " + std::to_string(opt.buffer_max) +
                                 " commands (cluster-buffer-max); retry later"));
}

/// Takes one batch of `d` as a message (under mtx).
void cluster_router::impl::take_batch(const member_id& to, dest& d, bool reads,
                                      std::vector<outgoing>& out) {
  auto& b = reads ? d.reads : d.cmds;
  if (b.ids.empty()) return;
  wire::finish_frame(b.bytes, static_cast<std::uint32_t>(b.ids.size()));
  auto no = d.next_batch++;
  std::uint32_t live = 0;
  for (auto id : b.ids)
    if (auto p = pending.find(id); p != pending.end()) {
      p->second.batch = no;
      ++live;
    }
  if (live > 0) {
    d.outstanding[no] = live;
    ++d.inflight;
  }
  out.push_back(
    outgoing{to, reads ? channel::reads : channel::commands, std::move(b.bytes), std::move(b.ids)});
  b.bytes.clear();
  b.ids.clear();
  ++st.batches_sent;
}

/// The send policy (under mtx): a batch leaves at once while fewer than
/// max_inflight_batches of this destination are unanswered, or when it is full; else it
/// waits for an answer (which frees a slot) or for the linger timer.
void cluster_router::impl::maybe_flush(const member_id& to, dest& d, std::vector<outgoing>& out) {
  for (bool reads : {false, true}) {
    auto& b = reads ? d.reads : d.cmds;
    if (!b.ids.empty() && (d.inflight < opt.max_inflight_batches || b.ids.size() >= opt.batch_max))
      take_batch(to, d, reads, out);
  }
}

/// An item leaves `pending` (under mtx): its batch may be answered now.
void cluster_router::impl::settle(item& x, std::vector<outgoing>& out) {
  if (x.held && held_count[x.shard] > 0) --held_count[x.shard];
  if (x.batch == 0 || !x.dest) return;
  auto d = dests.find(*x.dest);
  if (d == dests.end()) return;
  auto o = d->second.outstanding.find(x.batch);
  if (o == d->second.outstanding.end()) return;
  if (--o->second == 0) {
    d->second.outstanding.erase(o);
    if (d->second.inflight > 0) --d->second.inflight;
    maybe_flush(d->first, d->second, out);
  }
}

void cluster_router::impl::do_sends(std::vector<outgoing> sends) {
  while (!sends.empty()) {
    auto o = std::move(sends.back());
    sends.pop_back();
    if (send(o.to, o.ch, std::move(o.bytes))) continue;
    std::vector<completion> failed;
    {
      std::lock_guard<std::mutex> g{mtx};
      for (auto id : o.ids) {
        auto p = pending.find(id);
        if (p == pending.end()) continue;
        failed.push_back(completion{std::move(p->second), bytes_result{std::string{}}});
        pending.erase(p);
        settle(failed.back().x, sends);
      }
    }
    for (auto& c : failed)
      finish(c.x, make_runtime_error(runtime_errc::not_reachable,
                                     "member " + to_string(o.to) + " (owner of shard " +
                                       std::to_string(c.x.shard) + " of '" + c.x.what() +
                                       "') is not reachable: nothing was sent; retry later"));
  }
}

/// Routes held items again: those of `shard`, or of every shard.
void cluster_router::impl::release_held(std::optional<std::uint32_t> shard) {
  route_gen.fetch_add(1, std::memory_order_acq_rel);
  std::vector<item> again;
  {
    std::lock_guard<std::mutex> g{mtx};
    auto from = shard ? *shard : 0;
    auto to = shard ? *shard + 1 : nshards;
    for (auto s = from; s < to && s < nshards; ++s) {
      for (auto id : held[s]) {
        auto p = pending.find(id);
        if (p == pending.end()) continue; // timed out meanwhile
        p->second.held = false;
        p->second.hops = 0; // routes changed: earlier hops say nothing about the new ones
        again.push_back(std::move(p->second));
        pending.erase(p);
      }
      held[s].clear();
      held_count[s] = 0;
    }
  }
  for (auto& x : again)
    place(std::move(x));
}

/// Items forwarded to members the view now says are gone without leaving: down, or
/// removed without this node having seen them leave (a client may see a crashed member
/// go from up to removed in one gossip). One not sent yet is routed again (nothing of it
/// left this node); one sent is answered `timeout` now rather than at its deadline: its
/// member died before answering, so it may or may not have been carried out. A member
/// that left gracefully still answers what it was sent before it exits: its items wait
/// as before.
void cluster_router::impl::abandon_departed() {
  const auto view = node.view();
  std::vector<item> again;
  std::vector<item> lost;
  {
    std::lock_guard<std::mutex> g{mtx};
    for (const auto& [m, rec] : view.members())
      if (rec.status == cluster::member_status::leaving ||
          rec.status == cluster::member_status::exiting)
        leavers.insert(m);
    auto departed = [&](const member_id& m) {
      auto rec = view.find(m); // a member the view does not name: nothing known, wait
      return rec && (rec->status == cluster::member_status::down ||
                     (rec->status == cluster::member_status::removed && leavers.count(m) == 0));
    };
    bool any = false;
    for (auto& kv : dests)
      any = any || departed(kv.first);
    if (!any) return;
    for (auto p = pending.begin(); p != pending.end();) {
      auto& x = p->second;
      if (!x.dest || !departed(*x.dest)) {
        ++p;
        continue;
      }
      x.hops = 0;
      (x.batch == 0 ? again : lost).push_back(std::move(x));
      p = pending.erase(p);
    }
    st.timed_out += lost.size();
    for (auto d = dests.begin(); d != dests.end();)
      d = departed(d->first) ? dests.erase(d) : std::next(d);
  }
  for (auto& x : lost) {
    const auto who = to_string(*x.dest);
    finish(x, make_runtime_error(runtime_errc::timeout,
                                 "member " + who + " (owner of shard " + std::to_string(x.shard) +
                                   ") went down before it answered for '" + x.what() +
                                   "'; it may have been carried out: check before "
                                   "retrying"));
  }
  for (auto& x : again) {
    x.dest.reset();
    place(std::move(x));
  }
}

// -- receiving -----------------------------------------------------------------------

bool cluster_router::impl::enter() {
  std::lock_guard<std::mutex> g{active_mtx};
  if (closed.load(std::memory_order_acquire)) return false;
  ++active;
  return true;
}

void cluster_router::impl::leave() {
  std::lock_guard<std::mutex> g{active_mtx};
  if (--active == 0) active_cv.notify_all();
}

std::shared_ptr<region> cluster_router::impl::region_of(std::string_view type) {
  std::lock_guard<std::mutex> g{core.regions_mtx};
  auto it = core.regions.find(std::string(type));
  return it == core.regions.end() ? nullptr : it->second.second;
}

namespace {

struct command_in {
  std::uint64_t request;
  std::uint8_t hops;
  std::string_view type, id, cmd;
};

void drop_malformed(const char* what, const member_id& from) {
  std::cerr << "strata: dropped a malformed " << what << " batch from member " << to_string(from)
            << " (do both nodes run the same strata version?)\n";
}

} // namespace

void cluster_router::impl::on_commands(const member_id& from, const std::string& bytes) {
  wire::reader r{bytes};
  auto n = wire::open_frame(r);
  std::vector<command_in> in;
  for (std::uint32_t i = 0; n && i < *n && r.ok(); ++i) {
    command_in c{r.u64(), r.u8(), {}, {}, {}};
    c.type = r.str();
    c.id = r.str();
    c.cmd = r.str();
    in.push_back(c);
  }
  if (!n || !r.ok() || !r.at_end()) return drop_malformed("command", from);
  {
    std::lock_guard<std::mutex> g{mtx};
    st.received += in.size();
  }
  auto c = std::make_shared<reply_collector>(shared_from_this(), from,
                                             static_cast<std::uint32_t>(in.size()));
  for (auto& x : in) {
    auto reg = region_of(x.type);
    const auto* codec = reg ? reg->codec() : nullptr;
    envelope_ptr e = codec ? codec->decode(x.cmd, remote_reply_sink{c, x.request}) : nullptr;
    if (!e) {
      c->add(x.request,
             make_runtime_error(
               !reg ? runtime_errc::invalid_argument : runtime_errc::corrupt,
               !reg ? "aggregate type '" + std::string(x.type) + "' is not registered on member " +
                        to_string(node.self()) + " (call system::entities<A>() on every node)"
               : !codec ? "aggregate type '" + std::string(x.type) +
                            "' has no wire codec on member " + to_string(node.self())
                        : "a command for '" + std::string(x.type) + ":" + std::string(x.id) +
                            "' does not decode on member " + to_string(node.self()) +
                            " (do both nodes run the same schema?)"));
      continue;
    }
    t_hops = static_cast<std::uint8_t>(x.hops + 1);
    reg->dispatch(std::string(x.id), std::move(e));
    t_hops = 0;
  }
}

void cluster_router::impl::on_reads(const member_id& from, const std::string& bytes) {
  wire::reader r{bytes};
  auto n = wire::open_frame(r);
  std::vector<std::pair<std::uint64_t, item>> in;
  for (std::uint32_t i = 0; n && i < *n && r.ok(); ++i) {
    auto req = r.u64();
    item x;
    x.hops = static_cast<std::uint8_t>(r.u8() + 1);
    read_request rd;
    rd.what = static_cast<read_request::op>(r.u8());
    rd.persistence_id = std::string(r.str());
    rd.from_seq = r.u64();
    rd.to_seq = r.u64();
    rd.use_snapshot = r.u8() != 0;
    x.shard = shard_of_read(rd, nshards);
    if (x.shard >= nshards) return drop_malformed("read", from);
    x.rd = std::move(rd);
    x.deadline = new_deadline();
    in.emplace_back(req, std::move(x));
  }
  if (!n || !r.ok() || !r.at_end()) return drop_malformed("read", from);
  {
    std::lock_guard<std::mutex> g{mtx};
    st.received += in.size();
  }
  auto c = std::make_shared<reply_collector>(shared_from_this(), from,
                                             static_cast<std::uint32_t>(in.size()));
  for (auto& [req, x] : in) {
    x.done = remote_reply_sink{c, req};
    place(std::move(x));
  }
}

void cluster_router::impl::on_replies(const member_id& from, const std::string& bytes) {
  wire::reader r{bytes};
  auto n = wire::open_frame(r);
  if (!n) return drop_malformed("reply", from);
  std::vector<completion> done;
  std::vector<outgoing> sends;
  {
    std::lock_guard<std::mutex> g{mtx};
    for (std::uint32_t i = 0; i < *n; ++i) {
      auto req = r.u64();
      auto status = r.u8();
      bytes_result res =
        status == 0 ? bytes_result{std::string(r.str())} : bytes_result{wire::get_error(r)};
      if (!r.ok()) break;
      auto p = pending.find(req);
      if (p == pending.end()) {
        ++st.late_replies; // timed out meanwhile: the caller has had its answer
        continue;
      }
      done.push_back(completion{std::move(p->second), std::move(res)});
      pending.erase(p);
      settle(done.back().x, sends);
    }
  }
  if (!r.ok()) drop_malformed("reply", from); // the items it did not answer time out
  do_sends(std::move(sends));
  for (auto& c : done)
    finish(c.x, std::move(c.r));
}

bytes_result cluster_router::impl::local_read(const read_request& req) {
  auto& j = *core.journal;
  raw_read out;
  if (req.what == read_request::op::ids) {
    auto ids = local_ids(core, req.persistence_id, nshards);
    if (!ids) return std::move(ids.error());
    for (auto& id : (*ids)[req.from_seq])
      out.events.push_back(raw_event{0, 0, {}, 1, std::move(id)});
    return wire::encode_raw_read(out);
  }
  auto from = req.from_seq;
  if (req.what == read_request::op::recover && req.use_snapshot) {
    auto s = j.snapshots().load_at_or_before(req.persistence_id, req.to_seq);
    if (!s) return to_error(s.error());
    if (*s) {
      out.snapshot = raw_snapshot{(*s)->seq, (*s)->schema_version, std::move((*s)->payload)};
      from = (*s)->seq + 1;
    }
  }
  auto st =
    j.read_stream_view(req.persistence_id, from, req.to_seq, [&](const persistence::event_view& e) {
      out.events.push_back(raw_event{e.seq, e.timestamp_ns, std::string(e.type), e.schema_version,
                                     std::string(e.payload)});
      return true;
    });
  if (!st.ok()) return to_error(st);
  return wire::encode_raw_read(out);
}

// -- timer -------------------------------------------------------------------------

steady::time_point cluster_router::impl::next_wake() const {
  auto t = steady::time_point::max();
  if (!deadlines.empty()) t = deadlines.top().first;
  for (auto& [to, d] : dests)
    for (auto* b : {&d.cmds, &d.reads})
      if (!b->ids.empty()) t = std::min(t, b->first + linger());
  for (auto& l : lingering)
    t = std::min(t, l.first);
  return t;
}

/// Under mtx: deadlines passed (→ timeout) and batches that lingered long enough.
void cluster_router::impl::expire(steady::time_point now, std::vector<completion>& out,
                                  std::vector<outgoing>& sends) {
  while (!deadlines.empty() && deadlines.top().first <= now) {
    auto id = deadlines.top().second;
    deadlines.pop();
    auto p = pending.find(id);
    if (p == pending.end()) continue;
    out.push_back(completion{std::move(p->second), bytes_result{std::string{}}});
    pending.erase(p);
    settle(out.back().x, sends);
    ++st.timed_out;
  }
  for (auto& [to, d] : dests)
    for (bool reads : {false, true}) {
      auto& b = reads ? d.reads : d.cmds;
      if (!b.ids.empty() && b.first + linger() <= now) take_batch(to, d, reads, sends);
    }
}

void cluster_router::impl::run_timer() {
  std::unique_lock<std::mutex> g{mtx};
  while (!timer_stop) {
    auto now = steady::now();
    std::vector<completion> timed_out;
    std::vector<outgoing> sends;
    std::vector<std::shared_ptr<reply_collector>> due;
    expire(now, timed_out, sends);
    auto keep = std::partition(lingering.begin(), lingering.end(), [&](const auto& l) {
      return l.first > now;
    });
    for (auto i = keep; i != lingering.end(); ++i)
      if (auto c = i->second.lock()) due.push_back(std::move(c));
    lingering.erase(keep, lingering.end());
    if (timed_out.empty() && sends.empty() && due.empty()) {
      auto t = next_wake();
      if (t == steady::time_point::max())
        timer_cv.wait(g);
      else
        timer_cv.wait_until(g, t);
      continue;
    }
    g.unlock();
    do_sends(std::move(sends));
    for (auto& c : due)
      c->flush();
    for (auto& c : timed_out)
      finish(c.x,
             make_runtime_error(runtime_errc::timeout,
                                (c.x.held ? "shard " + std::to_string(c.x.shard) + " of '" +
                                              c.x.what() + "' got no serving owner"
                                          : "no reply for '" + c.x.what() + "' from member " +
                                              (c.x.dest ? to_string(*c.x.dest) : "?")) +
                                  " within " + std::to_string(opt.forward_timeout_ms) +
                                  " ms (cluster-forward-timeout-ms); it may still be carried out"));
    g.lock();
  }
}

// -- cluster_router -----------------------------------------------------------------

cluster_router::cluster_router(system_core& core, cluster::node& node, router_options o)
  : impl_(std::make_shared<impl>(core, node, o)) {
  std::weak_ptr<impl> w = impl_;
  auto handler = [w](void (impl::*fn)(const member_id&, const std::string&)) {
    return [w, fn](const member_id& from, std::string bytes) {
      auto i = w.lock();
      if (!i || !i->enter()) return;
      ((*i).*fn)(from, bytes);
      i->leave();
    };
  };
  node.on_receive(channel::commands, handler(&impl::on_commands));
  node.on_receive(channel::reads, handler(&impl::on_reads));
  node.on_receive(channel::replies, handler(&impl::on_replies));
  node.on_routes_changed([w] {
    auto i = w.lock();
    if (!i || !i->enter()) return;
    i->abandon_departed();
    i->release_held(std::nullopt);
    i->leave();
  });
  impl_->timer = std::thread([i = impl_.get()] {
    i->run_timer();
  });
}

cluster_router::~cluster_router() { close(); }

std::uint32_t cluster_router::shards() const noexcept { return impl_->nshards; }

std::uint32_t cluster_router::route_command(region& r, const std::string& id, envelope_ptr& e) {
  auto& i = *impl_;
  auto shard = shard_of_entity(r.type(), id, i.nshards);
  auto rt = i.node.route(shard);
  bool up = !i.downed.load(std::memory_order_acquire); // a downed node refuses (place)
  if (up && (rt.state == shard_route::kind::local ||
             (rt.state == shard_route::kind::remote && rt.owner == i.node.self())))
    return shard; // the region checks shard_stopped under its lock
  item x;
  x.shard = shard;
  x.hops = t_hops;
  x.deadline = i.new_deadline();
  x.reg = &r;
  x.env = std::move(e);
  i.place(std::move(x));
  return no_shard;
}

bool cluster_router::shard_stopped(std::uint32_t shard) const noexcept {
  return shard < impl_->nshards && impl_->stopped[shard].load(std::memory_order_acquire);
}

void cluster_router::hold(region& r, envelope_ptr e, std::uint32_t shard) {
  item x;
  x.shard = shard;
  x.deadline = impl_->new_deadline();
  x.reg = &r;
  x.env = std::move(e);
  impl_->hold(std::move(x), "is stopped for a handoff", std::nullopt);
}

std::optional<caf::expected<raw_read>> cluster_router::read(const read_request& req) {
  auto& i = *impl_;
  auto shard = shard_of_read(req, i.nshards);
  auto rt = i.node.route(shard);
  bool up = !i.downed.load(std::memory_order_acquire); // a downed node refuses (place)
  if (up && (rt.state == shard_route::kind::local ||
             (rt.state == shard_route::kind::remote && rt.owner == i.node.self())))
    return std::nullopt;
  auto p = std::make_shared<std::promise<bytes_result>>();
  auto f = p->get_future();
  item x;
  x.shard = shard;
  x.deadline = i.new_deadline();
  x.rd = req;
  x.done = [p](bytes_result r) {
    p->set_value(std::move(r));
  };
  i.place(std::move(x));
  auto r = f.get(); // the timer answers it by its deadline at the latest
  if (!r) return caf::expected<raw_read>{std::move(r.error())};
  auto raw = wire::decode_raw_read(*r);
  if (!raw)
    return caf::expected<raw_read>{make_runtime_error(
      runtime_errc::corrupt, "the owner's answer to a read of '" + req.persistence_id +
                               "' does not decode (do both nodes run the same strata?)")};
  return caf::expected<raw_read>{std::move(*raw)};
}

void cluster_router::stop_shard(std::uint32_t shard, std::function<void()> done) {
  auto& i = *impl_;
  if (shard < i.nshards) i.stopped[shard].store(true, std::memory_order_release);
  auto regions = i.core.all_regions();
  auto left = std::make_shared<std::atomic<std::size_t>>(regions.size() + 1);
  auto one_done = [left, done = std::move(done)] {
    if (left->fetch_sub(1, std::memory_order_acq_rel) == 1 && done) done();
  };
  for (auto& r : regions)
    r->stop_shard(shard, i.nshards, one_done);
  one_done();
}

void cluster_router::resume_shard(std::uint32_t shard) {
  auto& i = *impl_;
  if (shard >= i.nshards) return;
  i.stopped[shard].store(false, std::memory_order_release);
  i.release_held(shard);
}

void cluster_router::down(std::string reason) {
  auto& i = *impl_;
  {
    std::lock_guard<std::mutex> g{i.mtx};
    if (i.downed.load(std::memory_order_acquire)) return;
    i.downed_reason = std::move(reason);
    i.downed.store(true, std::memory_order_release);
  }
  // The shards' entities stop after their in-flight writes (their replies still go out);
  // everything held, and everything new, is refused.
  for (std::uint32_t s = 0; s < i.nshards; ++s)
    stop_shard(s, nullptr);
  i.release_held(std::nullopt);
}

void cluster_router::close_outbound() {
  auto& i = *impl_;
  std::vector<completion> all;
  {
    std::lock_guard<std::mutex> g{i.mtx};
    i.outbound_closed = true;
    for (auto& [id, x] : i.pending)
      all.push_back(completion{std::move(x), bytes_result{std::string{}}});
    i.pending.clear();
    for (auto& h : i.held)
      h.clear();
    std::fill(i.held_count.begin(), i.held_count.end(), 0);
    i.dests.clear();
  }
  for (auto& c : all)
    finish(c.x, make_runtime_error(runtime_errc::shutting_down,
                                   "the system is shutting down; no answer for '" + c.x.what() +
                                     "' was awaited"));
}

void cluster_router::close() {
  auto& i = *impl_;
  if (i.closed.exchange(true, std::memory_order_acq_rel)) return;
  close_outbound();
  { std::unique_lock<std::shared_mutex> g{i.life}; } // sends in progress have finished
  {
    std::unique_lock<std::mutex> g{i.active_mtx};
    i.active_cv.wait(g, [&] {
      return i.active == 0;
    });
  }
  {
    std::lock_guard<std::mutex> g{i.mtx};
    i.timer_stop = true;
    i.lingering.clear();
    i.timer_cv.notify_all();
  }
  if (i.timer.joinable()) i.timer.join();
}

router_stats cluster_router::stats() const {
  std::lock_guard<std::mutex> g{impl_->mtx};
  return impl_->st;
}

// -- read_at_owner (routing.hpp) ----------------------------------------------------

std::uint32_t shard_of_read(const read_request& req, std::uint32_t shards) {
  if (req.what == read_request::op::ids)
    return req.from_seq < shards ? static_cast<std::uint32_t>(req.from_seq) : ~std::uint32_t{0};
  return persistence::shard_of(req.persistence_id, shards);
}

caf::expected<std::vector<std::vector<std::string>>>
local_ids(system_core& core, const std::string& type, std::uint32_t shards) {
  std::vector<std::vector<std::string>> out(shards);
  if (!core.journal) return out; // a client holds no stream
  auto all = core.journal->list_streams();
  if (!all) return to_error(all.error());
  for (auto& pid : *all)
    if (persistence::is_persistence_id_of(pid, type))
      out[persistence::shard_of(pid, shards)].emplace_back(persistence::id_of_persistence_id(pid));
  return out;
}

caf::expected<std::vector<std::string>> cluster_ids(cluster_router& router, system_core& core,
                                                    const std::string& type) {
  const auto shards = router.shards();
  auto local = local_ids(core, type, shards);
  if (!local) return std::move(local.error());
  std::vector<std::string> out;
  for (std::uint32_t s = 0; s < shards; ++s) {
    read_request req;
    req.what = read_request::op::ids;
    req.persistence_id = type;
    req.from_seq = s;
    auto r = router.read(req);
    if (!r) { // this node serves the shard
      for (auto& id : (*local)[s])
        out.push_back(std::move(id));
      continue;
    }
    if (!*r) return std::move(r->error());
    for (auto& e : (*r)->events)
      out.push_back(std::move(e.payload));
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::optional<caf::expected<raw_read>> read_at_owner(region& r, const read_request& req) {
  auto* router = r.cluster();
  if (router == nullptr) return std::nullopt;
  return router->read(req);
}

} // namespace strata::detail
