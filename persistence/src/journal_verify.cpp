// journal::verify_all, journal::verify and journal::repair: checking the derived tables
// (streams, stream_names, index, meta) against the log, and rebuilding them from it.
#include "strata/persistence/journal.hpp"

#include "journal_impl.hpp"
#include "record.hpp"
#include "strata/persistence/codec.hpp"

#include <algorithm>
#include <map>
#include <set>
#include <unordered_map>
#include <unordered_set>

namespace strata::persistence {

using detail::decode_view_at;
using detail::get_be64;
using detail::key128;
using detail::key64;
using detail::quoted;

namespace {

/// Control characters as \xNN: ids in keys and messages are escaped already (quoted);
/// this keeps any other text on one line.
std::string one_line(std::string_view s) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (char c : s) {
    auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7F) {
      out += "\\x";
      out += hex[u >> 4];
      out += hex[u & 15];
    } else {
      out.push_back(c);
    }
  }
  return out;
}

} // namespace

std::string journal_problem::to_string() const {
  return "table " + one_line(table) + ", key " + one_line(key) + ": " + one_line(what);
}

namespace {

std::string index_key(std::string_view pid, std::uint64_t first) {
  return "(stream " + quoted(pid) + ", seq " + std::to_string(first) + ")";
}

/// One pass of verify_all over one read transaction.
class checker {
 public:
  checker(const journal::impl& m, const read_txn& txn, verify_report& rep, std::size_t max)
    : m_(m), txn_(txn), rep_(rep), max_(max) {}

  status run() {
    if (auto st = check_meta(); !st.ok()) return st;
    if (auto st = load_bases(); !st.ok()) return st;
    if (auto st = scan_log(); !st.ok()) return st;
    if (auto st = scan_names(); !st.ok()) return st;
    if (auto st = scan_streams(); !st.ok()) return st;
    if (auto st = scan_index(); !st.ok()) return st;
    cross_check_streams();
    cross_check_bases();
    if (auto st = scan_imported(); !st.ok()) return st;
    return scan_snapshots();
  }

  /// Writer journals: the un-indexed positions the writer holds in memory.
  status check_pending(
    const std::vector<std::tuple<std::string, std::uint64_t, std::vector<std::uint64_t>>>& cache) {
    for (auto& [pid, indexed_head, pending] : cache)
      for (std::size_t i = 0; i < pending.size(); ++i)
        if (auto st = check_position(pid, indexed_head + 1 + i, pending[i], "writer memory");
            !st.ok())
          return st;
    return {};
  }

 private:
  /// The index entries of one stream id, as scan_index walks them.
  struct index_run {
    std::uint64_t id = 0;
    bool known = false;
    std::uint64_t expect = 1; // the seq the next entry must start with
    std::string pid;
  };

  struct log_stream {
    std::uint64_t first = 0, last = 0;
    std::uint64_t last_indexed = 0; // highest seq at a position <= indexed_through
  };

  void add(std::string table, std::string key, std::string what) {
    ++rep_.problem_count;
    if (rep_.problems.size() < max_)
      rep_.problems.push_back({std::move(table), std::move(key), std::move(what)});
  }
  /// Adds a corrupt status as a problem (the table and key are in its message).
  void add_status(std::string table, std::string key, const status& st) {
    add(std::move(table), std::move(key), st.message());
  }

  status check_meta() {
    bool absent = false;
    if (auto st = detail::check_format(txn_, m_, absent); !st.ok()) {
      if (st.code() != errc::incompatible) return st;
      add("meta", "format", st.message());
    }
    auto marker = txn_.get(m_.meta, detail::repair_marker_key);
    if (!marker) return marker.error();
    if (*marker) add("meta", std::string(detail::repair_marker_key), "a repair was interrupted");
    auto u64 = [&](std::string_view key, std::uint64_t& out) -> status {
      auto st = m_.meta_u64(txn_, key, out);
      if (st.code() == errc::corrupt) {
        add("meta", std::string(key), "value is not 8 bytes");
        return {};
      }
      return st;
    };
    if (auto st = u64(detail::next_stream_key, next_id_); !st.ok()) return st;
    if (auto st = u64(detail::indexed_through_key, indexed_through_); !st.ok()) return st;
    return u64(detail::position_floor_key, floor_);
  }

