// A node started from the actor_system a strata::system owns: with a cluster key in its
// config the system loads CAF's middleman (runtime/src/system.cpp), which node::start
// needs; without one it does not, and node::start says what is missing.
#include "node_fixture.hpp"
#include "strata/runtime/system.hpp"
#include "strata/test/poll.hpp"
#include "strata/test/temp_dir.hpp"

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

  strata::config clustered;
  clustered.data_dir = dir.sub("clustered");
  REQUIRE(clustered.set("cluster-port", "0").ok());
  REQUIRE(clustered.set("cluster-seeds", "127.0.0.1:1").ok()); // enables; never reached
  CHECK(clustered.cluster_enabled());
  auto s2 = strata::system::open(clustered);
  REQUIRE(s2);
  node_config nc; // a first node of its own (the seed above only switched the cluster on)
  auto n = node::start((*s2)->actor_system(), nc, host);
  REQUIRE(n);
  CHECK((*n)->self().address.port != 0);
  REQUIRE(strata::test::eventually([&] {
    return converged({n->get()});
  }));
  (*n)->stop();
  (*s2)->shutdown();
}
