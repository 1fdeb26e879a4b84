// File: strata/persistence/event.hpp
//
// Value types of the journal: what a writer hands in (`event_data`, `stream_write`)
// and what a reader gets back (`event_record`). Plain values, copyable.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace strata::persistence {

/// One event as the aggregate decided it; the journal assigns seq and position.
struct event_data {
  std::string type;                 ///< event type name, e.g. "deposited"
  std::uint32_t schema_version = 1; ///< version of the payload's schema
  std::string payload;              ///< the user's Cap'n Proto message, serialised
  /// Wall clock, ns since epoch. 0 = stamped at append: the journal's clock, strictly
  /// increasing from event to event (so a time is a point in the log).
  std::int64_t timestamp_ns = 0;
  std::vector<std::string> tags;
  std::string correlation_id;
  std::string causation_id;
};

/// Events for one stream in one batch, with the optimistic-concurrency check.
struct stream_write {
  /// Use as expected_seq to skip the check (append after whatever is there).
  static constexpr std::uint64_t any_seq = ~std::uint64_t{0};

  std::string persistence_id;     ///< e.g. "account-42"; 1..255 bytes, not empty
  std::uint64_t expected_seq = 0; ///< the stream's head the writer decided on (0 = new)
  std::uint64_t shard_epoch = 0;  ///< stamped into every envelope (cluster fencing)
  std::vector<event_data> events;
};

/// An event as stored: the decoded envelope.
struct event_record {
  std::string persistence_id;
  std::uint64_t seq = 0;      ///< 1-based, gap-free per stream
  std::uint64_t position = 0; ///< 1-based, gap-free global log position at append time
  std::int64_t timestamp_ns = 0;
  std::string type;
  std::uint32_t schema_version = 1;
  std::string payload;
  std::vector<std::string> tags;
  std::string correlation_id;
  std::string causation_id;
  std::string writer_node;
  std::uint64_t shard_epoch = 0;
  std::uint32_t checksum = 0; ///< CRC32C of payload, as stored in the envelope

  friend bool operator==(const event_record& a, const event_record& b) {
    return a.persistence_id == b.persistence_id && a.seq == b.seq && a.position == b.position &&
           a.timestamp_ns == b.timestamp_ns && a.type == b.type &&
           a.schema_version == b.schema_version && a.payload == b.payload && a.tags == b.tags &&
           a.correlation_id == b.correlation_id && a.causation_id == b.causation_id &&
           a.writer_node == b.writer_node && a.shard_epoch == b.shard_epoch &&
           a.checksum == b.checksum;
  }
  friend bool operator!=(const event_record& a, const event_record& b) { return !(a == b); }
};

/// A stored event seen without copies: the views point into a buffer of the journal
/// that stays valid only during the visitor call that receives it (copy what you keep,
/// e.g. with to_record()). The fast path for recovery and projections.
struct event_view {
  std::string_view persistence_id;
  std::uint64_t seq = 0;
  std::uint64_t position = 0;
  std::int64_t timestamp_ns = 0;
  std::string_view type;
  std::uint32_t schema_version = 1;
  std::string_view payload;
  std::vector<std::string_view> tags;
  std::string_view correlation_id;
  std::string_view causation_id;
  std::string_view writer_node;
  std::uint64_t shard_epoch = 0;
  std::uint32_t checksum = 0;

  /// A view of `r` (valid while `r` is unchanged).
  static event_view of(const event_record& r) {
    event_view v;
    v.persistence_id = r.persistence_id;
    v.seq = r.seq;
    v.position = r.position;
    v.timestamp_ns = r.timestamp_ns;
    v.type = r.type;
    v.schema_version = r.schema_version;
    v.payload = r.payload;
    v.tags.assign(r.tags.begin(), r.tags.end());
    v.correlation_id = r.correlation_id;
    v.causation_id = r.causation_id;
    v.writer_node = r.writer_node;
    v.shard_epoch = r.shard_epoch;
    v.checksum = r.checksum;
    return v;
  }

  /// A copy that owns its bytes.
  event_record to_record() const {
    event_record r;
    r.persistence_id = persistence_id;
    r.seq = seq;
    r.position = position;
    r.timestamp_ns = timestamp_ns;
    r.type = type;
    r.schema_version = schema_version;
    r.payload = payload;
    r.tags.assign(tags.begin(), tags.end());
    r.correlation_id = correlation_id;
    r.causation_id = causation_id;
    r.writer_node = writer_node;
    r.shard_epoch = shard_epoch;
    r.checksum = checksum;
    return r;
  }
};

/// A snapshot of one stream's state at `seq` (its payload is the aggregate's own
/// Cap'n Proto state message).
struct snapshot_record {
  std::string persistence_id;
  std::uint64_t seq = 0;
  std::int64_t timestamp_ns = 0;
  std::string type;
  std::uint32_t schema_version = 1;
  std::string payload;
  std::uint32_t checksum = 0;
};

} // namespace strata::persistence
