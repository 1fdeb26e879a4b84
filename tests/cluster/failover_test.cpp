// Failure detection, downing and failover of strata::cluster::node: in-process nodes on
// loopback (node_fixture.hpp). A node stopped without leaving is found unreachable by
// the others' phi detectors, downed by the leader of the surviving side, and its shards
// fail over to the survivors under a higher epoch; a node that sees itself downed in a
// gossiped view stops serving at once and tells its host.
#include "node_fixture.hpp"
#include "strata/test/poll.hpp"
#include "wire.hpp"

#include <caf/all.hpp>

#include <algorithm>
#include <chrono>

using namespace strata::cluster;
using namespace strata::cluster::test;
using strata::test::eventually;
using clock_type = std::chrono::steady_clock;

namespace {

/// What is left of `deadline` (at least 1 ms), for eventually().
std::chrono::milliseconds left(clock_type::time_point deadline) {
  auto d = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock_type::now());
  return std::max(d, std::chrono::milliseconds(1));
}

bool status_is(const node& n, const member_id& m, std::initializer_list<member_status> ss) {
  auto rec = n.view().find(m);
  if (!rec) return false;
  for (auto s : ss)
    if (rec->status == s) return true;
  return false;
}

} // namespace

TEST_CASE("a node stopped without leaving is downed and its shards fail over to the others") {
  node_set set(3, [](int i) {
    return i == 1;
  }); // one host answers later
  auto& own = set.own;
  auto& machines = set.machines;
  auto& hosts = set.hosts;
  auto& nodes = set.nodes;
  set.start(3);
  auto all = set.all();
  REQUIRE(eventually([&] {
    return converged(all);
  }));
  // Every up member hears the others: each holds the write lease.
  REQUIRE(eventually([&] {
    return std::all_of(all.begin(), all.end(), [](node* n) {
      return n->holds_write_lease();
    });
  }));

  // The victim is the leader: the survivors must down it although it leads their view.
  auto leader = leader_of(nodes[0]->view());
  REQUIRE(leader);
  std::size_t vi = 0;
  while (nodes[vi]->self() != *leader)
    ++vi;
  auto victim = nodes[vi]->self();
  std::vector<node*> rest;
  for (std::size_t i = 0; i < nodes.size(); ++i)
    if (i != vi) rest.push_back(nodes[i].get());
  auto before = rest.front()->routes();
  std::vector<shard_id> lost;
  for (shard_id s = 0; s < before.size(); ++s)
    if (before[s].owner == victim) lost.push_back(s);
  REQUIRE_FALSE(lost.empty());
  auto calls_before = own.calls_copy().size();

  // Abruptly: no leave, its whole actor system (sockets included) goes away.
  auto t0 = clock_type::now();
  const auto deadline = t0 + std::chrono::seconds(10); // a deadline, not a speed claim
  nodes[vi]->stop();
  machines[vi].reset();
  own.forget(static_cast<int>(vi));

  REQUIRE(eventually(
    [&] {
      for (auto* n : rest)
        if (!n->reachability_table().is_unreachable(victim, n->view()) &&
            !status_is(*n, victim, {member_status::down, member_status::removed}))
          return false;
      return true;
    },
    left(deadline)));
  auto unreachable_ms = ms_since(t0);
  REQUIRE(eventually(
    [&] {
      for (auto* n : rest)
        if (!status_is(*n, victim, {member_status::down, member_status::removed})) return false;
      return true;
    },
    left(deadline)));
  auto down_ms = ms_since(t0);
  REQUIRE(eventually(
    [&] {
      return converged(rest) && status_is(*rest.front(), victim, {member_status::removed});
    },
    left(deadline)));
  auto serving_ms = ms_since(t0);
  MESSAGE("stopped leader: unreachable at both survivors after "
          << unreachable_ms << " ms, down after " << down_ms << " ms, all " << lost.size()
          << " of its shards serving again (view converged) after " << serving_ms << " ms");

  // Two of three still hear each other: a majority, so both kept (or regained) the lease.
  for (auto* n : rest)
    CHECK(n->holds_write_lease());
  auto after = rest.front()->routes();
  for (auto s : lost) {
    CAPTURE(s);
    CHECK(after[s].owner != victim);
    CHECK(after[s].epoch > before[s].epoch);
  }
  for (auto* n : rest) {
    CHECK_FALSE(n->is_downed());
    CHECK(n->view().find(victim)->status == member_status::removed);
  }
  // Every lost shard was acquired by a survivor, exactly once per epoch (the fakes
  // check one owner per shard and epochs growing by one).
  auto calls = own.calls_copy();
  std::set<shard_id> acquired;
  for (auto i = calls_before; i < calls.size(); ++i) {
    CHECK(calls[i].host != static_cast<int>(vi));
    if (calls[i].acquire) acquired.insert(calls[i].shard);
  }
  for (auto s : lost)
    CHECK(acquired.count(s) == 1);
  CHECK(own.problems_copy().empty());
  for (std::size_t i = 0; i < hosts.size(); ++i)
    CHECK(hosts[i]->downed_calls() == 0);
  for (auto* n : rest)
    n->stop();
}

