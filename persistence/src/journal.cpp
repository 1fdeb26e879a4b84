#include "strata/persistence/journal.hpp"

#include "envelope_codec.hpp"
#include "journal_impl.hpp"
#include "record.hpp"
#include "strata/persistence/codec.hpp"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <future>
#include <mutex>
#include <unordered_set>

namespace strata::persistence {

using detail::corrupt_entry;
using detail::decode_view_at;
using detail::event_error;
using detail::format_key;
using detail::format_value;
using detail::from_mdb;
using detail::get_be64;
using detail::index_chunk_max;
using detail::indexed_through_key;
using detail::key128;
using detail::key64;
using detail::next_stream_key;
using detail::position_floor_key;
using detail::quoted;
using detail::repair_advice;

namespace {

constexpr std::size_t max_pid_bytes = 255; // event.hpp: 1..255 bytes (LMDB keys <= 511)

std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
           std::chrono::system_clock::now().time_since_epoch())
    .count();
}

std::string where(std::uint64_t pos) { return "position " + std::to_string(pos); }

/// decode_view_at, copied into an owning record.
status decode_at(std::uint64_t pos, std::string_view value, std::string_view pid, std::uint64_t seq,
                 event_record& out) {
  thread_local event_view v;
  auto st = decode_view_at(pos, value, pid, seq, v);
  if (st.ok()) out = v.to_record();
  return st;
}

/// The position a log entry's key holds. Errors: corrupt (not an 8-byte key).
status position_of(const detail::entry& e, std::uint64_t& pos) {
  if (e.key.size() != 8)
    return corrupt_entry("events", "of " + std::to_string(e.key.size()) + " bytes",
                         "a position key must be 8 bytes");
  pos = get_be64(e.key.data());
  return {};
}

/// True when `key` is an index key (stream id, first seq) of stream `id`.
bool of_stream(std::string_view key, std::uint64_t id) {
  return key.size() == 16 && get_be64(key.data()) == id;
}

std::string index_key(std::string_view pid, std::uint64_t first) {
  return "(stream " + quoted(pid) + ", seq " + std::to_string(first) + ")";
}

} // namespace

namespace detail {

std::string quoted(std::string_view pid) { return "'" + escape_bytes(pid) + "'"; }

status corrupt_entry(std::string_view table, const std::string& key, const std::string& what) {
  return {errc::corrupt,
          "table " + std::string(table) + ", key " + key + ": " + what + "; " + repair_advice};
}

status decode_view_at(std::uint64_t pos, std::string_view value, std::string_view pid,
                      std::uint64_t seq, event_view& out) {
  thread_local std::vector<std::uint64_t> words;
  if (auto st = unframe(pos, value, pid, words); !st.ok()) return st;
  // The message names the position; built only for a record that fails (rare).
  if (auto st = detail::decode_envelope_view(words.data(), words.size(), {}, out); !st.ok())
    return detail::decode_envelope_view(words.data(), words.size(), where(pos), out);
  if (out.position != pos || (!pid.empty() && (out.persistence_id != pid || out.seq != seq)))
    return event_error(pos, pid.empty() ? out.persistence_id : pid,
                       "(seq " + std::to_string(seq) + ") holds stream " +
                         quoted(out.persistence_id) + " seq " + std::to_string(out.seq) +
                         " position " + std::to_string(out.position) +
                         "; the index disagrees with the log");
  return {};
}

} // namespace detail

// ---- impl helpers --------------------------------------------------------------------

status journal::impl::writable(const char* what) const {
  if (!read_only) return {};
  return {errc::invalid_argument, std::string("cannot ") + what + ": the journal in '" +
                                    opts.env.path + "' was opened read-only"};
}

status journal::impl::check_not_repairing(const read_txn& txn) const {
  auto marker = txn.get(meta, detail::repair_marker_key);
  if (!marker) return marker.error();
  if (!*marker) return {};
  return {errc::corrupt, "the derived tables of the journal in '" + opts.env.path +
                           "' are being rebuilt by `strata journal repair`, or a repair was "
                           "interrupted (table meta, key " +
                           std::string(detail::repair_marker_key) +
                           "); wait for it to finish, or run it again"};
}

status journal::impl::meta_u64(const read_txn& txn, std::string_view key,
                               std::uint64_t& out) const {
  out = 0;
  auto v = txn.get(meta, key);
  if (!v) return v.error();
  if (!*v) return {};
  if ((*v)->size() != 8)
    return corrupt_entry("meta", std::string(key),
                         "value of " + std::to_string((*v)->size()) + " bytes, expected 8");
  out = get_be64((*v)->data());
  return {};
}

status journal::impl::check_stream_entry(const read_txn& txn, std::string_view pid,
                                         std::string_view value, std::uint64_t& id,
                                         std::string* what) const {
  id = 0;
  auto bad = [&](std::string why) {
    auto st = corrupt_entry("streams", quoted(pid), why);
    if (what) *what = std::move(why);
    return st;
  };
  if (value.size() != 8)
    return bad("value of " + std::to_string(value.size()) + " bytes, expected 8");
  std::uint64_t sid = get_be64(value.data());
  auto n = txn.get(names, key64(sid).view());
  if (!n) return n.error();
  if (!*n)
    return bad("says stream id " + std::to_string(sid) +
               ", which has no entry in table stream_names");
  if (**n != pid)
    return bad("says stream id " + std::to_string(sid) + ", but table stream_names, key " +
               std::to_string(sid) + " names " + quoted(**n));
  id = sid;
  return {};
}

status journal::impl::find_stream(const read_txn& txn, std::string_view pid,
                                  std::uint64_t& id) const {
  id = 0;
  auto v = txn.get(streams, pid);
  if (!v) return v.error();
  if (*v) return check_stream_entry(txn, pid, **v, id);
  // Not found. A damaged key sits where the binary search for `pid` ends (LMDB pages
  // are sorted), so the entries on either side of that point are checked too.
  status cst;
  detail::cursor c(txn.native(), streams.dbi, cst);
  if (!c) return cst;
  detail::entry before;
  std::optional<detail::entry> after;
  int rc = c.seek_at_or_before(pid, before, &after);
  if (rc != 0 && rc != MDB_NOTFOUND)
    return c.error(rc, "looking up stream " + quoted(pid) + " in table streams");
  auto check = [&](const detail::entry& e) -> status {
    std::uint64_t other = 0;
    auto st = check_stream_entry(txn, e.key, e.value, other);
    if (st.ok()) return st;
    return {errc::corrupt, "stream " + quoted(pid) +
                             " is not in table streams, and the entry where it belongs is "
                             "damaged (it may be this stream's): " +
                             st.message()};
  };
  if (after)
    if (auto st = check(*after); !st.ok()) return st;
  return rc == 0 ? check(before) : status{};
}

status journal::impl::check_entry_vs_log(const read_txn& txn, std::string_view key,
                                         std::string_view value) const {
  if (key.size() != 16)
    return corrupt_entry("index", "of " + std::to_string(key.size()) + " bytes",
                         "an index key must be 16 bytes");
  auto id = get_be64(key.data());
  auto first = get_be64(key.data() + 8);
  std::string name = "(stream id " + std::to_string(id) + ", seq " + std::to_string(first) + ")";
  if (value.empty() || value.size() % 8 != 0)
    return corrupt_entry("index", name, "value is not a list of 8-byte positions");
  for (std::size_t i = 0; i < index_count(value); ++i) {
    auto pos = get_be64(value.data() + i * 8);
    if (pos == 0) continue; // deleted
    auto n = txn.get(names, key64(id).view());
    if (!n) return n.error();
    if (!*n) return corrupt_entry("index", name, "no stream has this id in table stream_names");
    auto v = txn.get(events, key64(pos).view());
    if (!v) return v.error();
    if (!*v)
      return corrupt_entry("index", name,
                           "position " + std::to_string(pos) + " is missing from the log");
    event_view ev;
    if (auto st = decode_view_at(pos, **v, {}, 0, ev); !st.ok()) return st;
    if (ev.persistence_id != **n || ev.seq != first + i)
      return corrupt_entry("index", name,
                           "position " + std::to_string(pos) + " holds stream " +
                             quoted(ev.persistence_id) + " seq " + std::to_string(ev.seq) +
                             ", not stream " + quoted(**n) + " seq " + std::to_string(first + i));
    return {};
  }
  return {};
}

