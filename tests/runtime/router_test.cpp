// The cluster router (runtime/src/cluster_router.cpp): two or three strata::system
// instances in one process, each routing through a fake cluster node
// (fake_cluster.hpp) whose route table the test sets.
#include "counter.hpp"
#include "fake_cluster.hpp"
#include "strata/persistence/journal.hpp"
#include "strata/persistence/shard.hpp"
#include "strata/runtime/testing.hpp"
#include "test_util.hpp"

#include <atomic>
#include <chrono>
#include <future>
#include <string>
#include <vector>

using namespace std::chrono_literals;
using test_cluster::channel;
using test_cluster::fake_network;
using test_cluster::fake_node;
using test_cluster::shard_route;
using test_util::eventually;
using test_util::temp_dir;

namespace {

using namespace test_counter;

/// The test counter with a hand-written wire codec: routable.
struct rcounter : counter {
  static constexpr const char* type_name = "rcounter";

  static std::string encode_command(const command& c) {
    std::string out(1, static_cast<char>(c.index()));
    std::visit(strata::overload{[&](const add& x) {
                                  out += i64(x.n);
                                },
                                [&](const sub& x) {
                                  out += i64(x.n);
                                },
                                [&](const add_twice& x) {
                                  out += i64(x.n);
                                },
                                [&](const auto&) {}},
               c);
    return out;
  }
  static std::optional<command> decode_command(std::string_view b) {
    if (b.empty()) return std::nullopt;
    auto n = read_i64(b.substr(1));
    switch (b[0]) {
      case 0: return n ? std::optional<command>{add{*n}} : std::nullopt;
      case 1: return n ? std::optional<command>{sub{*n}} : std::nullopt;
      case 2: return n ? std::optional<command>{add_twice{*n}} : std::nullopt;
      case 3: return command{touch{}};
      case 4: return command{get{}};
      case 5: return command{boom{}};
    }
    return std::nullopt;
  }
  static std::string encode_reply(const reply& r) { return i64(r); }
  static std::optional<reply> decode_reply(std::string_view b) { return read_i64(b); }
};

static_assert(strata::detail::has_wire_codec_v<rcounter>);
static_assert(!strata::detail::has_wire_codec_v<counter>);

strata::config cluster_config(const temp_dir& d) {
  auto c = test_util::test_config(d.path());
  c.cluster_forward_timeout_ms = 10'000;
  return c;
}

std::unique_ptr<strata::system> open_node(fake_node& n, const strata::config& c,
                                          strata::testing::faults f = {}) {
  f.node = &n;
  auto s = strata::testing::open_with_faults(c, std::move(f));
  if (!s) FAIL("cannot open the system: " << strata::describe(s.error()));
  return std::move(*s);
}

std::uint32_t shard_of(const std::string& id) {
  return strata::persistence::shard_of("rcounter:" + id, 64);
}

std::uint64_t head(strata::system& s, const std::string& id) {
  auto h = s.journal().highest_seq("rcounter:" + id);
  return h ? *h : 0;
}

/// Collects ask_async outcomes.
struct outcomes {
  std::mutex mtx;
  std::vector<caf::expected<std::int64_t>> got;
  auto sink() {
    return [this](caf::expected<std::int64_t> r) {
      std::lock_guard<std::mutex> g{mtx};
      got.push_back(std::move(r));
    };
  }
  std::size_t size() {
    std::lock_guard<std::mutex> g{mtx};
    return got.size();
  }
  std::size_t errors(strata::runtime_errc code) {
    std::lock_guard<std::mutex> g{mtx};
    std::size_t n = 0;
    for (auto& r : got)
      n += !r && strata::runtime_error_of(r.error()) == code;
    return n;
  }
  std::size_t ok() {
    std::lock_guard<std::mutex> g{mtx};
    std::size_t n = 0;
    for (auto& r : got)
      n += static_cast<bool>(r);
    return n;
  }
};

/// Two nodes; every shard owned by b.
struct two_nodes {
  explicit two_nodes(std::function<void(strata::config&)> tune = {}) {
    auto ca = cluster_config(da);
    auto cb = cluster_config(db);
    if (tune) tune(ca);
    a = open_node(na, ca);
    b = open_node(nb, cb);
    a->entities<rcounter>(); // every node registers the types it may be sent
    b->entities<rcounter>();
    net.set_owner_all(nb);
  }
  fake_network net;
  fake_node& na = net.add(4501);
  fake_node& nb = net.add(4502);
  temp_dir da, db;
  std::unique_ptr<strata::system> a, b;
  strata::entities<rcounter> ea() { return a->entities<rcounter>(); }
  strata::entities<rcounter> eb() { return b->entities<rcounter>(); }
};

/// Asks a for `id` (add{1}) on a thread of its own, once b holds the reply back: b has
/// carried the command out, a waits for its answer.
std::future<caf::expected<std::int64_t>> ask_reply_held(two_nodes& t, const std::string& id) {
  t.net.hold(channel::replies);
  auto ea = t.ea();
  auto f = std::async(std::launch::async, [ea, id]() mutable {
    return ea.ask(id, add{1});
  });
  REQUIRE(eventually([&] {
    return t.net.held_count(channel::replies) == 1;
  }));
  return f;
}

/// a's view: a and b, b in status `s`.
strata::cluster::member_view view_with_b(two_nodes& t, strata::cluster::member_status s) {
  strata::cluster::member_view v;
  REQUIRE(v.add_joining(t.na.self()));
  REQUIRE(v.add_joining(t.nb.self()));
  REQUIRE(v.set_status(t.nb.self(), s));
  return v;
}

} // namespace

