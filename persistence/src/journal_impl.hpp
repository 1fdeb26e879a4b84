// Internal: the state of an open journal, shared by journal.cpp, snapshot_store.cpp and
// offset_store.cpp.
#pragma once

#include "strata/persistence/journal.hpp"
#include "strata/persistence/offset_store.hpp"
#include "strata/persistence/snapshot_store.hpp"

#include "lmdb_util.hpp"
#include "stream_table.hpp"

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

namespace strata::persistence {

struct journal::impl {
  /// What the writer knows of one stream. Events with seq in (indexed_head, head] are
  /// committed but not yet in the index table; their positions are in `pending`.
  struct stream_state {
    std::string pid; // the cache key views this string
    std::uint64_t id = 0;
    std::uint64_t head = 0;
    std::uint64_t indexed_head = 0;
    std::vector<std::uint64_t> pending; // positions of seqs indexed_head+1 .. head
    // Planner-private (the thread calling append; never read by readers or the
    // committer): the head including batches still queued for commit, and whether the
    // streams table has (or a queued batch writes) this stream.
    std::uint64_t planned_head = 0;
    bool stored = false;
    std::uint64_t mark = 0; // append number that last touched this stream
    std::size_t work = 0;   // index into that append's work list
  };

  /// A planned and encoded batch, queued for the commit thread.
  struct prepared {
    std::vector<write_result> results;
    std::vector<std::pair<std::string, std::uint64_t>> created; // new streams (pid, id)
    std::uint64_t next_stream_id = 0;                           // after this batch
    std::uint64_t first_position = 0;                           // of the first record (when any)
    std::uint64_t last_position = 0; // the log's last position after this batch
    std::string arena;               // the stored records, back to back
    std::vector<std::uint32_t> ends; // end offset of each record in `arena`
    std::vector<std::pair<snapshot_record, std::uint64_t>> snapshots; // with stream id
    std::vector<std::pair<stream_state*, std::uint64_t>> heads;       // stream → head after
    std::vector<std::pair<stream_state*, std::uint64_t>> added;       // stream → position
    std::function<void(result<std::vector<write_result>>)> done;
  };
  using stream_cache = detail::stream_table<stream_state>;

  journal_options opts;
  std::unique_ptr<environment> env;
  table events{}, index{}, streams{}, names{}, snaps{}, offsets_tbl{}, meta{};
  snapshot_store snapshots_api;
  offset_store offsets_api;

  // Guards the members below against concurrent readers. The writer mutates them only
  // with `mem` held unique, after the transaction that justified the change committed.
  // Readers take it shared *before* beginning their read transaction (see read_stream).
  mutable std::shared_mutex mem;
  stream_cache cache;             // streams known to the writer
  std::uint64_t append_count = 0; // numbers appends, for stream_state::mark
  std::size_t pending_count = 0;
  std::uint64_t next_stream_id = 1;
  std::uint64_t indexed_through = 0;
  std::atomic<std::uint64_t> last_position{0};
  bool closed = false;

  // Pipelined appends: the calling thread plans and encodes a batch, the commit thread
  // writes it, so encoding the next batch overlaps the fsync of the previous one.
  std::mutex q_mu;
  std::condition_variable q_cv;    // the commit thread waits for work
  std::condition_variable idle_cv; // the planner waits for room / for idle
  std::deque<std::unique_ptr<prepared>> queue;
  std::size_t in_flight = 0; // queued + being committed
  bool stopping = false;
  status failed; // a whole-batch failure not yet reset by the planner
  std::thread committer;
  // Planner-private.
  std::uint64_t planned_position = 0;
  std::uint64_t planned_stream_id = 1;
  std::int64_t last_stamp_ns = 0; // the last timestamp the journal assigned

  /// The commit thread's loop.
  void commit_loop();
  /// Commits one prepared batch and publishes it (commit thread).
  status commit(prepared& p);
  /// Blocks until nothing is queued or being committed (planner thread).
  void drain();
  /// After a failed batch: forget what queued batches planned (planner, after drain).
  void reset_plan();
  /// Drops cached streams with nothing pending when the cache is large (planner).
  void trim_cache();

  impl() : snapshots_api(this), offsets_api(nullptr, table{}) {}

  /// The stream's id and indexed head as stored (nullopt id: unknown stream).
  /// Works inside any transaction.
  status lookup_stored(const read_txn& txn, std::string_view pid, std::uint64_t& id,
                       std::uint64_t& head) const;
  /// The cached state of `pid` or nullptr. Caller holds `mem` or is the writer.
  stream_state* cached(std::string_view pid) const { return cache.find(pid); }
  /// Inserts a stream into the cache (writer, with `mem` held unique).
  stream_state& insert(std::string_view pid) { return cache.insert(pid); }
  /// Writes the pending index entries in one transaction (writer thread).
  status flush_pending();
  /// Stream id of `pid` as the writer or the store knows it; 0 when unknown.
  result<std::uint64_t> stream_id(std::string_view pid) const;
};

namespace detail {
/// Saves a snapshot of stream `stream_id` in `txn` and applies keep-N retention.
status save_snapshot(journal::impl& j, write_txn& txn, const snapshot_record& s,
                     std::uint64_t stream_id);
} // namespace detail

/// Sequence numbers covered by an index entry: key (id, first_seq) → positions.
inline std::uint64_t index_count(std::string_view value) noexcept { return value.size() / 8; }

} // namespace strata::persistence