status journal::impl::index_head(const read_txn& txn, std::string_view pid, std::uint64_t id,
                                 std::uint64_t& head, std::uint64_t& last_pos) const {
  head = 0;
  last_pos = 0;
  status st;
  detail::cursor c(txn.native(), index.dbi, st);
  if (!c) return st;
  // The entry after this stream's last one: a damaged key (say, this stream's last
  // entry with a flipped id) sits where the search ends, so check it against the log.
  detail::entry e;
  std::optional<detail::entry> after;
  int rc = c.seek_at_or_before(key128(id, journal::max_seq).view(), e, &after);
  if (rc != 0 && rc != MDB_NOTFOUND)
    return c.error(rc, "reading the index of stream " + quoted(pid));
  if (after)
    if (auto s = check_entry_vs_log(txn, after->key, after->value); !s.ok()) return s;
  if (rc == MDB_NOTFOUND) return {};
  if (!of_stream(e.key, id)) return check_entry_vs_log(txn, e.key, e.value);
  auto first = get_be64(e.key.data() + 8);
  if (e.value.empty() || e.value.size() % 8 != 0 || first == 0)
    return corrupt_entry("index", index_key(pid, first),
                         "value of " + std::to_string(e.value.size()) +
                           " bytes, expected a non-empty list of 8-byte positions");
  head = first + index_count(e.value) - 1;
  last_pos = get_be64(e.value.data() + e.value.size() - 8);
  return {};
}

status journal::impl::check_has_events(std::string_view pid, std::uint64_t id,
                                       std::uint64_t head) const {
  if (id == 0 || head != 0) return {};
  // A stream enters table streams in the transaction of its first events, and the
  // index keeps deleted seqs: with neither index entries nor un-indexed events, its
  // index was damaged or lost.
  return corrupt_entry("index", "(stream " + quoted(pid) + ")",
                       "the stream (id " + std::to_string(id) +
                         ") is in table streams but has no index entries and no events after "
                         "meta.indexed_through: its index entries are damaged or lost");
}

status journal::impl::lookup_stored(const read_txn& txn, std::string_view pid, std::uint64_t& id,
                                    std::uint64_t& head) const {
  head = 0;
  if (auto st = find_stream(txn, pid, id); !st.ok() || id == 0) return st;
  std::uint64_t last_pos = 0;
  if (auto st = index_head(txn, pid, id, head, last_pos); !st.ok()) return st;
  if (last_pos == 0) return {}; // no index yet, or the head event was deleted
  // The head read from the index must be the record it points at.
  auto v = txn.get(events, key64(last_pos).view());
  if (!v) return v.error();
  if (!*v)
    return corrupt_entry("index", "(stream " + quoted(pid) + ")",
                         "says the head seq " + std::to_string(head) + " is at position " +
                           std::to_string(last_pos) + ", which is missing from the log");
  event_view ev;
  return decode_view_at(last_pos, **v, pid, head, ev);
}

result<std::uint64_t> journal::impl::stream_id(std::string_view pid) const {
  if (!read_only) {
    std::shared_lock lk(mem);
    if (auto* c = cached(pid)) return c->id;
  }
  std::uint64_t id = 0;
  auto st = env->read([&](read_txn& txn) {
    return find_stream(txn, pid, id);
  });
  if (!st.ok()) return st;
  return id;
}

// ---- open / close ---------------------------------------------------------------------

journal::journal(std::unique_ptr<impl> p) : impl_(std::move(p)) {}

journal::~journal() {
  if (impl_ && !impl_->closed) (void)close();
}

namespace {

constexpr const char* table_names[] = {"events",    "index",   "streams", "stream_names",
                                       "snapshots", "offsets", "meta"};

} // namespace

status journal::impl::create_tables() {
  return env->write([&](write_txn& txn) -> status {
    MDB_dbi dbi = 0;
    int rc = mdb_dbi_open(txn.native(), "meta", 0, &dbi);
    if (rc == 0) return {}; // an existing journal: open_tables and check_format take it
    if (rc != MDB_NOTFOUND) return from_mdb(rc, "looking for table 'meta'");
    for (const char* name : table_names) {
      if ((rc = mdb_dbi_open(txn.native(), name, MDB_CREATE, &dbi)) != 0)
        return from_mdb(rc, std::string("creating table '") + name + "'");
    }
    MDB_val k = detail::to_val(format_key), v = detail::to_val(format_value);
    if ((rc = mdb_put(txn.native(), dbi, &k, &v, 0)) != 0) // dbi: "meta", the last one
      return from_mdb(rc, "writing the journal format marker");
    return {};
  });
}

status journal::impl::open_tables() {
  table* handles[] = {&events, &index, &streams, &names, &snaps, &offsets_tbl, &meta};
  std::vector<std::string> missing;
  // Each table is looked up in a read transaction of its own, so a writer creating the
  // journal can commit between two lookups: the first ones missing, the later ones there.
  // Tables are never dropped, so after finding one, a second pass finds them all unless
  // the file is damaged.
  for (int pass = 0; pass < 2; ++pass) {
    missing.clear();
    for (std::size_t i = 0; i < std::size(table_names); ++i) {
      auto r = env->open_table(table_names[i]);
      if (r) {
        *handles[i] = *r;
        continue;
      }
      if (!read_only || r.error().code() != errc::not_found) return r.error();
      missing.emplace_back(table_names[i]);
    }
    if (missing.empty() || missing.size() == std::size(table_names)) break;
  }
  // The identity is there (environment::open checked it). A writer creates all of the
  // journal's tables in one transaction (create_tables): none of them means a writer is
  // creating the journal right now, or died before it committed; some of them (twice)
  // means a damaged page of LMDB's main table hides the others.
  if (missing.size() == std::size(table_names))
    return {errc::not_found, "no journal in '" + opts.env.path +
                               "' yet (no journal table: being created, or its creation"
                               " was cut short)"};
  if (!missing.empty())
    return {errc::corrupt, "'" + opts.env.path + "/data.mdb' is damaged: the journal's table '" +
                             missing.front() +
                             "' is missing although others are there (they are created"
                             " together); restore the data directory from a backup"};
  offsets_api = offset_store(env.get(), offsets_tbl);
  return {};
}

namespace detail {

status check_format(const read_txn& txn, const journal::impl& p, bool& absent) {
  auto f = txn.get(p.meta, format_key);
  if (!f) return f.error();
  absent = !*f;
  if (absent) {
    auto any = txn.last(p.events);
    if (!any) return any.error();
    if (*any)
      return {errc::incompatible, "'" + p.opts.env.path +
                                    "' holds events but no strata format marker; it was"
                                    " not written by strata"};
    return {};
  }
  if (**f != format_value)
    return {errc::incompatible, "'" + p.opts.env.path + "' has journal format '" +
                                  detail::escape_bytes(**f) + "', this build reads '" +
                                  std::string(format_value) + "'"};
  return {};
}

} // namespace detail

namespace {

using detail::check_format;

/// Reads the meta counters and the log's last record; checks them against each other.
status load_meta(const read_txn& txn, journal::impl& p, std::uint64_t& last_key,
                 std::uint64_t& floor) {
  if (auto s = p.check_not_repairing(txn); !s.ok()) return s;
  if (auto s = p.meta_u64(txn, next_stream_key, p.next_stream_id); !s.ok()) return s;
  if (auto s = p.meta_u64(txn, indexed_through_key, p.indexed_through); !s.ok()) return s;
  if (auto s = p.meta_u64(txn, position_floor_key, floor); !s.ok()) return s;
  if (p.next_stream_id == 0) p.next_stream_id = 1;
  auto max_id = txn.last(p.names);
  if (!max_id) return max_id.error();
  if (*max_id &&
      ((*max_id)->first.size() != 8 || get_be64((*max_id)->first.data()) >= p.next_stream_id))
    return corrupt_entry("meta", std::string(next_stream_key),
                         "next stream id " + std::to_string(p.next_stream_id) +
                           " is not above the highest id in table stream_names");
  last_key = 0;
  auto last = txn.last(p.events);
  if (!last) return last.error();
  if (*last) {
    if ((*last)->first.size() != 8)
      return corrupt_entry("events", "of " + std::to_string((*last)->first.size()) + " bytes",
                           "a position key must be 8 bytes");
    last_key = get_be64((*last)->first.data());
    // Timestamps continue from the newest event, even if the clock went back.
    event_view v;
    if (auto s = decode_view_at(last_key, (*last)->second, {}, 0, v); !s.ok()) return s;
    p.last_stamp_ns = v.timestamp_ns;
  }
  if (p.indexed_through > std::max(last_key, floor))
    return corrupt_entry("meta", std::string(indexed_through_key),
                         "says the index covers the log through position " +
                           std::to_string(p.indexed_through) + ", beyond its last position " +
                           std::to_string(std::max(last_key, floor)));
  return {};
}

} // namespace

namespace {

status check_options(const journal_options& opts) {
  if (opts.index_flush_events == 0 || opts.max_batch_events == 0 || opts.max_pipelined_batches == 0)
    return {errc::invalid_argument, "index_flush_events, max_batch_events and"
                                    " max_pipelined_batches must be at least 1"};
  return {};
}

} // namespace

