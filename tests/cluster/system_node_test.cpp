// A strata::system and its cluster node: without cluster keys the system loads no
// middleman and node::start says what is missing; with them (and Kafka) system::open
// starts the node itself; settings that cannot work are refused.
#include "counter.hpp"
#include "node_fixture.hpp"
#include "strata/kafka/mock.hpp"
#include "strata/runtime/entities.hpp"
#include "strata/runtime/errors.hpp"
#include "strata/runtime/system.hpp"
#include "strata/test/net.hpp"
#include "strata/test/poll.hpp"
#include "strata/test/temp_dir.hpp"
#include "wire.hpp"

#include <caf/all.hpp>

#include <algorithm>

using namespace strata::cluster;
using namespace strata::cluster::test;

TEST_CASE("a strata::system with cluster-port hosts a node; a single-node one cannot") {
  strata::test::temp_dir dir("strata-system-node");
  ownership own;
  fake_host host(0, own);

  strata::config single;
  single.data_dir = dir.sub("single");
  CHECK_FALSE(single.cluster_enabled());
  auto s1 = strata::system::open(single);
  REQUIRE(s1);
  auto refused = node::start((*s1)->actor_system(), node_config{}, host);
  REQUIRE_FALSE(refused);
  CHECK((*s1)->actor_system().render(refused.error()).find("middleman") != std::string::npos);
  (*s1)->shutdown();

  // With cluster settings (and the Kafka the shards move through) the system starts
  // its own node: a first node, seeding itself, serves every shard.
  auto mock = strata::kafka::mock_cluster::start(1);
  REQUIRE(mock);
  for (auto t : {"strata.account", "strata.account.snapshots"})
    REQUIRE((*mock)->create_topic(t, 64).ok());
  strata::config clustered;
  clustered.data_dir = dir.sub("clustered");
  clustered.kafka = (*mock)->bootstrap_servers();
  const auto port = std::to_string(strata::test::free_port());
  REQUIRE(clustered.set("cluster-port", port).ok());
  REQUIRE(clustered.set("cluster-seeds", "127.0.0.1:" + port).ok()); // itself: a first node
  CHECK(clustered.cluster_enabled());
  auto s2 = strata::system::open(clustered);
  REQUIRE(s2);
  auto* n = (*s2)->cluster_node();
  REQUIRE(n != nullptr);
  // CAF's own heartbeats are on, derived from cluster-heartbeat-ms on every node.
  const auto& acfg = (*s2)->actor_system().config();
  CHECK(caf::get_or(acfg, "middleman.heartbeat-interval", caf::timespan{0}) ==
        std::chrono::milliseconds(200));
  CHECK(caf::get_or(acfg, "middleman.connection-timeout", caf::timespan{0}) ==
        std::chrono::seconds(5));
  CHECK(n->self().address.port != 0);
  REQUIRE(strata::test::eventually([&] {
    auto routes = n->routes();
    return routes.size() == 64 &&
           std::all_of(routes.begin(), routes.end(), [](const shard_route& r) {
             return r.state == shard_route::kind::local;
           });
  }));
  CHECK((*s2)->leave(100) == false); // no other member can take its shards
  (*s2)->shutdown();
}

TEST_CASE("a strata::system refuses cluster settings that cannot work") {
  strata::test::temp_dir dir("strata-system-node-bad");
  auto refused = [&](strata::config c, const std::string& what) {
    c.data_dir = dir.sub("d");
    auto s = strata::system::open(c);
    REQUIRE_FALSE(s);
    CHECK(strata::runtime_error_of(s.error()) == strata::runtime_errc::invalid_argument);
    CHECK_MESSAGE(strata::describe(s.error()).find(what) != std::string::npos,
                  strata::describe(s.error()));
  };
  strata::config no_kafka;
  REQUIRE(no_kafka.set("cluster-port", "0").ok());
  REQUIRE(no_kafka.set("cluster-seeds", "127.0.0.1:1").ok());
  refused(no_kafka, "needs Kafka");
  auto shards = no_kafka;
  shards.kafka = "127.0.0.1:1";
  shards.kafka_partitions = 32;
  refused(shards, "must equal kafka-partitions");
  strata::config client;
  client.cluster_client = true;
  refused(client, "cluster-client needs cluster-seeds");
  auto lead = shards;
  lead.kafka_partitions = 64;
  lead.cluster_stable_after_ms = 1000;
  lead.cluster_self_down_lead_ms = 1000;
  refused(lead, "must be less than cluster-stable-after-ms");
}

TEST_CASE("a strata::system whose node is downed refuses commands, naming the reason") {
  strata::test::temp_dir dir("strata-system-node-downed");
  auto mock = strata::kafka::mock_cluster::start(1);
  REQUIRE(mock);
  for (auto t : {"strata.counter", "strata.counter.snapshots"})
    REQUIRE((*mock)->create_topic(t, 64).ok());
  strata::config c;
  c.data_dir = dir.sub("node");
  c.kafka = (*mock)->bootstrap_servers();
  const auto port = std::to_string(strata::test::free_port());
  REQUIRE(c.set("cluster-port", port).ok());
  REQUIRE(c.set("cluster-seeds", "127.0.0.1:" + port).ok());
  auto sys = strata::system::open(c);
  REQUIRE(sys);
  auto counters = (*sys)->entities<test_counter::counter>();
  auto* n = (*sys)->cluster_node();
  REQUIRE(n != nullptr);
  REQUIRE(strata::test::eventually([&] {
    auto routes = n->routes();
    return std::all_of(routes.begin(), routes.end(), [](const shard_route& r) {
      return r.state == shard_route::kind::local;
    });
  }));
  auto r = counters.ask("a", test_counter::add{5});
  REQUIRE_MESSAGE(r, strata::describe(r.error()));

  // A gossiped view that says this node is down, as a frozen node waking up gets it.
  auto v = n->view();
  REQUIRE(v.set_status(n->self(), member_status::down));
  wire::gossip g{wire::gossip_kind::reply, v, std::vector<shard_state>(64), {}};
  machine other;
  auto h = other.sys->middleman().remote_actor("127.0.0.1", n->self().address.port);
  REQUIRE(h);
  using wire_atom = caf::atom_constant<caf::atom("strata_msg")>; // the nodes' tag
  caf::anon_send(*h, wire_atom::value, static_cast<std::uint8_t>(channel::gossip),
                 std::string("127.0.0.1:1#1"), wire::encode_gossip(g));
  *h = caf::actor{};
  REQUIRE(strata::test::eventually([&] {
    return n->is_downed();
  }));
  for (auto& route : n->routes())
    CHECK(route.state != shard_route::kind::local);
  r = counters.ask("a", test_counter::add{1});
  REQUIRE_FALSE(r);
  CHECK(strata::runtime_error_of(r.error()) == strata::runtime_errc::shutting_down);
  CHECK_MESSAGE(strata::describe(r.error()).find("downed by the cluster") != std::string::npos,
                strata::describe(r.error()));
  CHECK_MESSAGE(strata::describe(r.error()).find(n->downed_reason()) != std::string::npos,
                strata::describe(r.error()));
  (*sys)->shutdown();
}
