// File: strata/runtime/effect.hpp
//
// What a command handler decides, as data. The runtime carries it out: it persists
// the events (group commit), then replies with a value computed from the state after
// those events. Nothing is sent before the events are durable.
//
//   using effect = strata::effect<event, rejection, state, std::int64_t>;
//   auto balance = [](const state& after) { return after.balance; };
//   effect::persist({deposited{5}}).then_reply(balance);   // persist, then reply
//   effect::persist({note_added{"x"}}).then_no_reply();    // persist, reply nothing
//   effect::reply(balance);                                // reply only (a query)
//   effect::reject(rejection::insufficient_funds);         // changes nothing
//
// `effect::persist(...)` alone is a builder, NOT an effect: a handler that forgets to
// say how it replies does not compile (enforced replies).
//
// Threads: plain values; any thread.
#pragma once

#include <cstdint>
#include <functional>
#include <initializer_list>
#include <optional>
#include <type_traits>
#include <utility>
#include <vector>

namespace strata {

/// How an effect answers the command's sender.
enum class effect_kind : std::uint8_t {
  persist_then_reply,    ///< store events, then reply with f(state after)
  persist_then_no_reply, ///< store events; the sender gets `no_reply` (see errors.hpp)
  reply,                 ///< store nothing; reply with f(current state)
  reject,                ///< store nothing; the sender gets the rejection
};

/// The result of `handle(state, command)`. Value type; move-only cost is one vector
/// and one std::function.
template <class Event, class Rejection, class State, class Reply>
class effect {
 public:
  using event_type = Event;
  using rejection_type = Rejection;
  using state_type = State;
  using reply_type = Reply;
  /// Computes the reply from the state after the command's events.
  using reply_fn = std::function<Reply(const State&)>;

  /// Returned by `persist`. Not convertible to `effect`: finish it with
  /// `then_reply(f)` or `then_no_reply()`.
  class [[nodiscard]] persist_builder {
   public:
    /// Persist, then reply with `f(state after the events)`. `f` must be callable as
    /// `Reply(const State&)`; it runs on the actor, must be pure and not throw.
    template <class F>
    effect then_reply(F&& f) && {
      static_assert(std::is_invocable_r_v<Reply, F&, const State&>,
                    "then_reply(f): f must be callable as Reply f(const State& after)");
      return effect{effect_kind::persist_then_reply, std::move(events_),
                    reply_fn{std::forward<F>(f)}, std::nullopt};
    }
    /// Persist; the sender gets no value (an `ask` completes with error `no_reply`
    /// once the events are durable).
    effect then_no_reply() && {
      return effect{effect_kind::persist_then_no_reply, std::move(events_), reply_fn{},
                    std::nullopt};
    }

   private:
    friend class effect;
    explicit persist_builder(std::vector<Event> evs) : events_(std::move(evs)) {}
    std::vector<Event> events_;
  };

  /// Events to persist, in order. An empty list behaves like `reply` (nothing stored).
  static persist_builder persist(std::initializer_list<Event> events) {
    return persist_builder{std::vector<Event>(events)};
  }
  static persist_builder persist(std::vector<Event> events) {
    return persist_builder{std::move(events)};
  }

  /// Reply without storing anything: `f(current state)`.
  template <class F>
  static effect reply(F&& f) {
    static_assert(std::is_invocable_r_v<Reply, F&, const State&>,
                  "effect::reply(f): f must be callable as Reply f(const State&)");
    return effect{effect_kind::reply, {}, reply_fn{std::forward<F>(f)}, std::nullopt};
  }

  /// Reject the command: nothing is stored, the sender gets `r` as a caf::error
  /// (see `strata::rejection_of<A>`).
  static effect reject(Rejection r) { return effect{effect_kind::reject, {}, reply_fn{}, r}; }

  // -- inspection (used by the runtime and the test kit) -----------------------

  effect_kind kind() const noexcept { return kind_; }
  /// The events to persist (empty unless kind is persist_*).
  const std::vector<Event>& events() const noexcept { return events_; }
  std::vector<Event>& events() noexcept { return events_; }
  /// The rejection (only when kind() == reject).
  const std::optional<Rejection>& rejection() const noexcept { return rejection_; }
  /// Whether a reply value is produced (persist_then_reply and reply).
  bool has_reply() const noexcept { return static_cast<bool>(reply_); }
  /// The reply for `after`. Precondition: has_reply().
  Reply make_reply(const State& after) const { return reply_(after); }

 private:
  effect(effect_kind k, std::vector<Event> evs, reply_fn f, std::optional<Rejection> r)
    : kind_(k), events_(std::move(evs)), reply_(std::move(f)), rejection_(std::move(r)) {}

  effect_kind kind_;
  std::vector<Event> events_;
  reply_fn reply_;
  std::optional<Rejection> rejection_;
};

} // namespace strata
