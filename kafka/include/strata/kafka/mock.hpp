// File: strata/kafka/mock.hpp
//
// An in-process Kafka cluster for tests, demos and benchmarks: librdkafka's mock
// cluster (the real Kafka wire protocol on loopback sockets, served by one librdkafka
// thread). Any Kafka client — the bridge, a consumer, kcat in another process —
// connects to `bootstrap_servers()`.
//
//   auto mock = mock_cluster::start(3);                    // 3 brokers
//   (*mock)->create_topic("strata.account", 64);                 // explicit partitions
//   opts.bootstrap_servers = (*mock)->bootstrap_servers();
//   (*mock)->set_broker_down(1);  …  (*mock)->set_broker_up(1);
//
// Limits of librdkafka 2.0.2's mock (do not build tests that claim more):
// - a topic that is not created explicitly is auto-created with 4 partitions;
// - each partition keeps at most 100,000 message sets or 5 MiB, older ones are dropped;
// - idempotent producer sequence numbers are checked only for transactional producers,
//   so a retried request whose first attempt was stored is stored twice (a real broker
//   drops the repeat) and a request that follows a failed one is not rejected;
// - no transaction isolation, one replica does all the work.
//
// Threads: all members may be called from any thread (the mock serialises them on its
// own thread). Resource type: owned by one unique_ptr; destroying it closes the brokers.
#pragma once

#include "strata/persistence/status.hpp"

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace strata::kafka {

class mock_cluster {
 public:
  /// Starts `num_brokers` (1..32) mock brokers on 127.0.0.1 with ephemeral ports.
  /// Errors: invalid_argument (broker count), internal (librdkafka refused).
  static persistence::result<std::unique_ptr<mock_cluster>> start(int num_brokers = 3);

  ~mock_cluster();
  mock_cluster(const mock_cluster&) = delete;
  mock_cluster& operator=(const mock_cluster&) = delete;

  /// "127.0.0.1:p1,127.0.0.1:p2,…" for `bootstrap.servers`.
  const std::string& bootstrap_servers() const noexcept;

  int num_brokers() const noexcept;

  /// Creates `topic` with `partitions` partitions and replication factor
  /// min(3, brokers). Errors: invalid_argument (already exists with a different
  /// count, bad arguments), internal.
  persistence::status create_topic(std::string_view topic, int partitions);

  /// Takes broker `id` (1..num_brokers) down: its connections are closed and its port
  /// refuses new ones until set_broker_up. Errors: invalid_argument (unknown id).
  persistence::status set_broker_down(int id);
  persistence::status set_broker_up(int id);
  /// Every broker down / up.
  void set_all_brokers_down();
  void set_all_brokers_up();

  /// The next `count` Produce requests (to any broker) fail with the given Kafka
  /// protocol error code (e.g. 6 NOT_LEADER_OR_FOLLOWER, 7 REQUEST_TIMED_OUT,
  /// 56 KAFKA_STORAGE_ERROR). The request is not stored by the mock.
  void push_produce_errors(std::size_t count, int kafka_error_code);

  /// Adds `rtt_ms` of latency to every response of broker `id`.
  persistence::status set_broker_rtt(int id, int rtt_ms);

 private:
  struct impl;
  explicit mock_cluster(std::unique_ptr<impl> p);
  std::unique_ptr<impl> impl_;
};

} // namespace strata::kafka
