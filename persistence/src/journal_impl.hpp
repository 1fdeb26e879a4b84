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
#include <map>
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
    position_range imported; // journal::import: the positions to record as imported

    /// Empties it for the next batch, keeping the capacity of its buffers (the
    /// arena only up to a bound).
    void reset();
  };
  using stream_cache = detail::stream_table<stream_state>;

  journal_options opts;
  /// Opened by open_read_only: no cache, no commit thread; reads refresh `tail`.
  bool read_only = false;
  std::unique_ptr<environment> env;
  table events{}, index{}, streams{}, names{}, snaps{}, offsets_tbl{}, meta{};
  /// Imported position ranges: key = last position (u64 BE), value = first (u64 BE).
  /// Not created with the other tables (journals from before import lack it): the
  /// writer creates it at open; a read-only journal opens it once it exists.
  mutable table imported{};
  mutable std::atomic<bool> has_imported{false};
  mutable std::mutex imported_mu; // read-only journals: the lazy open of `imported`/`bases`
  // journal::set_absent_source: swapped whole under absent_mu; has_absent lets reads
  // skip the lock while no source is set.
  mutable std::mutex absent_mu;
  std::shared_ptr<const absent_source> absent;
  std::atomic<bool> has_absent{false};
  /// Stream bases (journal::import_base): key = base_key(pid, base seq), value = the
  /// stream's head before the base (u64 BE); seqs head+1 .. base-1 are absent. Opened
  /// like `imported`: created by the writer at open, lazily by a read-only journal.
  mutable table bases{};
  mutable std::atomic<bool> has_bases{false};
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
  mutable std::atomic<std::uint64_t> last_position{0}; // read-only: refreshed by reads
  bool closed = false;

  // Pipelined appends: the calling thread plans and encodes a batch, the commit thread
  // writes it, so encoding the next batch overlaps the fsync of the previous one.
  std::mutex q_mu;
  std::condition_variable q_cv;    // the commit thread waits for work
  std::condition_variable idle_cv; // the planner waits for room / for idle
  std::deque<std::unique_ptr<prepared>> queue;
  std::size_t in_flight = 0; // queued + being committed
  // Committed batches, reset, for the planner to fill again: their buffers are reused
  // instead of being allocated by the planner and freed by the commit thread.
  std::vector<std::unique_ptr<prepared>> spare_prepared;
  bool stopping = false;
  status failed; // a whole-batch failure not yet reset by the planner
  std::thread committer;
  // Planner-private.
  std::uint64_t planned_position = 0;
  std::uint64_t planned_stream_id = 1;
  std::int64_t last_stamp_ns = 0; // the last timestamp the journal assigned

  /// Checks an append before it is planned; `total` gets its number of events.
  /// Errors: invalid_argument (read-only, too many events), closed.
  status admit(const write_refs& batch, std::size_t& total) const;
  /// Blocks until the pipeline has room; after a failed batch, until it is empty, and
  /// then plans again from what is committed (planner thread).
  void wait_for_room();
  /// A prepared batch to fill: a spare one, or a new one (planner thread).
  std::unique_ptr<prepared> take_prepared();
  /// Queues a planned batch for the commit thread.
  void enqueue(std::unique_ptr<prepared> p);
  /// The commit thread's loop.
  void commit_loop();
  /// Commits one prepared batch and publishes it (commit thread).
  status commit(prepared& p);
  /// The streams first written by `p` (streams, stream_names, meta.next_stream_id).
  status write_created(write_txn& txn, const prepared& p);
  /// Appends `p`'s records to the log (MDB_APPEND).
  status append_records(write_txn& txn, const prepared& p);
  /// Makes a committed batch visible to readers (its heads and pending positions).
  void publish(const prepared& p);
  /// Blocks until nothing is queued or being committed (planner thread).
  void drain();
  /// After a failed batch: forget what queued batches planned (planner, after drain).
  void reset_plan();
  /// The cached state of `pid`, loaded from the store (id and head) when not cached;
  /// a new stream gets the next planned id (planner thread). Errors: corrupt, io_error.
  result<stream_state*> load_state(std::string_view pid);
  /// Writer open: opens (creating) table `imported`.
  status open_imported_table();
  /// Writer open: opens (creating) table `bases`.
  status open_bases_table();
  /// Read-only journals: opens table `bases` once it exists. Sets `present`.
  status lazy_bases(bool& present) const;
  /// Whether the index of `pid` may skip from seq `expect` - 1 to an entry starting at
  /// `first`: table bases holds base `first` of `pid` with the head before it
  /// `expect` - 1. Errors: corrupt (a malformed bases entry), io_error.
  status base_gap(const read_txn& txn, std::string_view pid, std::uint64_t expect,
                  std::uint64_t first, bool& allowed) const;
  /// Drops cached streams with nothing pending when the cache is large (planner).
  void trim_cache();

  /// What a read-only journal knows of the log after `indexed_through` (the part the
  /// writer has not flushed to the index yet), extended incrementally by each read.
  struct tail_map {
    std::mutex mu; // taken before the read transaction begins (see refresh_tail)
    bool valid = false;
    std::uint64_t indexed_through = 0; // the meta value this map is relative to
    std::uint64_t scanned_through = 0; // the last position scanned
    /// pid → (seq, position) of its events after indexed_through, in log order.
    std::unordered_map<std::string, std::vector<std::pair<std::uint64_t, std::uint64_t>>> streams;
  };
  mutable tail_map tail;

  impl() : snapshots_api(this), offsets_api(nullptr, table{}) {}

  /// A new journal's tables and format marker, created in ONE write transaction (writer
  /// only; nothing happens when the journal exists): a reader then sees either none of
  /// the journal's tables (being created) or all of them.
  status create_tables();
  /// Opens the journal's tables (creating them unless read-only). Read-only: none of
  /// them there is not_found (no journal yet); some missing is corrupt.
  status open_tables();
  /// Reads an 8-byte meta counter (0 when absent). Errors: corrupt (wrong size).
  status meta_u64(const read_txn& txn, std::string_view key, std::uint64_t& out) const;
  /// The stored id of `pid` (0: unknown stream), cross-checked with stream_names; when
  /// the stream is not found, the entries next to where it belongs are checked too (a
  /// damaged key would hide it). Errors: corrupt (names table and key), io_error.
  status find_stream(const read_txn& txn, std::string_view pid, std::uint64_t& id) const;
  /// Checks one streams entry (pid → id) against stream_names; sets `id`. On damage,
  /// `what` (when given) gets what is wrong, without table, key and advice.
  status check_stream_entry(const read_txn& txn, std::string_view pid, std::string_view value,
                            std::uint64_t& id, std::string* what = nullptr) const;
  /// The last seq in the index of stream `id` (0: none) and the position stored for
  /// it (0: deleted). Errors: corrupt (malformed entry).
  status index_head(const read_txn& txn, std::string_view pid, std::uint64_t id,
                    std::uint64_t& head, std::uint64_t& last_pos) const;
  /// Checks an index entry that should not belong to the stream being read (the one
  /// next to where its entries end) against the log: its first position must hold its
  /// stream and seq. Errors: corrupt.
  status check_entry_vs_log(const read_txn& txn, std::string_view key,
                            std::string_view value) const;
  /// corrupt when a stored stream (id != 0) has no index entries (head 0) and, as the
  /// caller knows, no un-indexed events either.
  status check_has_events(std::string_view pid, std::uint64_t id, std::uint64_t head) const;
  /// The stream's id and indexed head as stored (id 0: unknown stream), the head
  /// checked against the record it points at. Works inside any transaction.
  status lookup_stored(const read_txn& txn, std::string_view pid, std::uint64_t& id,
                       std::uint64_t& head) const;
  /// Read-only journals: brings `tail` up to the snapshot of `txn` (caller holds
  /// tail.mu, taken before `txn` began, so maps only move forward). Errors: corrupt.
  status refresh_tail(const read_txn& txn) const;
  /// refresh_tail's first step: `tail` restarts, or drops what the index now covers.
  void move_tail_to(std::uint64_t indexed_through, std::uint64_t last_key) const;
  /// refresh_tail's second step: adds the log after tail.scanned_through to `tail`.
  status scan_tail(const read_txn& txn) const;
  /// corrupt when meta holds the repair marker: the derived tables are being rebuilt
  /// (by another process) or a rebuild was interrupted.
  status check_not_repairing(const read_txn& txn) const;
  /// Opens the environment of `o` (read-only or not) and records the options.
  status open_env(const journal_options& o, bool ro);
  /// Writer open: writes the format marker into a new journal, checks an existing one.
  /// Errors: incompatible.
  status mark_format();
  /// Writer open: the meta counters, the un-indexed tail of the log, the planner's
  /// starting point. Errors: corrupt, io_error.
  status load_writer_state();
  /// Writer open: loads the log after indexed_through into the cache (pending).
  status reindex_tail();
  /// One record of reindex_tail: its stream's cached state moves on by one event.
  status reindex_record(const read_txn& txn, std::uint64_t pos, std::string_view value);
  /// invalid_argument "opened read-only" for a read-only journal, else ok.
  status writable(const char* what) const;
  /// The cached state of `pid` or nullptr. Caller holds `mem` or is the writer.
  stream_state* cached(std::string_view pid) const { return cache.find(pid); }
  /// Inserts a stream into the cache (writer, with `mem` held unique).
  stream_state& insert(std::string_view pid) { return cache.insert(pid); }
  /// Writes the pending index entries in one transaction (writer thread).
  status flush_pending();
  /// delete_events_before for one index entry (`key`, `value`) of a stream: deletes
  /// its events with seq <= up_to_seq from the log; `rewritten` gets the entry with
  /// their positions set to 0.
  status delete_run(write_txn& txn, std::string_view key, std::string_view value,
                    std::uint64_t up_to_seq, std::string& rewritten);
  /// Stream id of `pid` as the writer or the store knows it; 0 when unknown.
  result<std::uint64_t> stream_id(std::string_view pid) const;
};