  status scan_log() {
    event_view ev;
    auto st = txn_.scan(m_.events, {}, [&](std::string_view k, std::string_view v) {
      if (k.size() != 8) {
        add("events", "of " + std::to_string(k.size()) + " bytes",
            "a position key must be 8 bytes");
        return true;
      }
      auto pos = get_be64(k.data());
      last_key_ = pos;
      ++rep_.records;
      if (auto s = decode_view_at(pos, v, {}, 0, ev); !s.ok()) {
        add_status("events", std::to_string(pos), s);
        return true;
      }
      auto [it, fresh] = log_.try_emplace(std::string(ev.persistence_id));
      auto& ls = it->second;
      if (fresh) {
        ls.first = ev.seq;
        if (!bases_.empty() && never_held(std::string(ev.persistence_id), ev.seq))
          add("events", std::to_string(pos),
              "stream " + quoted(ev.persistence_id) + " has seq " + std::to_string(ev.seq) +
                ", which table bases says is absent");
      } else if (auto want = bases_.empty() ? ls.last + 1 : next_seq(ev.persistence_id, ls.last);
                 ev.seq != want) {
        add("events", std::to_string(pos),
            "stream " + quoted(ev.persistence_id) + " has seq " + std::to_string(ev.seq) +
              " after seq " + std::to_string(ls.last) + " (each stream's seqs must ascend by 1" +
              (want != ls.last + 1 ? ", past its absent seqs to " + std::to_string(want) : "") +
              ")");
      }
      ls.last = ev.seq;
      if (pos <= indexed_through_) ls.last_indexed = ev.seq;
      return true;
    });
    if (!st.ok()) return st;
    rep_.last_position = std::max(last_key_, floor_);
    if (indexed_through_ > rep_.last_position)
      add("meta", std::string(detail::indexed_through_key),
          "says the index covers the log through position " + std::to_string(indexed_through_) +
            ", beyond its last position " + std::to_string(rep_.last_position));
    return {};
  }

  status scan_names() {
    return txn_.scan(m_.names, {}, [&](std::string_view k, std::string_view v) {
      if (k.size() != 8) {
        add("stream_names", "of " + std::to_string(k.size()) + " bytes",
            "an id key must be 8 bytes");
        return true;
      }
      auto id = get_be64(k.data());
      names_.emplace(id, std::string(v));
      name_ids_.emplace(std::string(v), id);
      if (id == 0 || id >= next_id_)
        add("stream_names", std::to_string(id),
            "id is not below meta.next_stream_id " + std::to_string(next_id_));
      auto s = txn_.get(m_.streams, v);
      if (!s) {
        error_ = s.error();
        return false;
      }
      if (!*s || (*s)->size() != 8 || get_be64((*s)->data()) != id)
        add("stream_names", std::to_string(id),
            "names stream " + quoted(v) + ", but table streams does not map it back to id " +
              std::to_string(id));
      return true;
    });
  }

  status scan_streams() {
    auto st = txn_.scan(m_.streams, {}, [&](std::string_view k, std::string_view v) {
      ++rep_.streams;
      std::uint64_t id = 0;
      std::string what;
      auto s = m_.check_stream_entry(txn_, k, v, id, &what);
      if (s.code() == errc::corrupt) {
        add("streams", quoted(k), what);
      } else if (!s.ok()) {
        error_ = s;
        return false;
      }
      stream_ids_.emplace(std::string(k), id); // 0 when damaged
      return true;
    });
    return st.ok() ? error_ : st;
  }

