// journal::repair: rebuilds the derived tables (streams, stream_names, index, meta
// counters, snapshot keys) from the log, which is the truth.
#include "strata/persistence/journal.hpp"

#include "journal_impl.hpp"
#include "record.hpp"
#include "strata/persistence/codec.hpp"

#include <algorithm>
#include <map>
#include <unordered_map>
#include <unordered_set>

namespace strata::persistence {

using detail::from_mdb;
using detail::get_be64;
using detail::key128;
using detail::key64;
using detail::quoted;

namespace {

using seq_pos = std::pair<std::uint64_t, std::uint64_t>;
using base_table = std::unordered_map<std::string, detail::base_map>;

/// A stream as rebuilt from the log and table `bases`.
struct rebuilt_stream {
  std::string pid;
  std::uint64_t id = 0;
  std::vector<seq_pos> held; // (seq, position) in the log; seqs before the first were deleted
  detail::base_map bases;    // base seq → head before it (table bases, kept)

  std::uint64_t head() const {
    auto last = held.empty() ? 0 : held.back().first;
    return std::max(last, bases.empty() ? 0 : bases.rbegin()->first);
  }
  /// The seq ranges the index covers: 1..head but the absent ranges before the bases.
  std::vector<seq_pos> covered() const {
    std::vector<seq_pos> out;
    std::uint64_t start = 1;
    for (auto& [base, before] : bases) {
      if (start <= before) out.emplace_back(start, before);
      start = base;
    }
    if (start <= head()) out.emplace_back(start, head());
    return out;
  }
  /// Index entries of chunk_max seqs or fewer that covered() needs.
  std::uint64_t entries() const {
    std::uint64_t n = 0;
    for (auto& [from, to] : covered())
      n += (to - from) / detail::index_chunk_max + 1;
    return n;
  }
};

/// Whether `seq` lies in an absent range or is a base (neither is ever in the log).
bool never_held(const detail::base_map& b, std::uint64_t seq) {
  for (auto& [base, before] : b)
    if (seq > before && seq <= base) return true;
  return false;
}

/// Everything repair reads before it writes.
struct repair_plan {
  std::vector<rebuilt_stream> streams; // in order of first appearance in the log
  std::uint64_t last_key = 0;
  std::uint64_t next_id = 1;
  std::vector<std::pair<std::string, std::string>> snapshots; // key, value
  std::vector<std::pair<std::string, std::string>> snapshot_puts;
  std::vector<std::string> snapshot_dels;
};

/// Why `seq` cannot be the next event of `rs` in the log ("" when it can): it must
/// follow the last one, past the absent ranges of its bases; the first one may follow
/// deleted seqs but not be absent.
std::string out_of_order(const rebuilt_stream& rs, std::uint64_t seq) {
  if (rs.held.empty()) return never_held(rs.bases, seq) ? ", which table bases says is absent" : "";
  auto last = rs.held.back().first;
  auto want = detail::next_holdable(rs.bases, last);
  if (seq == want) return {};
  return " where seq " + std::to_string(want) + " belongs";
}

/// Reads the log into per-stream position lists. Damage in the log itself cannot be
/// repaired here: it fails with corrupt naming every damaged position (at most 20).
status read_log(const journal::impl& m, const read_txn& txn, const base_table& bases,
                repair_plan& plan, std::uint64_t& records) {
  std::unordered_map<std::string, std::size_t> at;
  std::vector<std::string> damage;
  event_view ev;
  auto st = txn.scan(m.events, {}, [&](std::string_view k, std::string_view v) {
    if (k.size() != 8) {
      damage.push_back("a key of " + std::to_string(k.size()) + " bytes");
      return damage.size() < 20;
    }
    auto pos = get_be64(k.data());
    plan.last_key = pos;
    ++records;
    if (auto s = detail::decode_view_at(pos, v, {}, 0, ev); !s.ok()) {
      damage.push_back(s.message());
      return damage.size() < 20;
    }
    auto [it, fresh] = at.try_emplace(std::string(ev.persistence_id), plan.streams.size());
    if (fresh) {
      auto b = bases.find(it->first);
      plan.streams.push_back({it->first, 0, {}, b == bases.end() ? detail::base_map{} : b->second});
    }
    auto& rs = plan.streams[it->second];
    if (auto why = out_of_order(rs, ev.seq); !why.empty()) {
      damage.push_back("position " + std::to_string(pos) + ": stream " + quoted(rs.pid) +
                       " has seq " + std::to_string(ev.seq) + why);
      return damage.size() < 20;
    }
    rs.held.emplace_back(ev.seq, pos);
    return true;
  });
  if (!st.ok()) return st;
  if (damage.empty()) return {};
  std::string msg = "the log itself is damaged, which repair cannot fix (it rebuilds only the "
                    "derived tables from the log); nothing was changed. Restore the journal "
                    "from a backup or from Kafka. Damage found:";
  for (auto& d : damage)
    msg += "\n  " + d;
  return {errc::corrupt, msg};
}

/// Streams with a base but no event in the log (all absent or deleted) are kept too.
void add_based_streams(const base_table& bases, repair_plan& plan) {
  std::unordered_set<std::string_view> in_log;
  for (auto& rs : plan.streams)
    in_log.insert(rs.pid);
  std::vector<rebuilt_stream> extra;
  for (auto& [pid, b] : bases)
    if (!in_log.count(pid)) extra.push_back({pid, 0, {}, b});
  std::sort(extra.begin(), extra.end(), [](auto& a, auto& b) {
    return a.pid < b.pid;
  });
  for (auto& rs : extra)
    plan.streams.push_back(std::move(rs));
}

/// Keeps each stream's id where the streams and stream_names tables agree on it;
/// gives the others fresh ids.
status assign_ids(const journal::impl& m, const read_txn& txn, repair_plan& plan) {
  std::uint64_t next = 0;
  if (auto st = m.meta_u64(txn, detail::next_stream_key, next); st.code() == errc::corrupt)
    next = 0;
  else if (!st.ok())
    return st;
  auto last = txn.last(m.names);
  if (!last) return last.error();
  if (*last && (*last)->first.size() == 8)
    next = std::max(next, get_be64((*last)->first.data()) + 1);
  next = std::max<std::uint64_t>(next, 1);
  // stream_names backwards (pid → its ids): when the streams entry of a stream is
  // damaged, the one id stream_names gives it is kept (its snapshots stay in place).
  std::unordered_map<std::string, std::vector<std::uint64_t>> named;
  auto st = txn.scan(m.names, {}, [&](std::string_view k, std::string_view v) {
    if (k.size() == 8) named[std::string(v)].push_back(get_be64(k.data()));
    return true;
  });
  if (!st.ok()) return st;
  std::unordered_set<std::uint64_t> used;
  for (auto& rs : plan.streams) {
    std::uint64_t id = 0;
    auto v = txn.get(m.streams, rs.pid);
    if (!v) return v.error();
    bool agreed = *v && m.check_stream_entry(txn, rs.pid, **v, id).ok();
    if (!agreed) {
      auto n = named.find(rs.pid);
      id = n != named.end() && n->second.size() == 1 ? n->second.front() : 0;
    }
    rs.id = id != 0 && id < (std::uint64_t{1} << 62) && used.insert(id).second ? id : 0;
  }
  for (auto& rs : plan.streams)
    if (rs.id == 0) {
      while (used.count(next))
        ++next;
      rs.id = next++;
      used.insert(rs.id);
    }
  plan.next_id = next;
  return {};
}

/// Decides what happens to each stored snapshot: kept, moved to the stream's new id,
/// or dropped.
status plan_snapshots(const journal::impl& m, const read_txn& txn, repair_plan& plan,
                      repair_report& rep) {
  std::unordered_map<std::string, const rebuilt_stream*> by_pid;
  for (auto& rs : plan.streams)
    by_pid.emplace(rs.pid, &rs);
  return txn.scan(m.snaps, {}, [&](std::string_view k, std::string_view v) {
    std::string name = k.size() == 16 ? "(stream id " + std::to_string(get_be64(k.data())) +
                                          ", seq " + std::to_string(get_be64(k.data() + 8)) + ")"
                                      : "(key of " + std::to_string(k.size()) + " bytes)";
    auto drop = [&](const std::string& why) {
      rep.snapshots_dropped.push_back("snapshot " + name + ": " + why);
      plan.snapshot_dels.emplace_back(k);
      return true;
    };
    if (k.size() != 16) return drop("malformed key");
    auto r = decode_snapshot(v, "snapshot " + name);
    if (!r) return drop(r.error().message());
    auto it = by_pid.find(r->persistence_id);
    if (it == by_pid.end())
      return drop("stream " + quoted(r->persistence_id) + " is not in the log");
    auto& rs = *it->second;
    auto head = rs.head();
    if (r->seq != get_be64(k.data() + 8)) return drop("holds seq " + std::to_string(r->seq));
    if (r->seq == 0 || r->seq > head)
      return drop("seq " + std::to_string(r->seq) + " is beyond the stream's head " +
                  std::to_string(head));
    if (get_be64(k.data()) == rs.id) return true;
    rep.snapshots_remapped.push_back(
      "snapshot of stream " + quoted(rs.pid) + " seq " + std::to_string(r->seq) + ": stream id " +
      std::to_string(get_be64(k.data())) + " -> " + std::to_string(rs.id));
    plan.snapshot_dels.emplace_back(k);
    plan.snapshot_puts.emplace_back(std::string(key128(rs.id, r->seq).view()), std::string(v));
    return true;
  });
}

/// The index entries of one rebuilt stream, in chunks of index_chunk_max seqs: seqs not
/// held (deleted ones, base seqs) get position 0; absent ranges get no entry.
status put_stream(const journal::impl& m, write_txn& txn, const rebuilt_stream& rs,
                  std::uint64_t& written) {
  if (auto e = txn.put(m.streams, rs.pid, key64(rs.id).view()); !e.ok()) return e;
  if (auto e = txn.put(m.names, key64(rs.id).view(), rs.pid); !e.ok()) return e;
  std::string buf;
  std::size_t k = 0; // the next held event
  for (auto [from, to] : rs.covered())
    for (std::uint64_t first = from; first <= to; first += detail::index_chunk_max) {
      std::uint64_t n = std::min<std::uint64_t>(detail::index_chunk_max, to - first + 1);
      buf.assign(n * 8, '\0');
      for (std::uint64_t j = 0; j < n; ++j) {
        while (k < rs.held.size() && rs.held[k].first < first + j)
          ++k;
        if (k < rs.held.size() && rs.held[k].first == first + j)
          detail::put_be64(buf.data() + j * 8, rs.held[k].second);
      }
      if (auto e = txn.put(m.index, key128(rs.id, first).view(), buf); !e.ok()) return e;
      ++written;
    }
  return {};
}

/// The streams, stream_names and index entries of every rebuilt stream, in
/// transactions that stay well below LMDB's dirty-page limit.
status put_streams(journal::impl& m, const repair_plan& plan, repair_report& rep) {
  constexpr std::size_t entries_per_txn = 20'000;
  std::size_t s = 0;
  while (s < plan.streams.size()) {
    std::size_t end = s, entries = 0;
    while (end < plan.streams.size() && entries < entries_per_txn) {
      entries += plan.streams[end++].entries();
    }
    std::uint64_t written = 0;
    auto st = m.env->write([&](write_txn& txn) -> status {
      written = 0;
      for (std::size_t i = s; i < end; ++i)
        if (auto e = put_stream(m, txn, plan.streams[i], written); !e.ok()) return e;
      return status{};
    });
    if (!st.ok()) return st;
    rep.index_entries += written;
    s = end;
  }
  return {};
}

/// The last repair transaction: snapshot keys, meta counters, and the marker cleared.
status finish_repair(journal::impl& m, const repair_plan& plan, std::uint64_t floor) {
  return m.env->write([&](write_txn& txn) -> status {
    for (auto& k : plan.snapshot_dels)
      if (auto e = txn.del(m.snaps, k); !e.ok()) return e;
    for (auto& [k, v] : plan.snapshot_puts)
      if (auto e = txn.put(m.snaps, k, v); !e.ok()) return e;
    if (auto e = txn.put(m.meta, detail::next_stream_key, key64(plan.next_id).view()); !e.ok())
      return e;
    auto through = std::max(plan.last_key, floor);
    if (auto e = txn.put(m.meta, detail::indexed_through_key, key64(through).view()); !e.ok())
      return e;
    if (auto e = txn.put(m.meta, detail::position_floor_key, key64(through).view()); !e.ok())
      return e;
    return txn.del(m.meta, detail::repair_marker_key);
  });
}

/// Writes the rebuilt tables. The first transaction empties them and sets the repair
/// marker, the last one clears it, so an interrupted repair is noticed at open.
status write_plan(journal::impl& m, const repair_plan& plan, std::uint64_t floor,
                  repair_report& rep) {
  auto st = m.env->write([&](write_txn& txn) -> status {
    for (auto* t : {&m.streams, &m.names, &m.index})
      if (int rc = mdb_drop(txn.native(), t->dbi, 0); rc != 0)
        return from_mdb(rc, "emptying a derived table");
    return txn.put(m.meta, detail::repair_marker_key, "1");
  });
  if (!st.ok()) return st;
  if (st = put_streams(m, plan, rep); !st.ok()) return st;
  return finish_repair(m, plan, floor);
}

/// Opens the environment for writing and rebuilds the derived tables.
status rebuild(const journal_options& opts, repair_report& rep) {
  journal::impl m;
  if (auto st = m.open_env(opts, false); !st.ok()) return st;
  if (auto st = m.open_tables(); !st.ok()) return st;
  if (auto st = m.open_bases_table(); !st.ok()) return st;
  auto before = detail::verify_journal(m, 1000);
  if (!before) return before.error();
  rep.before = std::move(*before);
  repair_plan plan;
  std::uint64_t floor = 0;
  auto st = m.env->read([&](read_txn& txn) -> status {
    bool absent = false;
    if (auto s = detail::check_format(txn, m, absent); !s.ok()) return s;
    if (auto s = m.meta_u64(txn, detail::position_floor_key, floor); s.code() == errc::corrupt)
      floor = 0;
    else if (!s.ok())
      return s;
    base_table bases;
    if (auto s = detail::load_bases(m, txn, bases); !s.ok()) return s;
    if (auto s = read_log(m, txn, bases, plan, rep.records); !s.ok()) return s;
    add_based_streams(bases, plan);
    if (auto s = assign_ids(m, txn, plan); !s.ok()) return s;
    return plan_snapshots(m, txn, plan, rep);
  });
  if (!st.ok()) return st;
  rep.streams = plan.streams.size();
  return write_plan(m, plan, floor, rep);
}

} // namespace

result<repair_report> journal::repair(const journal_options& opts) {
  repair_report rep;
  if (auto st = rebuild(opts, rep); !st.ok()) return st;
  auto j = open(opts);
  if (!j) return j.error();
  auto after = (*j)->verify_all(1000);
  if (!after) return after.error();
  rep.after = std::move(*after);
  if (auto st = (*j)->close(); !st.ok()) return st;
  return rep;
}

} // namespace strata::persistence
