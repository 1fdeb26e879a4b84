// File: strata/runtime/detail/routing.hpp (internal)
//
// What the cluster router (runtime/src/cluster_router.cpp) needs from an aggregate type,
// type-erased once per type: its wire codec for commands and replies (a `wire_codec`
// of function pointers), and how the read side of entities<A> decodes what an owner on
// another node read from its journal (raw events, and a raw snapshot).
//
//   const wire_codec* c = wire_codec_of<A>();   // nullptr: A cannot be routed
//   if (auto remote = read_at_owner(region, req)) ...   // nullopt: the shard is local
//
// An aggregate is routable when it has the four static members
//   std::string encode_command(const command&);
//   std::optional<command> decode_command(std::string_view);
//   std::string encode_reply(const reply&);
//   std::optional<reply> decode_reply(std::string_view);
// (generated from the aggregate's .capnp): `strata::is_routable_v<A>` (aggregate.hpp).
//
// Threads: pure helpers; read_at_owner blocks the calling thread (never an actor's).
#pragma once

#include "strata/runtime/aggregate.hpp"
#include "strata/runtime/detail/envelope.hpp"
#include "strata/runtime/detail/recovery.hpp"
#include "strata/runtime/errors.hpp"

#include <caf/expected.hpp>

#include <cstdint>
#include <exception>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

namespace strata {
template <class A>
struct history_entry;
}