status journal::impl::open_env(const journal_options& o, bool ro) {
  opts = o;
  opts.env.read_only = ro;
  read_only = ro;
  auto e = environment::open(opts.env);
  if (!e) return e.error();
  env = std::move(*e);
  return {};
}

status journal::impl::mark_format() {
  return env->write([&](write_txn& txn) -> status {
    bool absent = false;
    if (auto s = check_format(txn, *this, absent); !s.ok() || !absent) return s;
    return txn.put(meta, format_key, format_value);
  });
}

status journal::impl::load_writer_state() {
  std::uint64_t last_key = 0, floor = 0;
  auto st = env->read([&](read_txn& txn) {
    return load_meta(txn, *this, last_key, floor);
  });
  if (!st.ok()) return st;
  last_position = std::max(last_key, floor);
  if (st = reindex_tail(); !st.ok()) return st;
  cache.for_each([](stream_state& ss) {
    ss.planned_head = ss.head;
    ss.stored = true;
  });
  planned_position = last_position.load();
  planned_stream_id = next_stream_id;
  return {};
}

result<std::unique_ptr<journal>> journal::open(const journal_options& opts) {
  if (auto st = check_options(opts); !st.ok()) return st;
  auto p = std::make_unique<impl>();
  if (auto st = p->open_env(opts, false); !st.ok()) return st;
  if (auto st = p->create_tables(); !st.ok()) return st;
  if (auto st = p->open_tables(); !st.ok()) return st;
  if (auto st = p->open_imported_table(); !st.ok()) return st;
  if (auto st = p->open_bases_table(); !st.ok()) return st;
  if (auto st = p->mark_format(); !st.ok()) return st;
  if (auto st = p->load_writer_state(); !st.ok()) return st;
  auto* raw = p.get();
  p->committer = std::thread([raw] {
    raw->commit_loop();
  });
  return std::unique_ptr<journal>(new journal(std::move(p)));
}

status journal::impl::reindex_record(const read_txn& txn, std::uint64_t pos,
                                     std::string_view value) {
  event_record rec; // a copy: lookup_stored decodes too, into the same thread buffer
  if (auto s = decode_at(pos, value, {}, 0, rec); !s.ok()) return s;
  auto* known = cached(rec.persistence_id);
  auto& ss = known ? *known : insert(rec.persistence_id);
  if (!known) {
    if (auto s = lookup_stored(txn, rec.persistence_id, ss.id, ss.head); !s.ok()) return s;
    if (ss.id == 0)
      return corrupt_entry("streams", quoted(rec.persistence_id),
                           "missing, but the log holds the stream's event at position " +
                             std::to_string(pos));
    ss.indexed_head = ss.head;
  }
  if (rec.seq != ss.head + 1)
    return event_error(pos, rec.persistence_id,
                       "has seq " + std::to_string(rec.seq) + " but the stream's head is " +
                         std::to_string(ss.head));
  ss.head = rec.seq;
  ss.pending.push_back(pos);
  ++pending_count;
  return {};
}

status journal::impl::reindex_tail() {
  // Re-index the tail of the log that was committed after the last index flush.
  return env->read([&](read_txn& txn) -> status {
    status cst;
    detail::cursor c(txn.native(), events.dbi, cst);
    if (!c) return cst;
    detail::entry e;
    int rc = c.seek(key64(indexed_through + 1).view(), e);
    for (; rc == 0; rc = c.next(e)) {
      std::uint64_t pos = 0;
      if (auto s = position_of(e, pos); !s.ok()) return s;
      if (auto s = reindex_record(txn, pos, e.value); !s.ok()) return s;
    }
    if (rc != MDB_NOTFOUND) return c.error(rc, "re-indexing the journal tail");
    return status{};
  });
}

result<std::unique_ptr<journal>> journal::open_read_only(const journal_options& opts) {
  auto p = std::make_unique<impl>();
  if (auto st = p->open_env(opts, true); !st.ok()) return st;
  if (auto st = p->open_tables(); !st.ok()) return st;
  if (auto t = p->env->open_table("imported"); t) { // absent before the first import-aware writer
    p->imported = *t;
    p->has_imported = true;
  } else if (t.error().code() != errc::not_found) {
    return t.error();
  }
  bool based = false;
  if (auto st = p->lazy_bases(based); !st.ok()) return st;
  std::uint64_t last_key = 0, floor = 0;
  auto st = p->env->read([&](read_txn& txn) {
    bool absent = false;
    if (auto s = check_format(txn, *p, absent); !s.ok()) return s;
    return load_meta(txn, *p, last_key, floor);
  });
  // Damaged derived data does not stop a reader: reads that need it fail, naming it,
  // and verify_all lists it. Derived tables being rebuilt do.
  if (!st.ok() && st.code() != errc::corrupt) return st;
  if (!st.ok())
    if (auto s = p->env->read([&](read_txn& txn) {
          return p->check_not_repairing(txn);
        });
        !s.ok())
      return s;
  p->last_position = std::max(last_key, floor);
  return std::unique_ptr<journal>(new journal(std::move(p)));
}

status journal::close() {
  auto& m = *impl_;
  if (m.closed) return {};
  if (m.read_only) {
    m.closed = true;
    return {};
  }
  auto st = flush_index(); // drains the pipeline first
  if (st.ok() && m.opts.env.sync == sync_mode::sync) st = m.env->sync();
  {
    std::lock_guard lk(m.q_mu);
    m.stopping = true;
  }
  m.q_cv.notify_all();
  if (m.committer.joinable()) m.committer.join();
  std::unique_lock lk(m.mem);
  m.closed = true;
  return st;
}

// ---- append ---------------------------------------------------------------------------

namespace {

/// Writes the index entries for (stream id, first seq, positions), split into chunks.
status put_index_runs(write_txn& txn, table index, std::uint64_t id, std::uint64_t first_seq,
                      const std::uint64_t* pos, std::size_t n, std::string& buf) {
  while (n > 0) {
    std::size_t take = std::min(n, index_chunk_max);
    buf.resize(take * 8);
    for (std::size_t i = 0; i < take; ++i)
      detail::put_be64(buf.data() + i * 8, pos[i]);
    if (auto st = txn.put(index, key128(id, first_seq).view(), buf); !st.ok()) return st;
    first_seq += take;
    pos += take;
    n -= take;
  }
  return {};
}

} // namespace

result<std::vector<write_result>> journal::append(const std::vector<stream_write>& batch,
                                                  const std::vector<snapshot_record>& snapshots) {
  std::promise<result<std::vector<write_result>>> done;
  auto fut = done.get_future();
  append_async(batch, snapshots, [&](result<std::vector<write_result>> r) {
    done.set_value(std::move(r));
  });
  return fut.get();
}

status journal::impl::admit(const write_refs& batch, std::size_t& total) const {
  if (auto st = writable("append"); !st.ok()) return st;
  if (closed) return {errc::closed, "the journal in '" + opts.env.path + "' is closed"};
  total = 0;
  for (auto* w : batch)
    total += w->events.size();
  if (total > opts.max_batch_events)
    return {errc::invalid_argument, "batch of " + std::to_string(total) +
                                      " events exceeds max_batch_events (" +
                                      std::to_string(opts.max_batch_events) + "); split it"};
  return {};
}

void journal::impl::wait_for_room() {
  std::unique_lock lk(q_mu);
  idle_cv.wait(lk, [&] {
    return in_flight < opts.max_pipelined_batches;
  });
  if (failed.ok()) return;
  // After a failed batch, start again from what is committed.
  idle_cv.wait(lk, [&] {
    return in_flight == 0;
  });
  failed = {};
  lk.unlock();
  reset_plan();
}

void journal::impl::prepared::reset() {
  constexpr std::size_t arena_keep_bytes = std::size_t{4} << 20;
  results.clear();
  created.clear();
  next_stream_id = first_position = last_position = 0;
  if (arena.capacity() > arena_keep_bytes)
    std::string{}.swap(arena);
  else
    arena.clear();
  ends.clear();
  snapshots.clear();
  heads.clear();
  added.clear();
  done = nullptr;
  imported = {};
}

std::unique_ptr<journal::impl::prepared> journal::impl::take_prepared() {
  {
    std::lock_guard lk(q_mu);
    if (!spare_prepared.empty()) {
      auto p = std::move(spare_prepared.back());
      spare_prepared.pop_back();
      return p;
    }
  }
  return std::make_unique<prepared>();
}

void journal::impl::enqueue(std::unique_ptr<prepared> p) {
  {
    std::lock_guard lk(q_mu);
    ++in_flight;
    queue.push_back(std::move(p));
  }
  q_cv.notify_one();
}

