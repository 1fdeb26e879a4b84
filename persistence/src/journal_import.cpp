// journal::import: events written by another node (a shard handed over through Kafka)
// appended with their own persistence id, seq and timestamp, idempotent on
// (persistence id, seq), their positions recorded in table `imported` so that the Kafka
// bridge does not publish them again. See docs/persistence.md, "Import".
#include "strata/persistence/journal.hpp"

#include "envelope_codec.hpp"
#include "journal_impl.hpp"
#include "record.hpp"

#include <algorithm>
#include <unordered_map>

namespace strata::persistence {

using detail::get_be64;
using detail::key64;
using detail::quoted;

namespace {

constexpr std::size_t max_pid_bytes = 255; // as append (event.hpp)
constexpr const char* nothing_written = "; nothing of the batch was imported";

/// One stream of an import: its head before and after, and its events by kind.
struct import_stream {
  journal::impl::stream_state* state = nullptr;
  std::uint64_t committed = 0;            // head before the import
  std::uint64_t head = 0;                 // head after the events planned so far
  std::vector<const event_record*> added; // seqs committed+1 .. head
  std::vector<const event_record*> dups;  // seq <= committed: compared with the store
};

bool same_event(std::string_view type, std::uint32_t version, std::string_view payload,
                std::int64_t ts, const event_record& e) {
  return type == e.type && version == e.schema_version && payload == e.payload &&
         ts == e.timestamp_ns;
}

status differs(const event_record& e, std::string_view what) {
  return {errc::conflict, "import: stream " + quoted(e.persistence_id) + " seq " +
                            std::to_string(e.seq) + ": " + std::string(what) + nothing_written};
}

/// Checks and groups an import batch by stream (steps of journal::import).
class import_planner {
 public:
  import_planner(journal::impl& m, const journal& j) : m_(m), j_(j) {}

  /// Every event: a valid record that continues its stream or repeats one of the batch.
  status plan(const std::vector<event_record>& events);
  /// Duplicates of stored events: each must equal the stored one.
  status check_duplicates() const;
  /// Encodes the appended events (batch order) into `p` with positions from
  /// planned_position + 1, and the streams' new heads.
  void encode(const std::vector<event_record>& events, journal::impl::prepared& p);
  /// After the commit: the planner's state moves on.
  void hand_over(const journal::impl::prepared& p);
  std::uint64_t appended() const noexcept { return appended_; }
  std::uint64_t duplicates() const noexcept { return duplicates_; }

 private:
  static status check_record(const event_record& e);
  result<import_stream*> stream(std::string_view pid);
  status place(const event_record& e, import_stream& s);
  status compare_stream(const import_stream& s) const;

