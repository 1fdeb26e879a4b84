// journal::discard_after: a stream's events after a seq removed from the log, with their
// index slots and the snapshots past that seq, so that neither readers nor the Kafka
// bridge (which reads the log) ever see them again. What a restarted cluster node does
// to the events Kafka never received before it serves their shard again
// (docs/kafka.md, "Rejoining: reconciliation"; kafka::restore_shard).
#include "strata/persistence/journal.hpp"

#include "journal_impl.hpp"

#include <algorithm>
#include <unordered_set>

namespace strata::persistence {

using detail::get_be64;
using detail::key128;
using detail::key64;
using detail::quoted;

namespace {

constexpr std::size_t max_pid_bytes = 255; // as append (event.hpp)

/// One stream to cut: its writer state and where the cut is.
struct cut {
  journal::impl::stream_state* state = nullptr;
  std::uint64_t keep = 0;
};

status check_points(const std::vector<discard_point>& points, std::size_t max) {
  if (points.size() > max)
    return {errc::invalid_argument, "discard_after: " + std::to_string(points.size()) +
                                      " streams in one call exceed max_batch_events (" +
                                      std::to_string(max) + "); split it"};
  std::unordered_set<std::string_view> seen;
  for (auto& p : points) {
    if (p.persistence_id.empty() || p.persistence_id.size() > max_pid_bytes)
      return {errc::invalid_argument, "discard_after: persistence id must be 1.." +
                                        std::to_string(max_pid_bytes) + " bytes (got " +
                                        std::to_string(p.persistence_id.size()) + ")"};
    if (!seen.insert(p.persistence_id).second)
      return {errc::invalid_argument, "discard_after: stream " + quoted(p.persistence_id) +
                                        " is named twice; nothing was discarded"};
  }
  return {};
}

/// The highest base (journal::import_base) of `pid`, 0 when none: the seqs below it
/// are absent on purpose, so a cut below it would leave the base pointing past the head.
status last_base(const journal::impl& m, const read_txn& txn, std::string_view pid,
                 std::uint64_t& out) {
  out = 0;
  if (!m.has_bases) return {};
  const auto prefix = detail::base_key(pid, 0).substr(0, 1 + pid.size());
  return txn.scan(m.bases, prefix, [&](std::string_view k, std::string_view) {
    if (k.size() != prefix.size() + 8 || k.compare(0, prefix.size(), prefix) != 0) return false;
    out = std::max(out, get_be64(k.data() + prefix.size()));
    return true;
  });
}

/// Cuts one stream in `txn`: its log records and index slots after c.keep, its
/// snapshots past c.keep, and, when nothing is kept, its streams/stream_names entries.
status cut_stream(journal::impl& m, write_txn& txn, const cut& c, discard_report& rep) {
  const auto id = c.state->id;
  const auto last = m.last_position.load();
  // Index entries are rewritten or deleted after the scan (a put during it would move
  // the cursor).
  std::vector<std::pair<std::string, std::string>> rewrites;
  status bad;
  auto st = txn.scan(m.index, key128(id, 0).view(), [&](std::string_view k, std::string_view v) {
    if (k.size() != 16 || get_be64(k.data()) != id) return false;
    const auto first = get_be64(k.data() + 8);
    const auto n = index_count(v);
    if (n == 0 || first + n - 1 <= c.keep) return true;
    for (std::size_t i = first > c.keep ? 0 : c.keep - first + 1; i < n; ++i) {
      auto pos = get_be64(v.data() + i * 8);
      if (pos == 0) continue; // deleted or absent: nothing in the log
      if (bad = txn.del(m.events, key64(pos).view()); !bad.ok()) return false;
      ++rep.events;
      // The log's last position stays known after its record is gone (as delete_run).
      if (pos == last)
        if (bad = txn.put(m.meta, detail::position_floor_key, key64(last).view()); !bad.ok())
          return false;
    }
    rewrites.emplace_back(std::string(k), first > c.keep
                                            ? std::string()
                                            : std::string(v.substr(0, (c.keep - first + 1) * 8)));
    return true;
  });
  if (!st.ok()) return st;
  if (!bad.ok()) return bad;
  for (auto& [k, v] : rewrites)
    if (auto s = v.empty() ? txn.del(m.index, k) : txn.put(m.index, k, v); !s.ok()) return s;
  std::vector<std::string> snaps;
  st = txn.scan(m.snaps, key128(id, c.keep + 1).view(), [&](std::string_view k, std::string_view) {
    if (k.size() != 16 || get_be64(k.data()) != id) return false;
    snaps.emplace_back(k);
    return true;
  });
  if (!st.ok()) return st;
  for (auto& k : snaps)
    if (auto s = txn.del(m.snaps, k); !s.ok()) return s;
  rep.snapshots += snaps.size();
  ++rep.streams;
  if (c.keep > 0) return {};
  // A stream without any seq is no stream (verify: a stored stream has index entries).
  if (auto s = txn.del(m.streams, c.state->pid); !s.ok()) return s;
  return txn.del(m.names, key64(id).view());
}

} // namespace

result<discard_report> journal::discard_after(std::string_view persistence_id,
                                              std::uint64_t keep_seq) {
  return discard_after(std::vector<discard_point>{{std::string(persistence_id), keep_seq}});
}

result<discard_report> journal::discard_after(const std::vector<discard_point>& points) {
  auto& m = *impl_;
  if (auto st = m.writable("discard events"); !st.ok()) return st;
  if (m.closed) return status{errc::closed, "the journal in '" + m.opts.env.path + "' is closed"};
  if (auto st = check_points(points, m.opts.max_batch_events); !st.ok()) return st;
  m.wait_for_room(); // after a failed append: plans again from what is committed
  m.drain();         // the heads compared with the cuts are the committed ones
  std::vector<cut> cuts;
  for (auto& p : points) {
    auto id = m.stream_id(p.persistence_id);
    if (!id) return id.error();
    if (*id == 0) continue; // unknown here: nothing to discard
    auto* ss = m.cached(p.persistence_id);
    if (!ss) {
      auto loaded = m.load_state(p.persistence_id);
      if (!loaded) return loaded.error();
      ss = *loaded;
    }
    if (ss->stored && ss->head > p.keep_seq) cuts.push_back({ss, p.keep_seq});
  }
  discard_report rep;
  if (cuts.empty()) return rep;
  // The cut works on the index table alone: the stream's un-indexed tail goes there first.
  if (auto st = m.flush_pending(); !st.ok()) return st;
  // Readers take `mem` before their transaction: holding it over the commit and the
  // cache update, none sees the cache and the tables disagree.
  std::unique_lock lk(m.mem);
  auto st = m.env->write([&](write_txn& txn) -> status {
    rep = {}; // environment::write may run this again after growing the map
    for (auto& c : cuts) {
      std::uint64_t base = 0;
      if (auto s = last_base(m, txn, c.state->pid, base); !s.ok()) return s;
      if (base > c.keep)
        return {errc::invalid_argument,
                "discard_after: stream " + quoted(c.state->pid) + ": seq " +
                  std::to_string(c.keep) + " is below its base at seq " + std::to_string(base) +
                  " (started at a snapshot, journal::import_base); keep at least that seq; "
                  "nothing was discarded"};
      if (auto s = cut_stream(m, txn, c, rep); !s.ok())
        return {s.code(), "discard_after: stream " + quoted(c.state->pid) + " after seq " +
                            std::to_string(c.keep) + ": " + s.message() +
                            "; nothing was discarded"};
    }
    return {};
  });
  if (!st.ok()) return st;
  bool emptied = false;
  for (auto& c : cuts) {
    c.state->head = c.state->indexed_head = c.state->planned_head = c.keep;
    c.state->pending.clear();
    emptied = emptied || c.keep == 0;
  }
  // Streams left without seqs were removed from the tables: forget them here too, so
  // that a later write creates them again (with a new id).
  if (emptied)
    m.cache.erase_if([](const journal::impl::stream_state& ss) {
      return ss.stored && ss.head == 0;
    });
  return rep;
}

} // namespace strata::persistence
