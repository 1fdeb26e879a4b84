// A raw librdkafka consumer (the restore's consumer properties, kafka/src/restore.cpp):
// the baseline `restore` and `rebalance` compare with (bench/scenario_restore.cpp).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace strata::bench {

/// Reads partition `partition` of `topic` from offset 0 up to `end` (exclusive) with a
/// fresh consumer; returns the records read and adds a byte of each value to
/// `checksum`. Throws bench::failure when a consumer cannot be made or after 5 minutes.
std::uint64_t raw_read(const std::string& bootstrap, const std::string& topic,
                       std::uint32_t partition, std::int64_t end, std::uint64_t& checksum);

/// Low and high watermarks of partitions 0 .. shards-1 of `topic`. Throws
/// bench::failure when a consumer cannot be made or a query fails.
void watermarks(const std::string& bootstrap, const std::string& topic, std::uint32_t shards,
                std::vector<std::int64_t>& lo, std::vector<std::int64_t>& hi);

} // namespace strata::bench
