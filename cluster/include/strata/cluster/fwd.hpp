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

/// A shard number, 0 .. shards-1; also the Kafka partition of the shard's events.
using shard_id = std::uint32_t;

} // namespace strata::cluster
