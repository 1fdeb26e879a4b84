// Internal: the assigned (group-less) consumer that restore_shard and
// read_stream_events read partitions with.
#pragma once

#include "strata/persistence/status.hpp"

#include <librdkafka/rdkafka.h>

#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace strata::kafka::detail {

struct reader_deleter {
  void operator()(rd_kafka_t* rk) const noexcept {
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
  }
};
using reader_ptr = std::unique_ptr<rd_kafka_t, reader_deleter>;

/// A consumer that reads assigned partitions from offsets it is given: no group joined,
/// nothing committed, an end-of-partition event per partition, reset to the earliest
/// retained offset where retention removed the one asked for. `user` properties are
/// applied last. Errors: invalid_argument (a bad property; names `what`).
inline persistence::result<reader_ptr>
make_reader(const std::string& what, const std::string& bootstrap, const char* client_id,
            int log_level, const std::vector<std::pair<std::string, std::string>>& user) {
  using persistence::errc;
  char errstr[512];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  std::vector<std::pair<std::string, std::string>> props = {
    {"bootstrap.servers", bootstrap},
    {"client.id", client_id},
    // librdkafka 2.0 wants a group id even for assign(); nothing is joined or committed.
    {"group.id", client_id},
    {"enable.auto.commit", "false"},
    {"enable.auto.offset.store", "false"},
    {"enable.partition.eof", "true"}, // an empty partition's end is its EOF event
    {"auto.offset.reset", "earliest"},
    {"reconnect.backoff.max.ms", "1000"},
    {"fetch.wait.max.ms", "10"},
    {"log_level", std::to_string(log_level)},
  };
  props.insert(props.end(), user.begin(), user.end());
  for (const auto& [k, v] : props)
    if (rd_kafka_conf_set(conf, k.c_str(), v.c_str(), errstr, sizeof(errstr)) != RD_KAFKA_CONF_OK) {
      rd_kafka_conf_destroy(conf);
      return persistence::status{errc::invalid_argument,
                                 what + ": consumer property " + k + "=" + v + ": " + errstr};
    }
  rd_kafka_t* h = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
  if (!h) {
    rd_kafka_conf_destroy(conf);
    return persistence::status{errc::invalid_argument,
                               what + ": cannot create a consumer: " + errstr};
  }
  rd_kafka_poll_set_consumer(h);
  return reader_ptr{h};
}

} // namespace strata::kafka::detail
