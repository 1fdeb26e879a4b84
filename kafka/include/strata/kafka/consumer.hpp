// File: strata/kafka/consumer.hpp
//
// Feeds a projection (strata/persistence/projection.hpp) from Kafka topics written by
// the bridge (bridge.hpp).
// Partitions are assigned directly (rd_kafka_assign: no consumer group, no rebalance
// wait); the next offset of every partition is stored in the journal's offset store
// ("<projection>/kafka/<topic>/<partition>") in the same transaction as the view, so a
// restart resumes exactly after the last applied record. Duplicates that the
// at-least-once bridge produced are dropped by (persistence id, seq). Claim records
// (record_format.hpp) are skipped: their offsets are stored, nothing is applied; so are
// records invalid by the validity rule (claim_tracker: written under an epoch other
// than the claim in force, i.e. by a fenced owner). The epoch in force per partition is
// stored beside its offset ("<projection>/kafka/<topic>/<partition>/epoch", same
// transaction), so a restart judges the next records as an uninterrupted read would.
// Starting at the end without a stored offset, records count from the first claim read.
//
//   consumer_options o;
//   o.bootstrap_servers = bootstrap;
//   o.topics = {"strata.account"};                       // all partitions of each
//   auto c = projection_consumer::open(*journal, report_projection, o);
//   (*c)->catch_up(10'000);            // up to the high watermarks seen at the call
//   (*c)->start(); … (*c)->stop();     // or tail on a background thread
//
// Threads: one thread at a time (its own after start()).
#pragma once

#include "strata/persistence/projection.hpp"
#include "strata/persistence/status.hpp"

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace strata::persistence {
class journal;
} // namespace strata::persistence

namespace strata::kafka {

struct consumer_options {
  std::string bootstrap_servers;   ///< required
  std::vector<std::string> topics; ///< required, e.g. {"strata.account"}
  /// Partitions to consume of every topic; empty = all (from the cluster's metadata).
  std::vector<std::int32_t> partitions;
  /// Without a stored offset: `beginning` (earliest retained record) or `end`.
  persistence::start_from start = persistence::start_from::beginning;
  std::size_t batch_max_events = 10'000; ///< records per write transaction
  std::uint32_t metadata_timeout_ms = 10'000;
  /// librdkafka `log_level` (3 = errors to stderr).
  int log_level = 3;
  /// Extra librdkafka consumer properties, applied last.
  std::vector<std::pair<std::string, std::string>> consumer_config;
};

class projection_consumer {
 public:
  /// Creates the consumer, reads the stored offsets and assigns the partitions.
  /// Errors: invalid_argument (no servers/topics, bad property, start_from position or
  /// timestamp — not supported for Kafka), unavailable (no metadata in time: the topic
  /// list could not be read), not_found (a topic does not exist), as
  /// projection_writer::open.
  static persistence::result<std::unique_ptr<projection_consumer>>
  open(persistence::journal& j, persistence::projection p, consumer_options o);

  /// Stops the background thread and closes the consumer.
  ~projection_consumer();

  /// Waits up to `timeout_ms` for records and applies what arrived (at most one batch).
  /// Returns the number of records read (duplicates included). Errors: corrupt (a
  /// record is not an envelope: names topic, partition, offset; the consumer stays at
  /// that record), those of apply_batch. invalid_argument while the thread runs.
  persistence::result<std::size_t> poll(std::uint32_t timeout_ms);

  /// Applies records until every assigned partition reached the high watermark it had
  /// at the call. Errors: unavailable (timeout or watermarks unknown), those of poll.
  persistence::status catch_up(std::uint32_t timeout_ms);

  /// Consumes on a background thread until stop(); a batch error stops it (health()).
  persistence::status start();
  void stop();
  persistence::status health() const;

  persistence::projection_stats stats() const noexcept;
  /// Records read from Kafka since open (duplicates included).
  std::uint64_t records_read() const noexcept;
  /// Records skipped since open as invalid by the validity rule (claim_tracker,
  /// record_format.hpp): written by an owner a newer claim had fenced. Any thread.
  std::uint64_t records_fenced() const noexcept;

 private:
  struct impl;
  explicit projection_consumer(std::unique_ptr<impl> p);
  std::unique_ptr<impl> impl_;
};

} // namespace strata::kafka