result<journal::impl::stream_state*> journal::impl::load_state(std::string_view pid) {
  std::uint64_t id = 0, head = 0;
  auto st = env->read([&](read_txn& txn) {
    auto s = lookup_stored(txn, pid, id, head);
    return s.ok() ? check_has_events(pid, id, head) : s;
  });
  if (!st.ok()) return st;
  std::unique_lock lk(mem);
  auto* c = &insert(pid);
  if (id == 0) {
    c->id = planned_stream_id++;
  } else {
    c->id = id;
    c->head = c->indexed_head = c->planned_head = head;
    c->stored = true;
  }
  return c;
}

namespace {

/// Plans one append on the planner thread: resolves its streams, checks expected seqs,
/// assigns seqs, positions and timestamps, encodes the records, and moves the planned
/// state on. Cached streams find their work entry through stream_state::mark/work (one
/// hash lookup per write, slots prefetched for the whole batch first). New streams go
/// into the cache right away (readers see them with no events until their batch
/// commits).
class batch_planner {
 public:
  batch_planner(journal::impl& m, journal::impl::prepared& p, std::size_t total)
    : m_(m), p_(p), total_(total), mark_(++m.append_count),
      // Events without a timestamp get the clock, kept strictly increasing across the
      // journal, so "state as of time T" is a prefix of the log (one event per ns).
      stamp_(std::max(now_ns(), m.last_stamp_ns + 1)), next_pos_(m.planned_position + 1) {}

  /// Plans every write; a problem of one stream goes into its result. Errors (the
  /// whole batch): io_error while looking a stream up.
  status plan_writes(const write_refs& batch);
  /// Errors: invalid_argument (unknown stream, seq beyond the head), io_error.
  status plan_snapshots(const std::vector<snapshot_record>& snapshots);
  /// Encodes the planned events into the batch's arena.
  void encode(const write_refs& batch);
  /// The planned state moves on: what later batches plan from.
  void hand_over();

 private:
  struct work_stream {
    journal::impl::stream_state* state;
    std::uint64_t head; // planned head as of this point of the batch
  };
  struct planned {
    std::size_t write;
    std::uint64_t first_seq;
    std::uint64_t first_pos;
  };

  void prefetch(const write_refs& batch);
  result<journal::impl::stream_state*> load(std::string_view pid);
  /// The work entry of stream `pid` (hash `h`), loading it into the cache if needed.
  result<std::size_t> resolve(std::string_view pid, std::uint64_t h);
  status plan_write(const stream_write& w, std::size_t i);
  void encode_event(const stream_write& w, const event_data& ev, std::uint64_t seq,
                    std::uint64_t pos);

  journal::impl& m_;
  journal::impl::prepared& p_;
  std::size_t total_;
  std::uint64_t mark_;
  std::int64_t stamp_;
  std::uint64_t next_pos_;
  std::vector<work_stream> work_;
  std::vector<std::uint64_t> hashes_;
  std::vector<planned> plan_;
};

void batch_planner::prefetch(const write_refs& batch) {
  hashes_.resize(batch.size());
  for (std::size_t i = 0; i < batch.size(); ++i) {
    hashes_[i] = detail::hash_id(batch[i]->persistence_id);
    m_.cache.prefetch_slot(hashes_[i]);
  }
  for (std::size_t i = 0; i < batch.size(); ++i)
    m_.cache.prefetch_item(hashes_[i]);
}

result<journal::impl::stream_state*> batch_planner::load(std::string_view pid) {
  return m_.load_state(pid);
}

result<std::size_t> batch_planner::resolve(std::string_view pid, std::uint64_t h) {
  auto* c = m_.cache.find(pid, h);
  if (!c) {
    auto loaded = load(pid);
    if (!loaded) return loaded.error();
    c = *loaded;
  }
  if (c->mark != mark_) {
    c->mark = mark_;
    c->work = work_.size();
    work_.push_back({c, c->planned_head});
  }
  return c->work;
}

status batch_planner::plan_write(const stream_write& w, std::size_t i) {
  auto& res = p_.results[i];
  if (w.persistence_id.empty() || w.persistence_id.size() > max_pid_bytes) {
    res.st = {errc::invalid_argument, "persistence id must be 1.." + std::to_string(max_pid_bytes) +
                                        " bytes (got " + std::to_string(w.persistence_id.size()) +
                                        ")"};
    return {};
  }
  auto wi = resolve(w.persistence_id, hashes_[i]);
  if (!wi && wi.error().code() == errc::corrupt) { // this stream's derived data is damaged
    res.st = wi.error();
    return {};
  }
  if (!wi) return wi.error();
  auto& ws = work_[*wi];
  if (w.expected_seq != stream_write::any_seq && w.expected_seq != ws.head) {
    res.st = {errc::conflict, "stream '" + w.persistence_id + "' expected seq " +
                                std::to_string(w.expected_seq) + " but its head is " +
                                std::to_string(ws.head) +
                                "; another writer appended: recover and retry"};
    res.last_seq = ws.head;
    return {};
  }
  res.last_seq = ws.head + w.events.size();
  if (!w.events.empty()) {
    res.first_seq = ws.head + 1;
    res.first_position = next_pos_;
    res.last_position = next_pos_ + w.events.size() - 1;
    plan_.push_back({i, ws.head + 1, next_pos_});
    for (std::size_t e = 0; e < w.events.size(); ++e)
      p_.added.emplace_back(ws.state, next_pos_ + e);
  }
  ws.head += w.events.size();
  next_pos_ += w.events.size();
  return {};
}

status batch_planner::plan_writes(const write_refs& batch) {
  p_.results.resize(batch.size());
  work_.reserve(batch.size());
  plan_.reserve(batch.size());
  p_.added.reserve(total_);
  prefetch(batch);
  for (std::size_t i = 0; i < batch.size(); ++i)
    if (auto st = plan_write(*batch[i], i); !st.ok()) return st;
  return {};
}

status batch_planner::plan_snapshots(const std::vector<snapshot_record>& snapshots) {
  // A snapshot's stream must exist and cover the snapshot's seq.
  for (auto& s : snapshots) {
    auto wi = resolve(s.persistence_id, detail::hash_id(s.persistence_id));
    if (!wi) return wi.error();
    auto& ws = work_[*wi];
    if (ws.head == 0)
      return {errc::invalid_argument, "snapshot for unknown stream '" + s.persistence_id + "'"};
    if (s.seq == 0 || s.seq > ws.head)
      return {errc::invalid_argument, "snapshot of stream '" + s.persistence_id + "' at seq " +
                                        std::to_string(s.seq) + " is beyond its head " +
                                        std::to_string(ws.head)};
    p_.snapshots.emplace_back(s, ws.state->id);
  }
  return {};
}

void batch_planner::encode_event(const stream_write& w, const event_data& ev, std::uint64_t seq,
                                 std::uint64_t pos) {
  thread_local detail::envelope_fields f;
  thread_local std::string unpacked;
  f.persistence_id = w.persistence_id;
  f.seq = seq;
  f.position = pos;
  f.timestamp_ns = ev.timestamp_ns != 0 ? ev.timestamp_ns : stamp_++;
  f.type = ev.type;
  f.schema_version = ev.schema_version;
  f.payload = ev.payload;
  f.tags.assign(ev.tags.begin(), ev.tags.end());
  f.correlation_id = ev.correlation_id;
  f.causation_id = ev.causation_id;
  f.writer_node = m_.opts.writer_node;
  f.shard_epoch = w.shard_epoch;
  unpacked.clear();
  detail::encode_envelope(f, unpacked);
  detail::pack_and_frame(unpacked, p_.arena);
  p_.ends.push_back(static_cast<std::uint32_t>(p_.arena.size()));
}

void batch_planner::encode(const write_refs& batch) {
  p_.first_position = m_.planned_position + 1;
  p_.last_position = next_pos_ - 1;
  p_.ends.reserve(total_);
  p_.arena.reserve(total_ * 200);
  for (auto& pl : plan_) {
    auto& w = *batch[pl.write];
    for (std::size_t e = 0; e < w.events.size(); ++e)
      encode_event(w, w.events[e], pl.first_seq + e, pl.first_pos + e);
  }
}

void batch_planner::hand_over() {
  for (auto& ws : work_) {
    if (ws.head > 0 && !ws.state->stored) {
      p_.created.emplace_back(ws.state->pid, ws.state->id);
      ws.state->stored = true; // a queued batch writes it
    }
    ws.state->planned_head = ws.head;
    p_.heads.emplace_back(ws.state, ws.head);
  }
  p_.next_stream_id = m_.planned_stream_id;
  m_.planned_position = next_pos_ - 1;
  m_.last_stamp_ns = stamp_ - 1;
}

} // namespace

