// File: strata/persistence/projection.hpp
//
// Read-side projections: a pure-ish fold of events into a view stored in the journal's
// LMDB environment, updated exactly once per event because the view, the per-stream
// highest applied seq (de-duplication) and the source offsets commit in ONE write
// transaction. Two sources feed the same projection: the local journal
// (journal_projection below) and Kafka (strata::kafka::projection_consumer,
// strata/kafka/consumer.hpp in the strata::kafka library).
//
//   auto view = journal->env().open_table("report.view");
//   projection p{"report", [&](write_txn& txn, const event_record& e) -> status {
//     return txn.put(*view, e.persistence_id, std::to_string(e.seq));
//   }};
//   auto tail = journal_projection::open(*journal, p, {});   // from the beginning
//   (*tail)->catch_up(10'000);                                // everything appended so far
//
// Exactly-once view updates: an event (persistence id, seq) is applied only when seq is
// above the stream's highest applied seq; a lower or equal seq is an at-least-once
// duplicate and is dropped (counted). A seq more than one above is applied and counted
// as a gap (it means the source lost or skipped events, e.g. a start from the end).
//
// Threads: a projection_writer / journal_projection is used by one thread at a time
// (its own thread after start()). Views may be read from any thread with env().read.
#pragma once

#include "strata/persistence/environment.hpp"
#include "strata/persistence/event.hpp"
#include "strata/persistence/status.hpp"

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace strata::persistence {

class journal;

/// A read-side projection. `apply` runs inside the write transaction that also stores
/// the de-duplication state and the offsets; return an error to abort that whole batch
/// (nothing of it is stored, the source stops with that error). `apply` may run again
/// for the same batch when LMDB grows its map, so it must not have side effects outside
/// the transaction.
struct projection {
  std::string name; ///< 1..100 bytes; names its offsets ("<name>/…") and its seq table
  std::function<status(write_txn&, const event_record&)> apply;
};

struct projection_stats {
  std::uint64_t applied = 0;    ///< events handed to apply
  std::uint64_t duplicates = 0; ///< dropped: seq <= the stream's highest applied seq
  std::uint64_t gaps = 0;       ///< applied events whose seq skipped ahead
  std::uint64_t batches = 0;    ///< committed write transactions
};

/// Applies batches of events to a projection with de-duplication, storing the view,
/// the per-stream highest seq (table "<name>.seqs") and the caller's offsets in one
/// transaction. The building block of both sources.
class projection_writer {
 public:
  /// Opens the seq table in `j`'s environment. Errors: invalid_argument (empty name or
  /// apply, too many tables), io_error.
  static result<std::unique_ptr<projection_writer>> open(journal& j, projection p);

  ~projection_writer();

  /// One write transaction: applies each event of `events` (in order) that is not a
  /// duplicate, then stores every (offset name, value) of `offsets` in the offset store.
  /// Errors: apply's error, io_error, map_full. On error nothing is stored.
  status apply_batch(const std::vector<event_record>& events,
                     const std::vector<std::pair<std::string, std::uint64_t>>& offsets);

  /// The highest applied seq of a stream (0 when none). Errors: io_error, corrupt.
  result<std::uint64_t> highest_seq(std::string_view persistence_id) const;

  const projection& proj() const noexcept;
  projection_stats stats() const noexcept;
  journal& source_journal() noexcept;

 private:
  struct impl;
  explicit projection_writer(std::unique_ptr<impl> p);
  std::unique_ptr<impl> impl_;
};

/// Where a subscription starts when it has no stored offset yet.
enum class start_from : std::uint8_t {
  beginning, ///< the first event
  end,       ///< only events appended after open()
  position,  ///< the first event at or after `position`
  timestamp, ///< the first event whose timestamp is >= `timestamp_ns`
};

struct journal_projection_options {
  start_from start = start_from::beginning;
  std::uint64_t position = 0;            ///< for start_from::position
  std::int64_t timestamp_ns = 0;         ///< for start_from::timestamp (ns since epoch)
  std::size_t batch_max_events = 10'000; ///< events per write transaction
  std::uint32_t idle_poll_ms = 5;        ///< background thread: sleep when caught up
};

/// A catch-up subscription of a projection to the local journal (no Kafka). Its offset
/// "<name>/journal" is the last applied global position; it wins over `start`.
class journal_projection {
 public:
  /// Errors: as projection_writer::open; io_error reading the stored offset.
  static result<std::unique_ptr<journal_projection>> open(journal& j, projection p,
                                                          journal_projection_options o = {});
  /// Stops the background thread if running.
  ~journal_projection();

  /// Applies at most one batch of the events available now. Returns how many events it
  /// read (0 = caught up). Errors: those of projection_writer::apply_batch, corrupt.
  /// Not while the background thread runs (returns invalid_argument then).
  result<std::size_t> poll();

  /// Applies batches until every event appended before the call is applied or
  /// `timeout_ms` passed. Errors: unavailable (timeout), and those of poll.
  status catch_up(std::uint32_t timeout_ms);

  /// Tails the journal on a background thread until stop(). A batch error stops the
  /// thread; health() then returns it.
  status start();
  void stop();
  status health() const;

  /// The last applied global position (0 = none).
  std::uint64_t position() const noexcept;
  projection_stats stats() const noexcept;

 private:
  struct impl;
  explicit journal_projection(std::unique_ptr<impl> p);
  std::unique_ptr<impl> impl_;
};

} // namespace strata::persistence