namespace detail {
inline constexpr std::string_view format_key = "format";
inline constexpr std::string_view format_value = "strata-journal/1";
inline constexpr std::string_view next_stream_key = "next_stream_id";
inline constexpr std::string_view indexed_through_key = "indexed_through";
inline constexpr std::string_view position_floor_key = "position_floor";
/// Present while `journal::repair` rewrites the derived tables (opens refuse).
inline constexpr std::string_view repair_marker_key = "repair_in_progress";
/// The format marker: sets `absent` in a new, empty journal. Errors: incompatible.
status check_format(const read_txn& txn, const journal::impl& p, bool& absent);
/// Positions per index entry written by the journal (entries stay in-page).
inline constexpr std::size_t index_chunk_max = 128;

/// Decodes the record stored at `pos` into a view (valid until the next decode on this
/// thread) and checks it is the record of (`pid`, `seq`) when `pid` is not empty.
status decode_view_at(std::uint64_t pos, std::string_view value, std::string_view pid,
                      std::uint64_t seq, event_view& out);
/// A corrupt status naming the table, the key and what is wrong, with the remedy.
status corrupt_entry(std::string_view table, const std::string& key, const std::string& what);
/// "'pid'" with control characters escaped.
std::string quoted(std::string_view pid);

/// journal::verify_all over any open impl (also repair's, which has no journal).
result<verify_report> verify_journal(const journal::impl& m, std::size_t max_problems);

/// The key of a stream base in table `bases`: [pid length u8][pid][base seq u64 BE].
std::string base_key(std::string_view pid, std::uint64_t base);
/// A stream's bases: base seq → the head before it (the seqs between are absent).
using base_map = std::map<std::uint64_t, std::uint64_t>;
/// Every entry of table `bases` (none when the table is absent), by persistence id.
/// `bad` gets the keys of malformed entries (key, what is wrong). Errors: io_error.
status load_bases(const journal::impl& m, const read_txn& txn,
                  std::unordered_map<std::string, base_map>& out,
                  std::vector<std::pair<std::string, std::string>>* bad = nullptr);
/// The lowest seq above `seq` that a stream with bases `b` can hold: seq + 1, or, when
/// seq + 1 starts an absent range (or is a base), the seq after that base (repeated).
std::uint64_t next_holdable(const base_map& b, std::uint64_t seq);

/// Saves a snapshot of stream `stream_id` in `txn` and applies keep-N retention.
status save_snapshot(journal::impl& j, write_txn& txn, const snapshot_record& s,
                     std::uint64_t stream_id);
} // namespace detail

/// Sequence numbers covered by an index entry: key (id, first_seq) → positions.
inline std::uint64_t index_count(std::string_view value) noexcept { return value.size() / 8; }

} // namespace strata::persistence
