// File: strata/persistence/offset_store.hpp
//
// Named consumer positions (Kafka bridge, projections, the index), in the journal's
// environment, so a consumer commits its view and its offset in ONE transaction:
//
//   env.write([&](write_txn& txn) {
//     txn.put(view_table, key, value);
//     return journal->offsets().put(txn, "report", position);
//   });
//   auto pos = journal->offsets().get("report");              // result<optional<u64>>
#pragma once

#include "strata/persistence/environment.hpp"
#include "strata/persistence/status.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace strata::persistence {

class offset_store {
 public:
  /// The stored position of `consumer`, or nullopt if it never stored one.
  result<std::optional<std::uint64_t>> get(std::string_view consumer) const;
  /// The same inside a caller's transaction.
  result<std::optional<std::uint64_t>> get(const read_txn& txn, std::string_view consumer) const;

  /// Stores `position` for `consumer` in its own transaction. Errors: io_error.
  status put(std::string_view consumer, std::uint64_t position);
  /// Stores inside a caller's write transaction (commits with the caller's view).
  status put(write_txn& txn, std::string_view consumer, std::uint64_t position);

  /// All consumers with their positions, sorted by name.
  result<std::vector<std::pair<std::string, std::uint64_t>>> list() const;

 private:
  friend class journal;
  offset_store(environment* env, table t) noexcept : env_(env), table_(t) {}
  environment* env_;
  table table_;
};

} // namespace strata::persistence