void journal::append_async(const std::vector<stream_write>& batch,
                           const std::vector<snapshot_record>& snapshots, append_callback done) {
  write_refs refs;
  refs.reserve(batch.size());
  for (auto& w : batch)
    refs.push_back(&w);
  append_async(refs, snapshots, std::move(done));
}

void journal::append_async(const write_refs& batch, const std::vector<snapshot_record>& snapshots,
                           append_callback done) {
  auto& m = *impl_;
  std::size_t total = 0;
  if (auto st = m.admit(batch, total); !st.ok()) return done(std::move(st));
  m.wait_for_room();
  m.trim_cache();
  // Plan and encode on this thread, overlapping the commit of the previous batch.
  auto p = m.take_prepared();
  p->done = std::move(done);
  batch_planner planner(m, *p, total);
  if (auto st = planner.plan_writes(batch); !st.ok()) return p->done(std::move(st));
  if (auto st = planner.plan_snapshots(snapshots); !st.ok()) return p->done(std::move(st));
  planner.encode(batch);
  planner.hand_over();
  m.enqueue(std::move(p));
}

void journal::impl::commit_loop() {
  for (;;) {
    std::unique_ptr<prepared> p;
    {
      std::unique_lock lk(q_mu);
      q_cv.wait(lk, [&] {
        return stopping || !queue.empty();
      });
      if (queue.empty()) return; // stopping, and everything queued is done
      p = std::move(queue.front());
      queue.pop_front();
    }
    status st;
    {
      std::lock_guard lk(q_mu);
      st = failed;
    }
    if (st.ok())
      st = commit(*p);
    else
      st = {st.code(), "not written because an earlier batch failed: " + st.message()};
    if (st.ok()) {
      p->done(std::move(p->results));
      if (pending_count >= opts.index_flush_events)
        (void)flush_pending(); // on failure the index is rebuilt from the log at open
    } else {
      {
        std::lock_guard lk(q_mu);
        if (failed.ok()) failed = st;
      }
      p->done(st);
    }
    p->reset();
    {
      std::lock_guard lk(q_mu);
      --in_flight;
      if (spare_prepared.size() < opts.max_pipelined_batches)
        spare_prepared.push_back(std::move(p));
    }
    idle_cv.notify_all();
  }
}

status journal::impl::write_created(write_txn& txn, const prepared& p) {
  for (auto& [pid, id] : p.created) {
    if (auto s = txn.put(streams, pid, key64(id).view()); !s.ok()) return s;
    if (auto s = txn.put(names, key64(id).view(), pid); !s.ok()) return s;
  }
  if (p.created.empty()) return {};
  return txn.put(meta, next_stream_key, key64(p.next_stream_id).view());
}

status journal::impl::append_records(write_txn& txn, const prepared& p) {
  if (p.ends.empty()) return {};
  status cst;
  detail::cursor c(txn.native(), events.dbi, cst);
  if (!c) return cst;
  std::uint32_t begin = 0;
  for (std::size_t i = 0; i < p.ends.size(); ++i) {
    key64 key(p.first_position + i);
    MDB_val k = detail::to_val(key.view());
    MDB_val v{p.ends[i] - begin, const_cast<char*>(p.arena.data()) + begin};
    if (int rc = mdb_cursor_put(c.native(), &k, &v, MDB_APPEND); rc != 0)
      return from_mdb(rc,
                      "appending the event at position " + std::to_string(p.first_position + i));
    begin = p.ends[i];
  }
  return {};
}

void journal::impl::publish(const prepared& p) {
  std::unique_lock lk(mem);
  for (auto& [ss, head] : p.heads)
    ss->head = head;
  for (auto& [ss, pos] : p.added) {
    if (ss->pending.empty() && ss->pending.capacity() == 0)
      ss->pending.reserve(8); // skips the 1-2-4 growth steps; small for 1M idle streams
    ss->pending.push_back(pos);
  }
  pending_count += p.added.size();
  next_stream_id = p.next_stream_id;
  last_position = p.last_position;
}

status journal::impl::commit(prepared& p) {
  auto st = env->write([&](write_txn& txn) -> status {
    if (auto s = write_created(txn, p); !s.ok()) return s;
    if (auto s = append_records(txn, p); !s.ok()) return s;
    for (auto& [s, id] : p.snapshots)
      if (auto r = detail::save_snapshot(*this, txn, s, id); !r.ok()) return r;
    if (p.imported.first != 0)
      return txn.put(imported, key64(p.imported.last).view(), key64(p.imported.first).view());
    return {};
  });
  if (st.ok()) publish(p);
  return st;
}

void journal::impl::drain() {
  std::unique_lock lk(q_mu);
  idle_cv.wait(lk, [&] {
    return in_flight == 0;
  });
}

void journal::impl::reset_plan() {
  // Streams that never got a committed event are forgotten (their ids are reissued);
  // the others plan again from their committed head.
  std::unique_lock lk(mem);
  cache.erase_if([](const stream_state& ss) {
    return ss.head == 0;
  });
  cache.for_each([](stream_state& ss) {
    ss.planned_head = ss.head;
    ss.stored = true;
  });
  planned_position = last_position.load();
  planned_stream_id = next_stream_id;
}

void journal::impl::trim_cache() {
  // Bound the cache: streams with nothing pending are re-read from the index on demand.
  // Only while idle, because queued batches hold pointers to cached streams.
  constexpr std::size_t cache_max = 1u << 17;
  if (cache.size() <= cache_max) return;
  drain();
  std::unique_lock lk(mem);
  cache.erase_if([](const stream_state& ss) {
    return ss.pending.empty();
  });
}

status journal::impl::flush_pending() {
  if (pending_count == 0) return {};
  // The index is derived data (rebuilt from the log at open), so it goes in its own
  // transaction, written in key order, once per index_flush_events events.
  std::vector<stream_state*> dirty;
  {
    std::shared_lock lk(mem);
    cache.for_each([&](stream_state& ss) {
      if (!ss.pending.empty()) dirty.push_back(&ss);
    });
  }
  std::sort(dirty.begin(), dirty.end(), [](const stream_state* a, const stream_state* b) {
    return a->id < b->id;
  });
  std::uint64_t through = last_position.load();
  auto st = env->write([&](write_txn& txn) -> status {
    std::string buf;
    for (auto* ss : dirty)
      if (auto s = put_index_runs(txn, index, ss->id, ss->indexed_head + 1, ss->pending.data(),
                                  ss->pending.size(), buf);
          !s.ok())
        return s;
    return txn.put(meta, indexed_through_key, key64(through).view());
  });
  if (!st.ok()) return st;
  std::unique_lock lk(mem);
  for (auto* ss : dirty) {
    ss->indexed_head = ss->head;
    ss->pending.clear();
    if (ss->pending.capacity() > 1024) ss->pending.shrink_to_fit();
  }
  pending_count = 0;
  indexed_through = through;
  return {};
}

status journal::flush_index() {
  if (auto st = impl_->writable("flush the index"); !st.ok()) return st;
  if (impl_->closed) return {};
  impl_->drain();
  return impl_->flush_pending();
}

// ---- reads ----------------------------------------------------------------------------

void journal::impl::move_tail_to(std::uint64_t through, std::uint64_t last_key) const {
  auto& t = tail;
  if (!t.valid || through < t.indexed_through ||
      (last_key < t.scanned_through && through < t.scanned_through)) {
    // First use, or the derived data was rebuilt: start over from this snapshot.
    t.streams.clear();
    t.indexed_through = t.scanned_through = through;
    t.valid = true;
    return;
  }
  if (through <= t.indexed_through) return;
  // The writer flushed its index: what is now indexed leaves the tail.
  for (auto it = t.streams.begin(); it != t.streams.end();) {
    auto& v = it->second;
    auto keep = std::find_if(v.begin(), v.end(), [&](const auto& sp) {
      return sp.second > through;
    });
    v.erase(v.begin(), keep);
    it = v.empty() ? t.streams.erase(it) : std::next(it);
  }
  t.indexed_through = through;
  t.scanned_through = std::max(t.scanned_through, through);
}

status journal::impl::scan_tail(const read_txn& txn) const {
  auto& t = tail;
  status cst;
  detail::cursor c(txn.native(), events.dbi, cst);
  if (!c) return cst;
  detail::entry e;
  event_view ev;
  int rc = c.seek(key64(t.scanned_through + 1).view(), e);
  for (; rc == 0; rc = c.next(e)) {
    std::uint64_t pos = 0;
    if (auto st = position_of(e, pos); !st.ok()) return st;
    if (auto st = decode_view_at(pos, e.value, {}, 0, ev); !st.ok()) return st;
    auto& list = t.streams[std::string(ev.persistence_id)];
    if (!list.empty() && ev.seq != list.back().first + 1)
      return event_error(
        pos, ev.persistence_id,
        "has seq " + std::to_string(ev.seq) + " but the stream's previous event (position " +
          std::to_string(list.back().second) + ") has seq " + std::to_string(list.back().first));
    list.emplace_back(ev.seq, pos);
    t.scanned_through = pos;
  }
  if (rc != MDB_NOTFOUND) return c.error(rc, "reading the journal tail");
  return {};
}