  journal::impl& m_;
  const journal& j_;
  std::unordered_map<std::string_view, import_stream> streams_;
  std::uint64_t appended_ = 0, duplicates_ = 0;
  std::int64_t max_stamp_ = 0;
};

status import_planner::check_record(const event_record& e) {
  if (e.persistence_id.empty() || e.persistence_id.size() > max_pid_bytes)
    return {errc::invalid_argument, "import: persistence id must be 1.." +
                                      std::to_string(max_pid_bytes) + " bytes (got " +
                                      std::to_string(e.persistence_id.size()) + ")"};
  if (e.seq == 0)
    return {errc::invalid_argument, "import: stream " + quoted(e.persistence_id) +
                                      " has an event with seq 0 (seqs start at 1)"};
  if (e.timestamp_ns == 0)
    return {errc::invalid_argument, "import: stream " + quoted(e.persistence_id) + " seq " +
                                      std::to_string(e.seq) +
                                      " has no timestamp (an imported event keeps its own)"};
  return {};
}

result<import_stream*> import_planner::stream(std::string_view pid) {
  auto it = streams_.find(pid);
  if (it != streams_.end()) return &it->second;
  auto* c = m_.cached(pid);
  if (!c) {
    auto loaded = m_.load_state(pid);
    if (!loaded) return loaded.error();
    c = *loaded;
  }
  auto& s = streams_[pid];
  s.state = c;
  s.committed = s.head = c->planned_head; // == head: the pipeline is drained
  return &s;
}

status import_planner::place(const event_record& e, import_stream& s) {
  if (e.seq == s.head + 1) {
    s.added.push_back(&e);
    s.head = e.seq;
    ++appended_;
    max_stamp_ = std::max(max_stamp_, e.timestamp_ns);
    return {};
  }
  ++duplicates_;
  if (e.seq <= s.committed) {
    s.dups.push_back(&e);
    return {};
  }
  if (e.seq <= s.head) { // repeats an event earlier in this batch
    auto& first = *s.added[e.seq - s.committed - 1];
    if (same_event(first.type, first.schema_version, first.payload, first.timestamp_ns, e))
      return {};
    return differs(e, "the batch holds two different events under it");
  }
  return {errc::invalid_argument, "import: stream " + quoted(e.persistence_id) +
                                    " has a gap: expected seq " + std::to_string(s.head + 1) +
                                    " but found seq " + std::to_string(e.seq) +
                                    "; import the missing events first" + nothing_written};
}

status import_planner::plan(const std::vector<event_record>& events) {
  for (auto& e : events) {
    if (auto st = check_record(e); !st.ok()) return st;
    auto s = stream(e.persistence_id);
    if (!s) return s.error();
    if (auto st = place(e, **s); !st.ok()) return st;
  }
  if (appended_ > m_.opts.max_batch_events)
    return {errc::invalid_argument, "import of " + std::to_string(appended_) +
                                      " new events exceeds max_batch_events (" +
                                      std::to_string(m_.opts.max_batch_events) + "); split it"};
  return {};
}

status import_planner::compare_stream(const import_stream& s) const {
  auto dups = s.dups;
  std::sort(dups.begin(), dups.end(), [](auto* a, auto* b) {
    return a->seq < b->seq;
  });
  std::size_t next = 0;
  status problem;
  auto st = j_.read_stream_view(
    dups.front()->persistence_id, dups.front()->seq, dups.back()->seq, [&](const event_view& v) {
      for (; next < dups.size() && dups[next]->seq <= v.seq; ++next) {
        if (dups[next]->seq < v.seq) break; // deleted here: reported below
        if (!same_event(v.type, v.schema_version, v.payload, v.timestamp_ns, *dups[next])) {
          problem = differs(*dups[next], "a different event is stored under it");
          return false;
        }
      }
      return next < dups.size();
    });
  if (!st.ok()) return st;
  if (!problem.ok()) return problem;
  if (next < dups.size())
    return differs(*dups[next], "the stored event was deleted here (delete_events_before), so "
                                "the import cannot be checked against it");
  return {};
}

status import_planner::check_duplicates() const {
  for (auto& [pid, s] : streams_)
    if (!s.dups.empty())
      if (auto st = compare_stream(s); !st.ok()) return st;
  return {};
}

void import_planner::encode(const std::vector<event_record>& events, journal::impl::prepared& p) {
  std::uint64_t pos = m_.planned_position + 1;
  p.first_position = pos;
  std::string unpacked;
  detail::envelope_fields f;
  std::unordered_map<std::string_view, import_stream>::iterator it;
  for (auto& e : events) {
    it = streams_.find(e.persistence_id);
    auto& s = it->second;
    if (e.seq <= s.committed || e.seq > s.head || s.added[e.seq - s.committed - 1] != &e)
      continue;            // a duplicate
    f = event_view::of(e); // every field kept but the position (encode computes the checksum)
    f.position = pos;
    unpacked.clear();
    detail::encode_envelope(f, unpacked);
    detail::pack_and_frame(unpacked, p.arena);
    p.ends.push_back(static_cast<std::uint32_t>(p.arena.size()));
    p.added.emplace_back(s.state, pos++);
  }
  p.last_position = pos - 1;
  p.imported = {p.first_position, p.last_position};
  for (auto& [pid, s] : streams_) {
    if (s.head == s.committed) continue;
    if (!s.state->stored) p.created.emplace_back(s.state->pid, s.state->id);
    p.heads.emplace_back(s.state, s.head);
  }
  p.next_stream_id = m_.planned_stream_id;
}

void import_planner::hand_over(const journal::impl::prepared& p) {
  for (auto& [ss, head] : p.heads) {
    ss->planned_head = head;
    ss->stored = true;
  }
  m_.planned_position = p.last_position;
  m_.last_stamp_ns = std::max(m_.last_stamp_ns, max_stamp_);
}

} // namespace

result<import_report> journal::import(const std::vector<event_record>& events) {
  auto& m = *impl_;
  if (auto st = m.writable("import"); !st.ok()) return st;
  if (m.closed) return status{errc::closed, "the journal in '" + m.opts.env.path + "' is closed"};
  m.wait_for_room(); // after a failed append: plans again from what is committed
  m.drain();         // duplicates are checked against committed events only
  import_planner planner(m, *this);
  if (auto st = planner.plan(events); !st.ok()) return st;
  if (auto st = planner.check_duplicates(); !st.ok()) return st;
  import_report rep;
  rep.duplicates = planner.duplicates();
  if (planner.appended() == 0) return rep;
  impl::prepared p;
  planner.encode(events, p);
  // The commit thread is idle (drained, and this is the only planner thread).
  if (auto st = m.commit(p); !st.ok()) return st;
  planner.hand_over(p);
  if (m.pending_count >= m.opts.index_flush_events) (void)m.flush_pending();
  rep.imported = planner.appended();
  rep.first_position = p.first_position;
  rep.last_position = p.last_position;
  return rep;
}

status journal::impl::open_imported_table() {
  auto t = env->open_table("imported");
  if (!t) return t.error();
  imported = *t;
  has_imported = true;
  return {};
}

result<position_range> journal::next_imported(std::uint64_t from_position) const {
  auto& m = *impl_;
  if (!m.has_imported) { // read-only: the table appears with the first writer open
    std::lock_guard lk(m.imported_mu);
    if (!m.has_imported) {
      auto t = m.env->open_table("imported");
      if (!t && t.error().code() == errc::not_found) return position_range{};
      if (!t) return t.error();
      m.imported = *t;
      m.has_imported = true;
    }
  }
  position_range out;
  auto st = m.env->read([&](read_txn& txn) -> status {
    status cst;
    detail::cursor c(txn.native(), m.imported.dbi, cst);
    if (!c) return cst;
    detail::entry e;
    int rc = c.seek(key64(std::max<std::uint64_t>(from_position, 1)).view(), e);
    if (rc == MDB_NOTFOUND) return {};
    if (rc != 0) return c.error(rc, "reading table imported");
    if (e.key.size() != 8 || e.value.size() != 8 || get_be64(e.value.data()) == 0 ||
        get_be64(e.value.data()) > get_be64(e.key.data()))
      return detail::corrupt_entry("imported", detail::escape_bytes(e.key),
                                   "is not a range of positions (8-byte last, 8-byte first)");
    out = {get_be64(e.value.data()), get_be64(e.key.data())};
    return {};
  });
  if (!st.ok()) return st;
  return out;
}

// ---- stream bases (import_base) --------------------------------------------------------
//
// A base at seq b of a stream whose head was h < b is stored as two small entries,
// whatever b is: the index entry (stream id, b) → [position 0] (seq b not held, so the
// head read from the index is b, as after delete_events_before), and table `bases`,
// key (pid, b) → h, which says that seqs h+1 .. b-1 have no index entries on purpose.
// Readers accept a gap in a stream's index only where `bases` says so; repair keeps
// the table (it is not derived from the log) and rebuilds the index around it.

namespace detail {

std::string base_key(std::string_view pid, std::uint64_t base) {
  std::string k;
  k.reserve(1 + pid.size() + 8);
  k.push_back(static_cast<char>(pid.size())); // 1..255 bytes: one byte
  k.append(pid);
  k.append(key64(base).view());
  return k;
}

std::uint64_t next_holdable(const base_map& b, std::uint64_t seq) {
  auto next = seq + 1;
  // Bases ascend with the heads before them, so one pass in order finds each range
  // that starts at `next` (a base right after another one chains them).
  for (auto& [base, before] : b)
    if (before + 1 == next) next = base + 1;
  return next;
}

namespace {

/// Splits a `bases` key into pid and base seq; false when malformed.
bool parse_base_key(std::string_view k, std::string_view& pid, std::uint64_t& base) {
  if (k.size() < 10 || static_cast<unsigned char>(k[0]) + 9u != k.size()) return false;
  pid = k.substr(1, k.size() - 9);
  base = get_be64(k.data() + k.size() - 8);
  return base != 0;
}

} // namespace

status load_bases(const journal::impl& m, const read_txn& txn,
                  std::unordered_map<std::string, base_map>& out,
                  std::vector<std::pair<std::string, std::string>>* bad) {
  if (!m.has_bases) return {};
  return txn.scan(m.bases, {}, [&](std::string_view k, std::string_view v) {
    std::string_view pid;
    std::uint64_t base = 0;
    if (!parse_base_key(k, pid, base)) {
      if (bad) bad->emplace_back(escape_bytes(k), "not a key (pid length, pid, base seq)");
      return true;
    }
    std::string key = "(stream " + quoted(pid) + ", seq " + std::to_string(base) + ")";
    if (v.size() != 8 || get_be64(v.data()) >= base) {
      if (bad) bad->emplace_back(key, "value is not a head (8 bytes) below the base");
      return true;
    }
    out[std::string(pid)].emplace(base, get_be64(v.data()));
    return true;
  });
}

} // namespace detail

status journal::impl::open_bases_table() {
  auto t = env->open_table("bases");
  if (!t) return t.error();
  bases = *t;
  has_bases = true;
  return {};
}

status journal::impl::lazy_bases(bool& present) const {
  present = has_bases;
  if (present || !read_only) return {};
  std::lock_guard lk(imported_mu);
  if (has_bases) return present = true, status{};
  auto t = env->open_table("bases"); // absent until an import_base-aware writer opened
  if (!t) return t.error().code() == errc::not_found ? status{} : t.error();
  bases = *t;
  has_bases = present = true;
  return {};
}

status journal::impl::base_gap(const read_txn& txn, std::string_view pid, std::uint64_t expect,
                               std::uint64_t first, bool& allowed) const {
  allowed = false;
  if (!has_bases || pid.empty() || pid.size() > max_pid_bytes) return {};
  auto v = txn.get(bases, detail::base_key(pid, first));
  if (!v) return v.error();
  if (!*v) return {};
  if ((*v)->size() != 8)
    return detail::corrupt_entry("bases",
                                 "(stream " + quoted(pid) + ", seq " + std::to_string(first) + ")",
                                 "value of " + std::to_string((*v)->size()) +
                                   " bytes, expected the 8-byte head before the base");
  allowed = get_be64((*v)->data()) + 1 == expect;
  return {};
}

namespace {

status check_base(const snapshot_record& s) {
  if (s.persistence_id.empty() || s.persistence_id.size() > max_pid_bytes)
    return {errc::invalid_argument, "import_base: persistence id must be 1.." +
                                      std::to_string(max_pid_bytes) + " bytes (got " +
                                      std::to_string(s.persistence_id.size()) + ")"};
  if (s.seq == 0)
    return {errc::invalid_argument, "import_base: stream " + quoted(s.persistence_id) +
                                      ": a snapshot at seq 0 (seqs start at 1); nothing was "
                                      "changed"};
  return {};
}

/// The head is at or past the snapshot: it is saved unless a later one is stored.
result<base_report> save_unless_later(journal& j, const snapshot_record& s) {
  base_report rep;
  auto latest = j.snapshots().load_latest(s.persistence_id);
  if (!latest) return latest.error();
  if (*latest && (*latest)->seq >= s.seq) return rep;
  if (auto st = j.snapshots().save(s); !st.ok()) return st;
  rep.snapshot_saved = true;
  return rep;
}

/// A base's entries in `txn`: the stream's entries when it is new, its index entry at
/// s.seq (position 0: not held), its `bases` entry and the snapshot.
status put_base(write_txn& txn, journal::impl& m, const journal::impl::stream_state& ss,
                const snapshot_record& s) {
  if (!ss.stored) {
    if (auto st = txn.put(m.streams, ss.pid, key64(ss.id).view()); !st.ok()) return st;
    if (auto st = txn.put(m.names, key64(ss.id).view(), ss.pid); !st.ok()) return st;
    if (auto st = txn.put(m.meta, detail::next_stream_key, key64(m.planned_stream_id).view());
        !st.ok())
      return st;
  }
  const std::string not_held(8, '\0');
  if (auto st = txn.put(m.index, detail::key128(ss.id, s.seq).view(), not_held); !st.ok())
    return st;
  if (auto st = txn.put(m.bases, detail::base_key(ss.pid, s.seq), key64(ss.head).view());
      !st.ok())
    return st;
  return detail::save_snapshot(m, txn, s, ss.id);
}

/// The base's transaction (put_base alone).
status write_base(journal::impl& m, const journal::impl::stream_state& ss,
                  const snapshot_record& s) {
  return m.env->write([&](write_txn& txn) -> status {
    return put_base(txn, m, ss, s);
  });
}

/// After the commit of its base: the stream's state is at s.seq.
base_report moved_to(journal::impl& m, journal::impl::stream_state& ss, const snapshot_record& s) {
  base_report rep{true, s.seq - ss.head, true};
  std::unique_lock lk(m.mem);
  ss.head = ss.indexed_head = ss.planned_head = s.seq;
  ss.stored = true;
  m.next_stream_id = m.planned_stream_id;
  return rep;
}

/// Moves a stream's head forward to s.seq (h < s.seq): its pending index entries are
/// written first, so that the index ends at h and the base's entry follows it.
result<base_report> move_to_base(journal::impl& m, journal::impl::stream_state& ss,
                                 const snapshot_record& s) {
  if (!ss.pending.empty())
    if (auto st = m.flush_pending(); !st.ok()) return st;
  if (auto st = write_base(m, ss, s); !st.ok()) {
    m.reset_plan(); // a new stream's planned id is given out again
    return status{st.code(), "import_base: stream " + quoted(s.persistence_id) + " seq " +
                               std::to_string(s.seq) + ": " + st.message()};
  }
  return moved_to(m, ss, s);
}

/// The writer's state of `pid` (loaded when not cached).
result<journal::impl::stream_state*> state_of(journal::impl& m, const std::string& pid) {
  if (auto* c = m.cached(pid)) return c;
  return m.load_state(pid);
}

} // namespace

result<base_report> journal::import_base(const snapshot_record& s) {
  auto& m = *impl_;
  if (auto st = m.writable("import a base"); !st.ok()) return st;
  if (m.closed) return status{errc::closed, "the journal in '" + m.opts.env.path + "' is closed"};
  if (auto st = check_base(s); !st.ok()) return st;
  m.wait_for_room(); // after a failed append: plans again from what is committed
  m.drain();         // the head compared with s.seq is the committed one
  auto ss = state_of(m, s.persistence_id);
  if (!ss) return ss.error();
  if ((*ss)->head >= s.seq) return save_unless_later(*this, s);
  return move_to_base(m, **ss, s);
}

result<std::vector<base_report>> journal::import_bases(const std::vector<snapshot_record>& snaps) {
  auto& m = *impl_;
  if (auto st = m.writable("import bases"); !st.ok()) return st;
  if (m.closed) return status{errc::closed, "the journal in '" + m.opts.env.path + "' is closed"};
  std::unordered_map<std::string_view, std::size_t> seen;
  for (std::size_t i = 0; i < snaps.size(); ++i) {
    if (auto st = check_base(snaps[i]); !st.ok()) return st;
    if (!seen.emplace(snaps[i].persistence_id, i).second)
      return status{errc::invalid_argument, "import_bases: stream " +
                                              quoted(snaps[i].persistence_id) +
                                              " is named twice; nothing was changed"};
  }
  m.wait_for_room();
  m.drain();
  std::vector<base_report> out(snaps.size());
  std::vector<std::pair<journal::impl::stream_state*, const snapshot_record*>> moving;
  bool pending = false;
  for (std::size_t i = 0; i < snaps.size(); ++i) {
    auto ss = state_of(m, snaps[i].persistence_id);
    if (!ss) return ss.error();
    if ((*ss)->head >= snaps[i].seq) {
      auto r = save_unless_later(*this, snaps[i]); // rare: the stream is here already
      if (!r) return r.error();
      out[i] = *r;
      continue;
    }
    pending = pending || !(*ss)->pending.empty();
    moving.emplace_back(*ss, &snaps[i]);
  }
  if (moving.empty()) return out;
  if (pending)
    if (auto st = m.flush_pending(); !st.ok()) return st;
  auto st = m.env->write([&](write_txn& txn) -> status {
    for (auto& [ss, s] : moving)
      if (auto e = put_base(txn, m, *ss, *s); !e.ok())
        return {e.code(), "import_bases: stream " + quoted(s->persistence_id) + " seq " +
                            std::to_string(s->seq) + ": " + e.message()};
    return {};
  });
  if (!st.ok()) {
    m.reset_plan(); // the new streams' planned ids are given out again
    return st;
  }
  for (auto& [ss, s] : moving)
    out[seen.at(s->persistence_id)] = moved_to(m, *ss, *s);
  return out;
}

} // namespace strata::persistence
