// File: strata/cluster/fwd.hpp
//
// Forward declarations of strata::cluster's types (the cluster's pure decision core).
#pragma once

#include <cstdint>

namespace strata::cluster {

struct address;
struct member_id;
enum class member_status : std::uint8_t;
struct member_record;
class member_view;
struct shard_move;
struct shard_state;
enum class handoff_phase : std::uint8_t;
struct detector_config;
class failure_detector;
class member_detectors;
enum class reachability_status : std::uint8_t;
struct reachability_row;
class reachability;
struct downing_config;
enum class downing_kind : std::uint8_t;
struct downing_decision;

/// A shard number, 0 .. shards-1; also the Kafka partition of the shard's events.
using shard_id = std::uint32_t;

} // namespace strata::cluster