status journal::impl::refresh_tail(const read_txn& txn) const {
  if (auto st = check_not_repairing(txn); !st.ok()) return st;
  std::uint64_t through = 0, floor = 0;
  if (auto st = meta_u64(txn, indexed_through_key, through); !st.ok()) return st;
  if (auto st = meta_u64(txn, position_floor_key, floor); !st.ok()) return st;
  auto last = txn.last(events);
  if (!last) return last.error();
  std::uint64_t last_key =
    *last && (*last)->first.size() == 8 ? get_be64((*last)->first.data()) : 0;
  if (last_key > last_position.load()) last_position = last_key;
  move_tail_to(through, last_key);
  if (last_key <= tail.scanned_through) return {};
  return scan_tail(txn);
}

namespace {

using seq_pos = std::pair<std::uint64_t, std::uint64_t>;

/// Where a stream's events are, as of one read transaction: seqs up to indexed_head
/// in the index, the seqs after it at the positions in `tail`.
struct read_plan {
  std::uint64_t id = 0;
  std::uint64_t indexed_head = journal::max_seq;
  std::uint64_t index_end = journal::max_seq; // the index's last seq, when known
  std::vector<seq_pos> tail;
};

/// Locks a journal's reader state for one read transaction: the tail map of a read-only
/// journal, the writer's cache otherwise. Taken before the transaction begins.
struct read_lock {
  std::unique_lock<std::mutex> tail;
  std::shared_lock<std::shared_mutex> mem;
  explicit read_lock(const journal::impl& m) {
    if (m.read_only)
      tail = std::unique_lock(m.tail.mu);
    else
      mem = std::shared_lock(m.mem);
  }
  void unlock() {
    if (tail.owns_lock()) tail.unlock();
    if (mem.owns_lock()) mem.unlock();
  }
};

/// A stream whose events are all in the index: its id and where the index ends.
status plan_indexed(const journal::impl& m, const read_txn& txn, std::string_view pid,
                    read_plan& plan) {
  if (auto st = m.find_stream(txn, pid, plan.id); !st.ok() || plan.id == 0) return st;
  std::uint64_t last_pos = 0;
  if (auto st = m.index_head(txn, pid, plan.id, plan.index_end, last_pos); !st.ok()) return st;
  return m.check_has_events(pid, plan.id, plan.index_end);
}

/// The writer's plan: from its cache (indexed head and pending positions), else as
/// stored.
status plan_writer(const journal::impl& m, const read_txn& txn, std::string_view pid,
                   read_plan& plan) {
  auto* c = m.cached(pid);
  if (!c) return plan_indexed(m, txn, pid, plan);
  plan.id = c->id;
  plan.indexed_head = plan.index_end = c->indexed_head;
  plan.tail.reserve(c->pending.size());
  for (std::size_t i = 0; i < c->pending.size(); ++i)
    plan.tail.emplace_back(c->indexed_head + 1 + i, c->pending[i]);
  return {};
}

/// A read-only journal's plan: the tail map (brought up to `txn`) after the index,
/// checked to continue it.
status plan_read_only(const journal::impl& m, const read_txn& txn, std::string_view pid,
                      read_plan& plan) {
  if (auto st = m.refresh_tail(txn); !st.ok()) return st;
  auto it = m.tail.streams.find(std::string(pid));
  if (it == m.tail.streams.end() || it->second.empty()) return plan_indexed(m, txn, pid, plan);
  plan.tail = it->second;
  if (auto st = m.find_stream(txn, pid, plan.id); !st.ok()) return st;
  auto [first_seq, first_pos] = plan.tail.front();
  if (plan.id == 0)
    return corrupt_entry("streams", quoted(pid),
                         "missing, but the log holds the stream's event at position " +
                           std::to_string(first_pos));
  std::uint64_t head = 0, last_pos = 0;
  if (auto st = m.index_head(txn, pid, plan.id, head, last_pos); !st.ok()) return st;
  if (first_seq != head + 1)
    return corrupt_entry("index", "(stream " + quoted(pid) + ")",
                         "the index ends at seq " + std::to_string(head) +
                           " but the log's un-indexed tail continues with seq " +
                           std::to_string(first_seq) + " at position " + std::to_string(first_pos));
  plan.indexed_head = plan.index_end = head;
  return {};
}

/// The read_plan of `pid` in `txn` (caller holds a read_lock).
status plan_stream(const journal::impl& m, const read_txn& txn, std::string_view pid,
                   read_plan& plan) {
  return m.read_only ? plan_read_only(m, txn, pid, plan) : plan_writer(m, txn, pid, plan);
}

/// Reads a stream's (seq, position) pairs from the index with one cursor, checking
/// that its entries are well-formed and contiguous.
class index_reader {
 public:
  index_reader(const journal::impl& m, const read_txn& txn, std::string_view pid, std::uint64_t id)
    : m_(m), txn_(txn), pid_(pid), id_(id), c_(txn.native(), m.index.dbi, st_) {}

  /// Appends (seq, position) for from <= seq <= to; deleted seqs (position 0) are
  /// skipped. The entries read must reach `index_end` (or `to`). Errors: corrupt.
  status collect(std::uint64_t from, std::uint64_t to, std::uint64_t index_end,
                 std::vector<seq_pos>& todo);

 private:
  /// Positions the cursor on the entry holding `from` (or, in a gap, the first one
  /// after it, with expect_ set to the seq after the entry before). MDB_NOTFOUND when
  /// the stream's index ends before `from`; the entries next to where it would be are
  /// then checked against the log.
  int seek(std::uint64_t from, detail::entry& e);
  /// ok when an entry starting at `first` may follow the entries read so far: it
  /// continues them, or an absent range of a base lies between. Errors: corrupt.
  status check_follows(std::uint64_t first);
  /// Errors: corrupt (not a non-empty list of positions).
  status check_value(const detail::entry& e, std::uint64_t first) const;
  void take(const detail::entry& e, std::uint64_t from, std::uint64_t to,
            std::vector<seq_pos>& todo);

