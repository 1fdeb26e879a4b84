// File: strata/persistence/journal.hpp
//
// The event journal of one node: a global log plus a per-stream index in one LMDB
// environment. Group commit is `append` with many streams in one call.
//
//   journal_options o; o.env.path = "data";
//   auto j = journal::open(o);                                   // result<unique_ptr<journal>>
//   std::vector<stream_write> batch(1);
//   batch[0].persistence_id = "account-1";
//   batch[0].expected_seq = 0;                                   // new stream
//   batch[0].events.push_back({"opened", 1, payload});
//   auto res = (*j)->append(batch);                              // one transaction, one fsync
//   if (res && (*res)[0].st.ok()) { /* (*res)[0].last_seq == 1 */ }
//   (*j)->read_stream("account-1", 1, journal::max_seq, [](const event_record& e) {
//     return true;  // continue
//   });
//
//   // A new shard owner starts a stream at a snapshot restored from Kafka: seqs 1..41
//   // are absent here, the next event is 42 (nothing is written per absent seq).
//   auto based = (*j)->import_base(snapshot);                    // snapshot.seq == 41
//
//   // A restarted cluster node drops what Kafka never received (kafka/restore.hpp,
//   // reconcile): seqs 4.. of the stream leave the journal, the next event is 4 again.
//   auto cut = (*j)->discard_after("account-1", 3);              // result<discard_report>
//
//   // Another process, while the writer runs: reads only, sees every committed event.
//   auto r = journal::open_read_only(o);
//   auto report = (*r)->verify_all();                            // every problem, listed
//
// Layout (see docs/persistence.md): `events` maps the global position (u64 big-endian,
// MDB_APPEND) to a checksummed Cap'n Proto envelope; the per-stream index maps
// (stream id, first seq) to the positions of a run of that stream's events and is
// written in larger, sorted batches. The index is rebuildable from the log: what was
// not yet indexed at a crash is re-read from the log at open.
//
// The log is the truth; the streams, stream_names and index tables and the meta
// counters are derived from it and checked on every use (a damaged entry is `corrupt`
// naming table and key, never a wrong answer); `repair` rebuilds them from the log.
//
// Threads: `append`, `append_async`, `import`, `import_base`, `discard_after`, `flush_index`,
// `delete_events_before` and `close` must be called from one thread at a time (the runtime's
// group commit owns them); the journal commits on a thread of its own. Reads may be called from any thread, concurrently with
// appends; they see committed data only. A read-only journal's reads may run on any thread too
// (they share its tail map under a mutex).
#pragma once