TEST_CASE("a node that sees itself downed in gossip stops serving at once") {
  ownership own;
  machine ma, mb, mt;
  fake_host ha(0, own), hb(1, own);
  auto a = start_node(ma, config_with({}), ha);
  auto b = start_node(mb, config_with({a->self().address}), hb);
  REQUIRE(eventually([&] {
    return converged({a.get(), b.get()});
  }));
  REQUIRE(own.held_by(1) > 0);
  CHECK_FALSE(b->is_downed());
  CHECK(b->downed_reason().empty());

  // As a frozen node waking up would learn it: a view, from a member, naming it down.
  auto v = b->view();
  REQUIRE(v.set_status(b->self(), member_status::down));
  wire::gossip g{wire::gossip_kind::reply, v, std::vector<shard_state>(64), {}};
  using wire_atom = caf::atom_constant<caf::atom("strata_msg")>; // the nodes' tag
  auto h = mt.sys->middleman().remote_actor("127.0.0.1", b->self().address.port);
  REQUIRE(h);
  caf::anon_send(*h, wire_atom::value, static_cast<std::uint8_t>(channel::gossip),
                 to_string(a->self()), wire::encode_gossip(g));
  *h = caf::actor{};

  REQUIRE(eventually([&] {
    return b->is_downed();
  }));
  for (auto& r : b->routes())
    CHECK(r.state != shard_route::kind::local);
  REQUIRE(eventually([&] {
    return hb.downed_calls() == 1;
  }));
  CHECK(hb.downed_reason() == b->downed_reason());
  CHECK_MESSAGE(b->downed_reason().find("declared this node down") != std::string::npos,
                b->downed_reason());

  // The survivor learns it from b's last gossip and takes every shard over.
  REQUIRE(eventually([&] {
    return converged({a.get()}) && status_is(*a, b->self(), {member_status::removed});
  }));
  CHECK(own.held_by(0) == 64);
  CHECK(own.problems_copy().empty());
  CHECK(hb.downed_calls() == 1); // once
  CHECK(ha.downed_calls() == 0);
  b->stop();
  a->stop();
}

TEST_CASE("a node left alone in a minority downs itself before the others could decide") {
  node_set set(3);
  auto& own = set.own;
  auto& machines = set.machines;
  auto& hosts = set.hosts;
  auto& nodes = set.nodes;
  set.start(3);
  REQUIRE(eventually([&] {
    return converged(set.all());
  }));
  REQUIRE(own.held_by(2) > 0);

  // Nodes 0 and 1 vanish: node 2 sees 2 of 3 members unreachable, so it is the losing
  // side (1 of 3) and must stop serving by itself, at stable_after - self_down_lead.
  REQUIRE(eventually([&] {
    return nodes[2]->holds_write_lease();
  }));
  auto t0 = clock_type::now();
  for (int i = 0; i < 2; ++i) {
    nodes[i]->stop();
    machines[i].reset();
  }
  // It hears no majority any more: it loses the write lease (write_lease_ms after the
  // last heartbeat it got) before it downs itself, and both happen before the others
  // could have decided (detection + stable_after).
  REQUIRE(eventually(
    [&] {
      return !nodes[2]->holds_write_lease();
    },
    std::chrono::seconds(10)));
  auto lease_lost_ms = ms_since(t0);
  REQUIRE(eventually(
    [&] {
      return nodes[2]->is_downed();
    },
    std::chrono::seconds(10)));
  auto downed_ms = ms_since(t0);
  MESSAGE("alone of three: lost the write lease " << lease_lost_ms
                                                  << " ms after the others "
                                                     "stopped (lease "
                                                  << nodes[2]->write_lease_ms() << " ms)");
  CHECK(lease_lost_ms <= nodes[2]->write_lease_ms() + 1000); // + slack for a loaded machine
  CHECK(lease_lost_ms < downed_ms);
  CHECK_FALSE(nodes[2]->holds_write_lease());
  MESSAGE("alone of three: downed itself " << downed_ms << " ms after the others stopped");
  CHECK(downed_ms >= 1000); // not before its detectors gave up on the others
  for (auto& r : nodes[2]->routes())
    CHECK(r.state != shard_route::kind::local);
  CHECK(hosts[2]->downed_calls() == 1);
  CHECK_MESSAGE(nodes[2]->downed_reason().find("losing side") != std::string::npos,
                nodes[2]->downed_reason());
  CHECK(status_is(*nodes[2], nodes[2]->self(), {member_status::down}));
  // It does not down the others: it is not on a surviving side.
  CHECK(status_is(*nodes[2], nodes[0]->self(), {member_status::up}));
  CHECK(status_is(*nodes[2], nodes[1]->self(), {member_status::up}));
  nodes[2]->stop();
}
