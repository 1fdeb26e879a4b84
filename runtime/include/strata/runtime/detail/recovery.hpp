// File: strata/runtime/detail/recovery.hpp (internal)
//
// Rebuilding an aggregate's state from the journal: latest snapshot (optional), then
// every event after it, folded with A::apply. Used by the persistent actor and by the
// read side of strata::entities. Decoding runs the user's mapping, which may throw
// (Cap'n Proto): caught here and reported as `corrupt`.
#pragma once

#include "strata/persistence/journal.hpp"
#include "strata/persistence/snapshot_store.hpp"
#include "strata/runtime/aggregate.hpp"
#include "strata/runtime/errors.hpp"

#include <caf/expected.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <exception>
#include <limits>
#include <optional>
#include <string>
#include <vector>

namespace strata {
template <class A>
struct history_entry;
}

namespace strata::detail {

template <class A>
struct recovered {
  typename A::state state;
  std::uint64_t seq = 0;          ///< the last event folded in (0 = none)
  std::uint64_t snapshot_seq = 0; ///< the snapshot it started from (0 = none)
  std::uint64_t replayed = 0;     ///< events folded after the snapshot
};

/// Decodes one stored event. Errors: corrupt (naming stream, seq and type).
template <class A, class Record>
caf::expected<typename A::event> decode_event(const Record& r) {
  std::optional<typename A::event> e;
  std::string why;
  try {
    e = A::decode(r.type, r.schema_version, r.payload);
    if (!e) why = "unknown event type or schema version";
  } catch (const std::exception& ex) {
    why = ex.what();
  } catch (...) {
    why = "decoder threw (malformed payload?)";
  }
  if (!e)
    return make_runtime_error(runtime_errc::corrupt,
                              "cannot decode event '" + std::string(r.type) + "' v" +
                                std::to_string(r.schema_version) + " of stream '" +
                                std::string(r.persistence_id) + "' seq " + std::to_string(r.seq) +
                                ": " + why + " (is this binary older than the data?)");
  return std::move(*e);
}

/// On a journal opened read-only: the stream's head, read BEFORE its events. Events up
/// to it are committed, so a read that ends below it means the journal hides some (a
/// damaged stream-table or index entry), not a race with the writing process. A
/// writer-mode journal's head may include batches planned but not yet committed, so
/// there it is not used (0 = no check). Errors: those of journal::highest_seq.
inline caf::expected<std::uint64_t> head_to_check(persistence::journal& j, const std::string& pid) {
  if (!j.env().options().read_only) return std::uint64_t{0};
  auto head = j.highest_seq(pid);
  if (!head) return to_error(head.error());
  return *head;
}

/// corrupt when a read of `pid` up to `upto` ended at `got` below the head read first.
inline caf::error check_reached(const std::string& pid, std::uint64_t head, std::uint64_t upto,
                                std::uint64_t got) {
  auto want = std::min(head, upto);
  if (got >= want) return {};
  return make_runtime_error(runtime_errc::corrupt,
                            "stream '" + pid + "' has its head at seq " + std::to_string(head) +
                              " but its events end at seq " + std::to_string(got) +
                              ": the journal's stream table or index is damaged; run `strata "
                              "journal verify`, then `strata journal repair`");
}

/// Folds the stream `pid` up to `max_seq` (inclusive); with `use_snapshot`, starts from
/// the newest snapshot at or before max_seq. Stops early at the first event with
/// timestamp > max_timestamp_ns. Errors: corrupt, io_error (from the journal).
template <class A>
caf::expected<recovered<A>>
recover(persistence::journal& j, const std::string& pid, bool use_snapshot, std::uint64_t max_seq,
        std::int64_t max_timestamp_ns = std::numeric_limits<std::int64_t>::max()) {
  recovered<A> out;
  auto head = head_to_check(j, pid);
  if (!head) return std::move(head.error());
  if constexpr (has_snapshots_v<A>) {
    if (use_snapshot && max_timestamp_ns == std::numeric_limits<std::int64_t>::max()) {
      auto snap = j.snapshots().load_at_or_before(pid, max_seq);
      if (!snap) return to_error(snap.error());
      if (*snap) {
        const auto& s = **snap;
        std::optional<typename A::state> st;
        std::string why = "decode_state returned nothing";
        try {
          st = A::decode_state(s.schema_version, s.payload);
        } catch (const std::exception& ex) {
          why = ex.what();
        } catch (...) {
          why = "decode_state threw";
        }
        // An undecodable snapshot is not fatal: fall back to a full replay.
        if (st) {
          out.state = std::move(*st);
          out.seq = s.seq;
          out.snapshot_seq = s.seq;
        }
      }
    }
  }
  caf::error err;
  bool stopped_by_time = false;
  // read_stream_view: no copies of the envelope fields (the recovery fast path).
  auto st = j.read_stream_view(pid, out.seq + 1, max_seq, [&](const persistence::event_view& r) {
    if (r.timestamp_ns > max_timestamp_ns) {
      stopped_by_time = true;
      return false;
    }
    if (r.seq != out.seq + 1) {
      err = make_runtime_error(runtime_errc::corrupt,
                               "stream '" + pid + "' has a gap: expected seq " +
                                 std::to_string(out.seq + 1) + ", found " + std::to_string(r.seq));
      return false;
    }
    auto e = decode_event<A>(r);
    if (!e) {
      err = std::move(e.error());
      return false;
    }
    out.state = A::apply(std::move(out.state), *e);
    out.seq = r.seq;
    ++out.replayed;
    return true;
  });
  if (err) return err;
  if (!st.ok()) return to_error(st);
  if (!stopped_by_time)
    if (auto e = check_reached(pid, *head, max_seq, out.seq)) return e;
  return out;
}

/// A snapshot of `pid` (of aggregate type `type`) at its head: its state folded from the
/// journal (latest snapshot, then the events after it) and encoded with A::encode_state.
/// What a shard handoff saves for the streams whose latest snapshot is behind their
/// head (docs/cluster.md, "Handoff"). nullopt with `error` empty when the latest
/// snapshot is at the head already (or there are no events) or A has no state codec;
/// nullopt with `error` set when the fold or the encoding failed.
template <class A>
std::optional<persistence::snapshot_record> snapshot_of_stream(persistence::journal& j,
                                                               const std::string& pid,
                                                               const std::string& type,
                                                               std::string& error) {
  if constexpr (has_snapshots_v<A>) {
    auto r = recover<A>(j, pid, true, ~std::uint64_t{0});
    if (!r) {
      error = describe(r.error());
      return std::nullopt;
    }
    if (r->seq == 0 || r->replayed == 0) return std::nullopt; // nothing past the snapshot
    try {
      state_bytes b = A::encode_state(r->state);
      persistence::snapshot_record s;
      s.persistence_id = pid;
      s.seq = r->seq;
      s.type = type + ".state";
      s.schema_version = b.schema_version;
      s.payload = std::move(b.payload);
      s.timestamp_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                         std::chrono::system_clock::now().time_since_epoch())
                         .count();
      return s;
    } catch (const std::exception& ex) {
      error = std::string("encode_state threw: ") + ex.what();
    } catch (...) {
      error = "encode_state threw";
    }
  }
  return std::nullopt;
}

template <class A>
caf::expected<recovered<A>> recover_until_time(persistence::journal& j, const std::string& pid,
                                               std::int64_t max_timestamp_ns) {
  return recover<A>(j, pid, false, ~std::uint64_t{0}, max_timestamp_ns);
}

template <class A>
caf::expected<std::vector<history_entry<A>>>
read_history(persistence::journal& j, const std::string& pid, std::uint64_t from_seq,
             std::uint64_t to_seq) {
  std::vector<history_entry<A>> out;
  auto head = head_to_check(j, pid);
  if (!head) return std::move(head.error());
  caf::error err;
  auto st = j.read_stream(pid, from_seq, to_seq, [&](const persistence::event_record& r) {
    auto e = decode_event<A>(r);
    if (!e) {
      err = std::move(e.error());
      return false;
    }
    out.push_back(history_entry<A>{r.seq, r.timestamp_ns, r.type, std::move(*e)});
    return true;
  });
  if (err) return err;
  if (!st.ok()) return to_error(st);
  if (*head >= from_seq)
    if (auto e = check_reached(pid, *head, to_seq, out.empty() ? 0 : out.back().seq)) return e;
  return out;
}

} // namespace strata::detail
