// File: strata/persistence/shard.hpp
//
// The stable shard hash of strata. The cluster routes an entity to
// `shard_of(persistence_id, num_shards)`, and the Kafka bridge produces the entity's
// events to the partition with the same number, so a shard's events are exactly one
// partition of each topic (a moving shard restores from that partition).
//
//   auto shard = strata::persistence::shard_of("account-42");          // 64 shards
//   auto p = strata::persistence::shard_of("account-42", 16);
//
// The hash is 64-bit FNV-1a over the bytes of the persistence id, reduced modulo the
// shard count. It is part of the on-disk / on-wire contract: every node, every
// version, every language must compute the same value, so it is NOT std::hash (which
// differs between standard libraries) and must never change. Reference values (tested):
//   fnv1a_64("")          == 0xcbf29ce484222325
//   fnv1a_64("a")         == 0xaf63dc4c8601ec8c
//   shard_of("account-42", 64) == fnv1a_64("account-42") % 64
// Outside C++ (Python): h = 0xcbf29ce484222325; for b in pid.encode(): h ^= b;
// h = (h * 0x100000001b3) % 2**64; shard = h % 64.
#pragma once

#include <cstdint>
#include <string_view>

namespace strata::persistence {

/// Default number of shards (and of partitions per Kafka topic).
inline constexpr std::uint32_t default_num_shards = 64;

/// 64-bit FNV-1a of `bytes`. Pure, any thread.
constexpr std::uint64_t fnv1a_64(std::string_view bytes) noexcept {
  std::uint64_t h = 0xcbf29ce484222325ull;
  for (char c : bytes) {
    h ^= static_cast<unsigned char>(c);
    h *= 0x100000001b3ull;
  }
  return h;
}

/// The shard (0 .. num_shards-1) of a persistence id; also its Kafka partition.
/// `num_shards` 0 is treated as 1 (everything in shard 0). Pure, any thread.
constexpr std::uint32_t shard_of(std::string_view persistence_id,
                                 std::uint32_t num_shards = default_num_shards) noexcept {
  return num_shards == 0 ? 0u : static_cast<std::uint32_t>(fnv1a_64(persistence_id) % num_shards);
}

} // namespace strata::persistence
