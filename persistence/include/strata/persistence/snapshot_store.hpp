// File: strata/persistence/snapshot_store.hpp
//
// Snapshots of stream state, in the journal's environment: (stream, seq) → envelope.
//
//   auto& snaps = journal->snapshots();
//   snapshot_record s{"account-1", 100, 0, "account.state", 1, state_bytes};
//   auto st = snaps.save(s);                                 // keeps the newest keep_n
//   auto latest = snaps.load_latest("account-1");            // result<optional<…>>
//
// Threads: save/remove are writes (use the journal's writer thread, or accept that
// LMDB serialises them against appends); loads are reads from any thread.
#pragma once

#include "strata/persistence/environment.hpp"
#include "strata/persistence/event.hpp"
#include "strata/persistence/status.hpp"

#include <cstdint>
#include <memory>
#include <optional>
#include <string_view>
#include <vector>

namespace strata::persistence {

class snapshot_store {
 public:
  /// How many snapshots per stream survive a save (the newest ones). At least 1.
  std::size_t keep_n() const noexcept { return keep_n_; }
  void set_keep_n(std::size_t n) noexcept { keep_n_ = n < 1 ? 1 : n; }

  /// Saves `s` (its stream must exist in the journal) and deletes all but the newest
  /// keep_n snapshots of that stream. Errors: invalid_argument (unknown stream, seq 0
  /// or beyond the stream's head), io_error.
  status save(const snapshot_record& s);
  /// The same inside a caller's write transaction.
  status save(write_txn& txn, const snapshot_record& s);

  /// The newest snapshot of a stream, or nullopt. Errors: corrupt (names stream and
  /// seq), io_error.
  result<std::optional<snapshot_record>> load_latest(std::string_view persistence_id) const;
  /// The newest snapshot with seq <= max_seq, or nullopt.
  result<std::optional<snapshot_record>> load_at_or_before(std::string_view persistence_id,
                                                           std::uint64_t max_seq) const;
  /// Sequence numbers of the stored snapshots of a stream, ascending.
  result<std::vector<std::uint64_t>> list(std::string_view persistence_id) const;

 private:
  friend class journal;
  struct impl;
  snapshot_store(void* journal_impl) noexcept : journal_(journal_impl) {}
  void* journal_;
  std::size_t keep_n_ = 2;
};

} // namespace strata::persistence