#include "strata/persistence/environment.hpp"
#include "strata/persistence/event.hpp"
#include "strata/persistence/status.hpp"

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace strata::persistence {

class snapshot_store;
class offset_store;

struct journal_options {
  env_options env;
  /// Stamped into every envelope as the writer node (cluster identity).
  std::string writer_node = "local";
  /// Index entries are buffered and written sorted when this many are pending (and at
  /// close). Each flush rewrites the index pages of every stream it touches, so larger
  /// = less write amplification; the cost is memory (8 bytes per pending event) and the
  /// re-index at open after a crash (it re-reads up to this many records).
  std::size_t index_flush_events = 1'000'000;
  /// Batches planned and encoded but not yet committed, at most: append_async blocks
  /// beyond it. 2 = encoding the next batch overlaps the commit (fsync) of this one.
  std::size_t max_pipelined_batches = 2;
  /// Upper bound on events in one append call (a transaction has at most 2^17-1
  /// dirty pages); larger batches are refused with invalid_argument.
  std::size_t max_batch_events = 100'000;
};

/// The outcome of one stream_write inside a batch.
struct write_result {
  /// ok, or conflict (this stream only), invalid_argument, or corrupt (the stream's
  /// entry in the derived tables is damaged: nothing is written to it until
  /// `strata journal repair`).
  status st;
  std::uint64_t first_seq = 0; ///< seq of the first appended event (when ok)
  std::uint64_t last_seq = 0;  ///< the stream's new head (when ok); unchanged head on error
  std::uint64_t first_position = 0;
  std::uint64_t last_position = 0;
};

/// What journal::import did.
struct import_report {
  std::uint64_t imported = 0;       ///< events appended (seq = head + 1)
  std::uint64_t duplicates = 0;     ///< events already stored identically (skipped)
  std::uint64_t first_position = 0; ///< local positions of the appended events (0: none)
  std::uint64_t last_position = 0;
};

/// What journal::import_base did.
struct base_report {
  bool moved = false;          ///< the head moved to the snapshot's seq (seqs below became absent)
  std::uint64_t absent = 0;    ///< seqs head+1..s.seq recorded as absent (0 when not moved)
  bool snapshot_saved = false; ///< `s` was saved in the snapshot store
};

/// One stream of journal::discard_after: its seqs 1..keep_seq stay, the later ones go.
struct discard_point {
  std::string persistence_id;
  std::uint64_t keep_seq = 0; ///< 0: the whole stream goes (it is unknown afterwards)
};

/// What journal::discard_after did.
struct discard_report {
  std::uint64_t events = 0;    ///< records removed from the log
  std::uint64_t streams = 0;   ///< streams whose head moved back
  std::uint64_t snapshots = 0; ///< snapshots past a kept seq, dropped
};

/// Global positions first..last (inclusive); first == 0 means none.
struct position_range {
  std::uint64_t first = 0;
  std::uint64_t last = 0;
};

/// One problem found by journal::verify_all: which table, which key, what is wrong.
struct journal_problem {
  std::string table; ///< "events", "streams", "stream_names", "index", "meta", "snapshots",
                     ///< "imported"
  std::string key;   ///< the key, readable (position, 'stream', (stream, seq), meta key)
  std::string what;  ///< what is wrong, e.g. "seq 7 is followed by seq 9"
  /// "table index, key ('account:a', seq 1): …" (control characters escaped).
  std::string to_string() const;
};

/// What journal::verify_all found.
struct verify_report {
  std::vector<journal_problem> problems; ///< the first max_problems problems found
  std::uint64_t problem_count = 0;       ///< all problems found (may exceed problems.size())
  std::uint64_t records = 0;             ///< records in the log
  std::uint64_t streams = 0;             ///< entries in the streams table
  std::uint64_t last_position = 0;       ///< the log's last position (or its floor)
  bool ok() const noexcept { return problem_count == 0; }
};

/// What journal::repair did.
struct repair_report {
  verify_report before;                        ///< the problems found before the rebuild
  std::uint64_t records = 0;                   ///< log records read
  std::uint64_t streams = 0;                   ///< streams rebuilt
  std::uint64_t index_entries = 0;             ///< index entries written
  std::vector<std::string> snapshots_remapped; ///< "stream 'x' seq N: id A → B"
  std::vector<std::string> snapshots_dropped;  ///< "stream 'x' seq N: why"
  verify_report after;                         ///< verify_all after the rebuild
};

/// A batch of writes given by address (journal::append_async): not owned.
using write_refs = std::vector<const stream_write*>;

/// Receives the outcome of append_async (on the journal's commit thread).
using append_callback = std::function<void(result<std::vector<write_result>>)>;

/// Called for each event in order; return false to stop early.
using event_visitor = std::function<bool(const event_record&)>;
/// The same without copies: the view is valid only during the call.
using event_view_visitor = std::function<bool(const event_view&)>;

/// Where reads find the events of a stream that the journal does not hold because the
/// stream was started at a snapshot (journal::import_base): the events of
/// `persistence_id` with from_seq <= seq <= to_seq, in seq order, e.g. read back from
/// the shard's Kafka partition (kafka/stream_reader.hpp). journal::set_absent_source.
using absent_source = std::function<result<std::vector<event_record>>(
  std::string_view persistence_id, std::uint64_t from_seq, std::uint64_t to_seq)>;

class journal {
 public:
  static constexpr std::uint64_t max_seq = ~std::uint64_t{0};

  /// Opens or creates the journal in `opts.env.path`; re-indexes any tail of the log
  /// that was committed but not yet indexed. Errors: those of environment::open,
  /// corrupt (a record in the un-indexed tail fails its checksum: names the position).
  static result<std::unique_ptr<journal>> open(const journal_options& opts);

  /// Opens the journal in `opts.env.path` for reading only, while another process may
  /// be writing to it: LMDB read-only environment, no writer lock; writes nothing,
  /// rebuilds nothing, flushes nothing (data.mdb stays byte-identical). Reads answer
  /// from one read transaction each (index, meta and the not yet indexed tail of the
  /// log read from the same snapshot), so they see every committed event, including
  /// those the writer has not flushed to the index yet. Every mutating call
  /// (append, append_async, flush_index, delete_events_before, snapshot save) fails
  /// with invalid_argument "opened read-only". Errors: those of environment::open with
  /// read_only (not_found: no journal there), incompatible (not a strata journal),
  /// corrupt (damaged meta).
  static result<std::unique_ptr<journal>> open_read_only(const journal_options& opts);

  ~journal();
  journal(const journal&) = delete;
  journal& operator=(const journal&) = delete;

  /// Appends a batch in ONE write transaction (one fsync in sync mode). Each
  /// stream_write is checked on its own: a stream whose expected_seq is not its head
  /// gets `conflict` in its write_result and nothing of it is stored, while the other
  /// streams of the batch commit. Two writes for the same stream in one batch are
  /// applied in order (the second must expect the first's new head).
  /// The outer result fails only when the transaction as a whole failed (io_error,
  /// map_full at the maximum, txn_full, invalid_argument for an oversized batch);
  /// then nothing of the batch is stored.
  /// `snapshots` are saved in the same transaction (keep_n retention applied per
  /// stream, see snapshot_store); a snapshot of an unknown stream fails the batch with
  /// invalid_argument.
  result<std::vector<write_result>> append(const std::vector<stream_write>& batch,
                                           const std::vector<snapshot_record>& snapshots = {});

  /// Pipelined append: checks and encodes the batch on the calling thread, queues it for
  /// the journal's commit thread and returns; `done` gets what append would return,
  /// on the commit thread after the commit (must not block; must not call append) —
  /// or, for a batch refused before it was queued, on the calling thread.
  /// Batches commit in call order, and each is planned on top of the ones still
  /// queued, so a writer can keep `max_pipelined_batches` in flight: encoding the next
  /// batch overlaps the fsync of the previous one. When a batch fails as a whole, the
  /// batches queued after it fail too (their sequence numbers assumed it); the next
  /// call starts again from what is committed. Blocks while the pipeline is full.
  void append_async(const std::vector<stream_write>& batch,
                    const std::vector<snapshot_record>& snapshots, append_callback done);

  /// append_async with the writes given by address. They are read during this call
  /// only (planned and encoded into the batch's own buffer before it returns), so the
  /// caller may change or reuse them as soon as it returned: the runtime's group commit
  /// lends the entities' write buffers this way instead of moving them into a vector
  /// that the commit thread would free. Errors: as append_async.
  void append_async(const write_refs& batch, const std::vector<snapshot_record>& snapshots,
                    append_callback done);

  /// Imports events written by another node (e.g. decoded from the shard's Kafka
  /// partition on a handoff), in ONE write transaction: all of the batch or nothing.
  /// Each event keeps its persistence id, seq, timestamp, type, schema version,
  /// payload, tags, correlation/causation ids, writer node and shard epoch; it gets a
  /// new local position (`position` of the input is ignored). Per stream, in batch
  /// order: seq == head + 1 is appended; seq <= head is a duplicate, skipped when the
  /// stored event has the same type, schema version, payload and timestamp (so
  /// importing a batch again is a no-op). The positions of the appended events are
  /// recorded as imported: next_imported() reports them and the Kafka bridge does not
  /// publish them again. Writer thread only (like append); waits for queued appends.
  /// Errors (nothing of the batch is written): conflict (a duplicate differs from the
  /// stored event, or that event was deleted here and cannot be compared: names stream
  /// and seq), invalid_argument (a gap: names stream, expected and found seq; seq 0;
  /// timestamp 0; persistence id not 1..255 bytes; more than max_batch_events events;
  /// read-only), corrupt (the stream's derived data is damaged), closed, io_error,
  /// map_full.
  result<import_report> import(const std::vector<event_record>& events);

  /// Starts a stream (or moves it forward) at a snapshot restored from elsewhere, e.g. a
  /// new shard owner restoring from Kafka: when the stream's head h < s.seq, seqs
  /// h+1..s.seq become absent (as delete_events_before leaves deleted events: not held,
  /// the head is s.seq) and `s` is saved in the snapshot store, in ONE write transaction;
  /// the next event appended or imported for the stream is then s.seq + 1. Events
  /// 1..h the journal holds stay readable: read_stream then visits them and continues
  /// with s.seq + 1. The cost does not depend on s.seq (one index entry and one entry of
  /// table `bases`, see docs/persistence.md). When h >= s.seq only saves `s` if the store
  /// has no snapshot at or past s.seq (nothing else changes). Writer thread only (like
  /// import; waits for queued appends). Errors: invalid_argument (seq 0, persistence id
  /// not 1..255 bytes, read-only), closed, corrupt, io_error, map_full.
  result<base_report> import_base(const snapshot_record& s);

  /// import_base of each snapshot (of distinct streams), the moves in ONE write
  /// transaction: what a restore of many streams uses (one fsync, not one per stream).
  /// A snapshot at or below its stream's head is saved on its own, as import_base
  /// does. Reports in the order of `snaps`. Errors: those of import_base (for a
  /// transaction's failure nothing of the moves is written), invalid_argument (a
  /// stream named twice).
  result<std::vector<base_report>> import_bases(const std::vector<snapshot_record>& snaps);

  /// Discards the events of each named stream after its keep_seq, in ONE write
  /// transaction: all of them or nothing. Their records leave the log (read_global and
  /// the Kafka bridge skip their positions, as after delete_events_before) and their
  /// index slots go, so the stream's head becomes keep_seq and the next append or
  /// import continues at keep_seq + 1; its snapshots past keep_seq are dropped too. A
  /// stream cut to 0 is removed (unknown afterwards: its next write creates it again).
  /// Unknown streams and streams whose head is at or below keep_seq are left alone:
  /// then no transaction is written at all. What a restarted cluster node does to the
  /// events Kafka never received (kafka::restore_shard, docs/kafka.md "Rejoining").
  /// Writer thread only (like import; waits for queued appends; writes pending index
  /// entries first). Errors (nothing is discarded): invalid_argument (a persistence id
  /// not 1..255 bytes or named twice, more than max_batch_events streams, keep_seq
  /// below the stream's last base from import_base, read-only), closed, corrupt (the
  /// stream's derived data is damaged), io_error, map_full.
  result<discard_report> discard_after(const std::vector<discard_point>& points);

  /// discard_after of one stream. Errors: as the batch form.
  result<discard_report> discard_after(std::string_view persistence_id, std::uint64_t keep_seq);

  /// The lowest seq of the stream whose event the journal holds (below it: deleted by
  /// delete_events_before or absent by import_base); head + 1 when it holds none (also
  /// for an unknown stream: 1). Any thread. Errors: corrupt, io_error.
  result<std::uint64_t> first_held_seq(std::string_view persistence_id) const;

  /// Sets where read_stream, read_stream_view and load_stream get the events below a
  /// stream's first held seq once some stream was started at a snapshot (import_base):
  /// a read of such a stream that starts below its first held seq asks `source` for
  /// that part first (errors: the source's, with the stream named). Without a source
  /// (the default) those seqs read as nothing, as after delete_events_before. Set it
  /// before the reads that need it, from one thread; an empty function removes it.
  void set_absent_source(absent_source source);

  /// The first range of imported positions (see import) that ends at or after
  /// `from_position`; {0, 0} when there is none. Any thread. Errors: corrupt (a
  /// malformed entry of table `imported`), io_error.
  result<position_range> next_imported(std::uint64_t from_position) const;

  /// Visits the events of `persistence_id` with from_seq <= seq <= to_seq, in order.
  /// A stream that does not exist visits nothing. Errors: corrupt (names stream and
  /// position), io_error.
  status read_stream(std::string_view persistence_id, std::uint64_t from_seq, std::uint64_t to_seq,
                     const event_visitor& fn) const;

  /// read_stream without copying: each event_view points into a journal buffer valid
  /// only during the call (the fast path for recovery). Errors: as read_stream.
  status read_stream_view(std::string_view persistence_id, std::uint64_t from_seq,
                          std::uint64_t to_seq, const event_view_visitor& fn) const;

  /// Convenience: the events of read_stream as a vector (at most `max_count`).
  result<std::vector<event_record>> load_stream(std::string_view persistence_id,
                                                std::uint64_t from_seq = 1,
                                                std::uint64_t to_seq = max_seq,
                                                std::size_t max_count = ~std::size_t{0}) const;

  /// Visits the global log from `from_position` (inclusive) in position order, at most
  /// `max_count` events. Positions of deleted events are skipped. Errors: as read_stream.
  status read_global(std::uint64_t from_position, std::size_t max_count,
                     const event_visitor& fn) const;

  /// Raw stored envelope bytes (Cap'n Proto, as sent to Kafka) of the global log from
  /// `from_position`: fn(position, envelope_bytes); bytes valid only during the call.
  /// The checksum is verified. Errors: as read_stream.
  status read_global_raw(std::uint64_t from_position, std::size_t max_count,
                         const std::function<bool(std::uint64_t, std::string_view)>& fn) const;

  /// The stream's head (highest seq); 0 for an unknown stream.
  result<std::uint64_t> highest_seq(std::string_view persistence_id) const;

  /// The highest global position ever assigned (0 for an empty journal).
  std::uint64_t last_position() const noexcept;

  /// All persistence ids, sorted. Errors: io_error.
  result<std::vector<std::string>> list_streams() const;

  /// Checks the whole journal in one read transaction and lists what is wrong: every
  /// record of the log (framing, checksums, decoding, position key, each stream's seqs
  /// ascending by 1 but across its absent ranges), the streams and stream_names tables
  /// against each other and the log, the index against the log (entries well-formed,
  /// each stream's entries contiguous from seq 1 but for the absent ranges that table
  /// `bases` records, each base with its index entry, every position holding that
  /// stream and seq, everything up to meta.indexed_through indexed), the meta counters,
  /// the snapshots, the bases and the imported ranges (within the log, ascending, not
  /// overlapping). At most
  /// `max_problems` problems are kept (problem_count counts all). Works on a
  /// read-only journal while a writer appends. Errors: io_error (the report could not
  /// be made; damage is reported in the report, not as an error).
  result<verify_report> verify_all(std::size_t max_problems = 1000) const;

  /// verify_all as a status: ok, or corrupt naming the first problem (table, key,
  /// what) and how many there are in all. Errors: corrupt, io_error.
  status verify() const;

  /// Rebuilds every derived table of the journal in `opts.env.path` from the log: the
  /// streams and stream_names tables (ids kept where both tables agree), the index
  /// (deleted prefixes kept as deleted; the bases of table `bases`, which repair keeps,
  /// kept as bases: a based stream without events in the log is recreated),
  /// meta.next_stream_id and indexed_through; snapshots are kept, moved to their stream's new id,
  /// or dropped (undecodable, of a stream not in the log, beyond its head) and listed. Then reopens
  /// the journal and runs verify_all. Opens for writing, so it waits for / fails on another writer
  /// like `open`. Errors: those of open; corrupt (the log itself is damaged: nothing
  /// is changed, restore from a backup or Kafka); map_full, io_error.
  static result<repair_report> repair(const journal_options& opts);

  /// Writes pending index entries now (also done at close). Writer thread only.
  status flush_index();

  /// Deletes the events of `persistence_id` with seq <= `up_to_seq` (for example after
  /// a snapshot at that seq). The stream's head is kept. Writer thread only.
  /// Errors: not_found (unknown stream), io_error.
  status delete_events_before(std::string_view persistence_id, std::uint64_t up_to_seq);

  /// Flushes the index and syncs. Further appends fail with `closed`.
  status close();

  environment& env() noexcept;
  snapshot_store& snapshots() noexcept;
  offset_store& offsets() noexcept;
  const journal_options& options() const noexcept;

  /// Opaque implementation, shared with snapshot_store and offset_store (internal).
  struct impl;

 private:
  explicit journal(std::unique_ptr<impl> p);
  std::unique_ptr<impl> impl_;
};

} // namespace strata::persistence