  const journal::impl& m_;
  const read_txn& txn_;
  std::string_view pid_;
  std::uint64_t id_;
  status st_;
  detail::cursor c_;
  std::uint64_t expect_ = 0; // the seq the next entry must start with (0: first one)
  status bad_neighbour_;
};

int index_reader::seek(std::uint64_t from, detail::entry& e) {
  key128 probe(id_, from);
  std::optional<detail::entry> after;
  int rc = c_.seek_at_or_before(probe.view(), e, &after);
  if (rc != 0 && rc != MDB_NOTFOUND) return rc;
  bool prev_ours = rc == 0 && of_stream(e.key, id_);
  if (prev_ours &&
      (e.key == probe.view() || get_be64(e.key.data() + 8) + index_count(e.value) > from))
    return 0;
  if (after && of_stream(after->key, id_)) {
    // An entry of the stream starts after `from`, none holds it: the entry after must
    // continue the one before (or seq 0), which collect checks (an absent range before
    // a base is the one gap allowed).
    expect_ = prev_ours ? get_be64(e.key.data() + 8) + index_count(e.value) : 1;
    return c_.seek(probe.view(), e);
  }
  // No entry holds `from`: fine past the end of the index, unless one of the entries
  // next to where it would be is this stream's with a damaged key.
  if (after) bad_neighbour_ = m_.check_entry_vs_log(txn_, after->key, after->value);
  if (bad_neighbour_.ok() && rc == 0 && !prev_ours)
    bad_neighbour_ = m_.check_entry_vs_log(txn_, e.key, e.value);
  return MDB_NOTFOUND;
}

status index_reader::check_value(const detail::entry& e, std::uint64_t first) const {
  if (!e.value.empty() && e.value.size() % 8 == 0 && first != 0) return {};
  return corrupt_entry("index", index_key(pid_, first),
                       "value of " + std::to_string(e.value.size()) +
                         " bytes, expected a non-empty list of 8-byte positions");
}

void index_reader::take(const detail::entry& e, std::uint64_t from, std::uint64_t to,
                        std::vector<seq_pos>& todo) {
  auto first = get_be64(e.key.data() + 8);
  auto n = index_count(e.value);
  for (std::size_t i = 0; i < n; ++i) {
    auto seq = first + i;
    if (seq < from) continue;
    if (seq > to) break;
    auto pos = get_be64(e.value.data() + i * 8);
    if (pos != 0) todo.emplace_back(seq, pos); // 0 = deleted
  }
  expect_ = first + n;
}

status index_reader::check_follows(std::uint64_t first) {
  if (expect_ == 0 || first == expect_) return {};
  bool allowed = false;
  if (auto st = m_.base_gap(txn_, pid_, expect_, first, allowed); !st.ok()) return st;
  if (allowed) {
    expect_ = first; // the seqs before `first` are absent, so nothing is missing
    return {};
  }
  return corrupt_entry("index", index_key(pid_, first),
                       "the stream's index has a gap: no entry holds seq " +
                         std::to_string(expect_));
}

status index_reader::collect(std::uint64_t from, std::uint64_t to, std::uint64_t index_end,
                             std::vector<seq_pos>& todo) {
  if (!c_) return st_;
  detail::entry e;
  int rc = seek(from, e);
  if (!bad_neighbour_.ok()) return bad_neighbour_;
  for (; rc == 0 && of_stream(e.key, id_); rc = c_.next(e)) {
    auto first = get_be64(e.key.data() + 8);
    if (auto st = check_follows(first); !st.ok()) return st;
    if (auto st = check_value(e, first); !st.ok()) return st;
    if (first > to) break;
    take(e, from, to, todo);
  }
  if (rc != 0 && rc != MDB_NOTFOUND)
    return c_.error(rc, "reading the index of stream " + quoted(pid_));
  // The entries read must reach as far as the index goes (or `to`).
  auto need = std::min(to, index_end);
  auto reached = expect_ == 0 ? from : expect_;
  if (index_end != journal::max_seq && from <= need && reached <= need)
    return corrupt_entry("index", "(stream " + quoted(pid_) + ")",
                         "the stream's index ends at seq " + std::to_string(index_end) +
                           " but no entry holds seq " + std::to_string(reached));
  return {};
}

/// Reads the log entry at `pos` into `e`: with MDB_NEXT when the cursor is on the
/// position before it (`cur`), else by key. MDB_NOTFOUND when it is missing.
int read_position(detail::cursor& c, std::uint64_t cur, std::uint64_t pos, detail::entry& e) {
  if (cur == 0 || pos != cur + 1) return c.find(key64(pos).view(), e);
  int rc = c.next(e);
  if (rc == 0 && (e.key.size() != 8 || get_be64(e.key.data()) != pos)) return MDB_NOTFOUND;
  return rc;
}

/// Reads the records at `todo` (seq, position) and passes them to `fn` in order, each
/// checked to be that seq of `pid`. Consecutive positions are read with MDB_NEXT.
status visit_positions(const journal::impl& m, const read_txn& txn, std::string_view pid,
                       const std::vector<seq_pos>& todo, const event_view_visitor& fn) {
  status cst;
  detail::cursor c(txn.native(), m.events.dbi, cst);
  if (!c) return cst;
  event_view rec;
  detail::entry e;
  std::uint64_t cur = 0;
  for (auto [seq, pos] : todo) {
    int rc = read_position(c, cur, pos, e);
    if (rc == MDB_NOTFOUND)
      return event_error(pos, pid, "(seq " + std::to_string(seq) + ") is missing from the log");
    if (rc != 0) return c.error(rc, "reading position " + std::to_string(pos));
    cur = pos;
    if (auto s = decode_view_at(pos, e.value, pid, seq, rec); !s.ok()) return s;
    if (!fn(rec)) break;
  }
  return {};
}

} // namespace

status journal::read_stream(std::string_view pid, std::uint64_t from_seq, std::uint64_t to_seq,
                            const event_visitor& fn) const {
  event_record rec;
  return read_stream_view(pid, from_seq, to_seq, [&](const event_view& v) {
    rec = v.to_record();
    return fn(rec);
  });
}

void journal::set_absent_source(absent_source source) {
  auto& m = *impl_;
  std::lock_guard<std::mutex> g{m.absent_mu};
  m.has_absent.store(static_cast<bool>(source));
  m.absent = source ? std::make_shared<const absent_source>(std::move(source)) : nullptr;
}

namespace {

// The part of a read of `j` below the stream's first held seq, from the absent source
// (set_absent_source). `from_seq` moves to the first seq the journal itself must read;
// `stop` when the visitor stopped.
status read_absent(const journal& j, const journal::impl& m, std::string_view pid,
                   std::uint64_t& from_seq, std::uint64_t to_seq, const event_view_visitor& fn,
                   bool& stop) {
  if (!m.has_absent.load(std::memory_order_acquire)) return {};
  std::shared_ptr<const absent_source> src;
  {
    std::lock_guard<std::mutex> g{m.absent_mu};
    src = m.absent;
  }
  if (!src) return {};
  auto first = j.first_held_seq(pid);
  if (!first) return first.error();
  if (from_seq >= *first) return {};
  auto events = (*src)(pid, from_seq, std::min(to_seq, *first - 1));
  if (!events)
    return {events.error().code(), "events " + std::to_string(from_seq) + ".." +
                                     std::to_string(*first - 1) + " of stream '" +
                                     std::string(pid) + "' (not held here since it started at a " +
                                     "snapshot): " + events.error().message()};
  for (const auto& e : *events)
    if (!fn(event_view::of(e))) {
      stop = true;
      return {};
    }
  from_seq = *first;
  return {};
}

} // namespace

status journal::read_stream_view(std::string_view pid, std::uint64_t from_seq, std::uint64_t to_seq,
                                 const event_view_visitor& fn) const {
  auto& m = *impl_;
  if (from_seq == 0) from_seq = 1;
  if (to_seq < from_seq) return {};
  bool based = false; // table bases, opened before the read (a read-only journal's lazily)
  if (auto st = m.lazy_bases(based); !st.ok()) return st;
  if (based) {
    bool stop = false;
    if (auto st = read_absent(*this, m, pid, from_seq, to_seq, fn, stop); !st.ok() || stop)
      return st;
    if (to_seq < from_seq) return {};
  }
  // One consistent view: the reader state is locked before the read transaction
  // begins, so an index flush is either fully visible in the transaction or still
  // pending in memory (see journal_impl.hpp).
  read_lock lk(m);
  return m.env->read([&](read_txn& txn) -> status {
    read_plan plan;
    auto st = plan_stream(m, txn, pid, plan);
    lk.unlock();
    if (!st.ok() || plan.id == 0) return st;
    std::vector<seq_pos> todo;
    if (from_seq <= plan.indexed_head) {
      index_reader ix(m, txn, pid, plan.id);
      auto to = std::min(to_seq, plan.indexed_head);
      if (st = ix.collect(from_seq, to, plan.index_end, todo); !st.ok()) return st;
    }
    for (auto& sp : plan.tail)
      if (sp.first >= from_seq && sp.first <= to_seq) todo.push_back(sp);
    return visit_positions(m, txn, pid, todo, fn);
  });
}

result<std::vector<event_record>> journal::load_stream(std::string_view pid, std::uint64_t from_seq,
                                                       std::uint64_t to_seq,
                                                       std::size_t max_count) const {
  std::vector<event_record> out;
  if (max_count == 0) return out;
  auto st = read_stream(pid, from_seq, to_seq, [&](const event_record& e) {
    out.push_back(e);
    return out.size() < max_count;
  });
  if (!st.ok()) return st;
  return out;
}

status
journal::read_global_raw(std::uint64_t from_position, std::size_t max_count,
                         const std::function<bool(std::uint64_t, std::string_view)>& fn) const {
  auto& m = *impl_;
  if (max_count == 0) return {};
  // A writer's reads stop at the published last position: a reader never sees a
  // record whose writer has not finished publishing its in-memory state. A read-only
  // journal reads the transaction's snapshot as it is.
  auto limit = m.read_only ? max_seq : m.last_position.load();
  return m.env->read([&](read_txn& txn) -> status {
    status cst;
    detail::cursor c(txn.native(), m.events.dbi, cst);
    if (!c) return cst;
    detail::entry e;
    std::size_t n = 0;
    int rc = c.seek(key64(from_position == 0 ? 1 : from_position).view(), e);
    for (; rc == 0 && n < max_count; rc = c.next(e), ++n) {
      std::uint64_t pos = 0;
      if (auto s = position_of(e, pos); !s.ok()) return s;
      if (pos > limit) break;
      thread_local std::vector<std::uint64_t> words;
      if (auto s = detail::unframe(pos, e.value, {}, words); !s.ok()) return s;
      if (!fn(pos, {reinterpret_cast<const char*>(words.data()), words.size() * 8})) break;
    }
    if (rc != 0 && rc != MDB_NOTFOUND) return c.error(rc, "reading the global log");
    return status{};
  });
}