  status scan_index() {
    auto st = txn_.scan(m_.index, {}, [&](std::string_view k, std::string_view v) {
      if (k.size() != 16) {
        add("index", "of " + std::to_string(k.size()) + " bytes", "an index key must be 16 bytes");
        return true;
      }
      auto id = get_be64(k.data());
      if (id != run_.id || (run_.id == 0 && !run_.known)) start_run(id);
      if (!run_.known) return true;
      error_ = check_index_entry(id, get_be64(k.data() + 8), v);
      return error_.ok();
    });
    return st.ok() ? error_ : st;
  }

  /// The index entries of a stream start: they must begin at seq 1.
  void start_run(std::uint64_t id) {
    run_ = {id, false, 1, {}};
    auto n = names_.find(id);
    run_.known = n != names_.end();
    if (run_.known)
      run_.pid = n->second;
    else
      add("index", "(stream id " + std::to_string(id) + ")", "unknown stream id");
  }

  /// One index entry of the current run: contiguous, well-formed, every position
  /// holding its seq (a deleted one not in the log).
  status check_index_entry(std::uint64_t id, std::uint64_t first, std::string_view v) {
    auto& pid = run_.pid;
    if (is_base(pid, first)) seen_bases_.emplace(pid, first);
    if (first != run_.expect && !absent_before(pid, first, run_.expect))
      add("index", index_key(pid, first),
          "the stream's index has a gap or overlap: expected an entry starting at seq " +
            std::to_string(run_.expect));
    if (v.empty() || v.size() % 8 != 0) {
      add("index", index_key(pid, first),
          "value of " + std::to_string(v.size()) + " bytes, expected 8-byte positions");
      return {};
    }
    auto n = index_count(v);
    auto ls = log_.find(pid);
    for (std::size_t i = 0; i < n; ++i) {
      auto pos = get_be64(v.data() + i * 8);
      auto seq = first + i;
      if (pos == 0) {
        if (ls != log_.end() && seq >= ls->second.first && !is_base(pid, seq))
          add("index", index_key(pid, first),
              "seq " + std::to_string(seq) + " is marked deleted but the log holds it");
        continue;
      }
      if (pos > indexed_through_)
        add("index", index_key(pid, first),
            "seq " + std::to_string(seq) + " is at position " + std::to_string(pos) +
              ", beyond meta.indexed_through " + std::to_string(indexed_through_));
      if (auto s = check_position(pid, seq, pos, "index " + index_key(pid, first)); !s.ok())
        return s;
    }
    run_.expect = first + n;
    index_heads_[id] = run_.expect - 1;
    // A base's own entry holds no event: the log is compared with the entries before.
    if (n != 1 || get_be64(v.data()) != 0 || !is_base(pid, first)) event_heads_[id] = first + n - 1;
    return {};
  }

  /// Checks that `pos` holds seq `seq` of `pid`; a mismatch is a problem of `where`.
  status check_position(const std::string& pid, std::uint64_t seq, std::uint64_t pos,
                        const std::string& where) {
    auto v = txn_.get(m_.events, key64(pos).view());
    if (!v) return v.error();
    std::string table = where.rfind("index", 0) == 0 ? "index" : "events";
    std::string key = where.rfind("index ", 0) == 0 ? where.substr(6) : std::to_string(pos);
    if (!*v) {
      add(table, key,
          "seq " + std::to_string(seq) + " of stream " + quoted(pid) +
            " is said to be at position " + std::to_string(pos) +
            ", which is missing from the log");
      return {};
    }
    event_view ev;
    if (auto s = decode_view_at(pos, **v, {}, 0, ev); !s.ok()) return {}; // reported by scan_log
    if (ev.persistence_id != pid || ev.seq != seq)
      add(table, key,
          "seq " + std::to_string(seq) + " of stream " + quoted(pid) +
            " is said to be at position " + std::to_string(pos) + ", which holds seq " +
            std::to_string(ev.seq) + " of stream " + quoted(ev.persistence_id));
    return {};
  }

