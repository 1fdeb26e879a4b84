// File: strata/kafka/record_format.hpp
//
// The parts of strata's Kafka records that are not the envelope: the ownership epoch
// header every record carries and the claim record a new shard owner appends
// (docs/kafka.md, "Epochs and claim records"), and the checkpoint record an old owner
// appends to a snapshot topic when it hands a shard over (docs/kafka.md, "Checkpoints").
// One place for the names and the value formats; the bridge writes them, restore_shard
// and projection_consumer read or skip them.
//
//   claim c{3, 7, "127.0.0.1:4501#1700000000"};
//   std::string v = encode_claim_value(c);      // "shard=3 epoch=7 member=127.0.0.1:4501#…"
//   auto back = parse_claim_value(v);           // result<claim>
//
// Threads: pure functions and constants.
#pragma once

#include "strata/persistence/status.hpp"

#include <cstdint>
#include <string>
#include <string_view>

namespace strata::kafka {

/// Header on every record the bridge produces (events and claims): the ownership epoch
/// of the record's shard as decimal text. Single node (no cluster): "0".
inline constexpr std::string_view epoch_header = "strata-epoch";
/// Header that marks a claim record (its value: the claiming member). A record is a
/// claim exactly when it carries this header; it is not an envelope.
inline constexpr std::string_view claim_header = "strata-claim";
/// The key of every claim record.
inline constexpr std::string_view claim_key = "strata-claim";

/// What a claim record says: from here on, `member` owns `shard` under `epoch`.
struct claim {
  std::uint32_t shard = 0;
  std::uint64_t epoch = 0;
  std::string member;

  friend bool operator==(const claim& a, const claim& b) {
    return a.shard == b.shard && a.epoch == b.epoch && a.member == b.member;
  }
};

/// The claim's record value: "shard=<decimal> epoch=<decimal> member=<text>" (UTF-8,
/// the member is the rest of the value and may contain spaces). Pure.
std::string encode_claim_value(const claim& c);

/// Parses encode_claim_value's format. Errors: corrupt (names what is missing or bad).
persistence::result<claim> parse_claim_value(std::string_view value);

/// Header that marks a checkpoint record in a snapshot topic (its value: the offset, as
/// decimal text). A record of a snapshot topic is a checkpoint exactly when it carries
/// this header; it is not a snapshot.
inline constexpr std::string_view checkpoint_header = "strata-checkpoint";
/// The key of every checkpoint record (so a compacted snapshot topic keeps the latest).
inline constexpr std::string_view checkpoint_key = "strata-checkpoint";

/// What a checkpoint record in partition `shard` of `<topic><snapshot suffix>` says:
/// every event at an offset below `offset` in partition `shard` of `<topic>` is covered
/// by a snapshot (of its stream, at or past the event's seq) written to this snapshot
/// partition before the checkpoint. A restore reads the snapshots, then the events from
/// `offset` on.
struct checkpoint {
  std::uint32_t shard = 0;
  std::int64_t offset = 0;
  std::uint64_t epoch = 0;
  std::string member;

  friend bool operator==(const checkpoint& a, const checkpoint& b) {
    return a.shard == b.shard && a.offset == b.offset && a.epoch == b.epoch &&
           a.member == b.member;
  }
};

/// The checkpoint's record value: "shard=<n> offset=<n> epoch=<n> member=<text>". Pure.
std::string encode_checkpoint_value(const checkpoint& c);

/// Parses encode_checkpoint_value's format. Errors: corrupt (names what is bad).
persistence::result<checkpoint> parse_checkpoint_value(std::string_view value);

} // namespace strata::kafka
