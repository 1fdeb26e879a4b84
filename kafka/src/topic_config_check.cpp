#include "topic_config_check.hpp"

#include <librdkafka/rdkafka.h>

#include <chrono>
#include <memory>

namespace strata::kafka::detail {

using namespace strata::persistence;

namespace {

struct handle_deleter {
  void operator()(rd_kafka_t* rk) const noexcept { rd_kafka_destroy(rk); }
};

// The finding for one described topic (its config entries), or ok.
std::pair<status, bool> judge(const rd_kafka_ConfigResource_t* r, const topic_expectation& want) {
  const std::string name = rd_kafka_ConfigResource_name(r);
  if (auto err = rd_kafka_ConfigResource_error(r))
    return {{errc::not_found,
             "kafka bridge: configs of topic '" + name + "' not checked: " + rd_kafka_err2str(err)},
            false};
  size_t n = 0;
  const rd_kafka_ConfigEntry_t** entries = rd_kafka_ConfigResource_configs(r, &n);
  const std::string key = want.snapshots ? "cleanup.policy" : "retention.ms";
  for (size_t i = 0; i < n; ++i) {
    if (key != rd_kafka_ConfigEntry_name(entries[i])) continue;
    const char* v = rd_kafka_ConfigEntry_value(entries[i]);
    const std::string value = v ? v : "";
    if (want.snapshots && value.find("compact") == std::string::npos)
      return {{errc::invalid_argument,
               "kafka bridge: snapshot topic '" + name + "' has cleanup.policy=" + value +
                 ": set cleanup.policy=compact, or old snapshots are deleted and restores "
                 "read more events (docs/kafka.md, 'Topic settings')"},
              true};
    if (!want.snapshots && value != "-1")
      return {{errc::invalid_argument,
               "kafka bridge: event topic '" + name + "' has retention.ms=" + value +
                 ": a shard restore needs every event the journal of the new owner lacks; set "
                 "retention.ms=-1 (docs/kafka.md, 'Topic settings')"},
              true};
    return {{}, false};
  }
  return {{}, false};
}

} // namespace

void check_topic_configs(const std::vector<std::pair<std::string, std::string>>& props,
                         const std::vector<topic_expectation>& topics, std::uint32_t timeout_ms,
                         const std::atomic<bool>& stop,
                         const std::function<void(const status&, bool)>& out) {
  if (topics.empty()) return;
  char errstr[512];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  for (const auto& [k, v] : props)
    rd_kafka_conf_set(conf, k.c_str(), v.c_str(), errstr, sizeof(errstr)); // checked by start
  std::unique_ptr<rd_kafka_t, handle_deleter> rk{
    rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr))};
  if (!rk) {
    rd_kafka_conf_destroy(conf);
    return;
  }
  std::vector<rd_kafka_ConfigResource_t*> res;
  for (const auto& t : topics)
    res.push_back(rd_kafka_ConfigResource_new(RD_KAFKA_RESOURCE_TOPIC, t.topic.c_str()));
  rd_kafka_AdminOptions_t* ao =
    rd_kafka_AdminOptions_new(rk.get(), RD_KAFKA_ADMIN_OP_DESCRIBECONFIGS);
  rd_kafka_AdminOptions_set_request_timeout(ao, static_cast<int>(timeout_ms), errstr,
                                            sizeof(errstr));
  rd_kafka_queue_t* q = rd_kafka_queue_new(rk.get());
  rd_kafka_DescribeConfigs(rk.get(), res.data(), res.size(), ao, q);
  rd_kafka_event_t* ev = nullptr;
  const auto deadline =
    std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms + 1000);
  while (!ev && !stop.load() && std::chrono::steady_clock::now() < deadline)
    ev = rd_kafka_queue_poll(q, 100);
  const rd_kafka_DescribeConfigs_result_t* result =
    ev ? rd_kafka_event_DescribeConfigs_result(ev) : nullptr;
  if (!ev || rd_kafka_event_error(ev) || !result) {
    if (!stop.load())
      out({errc::unavailable,
           std::string{"kafka bridge: topic configs not checked (no answer to DescribeConfigs "
                       "within "} +
             std::to_string(timeout_ms) + " ms" +
             (ev && rd_kafka_event_error(ev) ? std::string{": "} + rd_kafka_event_error_string(ev)
                                             : std::string{}) +
             "; librdkafka's mock cluster has no admin API)"},
          false);
  } else {
    size_t n = 0;
    const rd_kafka_ConfigResource_t** rs = rd_kafka_DescribeConfigs_result_resources(result, &n);
    for (size_t i = 0; i < n; ++i)
      for (const auto& t : topics)
        if (t.topic == rd_kafka_ConfigResource_name(rs[i])) {
          auto [finding, problem] = judge(rs[i], t);
          if (!finding.ok()) out(finding, problem);
        }
  }
  if (ev) rd_kafka_event_destroy(ev);
  rd_kafka_queue_destroy(q);
  rd_kafka_AdminOptions_destroy(ao);
  for (auto* r : res)
    rd_kafka_ConfigResource_destroy(r);
}

} // namespace strata::kafka::detail
