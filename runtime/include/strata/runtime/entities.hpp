// File: strata/runtime/entities.hpp
//
// strata::entities<A> — a cheap, copyable handle to all entities of one aggregate type
// on this node. Commands go to the entity by id: it is spawned (and recovered) on
// demand, replies after its events are durable, and passivates when idle.
//
//   auto accounts = sys->entities<bank::account>();            // "account"
//   // blocking (plain threads only — never from an actor or a runtime callback):
//   caf::expected<std::int64_t> r = accounts.ask("acct-1", bank::deposit{100});
//   // async: `done` runs exactly once, on a runtime thread, after the outcome is known
//   accounts.ask_async("acct-1", bank::withdraw{30}, [](caf::expected<std::int64_t> r) {});
//   auto fut = accounts.ask_future("acct-1", bank::get_balance{});   // std::future
//   accounts.tell("acct-1", bank::deposit{1});                 // fire and forget
//   // read side, straight from the journal (any thread):
//   auto h = accounts.history("acct-1");           // events with seq and timestamp
//   auto s = accounts.state_at_seq("acct-1", 10);  // fold up to seq 10
//   auto ids = accounts.ids();                     // every entity id of this type
//
// Persistence id of an entity = "<type>:<id>" (e.g. "account:acct-1"): the journal
// stream, the Kafka key. Every function taking an id checks it first (validate_id in
// ids.hpp: printable UTF-8 without control characters, "<type>:<id>" 1..255 bytes): a
// bad one fails with invalid_argument saying what is wrong (commands: in the reply).
//
// Errors of a command (as caf::error): the aggregate's rejection (`rejection_of<A>`),
// or runtime_errc: stash_full, shutting_down, no_reply (then_no_reply effects),
// write_failed / io_error / map_full / conflict (journal), corrupt (recovery could not
// decode the stream), timeout (blocking ask only), undelivered, not_replicated
// (`replicated` durability: stored locally at seq N, Kafka did not acknowledge within
// replication-timeout-ms; the bridge keeps publishing it — do not retry),
// invalid_argument (a bad id, see above), read_only (the system was opened with
// config::read_only). In a cluster (docs/cluster.md, "Routing") also not_reachable (no
// connection to the shard's owner), shard_moving (the shard moves or has no owner and
// its buffer is full), timeout (no answer from the owner within
// cluster-forward-timeout-ms), invalid_argument (the type has no wire codec, or the
// owner has not registered it), fenced (a `replicated` write stored locally whose record
// a newer owner's claim precedes in Kafka: invalid there; the entity stops — docs/kafka.md,
// "Fencing").
#pragma once

#include "strata/runtime/aggregate.hpp"
#include "strata/runtime/detail/envelope.hpp"
#include "strata/runtime/detail/persistent_actor.hpp"
#include "strata/runtime/detail/recovery.hpp"
#include "strata/runtime/detail/region.hpp"
#include "strata/runtime/detail/routing.hpp"
#include "strata/runtime/errors.hpp"
#include "strata/runtime/ids.hpp"
#include "strata/runtime/system.hpp"

#include <caf/expected.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <future>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace strata {

/// One stored event of an entity, decoded.
template <class A>
struct history_entry {
  std::uint64_t seq = 0;
  std::int64_t timestamp_ns = 0; ///< commit time, ns since the Unix epoch
  std::string type;              ///< the stored type name (event_bytes::type)
  typename A::event event;
};

/// A state and the seq it includes (0 = no events).
template <class A>
struct state_at {
  typename A::state state;
  std::uint64_t seq = 0;
};

template <class A>
class entities {
 public:
  using command = typename A::command;
  using reply = typename A::reply;
  using state = typename A::state;
  using event = typename A::event;
  using callback = std::function<void(caf::expected<reply>)>;

