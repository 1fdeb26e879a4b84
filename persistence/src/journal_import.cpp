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
      continue; // a duplicate
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

} // namespace strata::persistence