  void cross_check_streams() {
    for (auto& [pid, ls] : log_) {
      auto s = stream_ids_.find(pid);
      if (s == stream_ids_.end()) {
        add("streams", quoted(pid), "missing, but the log holds events of this stream");
        continue;
      }
      // A damaged streams entry is reported above; check the index under the id that
      // stream_names gives the stream.
      auto id = s->second;
      if (id == 0) {
        auto n = name_ids_.find(pid);
        if (n == name_ids_.end()) continue;
        id = n->second;
      }
      auto h = event_heads_.find(id);
      std::uint64_t head = h == event_heads_.end() ? 0 : h->second;
      if (ls.last_indexed != 0 && head != ls.last_indexed)
        add("index", "(stream " + quoted(pid) + ")",
            "ends at seq " + std::to_string(head) + " but the log holds seq " +
              std::to_string(ls.last_indexed) + " at or before meta.indexed_through " +
              std::to_string(indexed_through_));
      else if (ls.last_indexed == 0 && head >= ls.first)
        add("index", "(stream " + quoted(pid) + ")",
            "ends at seq " + std::to_string(head) + " but seq " + std::to_string(ls.first) +
              " is not yet indexed (after meta.indexed_through)");
    }
    for (auto& [pid, id] : stream_ids_)
      if (id != 0 && !log_.count(pid) && !index_heads_.count(id))
        add("streams", quoted(pid), "the stream has neither events in the log nor an index");
  }

  /// Table `bases` (journal::import_base); malformed entries are problems.
  status load_bases() {
    std::vector<std::pair<std::string, std::string>> bad;
    if (auto st = detail::load_bases(m_, txn_, bases_, &bad); !st.ok()) return st;
    for (auto& [key, what] : bad)
      add("bases", key, what);
    return {};
  }

  /// Whether `seq` of `pid` lies in an absent range or is a base (never in the log).
  bool never_held(const std::string& pid, std::uint64_t seq) const {
    auto b = bases_.find(pid);
    if (b == bases_.end()) return false;
    for (auto& [base, before] : b->second)
      if (seq > before && seq <= base) return true;
    return false;
  }

  bool is_base(const std::string& pid, std::uint64_t seq) const {
    auto b = bases_.find(pid);
    return b != bases_.end() && b->second.count(seq) != 0;
  }

  /// Whether an entry of `pid` starting at `first` may follow one ending at expect - 1:
  /// the seqs between are the absent range of the base `first`.
  bool absent_before(const std::string& pid, std::uint64_t first, std::uint64_t expect) const {
    auto b = bases_.find(pid);
    if (b == bases_.end()) return false;
    auto it = b->second.find(first);
    return it != b->second.end() && it->second + 1 == expect;
  }

  /// The seq that must follow `seq` of `pid` in the log: seq + 1, or past the absent
  /// ranges (and base seqs, never held) that start there.
  std::uint64_t next_seq(std::string_view pid, std::uint64_t seq) const {
    auto b = bases_.find(std::string(pid));
    return b == bases_.end() ? seq + 1 : detail::next_holdable(b->second, seq);
  }

  /// Each base belongs to a stream and has its index entry (seq `base`, not held).
  void cross_check_bases() {
    for (auto& [pid, bm] : bases_)
      for (auto& [base, before] : bm) {
        std::string key = "(stream " + quoted(pid) + ", seq " + std::to_string(base) + ")";
        if (!stream_ids_.count(pid))
          add("bases", key, "the stream is not in table streams");
        else if (!seen_bases_.count({pid, base}))
          add("bases", key,
              "no index entry starts at the base seq (the stream's head would not be it)");
      }
  }

  /// Table `imported` (journal::import): ranges first..last within the log, ascending,
  /// not overlapping. Absent in journals from before import: nothing to check.
  status scan_imported() {
    if (!m_.has_imported) return {};
    std::uint64_t prev_last = 0;
    return txn_.scan(m_.imported, {}, [&](std::string_view k, std::string_view v) {
      if (k.size() != 8 || v.size() != 8) {
        add("imported", "of " + std::to_string(k.size()) + " bytes",
            "key and value must be 8 bytes (last and first position)");
        return true;
      }
      auto last = get_be64(k.data()), first = get_be64(v.data());
      std::string key = "position " + std::to_string(last);
      if (first == 0 || first > last)
        add("imported", key,
            "first position " + std::to_string(first) + " is not in 1.." + std::to_string(last));
      else if (first <= prev_last)
        add("imported", key, "overlaps the range ending at " + std::to_string(prev_last));
      else if (last > rep_.last_position)
        add("imported", key,
            "is beyond the log's last position " + std::to_string(rep_.last_position));
      prev_last = last;
      return true;
    });
  }

