// Private: the parts a strata::system owns, in destruction order (last declared =
// first destroyed: the actor system goes first, the regions last, because envelopes
// released during CAF's teardown still reach their region).
#pragma once

#include "cluster_host.hpp"
#include "cluster_router.hpp"
#include "strata/kafka/bridge.hpp"
#include "strata/kafka/mock.hpp"
#include "strata/persistence/journal.hpp"
#include "strata/runtime/config.hpp"
#include "strata/runtime/detail/group_commit.hpp"
#include "strata/runtime/detail/region.hpp"

#include <caf/actor.hpp>
#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>

#include <atomic>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <typeinfo>

namespace strata::detail {

class system_core {
 public:
  config cfg;
  std::mutex regions_mtx;
  std::map<std::string, std::pair<const std::type_info*, std::shared_ptr<region>>> regions;
  // Cluster (docs/cluster.md, "Routing"): the node this system routes through (owned by
  // whoever started it: the cluster node, or a test's fake), and the router over it.
  // Both null for a single node. attach_cluster() sets them.
  cluster::node* node = nullptr;
  std::unique_ptr<cluster_router> cluster;
  // The node system::open started (config cluster-*), and what it calls during a
  // handoff; null for a single node and for a test's fake node.
  std::unique_ptr<cluster_host> host;
  std::unique_ptr<cluster::node> own_node;
  std::unique_ptr<persistence::journal> journal;
  std::unique_ptr<recovery_gate> permits;
  std::unique_ptr<group_commit> writer;
  // Kafka (config::kafka): the in-process mock cluster when kafka = "mock", and the
  // bridge. Stopped in shutdown() before the journal closes.
  std::unique_ptr<kafka::mock_cluster> kafka_mock;
  std::unique_ptr<kafka::bridge> bridge;
  std::string kafka_bootstrap;
  // Testing seam (strata/runtime/testing.hpp); empty in production.
  std::function<void(const std::string&)> before_recover;
  std::unique_ptr<caf::actor_system_config> actor_cfg;
  std::unique_ptr<caf::actor_system> actors;
  caf::actor router; // the reply router (group_commit.hpp)
  caf::actor gate;   // the replication gate (replication_gate.hpp), when any type replicates
  std::atomic<bool> stopping{false};
  bool shut_down = false;

  // passivation sweeper
  std::mutex sweep_mtx;
  std::condition_variable sweep_cv;
  bool sweep_stop = false;
  std::thread sweeper;

  std::vector<std::shared_ptr<region>> all_regions() {
    std::lock_guard<std::mutex> g{regions_mtx};
    std::vector<std::shared_ptr<region>> out;
    for (auto& kv : regions)
      out.push_back(kv.second.second);
    return out;
  }
};

} // namespace strata::detail