  static constexpr std::chrono::milliseconds default_timeout{30'000};

  /// The aggregate type name these entities are registered under.
  const std::string& type() const noexcept { return region_->type(); }

  /// The journal stream of entity `id`: "<type>:<id>".
  std::string persistence_id(const std::string& id) const { return region_->persistence_id(id); }

  /// Sends `cmd` to entity `id`; `done` (any callable taking caf::expected<reply>, e.g.
  /// a lambda or a `callback`) is called exactly once, on a runtime thread, with the
  /// reply (after the events are durable) or an error. It must be short and must not
  /// block (e.g. fulfil a promise, or caf::anon_send to your actor). The command, its
  /// reply slot and `done` share one allocation.
  template <class F = callback>
  void ask_async(const std::string& id, command cmd, F done) const {
    region_->dispatch(id, detail::make_envelope<A>(std::move(cmd), std::move(done)));
  }

  /// As ask_async, delivering through a std::future.
  std::future<caf::expected<reply>> ask_future(const std::string& id, command cmd) const {
    auto p = std::make_shared<std::promise<caf::expected<reply>>>();
    auto f = p->get_future();
    ask_async(id, std::move(cmd), [p](caf::expected<reply> r) {
      p->set_value(std::move(r));
    });
    return f;
  }

  /// Blocking ask for plain threads (about one future wait per call; not for actors).
  /// After `timeout` it returns `timeout`; the command may still be carried out.
  caf::expected<reply> ask(const std::string& id, command cmd,
                           std::chrono::milliseconds timeout = default_timeout) const {
    auto f = ask_future(id, std::move(cmd));
    if (f.wait_for(timeout) != std::future_status::ready)
      return make_runtime_error(runtime_errc::timeout, "no reply from " + persistence_id(id) +
                                                         " within " +
                                                         std::to_string(timeout.count()) + " ms");
    return f.get();
  }

  /// Fire and forget: the outcome is dropped.
  void tell(const std::string& id, command cmd) const {
    region_->dispatch(id, detail::make_envelope<A>(std::move(cmd), detail::no_callback{}));
  }

  // -- read side: straight from the journal, any thread ---------------------------
  // In a cluster, a read of an entity whose shard another member owns asks that owner
  // (batched like commands) and blocks until its answer: not from an actor. Extra
  // errors then: not_reachable, timeout (cluster-forward-timeout-ms), shard_moving.

  /// The events of `id` with from_seq <= seq <= to_seq, decoded. Errors: corrupt
  /// (undecodable event: names stream and seq), io_error, invalid_argument (bad id).
  caf::expected<std::vector<history_entry<A>>>
  history(const std::string& id, std::uint64_t from_seq = 1,
          std::uint64_t to_seq = ~std::uint64_t{0}) const {
    if (auto err = check_id(id)) return err;
    auto pid = persistence_id(id);
    detail::read_request req{detail::read_request::op::events, pid, from_seq, to_seq, false};
    if (auto remote = detail::read_at_owner(*region_, req)) {
      if (!*remote) return std::move(remote->error());
      return detail::history_of_raw<A>(pid, **remote);
    }
    return detail::read_history<A>(region_->journal(), pid, from_seq, to_seq);
  }

  /// The state as recovery builds it: latest snapshot, then the events after it.
  /// Errors: as history.
  caf::expected<state_at<A>> current(const std::string& id) const {
    if (auto err = check_id(id)) return err;
    if (auto remote = fold_at_owner(id, has_snapshots_v<A>, ~std::uint64_t{0}))
      return std::move(*remote);
    auto r = detail::recover<A>(region_->journal(), persistence_id(id), true, ~std::uint64_t{0});
    if (!r) return std::move(r.error());
    return state_at<A>{std::move(r->state), r->seq};
  }

  /// The fold of events 1..seq (no snapshot used). Errors: as history.
  caf::expected<state_at<A>> state_at_seq(const std::string& id,
                                          std::uint64_t seq = ~std::uint64_t{0}) const {
    if (auto err = check_id(id)) return err;
    if (auto remote = fold_at_owner(id, false, seq)) return std::move(*remote);
    auto r = detail::recover<A>(region_->journal(), persistence_id(id), false, seq);
    if (!r) return std::move(r.error());
    return state_at<A>{std::move(r->state), r->seq};
  }

  /// The fold of the events committed at or before `timestamp_ns` (ns since epoch).
  /// Errors: as history.
  caf::expected<state_at<A>> state_at_time(const std::string& id, std::int64_t timestamp_ns) const {
    if (auto err = check_id(id)) return err;
    if (auto remote = fold_at_owner(id, false, ~std::uint64_t{0}, timestamp_ns))
      return std::move(*remote);
    auto r = detail::recover_until_time<A>(region_->journal(), persistence_id(id), timestamp_ns);
    if (!r) return std::move(r.error());
    return state_at<A>{std::move(r->state), r->seq};
  }

  /// Every entity id of this type with at least one event, sorted. In a cluster: of the
  /// whole cluster (each shard's ids from its owner; blocks, not from an actor).
  /// Errors: io_error; in a cluster also not_reachable, timeout, shard_moving.
  caf::expected<std::vector<std::string>> ids() const { return region_->ids(); }

  /// Live (spawned, not stopped) entities of this type.
  std::size_t live() const noexcept { return region_->live(); }

 private:
  friend class system;
  explicit entities(std::shared_ptr<detail::region> r) : region_(std::move(r)) {}
  /// invalid_argument when `id` breaks the rules of ids.hpp; else no error.
  caf::error check_id(const std::string& id) const { return to_error(validate_id(type(), id)); }
  /// In a cluster, when another member owns the shard of `id`: its events up to
  /// `max_seq` (after its latest snapshot when `use_snapshot`) folded here; nullopt when
  /// the shard is local. A snapshot that does not decode here: asked again without.
  std::optional<caf::expected<state_at<A>>>
  fold_at_owner(const std::string& id, bool use_snapshot, std::uint64_t max_seq,
                std::int64_t max_ts = std::numeric_limits<std::int64_t>::max()) const {
    auto pid = persistence_id(id);
    detail::read_request req{detail::read_request::op::recover, pid, 1, max_seq, use_snapshot};
    auto remote = detail::read_at_owner(*region_, req);
    if (!remote) return std::nullopt;
    if (!*remote) return caf::expected<state_at<A>>{std::move(remote->error())};
    bool snapshot_ok = true;
    auto r = detail::fold_raw<A>(pid, **remote, snapshot_ok, max_ts);
    if (!snapshot_ok) return fold_at_owner(id, false, max_seq, max_ts);
    if (!r) return caf::expected<state_at<A>>{std::move(r.error())};
    return caf::expected<state_at<A>>{state_at<A>{std::move(r->state), r->seq}};
  }
  std::shared_ptr<detail::region> region_;
};

template <class A>
strata::entities<A> system::entities(std::string type) {
  static_assert(check_aggregate<A>());
  auto every = has_snapshots_v<A> ? cfg().snapshot_every_for(type) : 0;
  return strata::entities<A>{
    region_for(type, typeid(A), &detail::spawn_entity<A>, every, detail::wire_codec_of<A>(),
               &detail::snapshot_of_stream<A>)};
}

} // namespace strata
