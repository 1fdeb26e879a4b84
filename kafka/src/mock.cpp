#include "strata/kafka/mock.hpp"

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include <string>
#include <vector>

namespace strata::kafka {

using namespace strata::persistence;

struct mock_cluster::impl {
  rd_kafka_t* rk = nullptr; // the handle whose thread runs the mock
  rd_kafka_mock_cluster_t* mcluster = nullptr;
  std::string bootstraps;
  int brokers = 0;

  ~impl() {
    if (mcluster) rd_kafka_mock_cluster_destroy(mcluster);
    if (rk) rd_kafka_destroy(rk);
  }
};

result<std::unique_ptr<mock_cluster>> mock_cluster::start(int num_brokers) {
  if (num_brokers < 1 || num_brokers > 32)
    return status{errc::invalid_argument, "kafka mock cluster: broker count " +
                                            std::to_string(num_brokers) + " is out of range 1..32"};
  auto p = std::make_unique<impl>();
  char errstr[512];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  rd_kafka_conf_set(conf, "client.id", "strata-kafka-mock", errstr, sizeof(errstr));
  // The handle only hosts the mock cluster; it never connects anywhere.
  rd_kafka_conf_set(conf, "log_level", "3", errstr, sizeof(errstr));
  p->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
  if (!p->rk) {
    rd_kafka_conf_destroy(conf);
    return status{errc::internal,
                  std::string{"kafka mock cluster: rd_kafka_new failed: "} + errstr};
  }
  p->mcluster = rd_kafka_mock_cluster_new(p->rk, num_brokers);
  if (!p->mcluster)
    return status{errc::internal,
                  "kafka mock cluster: rd_kafka_mock_cluster_new failed (no free loopback "
                  "ports?)"};
  p->bootstraps = rd_kafka_mock_cluster_bootstraps(p->mcluster);
  p->brokers = num_brokers;
  return std::unique_ptr<mock_cluster>{new mock_cluster(std::move(p))};
}

mock_cluster::mock_cluster(std::unique_ptr<impl> p) : impl_(std::move(p)) {}

mock_cluster::~mock_cluster() = default;

const std::string& mock_cluster::bootstrap_servers() const noexcept { return impl_->bootstraps; }

int mock_cluster::num_brokers() const noexcept { return impl_->brokers; }

status mock_cluster::create_topic(std::string_view topic, int partitions) {
  if (topic.empty() || partitions < 1)
    return {errc::invalid_argument, "kafka mock cluster: create_topic needs a name and at "
                                    "least one partition"};
  std::string name{topic};
  int rf = impl_->brokers < 3 ? impl_->brokers : 3;
  auto err = rd_kafka_mock_topic_create(impl_->mcluster, name.c_str(), partitions, rf);
  if (err == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS)
    return {errc::invalid_argument, "kafka mock cluster: topic '" + name + "' already exists"};
  if (err)
    return {errc::internal,
            "kafka mock cluster: creating topic '" + name + "' failed: " + rd_kafka_err2str(err)};
  return {};
}

status mock_cluster::set_broker_down(int id) {
  if (auto err = rd_kafka_mock_broker_set_down(impl_->mcluster, id))
    return {errc::invalid_argument,
            "kafka mock cluster: broker " + std::to_string(id) + ": " + rd_kafka_err2str(err)};
  return {};
}

status mock_cluster::set_broker_up(int id) {
  if (auto err = rd_kafka_mock_broker_set_up(impl_->mcluster, id))
    return {errc::invalid_argument,
            "kafka mock cluster: broker " + std::to_string(id) + ": " + rd_kafka_err2str(err)};
  return {};
}

void mock_cluster::set_all_brokers_down() {
  for (int id = 1; id <= impl_->brokers; ++id)
    rd_kafka_mock_broker_set_down(impl_->mcluster, id);
}

void mock_cluster::set_all_brokers_up() {
  for (int id = 1; id <= impl_->brokers; ++id)
    rd_kafka_mock_broker_set_up(impl_->mcluster, id);
}

void mock_cluster::push_produce_errors(std::size_t count, int kafka_error_code) {
  if (count == 0) return;
  std::vector<rd_kafka_resp_err_t> errs(count, static_cast<rd_kafka_resp_err_t>(kafka_error_code));
  rd_kafka_mock_push_request_errors_array(impl_->mcluster, 0 /* Produce */, count, errs.data());
}

status mock_cluster::set_broker_rtt(int id, int rtt_ms) {
  if (auto err = rd_kafka_mock_broker_set_rtt(impl_->mcluster, id, rtt_ms))
    return {errc::invalid_argument,
            "kafka mock cluster: broker " + std::to_string(id) + ": " + rd_kafka_err2str(err)};
  return {};
}

} // namespace strata::kafka
