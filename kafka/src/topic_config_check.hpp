// Internal: the bridge's check of topic configurations on a real cluster (admin API
// DescribeConfigs): event topics keep every event (retention.ms=-1), snapshot topics
// are compacted. docs/kafka.md, "Topic settings".
#pragma once

#include "strata/persistence/status.hpp"

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

namespace strata::kafka::detail {

struct topic_expectation {
  std::string topic;
  bool snapshots = false; ///< a snapshot topic: cleanup.policy must include compact
};

/// Describes the configs of `topics` through a client of its own (`props`: bootstrap
/// and security settings) and calls `out(finding, is_problem)` for each: a problem is
/// a setting a restore cannot live with; the rest are notes (not checked: no admin
/// answer within `timeout_ms` — librdkafka's mock cluster has no admin API — or a
/// topic that does not exist). Returns early when `stop` becomes true. Blocking.
void check_topic_configs(const std::vector<std::pair<std::string, std::string>>& props,
                         const std::vector<topic_expectation>& topics, std::uint32_t timeout_ms,
                         const std::atomic<bool>& stop,
                         const std::function<void(const persistence::status&, bool)>& out);

} // namespace strata::kafka::detail
