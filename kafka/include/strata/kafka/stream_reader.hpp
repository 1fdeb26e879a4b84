// File: strata/kafka/stream_reader.hpp
//
// Reads one stream's events back from Kafka: what a shard owner asks for the events of
// a stream that its journal started at a snapshot (journal::import_base, restore.hpp)
// and so does not hold — `history`, the state as of a seq or a time. Scans partition
// `partition` of `topic` from its first retained offset up to the end offset found at
// the start (or until `to_seq` is found), keeps the records keyed by the persistence id
// with from_seq <= seq <= to_seq (claims skipped; records invalid by the validity rule —
// claim_tracker, record_format.hpp: written by an owner a newer claim fenced — skipped
// too), and decodes them. The cost grows with
// the partition, not with the stream: it is a fallback for reads of old events, not
// the path of commands or recovery.
//
//   stream_read_options o{bootstrap, "strata.account", 17};
//   auto r = read_stream_events(o, "account:acct-1", 1, 40);   // result<vector<event_record>>
//
// Threads: any thread; blocks until done or timeout_ms. A consumer of its own per call
// (assigned partition, no group).
#pragma once

#include "strata/persistence/event.hpp"
#include "strata/persistence/status.hpp"

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace strata::kafka {

struct stream_read_options {
  std::string bootstrap_servers; ///< required
  std::string topic;             ///< required: the stream's event topic
  std::uint32_t partition = 0;   ///< the stream's shard
  std::uint32_t timeout_ms = 30'000;
  int log_level = 3;
  /// Extra librdkafka consumer properties, applied last.
  std::vector<std::pair<std::string, std::string>> consumer_config;
};

/// The events of `persistence_id` with from_seq <= seq <= to_seq found in the partition,
/// in offset order (which is seq order: one owner appends a stream at a time). A
/// (persistence id, seq) found twice (a producer retry) is kept once. Errors:
/// invalid_argument (no servers or topic, a bad consumer property), not_found (no such
/// topic or partition), unavailable (not read to its end within timeout_ms), corrupt (a
/// record of the stream is not an envelope: names topic, partition, offset).
persistence::result<std::vector<persistence::event_record>>
read_stream_events(const stream_read_options& o, std::string_view persistence_id,
                   std::uint64_t from_seq, std::uint64_t to_seq);

} // namespace strata::kafka
