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
//   claim_tracker t;                            // a partition read from its start
//   t.on_claim(2);                              // a claim record (epoch 2)
//   bool ok = t.valid(2), stale = !t.valid(1);  // records after it (their epoch header)
//
// Threads: pure functions and constants.
#pragma once

#include "strata/persistence/status.hpp"

#include <cstdint>
#include <optional>
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

/// The validity rule of the records of one partition (docs/kafka.md, "Fencing"): the
/// one place that decides whether a record counts. The **epoch in force** at a record is
/// the highest epoch of the claim records before it in the partition; a record is
/// **valid** when no claim precedes it, or when its epoch (header `strata-epoch`; a
/// record without the header has epoch 0) equals the epoch in force. Claims themselves
/// are not data: a claim with an epoch at or below the one in force changes nothing
/// (a retried or late claim of an older owner cannot take the partition back).
///
/// Why "no claim: valid": before the first claim nothing in the log says who owns the
/// partition — a single node (epoch 0, or no header) writes there, and an owner whose
/// claim predates the topic (a type first seen after the claim) too — so nothing can be
/// fenced; fencing starts with the first claim, which every cluster owner appends before
/// it serves. Why the highest and not the last claim: epochs grow per shard with each
/// change of owner, so the highest is the newest owner's even when an older claim
/// lands late.
///
/// A reader that starts inside a partition (a restore from a checkpoint) starts the
/// tracker with the epoch in force there: `claim_tracker::in_force(e)` (the checkpoint
/// record's epoch; 0 = no claim known, i.e. a single node's checkpoint).
///
/// Pure value, O(1) per record, no allocation. Threads: one thread at a time.
class claim_tracker {
 public:
  /// At the start of a partition: no claim seen.
  claim_tracker() noexcept = default;
  /// Inside a partition where `epoch` is in force (0: no claim precedes).
  static claim_tracker in_force(std::uint64_t epoch) noexcept {
    claim_tracker t;
    if (epoch > 0) t.on_claim(epoch);
    return t;
  }
  /// A claim record of `epoch` follows. True when it raised the epoch in force.
  bool on_claim(std::uint64_t epoch) noexcept {
    if (claimed_ && epoch <= epoch_) return false;
    claimed_ = true;
    epoch_ = epoch;
    return true;
  }
  /// Whether a record (not a claim) with `record_epoch` (nullopt: no epoch header,
  /// counts as 0) is valid here.
  bool valid(std::optional<std::uint64_t> record_epoch) const noexcept {
    return !claimed_ || record_epoch.value_or(0) == epoch_;
  }
  /// A claim precedes (false: every record is valid).
  bool claimed() const noexcept { return claimed_; }
  /// The epoch in force (0 when !claimed()).
  std::uint64_t epoch() const noexcept { return epoch_; }

  friend bool operator==(const claim_tracker& a, const claim_tracker& b) noexcept {
    return a.claimed_ == b.claimed_ && a.epoch_ == b.epoch_;
  }

 private:
  bool claimed_ = false;
  std::uint64_t epoch_ = 0;
};

/// Parses an epoch header's value (decimal text). nullopt when it is not a number.
/// Pure.
std::optional<std::uint64_t> parse_epoch(std::string_view text) noexcept;

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
    return a.shard == b.shard && a.offset == b.offset && a.epoch == b.epoch && a.member == b.member;
  }
};

/// The checkpoint's record value: "shard=<n> offset=<n> epoch=<n> member=<text>". Pure.
std::string encode_checkpoint_value(const checkpoint& c);

/// Parses encode_checkpoint_value's format. Errors: corrupt (names what is bad).
persistence::result<checkpoint> parse_checkpoint_value(std::string_view value);

} // namespace strata::kafka