  status scan_snapshots() {
    auto st = txn_.scan(m_.snaps, {}, [&](std::string_view k, std::string_view v) {
      if (k.size() != 16) {
        add("snapshots", "of " + std::to_string(k.size()) + " bytes", "a key must be 16 bytes");
        return true;
      }
      auto id = get_be64(k.data());
      auto seq = get_be64(k.data() + 8);
      auto n = names_.find(id);
      std::string key = "(stream id " + std::to_string(id) + ", seq " + std::to_string(seq) + ")";
      if (n == names_.end()) {
        add("snapshots", key, "unknown stream id");
        return true;
      }
      auto r = decode_snapshot(v, "snapshot " + key);
      if (!r) {
        add("snapshots", key, r.error().message());
        return true;
      }
      if (r->persistence_id != n->second || r->seq != seq)
        add("snapshots", key,
            "holds stream " + quoted(r->persistence_id) + " seq " + std::to_string(r->seq) +
              ", expected " + quoted(n->second));
      return true;
    });
    return st;
  }

  const journal::impl& m_;
  const read_txn& txn_;
  verify_report& rep_;
  std::size_t max_;
  status error_;
  std::uint64_t next_id_ = 0, indexed_through_ = 0, floor_ = 0, last_key_ = 0;
  std::unordered_map<std::string, log_stream> log_;
  std::unordered_map<std::uint64_t, std::string> names_;
  std::unordered_map<std::string, std::uint64_t> name_ids_;
  std::unordered_map<std::string, std::uint64_t> stream_ids_;
  std::unordered_map<std::uint64_t, std::uint64_t> index_heads_;
  std::unordered_map<std::uint64_t, std::uint64_t> event_heads_; // the index but base entries
  std::unordered_map<std::string, detail::base_map> bases_;
  std::set<std::pair<std::string, std::uint64_t>> seen_bases_; // bases with an index entry
  index_run run_;
};

} // namespace

namespace detail {

result<verify_report> verify_journal(const journal::impl& m, std::size_t max_problems) {
  verify_report rep;
  std::vector<std::tuple<std::string, std::uint64_t, std::vector<std::uint64_t>>> cache;
  std::shared_lock lk(m.mem, std::defer_lock);
  if (!m.read_only) {
    // Taken before the transaction begins: what the writer published is in the snapshot.
    lk.lock();
    m.cache.for_each([&](const journal::impl::stream_state& ss) {
      if (!ss.pending.empty()) cache.emplace_back(ss.pid, ss.indexed_head, ss.pending);
    });
  }
  bool based = false; // opened before the transaction (a read-only journal's lazily)
  if (auto st = m.lazy_bases(based); !st.ok()) return st;
  auto st = m.env->read([&](read_txn& txn) -> status {
    if (lk.owns_lock()) lk.unlock();
    checker c(m, txn, rep, max_problems);
    if (auto s = c.run(); !s.ok()) return s;
    return c.check_pending(cache);
  });
  if (!st.ok()) return st;
  return rep;
}

} // namespace detail

result<verify_report> journal::verify_all(std::size_t max_problems) const {
  return detail::verify_journal(*impl_, max_problems);
}

status journal::verify() const {
  auto r = verify_all(1);
  if (!r) return r.error();
  if (r->ok()) return {};
  return {errc::corrupt, "the journal in '" + impl_->opts.env.path + "' has " +
                           std::to_string(r->problem_count) +
                           " problem(s); the first: " + r->problems.front().to_string() +
                           ". Run `strata journal verify --data DIR` to list them all and "
                           "`strata journal repair --data DIR` to rebuild the derived tables"};
}

} // namespace strata::persistence