status journal::read_global(std::uint64_t from_position, std::size_t max_count,
                            const event_visitor& fn) const {
  status inner;
  auto st = read_global_raw(from_position, max_count, [&](std::uint64_t pos, std::string_view b) {
    auto r = detail::decode_envelope(b, where(pos));
    if (!r) {
      inner = r.error();
      return false;
    }
    if (r->position != pos) {
      inner = event_error(pos, r->persistence_id, "claims position " + std::to_string(r->position));
      return false;
    }
    return fn(*r);
  });
  return st.ok() ? inner : st;
}

result<std::uint64_t> journal::highest_seq(std::string_view pid) const {
  auto& m = *impl_;
  if (!m.read_only) {
    std::shared_lock lk(m.mem);
    if (auto* c = m.cached(pid)) return c->head;
  }
  std::uint64_t head = 0;
  read_lock lk(m);
  auto st = m.env->read([&](read_txn& txn) -> status {
    read_plan plan;
    auto s = plan_stream(m, txn, pid, plan);
    lk.unlock();
    if (!s.ok() || plan.id == 0) return s;
    if (!plan.tail.empty()) {
      head = plan.tail.back().first;
      return {};
    }
    if (!m.read_only && plan.indexed_head != max_seq) { // cached meanwhile, nothing pending
      head = plan.indexed_head;
      return {};
    }
    std::uint64_t id = 0;
    return m.lookup_stored(txn, pid, id, head);
  });
  if (!st.ok()) return st;
  return head;
}

namespace {

/// The first seq of stream `id` that the index holds at a position (0: none). Errors:
/// corrupt (a malformed entry), io_error.
status first_indexed_held(const journal::impl& m, const read_txn& txn, std::string_view pid,
                          std::uint64_t id, std::uint64_t& out) {
  out = 0;
  status cst;
  detail::cursor c(txn.native(), m.index.dbi, cst);
  if (!c) return cst;
  detail::entry e;
  int rc = c.seek(key128(id, 0).view(), e);
  for (; rc == 0 && of_stream(e.key, id); rc = c.next(e)) {
    auto first = get_be64(e.key.data() + 8);
    if (e.value.empty() || e.value.size() % 8 != 0 || first == 0)
      return corrupt_entry("index", index_key(pid, first),
                           "value of " + std::to_string(e.value.size()) +
                             " bytes, expected a non-empty list of 8-byte positions");
    for (std::size_t i = 0; i < index_count(e.value); ++i)
      if (get_be64(e.value.data() + i * 8) != 0) {
        out = first + i;
        return {};
      }
  }
  if (rc != 0 && rc != MDB_NOTFOUND)
    return c.error(rc, "reading the index of stream " + quoted(pid));
  return {};
}

} // namespace

result<std::uint64_t> journal::first_held_seq(std::string_view pid) const {
  auto& m = *impl_;
  std::uint64_t out = 1;
  read_lock lk(m);
  auto st = m.env->read([&](read_txn& txn) -> status {
    read_plan plan;
    auto s = plan_stream(m, txn, pid, plan);
    lk.unlock();
    if (!s.ok() || plan.id == 0) return s;
    std::uint64_t held = 0;
    if (s = first_indexed_held(m, txn, pid, plan.id, held); !s.ok()) return s;
    if (held != 0)
      out = held;
    else if (!plan.tail.empty())
      out = plan.tail.front().first;
    else // holds none: the head is where the index ends (deleted or absent seqs included)
      out = plan.index_end + 1;
    return {};
  });
  if (!st.ok()) return st;
  return out;
}

std::uint64_t journal::last_position() const noexcept {
  auto& m = *impl_;
  if (m.read_only) {
    try {
      (void)m.env->read([&](read_txn& txn) -> status {
        std::uint64_t floor = 0;
        if (auto st = m.meta_u64(txn, position_floor_key, floor); !st.ok()) return st;
        auto last = txn.last(m.events);
        if (!last) return last.error();
        std::uint64_t key =
          *last && (*last)->first.size() == 8 ? get_be64((*last)->first.data()) : 0;
        m.last_position = std::max({m.last_position.load(), key, floor});
        return {};
      });
    } catch (...) { // noexcept: keep the last known value
    }
  }
  return m.last_position.load();
}

namespace {

/// A damaged page header or node offset can make LMDB's walk of a table end early
/// without an error (a page that seems to hold fewer keys). The entry counts that LMDB
/// keeps in each table's record are stored apart from those pages: a scan that found
/// fewer streams than `streams` counts, or tables that disagree, is corrupt.
status check_stream_count(const read_txn& txn, const journal::impl& m, std::size_t scanned) {
  MDB_stat streams_stat{}, names_stat{};
  if (int rc = mdb_stat(txn.native(), m.streams.dbi, &streams_stat); rc != 0)
    return from_mdb(rc, "counting the streams table");
  if (int rc = mdb_stat(txn.native(), m.names.dbi, &names_stat); rc != 0)
    return from_mdb(rc, "counting the stream_names table");
  if (streams_stat.ms_entries != scanned || names_stat.ms_entries != scanned)
    return {errc::corrupt,
            "table streams: a scan found " + std::to_string(scanned) +
              " streams, but LMDB counts " + std::to_string(streams_stat.ms_entries) +
              " in streams and " + std::to_string(names_stat.ms_entries) +
              " in stream_names: a page of the table is damaged; run `strata journal verify`"
              " and `strata journal repair`, or restore from a backup"};
  return {};
}

} // namespace

result<std::vector<std::string>> journal::list_streams() const {
  auto& m = *impl_;
  std::vector<std::string> out;
  auto st = m.env->read([&](read_txn& txn) {
    if (m.read_only)
      if (auto s = m.check_not_repairing(txn); !s.ok()) return s;
    status bad;
    auto s = txn.scan(m.streams, {}, [&](std::string_view k, std::string_view v) {
      std::uint64_t id = 0;
      bad = m.check_stream_entry(txn, k, v, id);
      if (!bad.ok()) return false;
      out.emplace_back(k);
      return true;
    });
    if (!s.ok()) return s;
    if (!bad.ok()) return bad;
    return check_stream_count(txn, m, out.size());
  });
  if (!st.ok()) return st;
  return out;
}

// ---- deletion ---------------------------------------------------------------------------

status journal::impl::delete_run(write_txn& txn, std::string_view key, std::string_view value,
                                 std::uint64_t up_to_seq, std::string& rewritten) {
  // Deleted seqs keep their index slot with position 0, so the head stays known.
  auto first = get_be64(key.data() + 8);
  auto last = last_position.load();
  rewritten.assign(value);
  for (std::size_t i = 0; i < index_count(value) && first + i <= up_to_seq; ++i) {
    auto pos = get_be64(rewritten.data() + i * 8);
    if (pos == 0) continue;
    if (auto s = txn.del(events, key64(pos).view()); !s.ok()) return s;
    if (pos == last)
      if (auto s = txn.put(meta, position_floor_key, key64(last).view()); !s.ok()) return s;
    detail::put_be64(rewritten.data() + i * 8, 0);
  }
  return {};
}

status journal::delete_events_before(std::string_view pid, std::uint64_t up_to_seq) {
  auto& m = *impl_;
  if (auto st = m.writable("delete events"); !st.ok()) return st;
  if (m.closed) return {errc::closed, "the journal is closed"};
  if (auto st = flush_index(); !st.ok()) return st;
  auto id = m.stream_id(pid);
  if (!id) return id.error();
  if (*id == 0) return {errc::not_found, "unknown stream '" + std::string(pid) + "'"};
  return m.env->write([&](write_txn& txn) -> status {
    // Each index entry of the stream that covers seqs <= up_to_seq is rewritten after
    // the scan (a put during it would move the cursor).
    std::vector<std::pair<std::string, std::string>> rewrites;
    status bad;
    auto st = txn.scan(m.index, key128(*id, 0).view(), [&](std::string_view k, std::string_view v) {
      if (!of_stream(k, *id) || get_be64(k.data() + 8) > up_to_seq) return false;
      std::string nv;
      bad = m.delete_run(txn, k, v, up_to_seq, nv);
      rewrites.emplace_back(std::string(k), std::move(nv));
      return bad.ok();
    });
    if (!st.ok()) return st;
    if (!bad.ok()) return bad;
    for (auto& [k, v] : rewrites)
      if (auto s = txn.put(m.index, k, v); !s.ok()) return s;
    return status{};
  });
}

environment& journal::env() noexcept { return *impl_->env; }
snapshot_store& journal::snapshots() noexcept { return impl_->snapshots_api; }
offset_store& journal::offsets() noexcept { return impl_->offsets_api; }
const journal_options& journal::options() const noexcept { return impl_->opts; }

} // namespace strata::persistence