TEST_CASE("a command through a non-owner reaches the owner and its reply comes back") {
  two_nodes t;
  auto ea = t.ea();
  auto eb = t.eb();
  auto r1 = ea.ask("x", add{5});
  REQUIRE(r1);
  CHECK(*r1 == 5);
  CHECK(*ea.ask("x", add_twice{2}) == 9);
  CHECK(*eb.ask("x", get{}) == 9); // the owner's entity holds the state
  CHECK(ea.live() == 0);
  CHECK(eb.live() == 1);
  CHECK(head(*t.b, "x") == 3);
  CHECK(head(*t.a, "x") == 0); // nothing applied on the non-owner
  CHECK(t.a->stats().cluster_forwarded == 2);
  CHECK(t.b->stats().cluster_received == 2);
}

TEST_CASE("many commands travel in few messages, and their replies too") {
  two_nodes t;
  auto ea = t.ea();
  constexpr int n = 3000;
  constexpr int entities = 30;
  outcomes out;
  for (int i = 0; i < n; ++i)
    ea.ask_async("e" + std::to_string(i % entities), add{1}, out.sink());
  REQUIRE(eventually(
    [&] {
      return out.size() == n;
    },
    60'000));
  CHECK(out.ok() == n);
  auto cmds = t.net.sent(channel::commands);
  auto replies = t.net.sent(channel::replies);
  MESSAGE(n << " commands in " << cmds << " command messages and " << replies << " reply messages");
  CHECK(cmds <= n / 20);
  CHECK(replies <= n / 10);
  auto eb = t.eb();
  for (int e = 0; e < entities; ++e)
    CHECK(*eb.ask("e" + std::to_string(e), get{}) == n / entities);
}

TEST_CASE("commands for a shard without owner or moving are held, then delivered") {
  two_nodes t;
  auto ea = t.ea();
  for (std::uint32_t s = 0; s < 64; ++s)
    t.na.set_route(
      s, shard_route{s % 2 ? shard_route::kind::moving : shard_route::kind::unknown, {}, 0});
  outcomes out;
  for (int i = 0; i < 10; ++i)
    ea.ask_async("u" + std::to_string(i), add{i + 1}, out.sink());
  CHECK(t.a->stats().cluster_held == 10);
  CHECK(out.size() == 0); // no answer while no member serves the shards
  t.net.set_owner_all(t.nb);
  REQUIRE(eventually([&] {
    return out.size() == 10;
  }));
  CHECK(out.ok() == 10);
  auto eb = t.eb();
  for (int i = 0; i < 10; ++i)
    CHECK(*eb.ask("u" + std::to_string(i), get{}) == i + 1);
}

TEST_CASE("past the buffer bound of a shard a command fails with shard_moving") {
  two_nodes t{[](strata::config& c) {
    c.cluster_buffer_max = 4;
  }};
  auto ea = t.ea();
  t.na.set_route(shard_of("m"), shard_route{shard_route::kind::moving, {}, 0});
  outcomes out;
  for (int i = 0; i < 6; ++i)
    ea.ask_async("m", add{1}, out.sink());
  CHECK(out.errors(strata::runtime_errc::shard_moving) == 2); // answered at once
  {
    std::lock_guard<std::mutex> g{out.mtx};
    CHECK(strata::describe(out.got[0].error()).find("cluster-buffer-max") != std::string::npos);
  }
  t.net.set_owner(shard_of("m"), t.nb);
  REQUIRE(eventually([&] {
    return out.size() == 6;
  }));
  CHECK(out.ok() == 4);
  CHECK(*t.eb().ask("m", get{}) == 4);
}

TEST_CASE("an owner without connection gives not_reachable at once") {
  two_nodes t;
  auto ea = t.ea();
  t.net.set_reachable(t.nb.self(), false);
  auto r = ea.ask("x", add{1});
  REQUIRE_FALSE(r);
  CHECK(strata::runtime_error_of(r.error()) == strata::runtime_errc::not_reachable);
  CHECK(strata::describe(r.error()).find("127.0.0.1:4502") != std::string::npos);
  t.net.set_reachable(t.nb.self(), true);
  CHECK(*ea.ask("x", add{1}) == 1); // nothing of the failed one was applied
}

TEST_CASE("a lost reply gives timeout within the deadline; the late reply is dropped") {
  two_nodes t{[](strata::config& c) {
    c.cluster_forward_timeout_ms = 300;
  }};
  auto ea = t.ea();
  t.net.hold(channel::replies);
  auto t0 = std::chrono::steady_clock::now();
  auto r = ea.ask("x", add{1});
  auto took = std::chrono::steady_clock::now() - t0;
  REQUIRE_FALSE(r);
  CHECK(strata::runtime_error_of(r.error()) == strata::runtime_errc::timeout);
  CHECK(took >= 300ms);
  CHECK(took < 5s);
  CHECK(t.a->stats().cluster_timed_out == 1);
  REQUIRE(eventually([&] {
    return t.net.held_count(channel::replies) == 1;
  }));
  t.net.release(channel::replies);
  REQUIRE(eventually([&] {
    return t.a->stats().cluster_late_replies == 1;
  }));
  CHECK(*ea.ask("x", add{1}) == 2); // the timed-out command was carried out at the owner
}

TEST_CASE(
  "a command sent to a member that goes down is answered at the downing, not the deadline") {
  two_nodes t{[](strata::config& c) {
    c.cluster_forward_timeout_ms = 20'000;
  }};
  auto ea = t.ea();
  t.net.hold(channel::replies); // b carries the command out; its answer never comes
  auto t0 = std::chrono::steady_clock::now();
  auto pending = std::async(std::launch::async, [&] {
    return ea.ask("x", add{1});
  });
  REQUIRE(eventually([&] {
    return t.net.held_count(channel::replies) == 1;
  }));
  CHECK(pending.wait_for(0ms) == std::future_status::timeout); // still waiting for b

  // a's view: b is down (the cluster downed it); a takes its shards.
  auto v = view_with_b(t, strata::cluster::member_status::down);
  t.na.set_view(v);
  for (std::uint32_t s = 0; s < 64; ++s)
    t.na.set_route(s, shard_route{shard_route::kind::local, t.na.self(), 2});
  t.na.notify();

  auto r = pending.get();
  auto took = std::chrono::steady_clock::now() - t0;
  REQUIRE_FALSE(r);
  CHECK(strata::runtime_error_of(r.error()) == strata::runtime_errc::timeout);
  CHECK_MESSAGE(strata::describe(r.error()).find("went down before it answered") !=
                  std::string::npos,
                strata::describe(r.error()));
  CHECK(took < 10s); // the forward timeout is 20 s
  CHECK(t.a->stats().cluster_timed_out == 1);
  // The next command for the shard goes to its new owner.
  auto again = ea.ask("y", add{5});
  REQUIRE_MESSAGE(again, strata::describe(again.error()));
  CHECK(*again == 5);
  t.net.release(channel::replies);
}

TEST_CASE("a member seen removed without leaving counts as down for its in-flight commands") {
  two_nodes t{[](strata::config& c) {
    c.cluster_forward_timeout_ms = 20'000;
  }};
  auto ea = t.ea();
  auto pending = ask_reply_held(t, "x");
  // A client's view can go from up to removed in one gossip when a member crashed.
  auto v = view_with_b(t, strata::cluster::member_status::removed);
  t.na.set_view(v);
  for (std::uint32_t s = 0; s < 64; ++s)
    t.na.set_route(s, shard_route{shard_route::kind::local, t.na.self(), 2});
  t.na.notify();
  auto r = pending.get();
  REQUIRE_FALSE(r);
  CHECK(strata::runtime_error_of(r.error()) == strata::runtime_errc::timeout);
  CHECK(strata::describe(r.error()).find("went down before it answered") != std::string::npos);
  t.net.release(channel::replies);
}

TEST_CASE("a command sent to a member that leaves gracefully gets that member's answer") {
  two_nodes t;
  auto ea = t.ea();
  auto pending = ask_reply_held(t, "x");
  // a's view: b leaves (its shards move), then is removed, never down.
  auto v = view_with_b(t, strata::cluster::member_status::exiting);
  t.na.set_view(v);
  t.na.notify();
  REQUIRE(v.set_status(t.nb.self(), strata::cluster::member_status::removed));
  t.na.set_view(v);
  for (std::uint32_t s = 0; s < 64; ++s)
    t.na.set_route(s, shard_route{shard_route::kind::local, t.na.self(), 2});
  t.na.notify();
  CHECK(pending.wait_for(200ms) == std::future_status::timeout); // still b's to answer
  t.net.release(channel::replies);
  auto r = pending.get();
  REQUIRE_MESSAGE(r, strata::describe(r.error()));
  CHECK(*r == 1);
}

TEST_CASE("rejections and errors arrive as the owner produced them") {
  two_nodes t;
  auto ea = t.ea();
  auto eb = t.eb();
  REQUIRE(*eb.ask("x", add{3}) == 3);
  std::vector<rcounter::command> cmds{sub{100}, add{0}, boom{}, touch{}};
  for (auto& c : cmds) {
    auto remote = ea.ask("x", c);
    auto local = eb.ask("x", c);
    REQUIRE_FALSE(remote);
    REQUIRE_FALSE(local);
    CHECK(remote.error() == local.error()); // code and category
    CHECK(strata::describe(remote.error()) == strata::describe(local.error()));
    CHECK(strata::rejection_of<rcounter>(remote.error()) ==
          strata::rejection_of<rcounter>(local.error()));
    CHECK(strata::rejection_detail(remote.error()) == strata::rejection_detail(local.error()));
  }
  auto rej = ea.ask("x", sub{100});
  CHECK(strata::rejection_of<rcounter>(rej.error()) == counter::rejection::insufficient);
  CHECK(strata::rejection_detail(rej.error()) == "value 3 is less than 100");
}

TEST_CASE("history, current and state as of a seq or time read from the owner") {
  two_nodes t;
  auto ea = t.ea();
  for (int i = 1; i <= 3; ++i)
    REQUIRE(ea.ask("h", add{i}));
  auto h = ea.history("h");
  REQUIRE(h);
  REQUIRE(h->size() == 3);
  for (std::size_t i = 0; i < 3; ++i) {
    CHECK((*h)[i].seq == i + 1);
    CHECK(std::get<added>((*h)[i].event).n == static_cast<std::int64_t>(i + 1));
  }
  auto part = ea.history("h", 2, 2);
  REQUIRE(part);
  CHECK(part->size() == 1);
  auto cur = ea.current("h");
  REQUIRE(cur);
  CHECK(cur->seq == 3);
  CHECK(cur->state.value == 6);
  auto at2 = ea.state_at_seq("h", 2);
  REQUIRE(at2);
  CHECK(at2->state.value == 3);
  auto at_t = ea.state_at_time("h", (*h)[1].timestamp_ns);
  auto at_t_owner = t.eb().state_at_time("h", (*h)[1].timestamp_ns);
  REQUIRE(at_t);
  REQUIRE(at_t_owner);
  CHECK(at_t->seq == at_t_owner->seq);
  CHECK(at_t->seq >= 2);
  CHECK(at_t->state.value == at_t_owner->state.value);
  CHECK(head(*t.a, "h") == 0); // all of it came from the owner
  auto none = ea.history("never");
  REQUIRE(none);
  CHECK(none->empty());
}

TEST_CASE("current at a remote owner starts from its snapshot") {
  fake_network net;
  auto& na = net.add(4501);
  auto& nb = net.add(4502);
  temp_dir da, db;
  auto a = open_node(na, cluster_config(da));
  auto cb = cluster_config(db);
  cb.snapshot_every = 2;
  auto b = open_node(nb, cb);
  b->entities<rcounter>();
  net.set_owner_all(nb);
  auto ea = a->entities<rcounter>();
  for (int i = 0; i < 5; ++i)
    REQUIRE(ea.ask("s", add{1}));
  REQUIRE(eventually([&] {
    auto s = b->journal().snapshots().load_at_or_before("rcounter:s", 5);
    return s && *s;
  }));
  auto cur = ea.current("s");
  REQUIRE(cur);
  CHECK(cur->seq == 5);
  CHECK(cur->state.value == 5);
  CHECK(cur->state.events == 5);
}

TEST_CASE("a receiver that does not own the shard forwards it to the owner") {
  fake_network net;
  auto& na = net.add(4501);
  auto& nb = net.add(4502);
  auto& nc = net.add(4503);
  temp_dir da, db, dc;
  auto a = open_node(na, cluster_config(da));
  auto b = open_node(nb, cluster_config(db));
  auto c = open_node(nc, cluster_config(dc));
  for (auto* s : {&a, &b, &c})
    (*s)->entities<rcounter>();
  auto sh = shard_of("z");
  net.set_owner(sh, nc);
  na.set_route(sh, shard_route{shard_route::kind::remote, nb.self(), 1}); // a is behind
  CHECK(*a->entities<rcounter>().ask("z", add{3}) == 3);
  CHECK(head(*c, "z") == 1);
  CHECK(head(*b, "z") == 0);
  CHECK(b->stats().cluster_forwarded == 1);
  // Two members that name each other: held after a few hops, delivered once routes agree.
  nb.set_route(sh, shard_route{shard_route::kind::remote, na.self(), 1});
  outcomes out;
  a->entities<rcounter>().ask_async("z", add{1}, out.sink());
  REQUIRE(eventually([&] {
    return a->stats().cluster_held + b->stats().cluster_held == 1;
  }));
  CHECK(out.size() == 0);
  net.set_owner(sh, nc);
  REQUIRE(eventually([&] {
    return out.size() == 1;
  }));
  CHECK_MESSAGE(out.ok() == 1, strata::describe(out.got[0].error()));
  CHECK(head(*c, "z") == 2);
}

TEST_CASE("stop_shard finishes in-flight writes, stops the shard's entities, holds new commands") {
  fake_network net;
  auto& n = net.add(4501);
  temp_dir d;
  std::mutex m;
  std::condition_variable cv;
  bool entered = false;
  bool release = false;
  strata::testing::faults f;
  f.append = [&](strata::testing::append_phase p,
                 const std::vector<strata::persistence::stream_write>& ws) {
    if (p != strata::testing::append_phase::before) return strata::persistence::status{};
    for (auto& w : ws)
      if (w.persistence_id == "rcounter:s") {
        std::unique_lock<std::mutex> g{m};
        entered = true;
        cv.notify_all();
        cv.wait(g, [&] {
          return release;
        });
      }
    return strata::persistence::status{};
  };
  auto sys = open_node(n, cluster_config(d), std::move(f));
  net.set_owner_all(n);
  auto e = sys->entities<rcounter>();
  std::string other = "o";
  while (shard_of(other) == shard_of("s"))
    other += "o";
  REQUIRE(*e.ask(other, add{1}) == 1);
  auto first = e.ask_future("s", add{1});
  {
    std::unique_lock<std::mutex> g{m};
    REQUIRE(cv.wait_for(g, 20s, [&] {
      return entered;
    }));
  }
  std::atomic<bool> stopped{false};
  sys->stop_shard(shard_of("s"), [&] {
    stopped = true;
  });
  CHECK_FALSE(stopped.load()); // its write is still in flight
  auto second = e.ask_future("s", add{10});
  CHECK(sys->stats().cluster_held == 1);
  {
    std::lock_guard<std::mutex> g{m};
    release = true;
    cv.notify_all();
  }
  CHECK(*first.get() == 1); // the in-flight write finished and replied
  REQUIRE(eventually([&] {
    return stopped.load();
  }));
  CHECK(e.live() == 1); // only the other shard's entity is left
  CHECK(second.wait_for(0ms) == std::future_status::timeout); // still held
  sys->resume_shard(shard_of("s"));
  CHECK(*second.get() == 11);
}

TEST_CASE("shutdown answers commands waiting for another member") {
  two_nodes t;
  auto ea = t.ea();
  t.na.set_route(shard_of("w"), shard_route{shard_route::kind::unknown, {}, 0});
  auto f = ea.ask_future("w", add{1});
  t.a->shutdown();
  auto r = f.get();
  REQUIRE_FALSE(r);
  CHECK(strata::runtime_error_of(r.error()) == strata::runtime_errc::shutting_down);
}

TEST_CASE("a read of a moving shard waits for its owner; a malformed batch is dropped") {
  two_nodes t;
  auto ea = t.ea();
  REQUIRE(*ea.ask("r", add{4}) == 4);
  t.na.set_route(shard_of("r"), shard_route{shard_route::kind::moving, {}, 0});
  auto f = std::async(std::launch::async, [&] {
    return ea.current("r");
  });
  REQUIRE(eventually([&] {
    return t.a->stats().cluster_held == 1;
  }));
  t.net.set_owner(shard_of("r"), t.nb);
  auto cur = f.get();
  REQUIRE(cur);
  CHECK(cur->state.value == 4);
  t.nb.deliver(channel::commands, t.na.self(), "not a batch");
  t.nb.deliver(channel::replies, t.na.self(), std::string(5, '\1'));
  CHECK(t.b->stats().cluster_received == 2); // a command and a read; none of the garbage
  CHECK(*ea.ask("r", add{1}) == 5);
}