namespace strata::detail {

class region;
class reply_collector; // cluster_router.cpp

/// True when `A` has the four wire-codec members (strata::is_routable_v, aggregate.hpp).
template <class A>
constexpr bool has_wire_codec_v = is_routable_v<A>;

/// Where the outcome of a command received from another node goes: one slot of the
/// reply batch to that node (cluster_router.cpp). Called once.
struct remote_reply_sink {
  std::shared_ptr<reply_collector> to;
  std::uint64_t request = 0;
  void operator()(caf::expected<std::string> reply_bytes) const;
};

/// A routable aggregate's codec, type-erased (one static instance per type).
struct wire_codec {
  /// The command of `e` (a command_envelope<A>) as bytes. May throw (user code).
  std::string (*encode_command)(envelope_base& e);
  /// Decodes `reply` into `e` and completes it; fails it with `corrupt` when the bytes
  /// do not decode.
  void (*complete)(envelope_base& e, std::string_view reply);
  /// An envelope for a command received from another node whose outcome goes to `sink`
  /// (encoded); nullptr when `bytes` do not decode.
  envelope_ptr (*decode)(std::string_view bytes, remote_reply_sink sink);
};

template <class A>
std::string encode_command_of(envelope_base& e) {
  return A::encode_command(static_cast<command_envelope<A>&>(e).cmd);
}

template <class A>
void complete_from_bytes(envelope_base& e, std::string_view bytes) {
  std::optional<typename A::reply> r;
  try {
    r = A::decode_reply(bytes);
  } catch (...) {
  }
  if (!r) {
    e.fail(make_runtime_error(runtime_errc::corrupt,
                              "the reply from the owner of '" + std::string(A::type_name) + ":" +
                                e.entity_id +
                                "' does not decode (do both nodes run the same schema?)"));
    return;
  }
  static_cast<command_envelope<A>&>(e).reply = std::move(*r);
  e.complete();
}

template <class A>
envelope_ptr decode_remote_command(std::string_view bytes, remote_reply_sink sink) {
  std::optional<typename A::command> c;
  try {
    c = A::decode_command(bytes);
  } catch (...) {
  }
  if (!c) return nullptr;
  return make_envelope<A>(std::move(*c), [sink =
                                            std::move(sink)](caf::expected<typename A::reply> r) {
    if (!r) {
      sink(std::move(r.error()));
      return;
    }
    try {
      sink(A::encode_reply(*r));
    } catch (...) {
      sink(make_runtime_error(runtime_errc::internal,
                              "encoding the reply of a '" + std::string(A::type_name) + "' threw"));
    }
  });
}

/// The codec of `A`, or nullptr when A has no wire codec (it works on one node only).
template <class A>
const wire_codec* wire_codec_of() {
  if constexpr (has_wire_codec_v<A>) {
    static const wire_codec c{&encode_command_of<A>, &complete_from_bytes<A>,
                              &decode_remote_command<A>};
    return &c;
  } else {
    return nullptr;
  }
}

// -- read side --------------------------------------------------------------------

/// A read of one stream, sent to the shard's owner.
struct read_request {
  enum class op : std::uint8_t {
    events = 1,  ///< events from_seq..to_seq
    recover = 2, ///< (latest snapshot at or before to_seq, when use_snapshot), then events
    /// The ids of the entities of type `persistence_id` (the type name) in shard
    /// `from_seq`: the owner answers one raw_event per id, the id in its payload.
    ids = 3,
  };
  op what = op::events;
  std::string persistence_id;
  std::uint64_t from_seq = 1;
  std::uint64_t to_seq = ~std::uint64_t{0};
  bool use_snapshot = false;
};

/// One stored event as the owner read it (not decoded).
struct raw_event {
  std::uint64_t seq = 0;
  std::int64_t timestamp_ns = 0;
  std::string type;
  std::uint32_t schema_version = 1;
  std::string payload;
};

/// A stored snapshot as the owner read it.
struct raw_snapshot {
  std::uint64_t seq = 0;
  std::uint32_t schema_version = 1;
  std::string payload;
};

/// What the owner answers to a read_request.
struct raw_read {
  std::optional<raw_snapshot> snapshot;
  std::vector<raw_event> events;
};

/// Where a read of `req.persistence_id` (a stream of `r`'s type) runs: nullopt when this
/// node serves its shard (or there is no cluster): read the local journal. Otherwise the
/// owner's answer, waiting up to the forward timeout (`cluster-forward-timeout-ms`).
/// Errors: not_reachable, timeout, shard_moving, those of the owner's journal read.
/// Blocks the calling thread: not from an actor.
std::optional<caf::expected<raw_read>> read_at_owner(region& r, const read_request& req);

/// The shard a read targets: `from_seq` for op::ids, else the shard of its stream.
std::uint32_t shard_of_read(const read_request& req, std::uint32_t shards);

/// decode_event<A> over a raw event of stream `pid`.
template <class A>
caf::expected<typename A::event> decode_raw_event(const std::string& pid, const raw_event& e) {
  struct view {
    std::string_view persistence_id;
    std::uint64_t seq;
    std::string_view type;
    std::uint32_t schema_version;
    std::string_view payload;
  };
  return decode_event<A>(view{pid, e.seq, e.type, e.schema_version, e.payload});
}

/// The decoded events of a remote read. Errors: corrupt (undecodable event).
template <class A>
caf::expected<std::vector<history_entry<A>>> history_of_raw(const std::string& pid,
                                                            const raw_read& r) {
  std::vector<history_entry<A>> out;
  out.reserve(r.events.size());
  for (const auto& e : r.events) {
    auto ev = decode_raw_event<A>(pid, e);
    if (!ev) return std::move(ev.error());
    out.push_back(history_entry<A>{e.seq, e.timestamp_ns, e.type, std::move(*ev)});
  }
  return out;
}

/// Folds a remote read as recover<A> folds the local journal: its snapshot (when one
/// came and decodes; `snapshot_ok` false when one came and did not), then its events up
/// to the first with a timestamp past `max_timestamp_ns`. Errors: corrupt (undecodable
/// event, a gap in the seqs).
template <class A>
caf::expected<recovered<A>>
fold_raw(const std::string& pid, const raw_read& r, bool& snapshot_ok,
         std::int64_t max_timestamp_ns = std::numeric_limits<std::int64_t>::max()) {
  recovered<A> out;
  snapshot_ok = true;
  if constexpr (has_snapshots_v<A>) {
    if (r.snapshot) {
      std::optional<typename A::state> st;
      try {
        st = A::decode_state(r.snapshot->schema_version, r.snapshot->payload);
      } catch (...) {
      }
      if (!st) {
        snapshot_ok = false;
        return out;
      }
      out.state = std::move(*st);
      out.seq = out.snapshot_seq = r.snapshot->seq;
    }
  }
  for (const auto& e : r.events) {
    if (e.timestamp_ns > max_timestamp_ns) break;
    if (e.seq != out.seq + 1)
      return make_runtime_error(runtime_errc::corrupt,
                                "stream '" + pid + "' has a gap at its owner: expected seq " +
                                  std::to_string(out.seq + 1) + ", found " + std::to_string(e.seq));
    auto ev = decode_raw_event<A>(pid, e);
    if (!ev) return std::move(ev.error());
    out.state = A::apply(std::move(out.state), *ev);
    out.seq = e.seq;
    ++out.replayed;
  }
  return out;
}

} // namespace strata::detail
