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
//   effect::reject(rejection::insufficient_funds,          // ... and says why
//                  "balance " + std::to_string(s.balance) + " is less than 90");
//
// `effect::persist(...)` alone is a builder, NOT an effect: a handler that forgets to
// say how it replies does not compile, and the compiler says to add `.then_reply(f)` or
// `.then_no_reply()` (enforced replies).
//
// `strata::handle_with(command, strata::overload{...})` visits the command variant like
// std::visit, but first checks every alternative: a command type without a case, or a
// case that returns `persist(...)` without a reply, stops the build with ONE
// static_assert whose instantiation names the command type:
//
//   static effect handle(const state& s, const command& c) {
//     return strata::handle_with(c, strata::overload{
//         [&](const deposit& d) { return effect::persist({deposited{d.cents}}).then_reply(balance);
//         },
//         [&](const get_balance&) { return effect::reply(balance); }});
//   }
//
// Threads: plain values; any thread.
#pragma once

#include <cstdint>
#include <functional>
#include <initializer_list>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

namespace strata {

namespace detail {
template <class T>
inline constexpr bool always_false_v = false;
} // namespace detail

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
    /// The effect this builder becomes (used by strata::handle_with).
    using effect_type = effect;

    /// Not a conversion: a lambda that returns `persist(...)` first and an effect later
    /// stops the build here, with the fix.
    persist_builder(effect&&) {
      static_assert(detail::always_false_v<Event>,
                    "effect::persist(...) is not an effect yet: say how the command replies: "
                    "add .then_reply(f) or .then_no_reply()");
    }

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

  /// Not a conversion: it exists so that returning `persist(...)` where an effect is
  /// expected (a handler, or a lambda whose other returns are effects) stops the build
  /// with a message that names the fix.
  effect(persist_builder&&) {
    static_assert(detail::always_false_v<Event>,
                  "effect::persist(...) is not an effect yet: say how the command replies: "
                  "add .then_reply(f) or .then_no_reply()");
  }

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

  /// Reject the command and say why: `detail` is text built from the state (e.g.
  /// "balance 40 is less than 90"). It travels with the rejection to the caller
  /// (`strata::describe(err)` → "rejected: insufficient_funds: balance 40 is less than
  /// 90", `strata::rejection_detail(err)`) and is never stored.
  static effect reject(Rejection r, std::string detail) {
    effect e{effect_kind::reject, {}, reply_fn{}, r};
    e.detail_ = std::move(detail);
    return e;
  }

  // -- inspection (used by the runtime and the test kit) -----------------------

  effect_kind kind() const noexcept { return kind_; }
  /// The events to persist (empty unless kind is persist_*).
  const std::vector<Event>& events() const noexcept { return events_; }
  std::vector<Event>& events() noexcept { return events_; }
  /// The rejection (only when kind() == reject).
  const std::optional<Rejection>& rejection() const noexcept { return rejection_; }
  /// Why the command was rejected (empty when the handler gave no detail).
  const std::string& rejection_detail() const noexcept { return detail_; }
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
  std::string detail_;
};

// -- handle_with: a total visit of the command variant with readable errors ------

/// True when `Visitor` has a case for `Command` (callable with `const Command&`).
template <class Command, class Visitor>
inline constexpr bool handler_has_case_for = std::is_invocable_v<Visitor&, const Command&>;

/// True when the case of `Visitor` for `Command` returns a finished effect (not the
/// builder that `effect::persist(...)` returns).
template <class Command, class Visitor, class = void>
inline constexpr bool case_says_how_to_reply = true;
template <class Command, class Visitor>
inline constexpr bool case_says_how_to_reply<
  Command, Visitor,
  std::void_t<typename std::invoke_result_t<Visitor&, const Command&>::effect_type>> =
  std::is_same_v<std::invoke_result_t<Visitor&, const Command&>,
                 typename std::invoke_result_t<Visitor&, const Command&>::effect_type>;

namespace detail {

// Instantiated for the first command type in error only, so the compiler prints ONE
// static_assert and, in the line before it, the command type.
template <class Command, class Visitor>
struct no_case_for_command {
  static_assert(handler_has_case_for<Command, Visitor>,
                "strata::handle_with: the handler has no case for a command type (the first "
                "argument of 'no_case_for_command<Command, ...>' above): add a lambda "
                "[&](const Command& c) { return effect::...; } to the overload");
  static constexpr bool value = false;
};
template <class Command, class Visitor>
struct persist_without_reply_for_command {
  static_assert(case_says_how_to_reply<Command, Visitor>,
                "strata::handle_with: the case for a command type (the first argument of "
                "'persist_without_reply_for_command<Command, ...>' above) returns "
                "effect::persist(...) without saying how it replies: add .then_reply(f) or "
                ".then_no_reply()");
  static constexpr bool value = false;
};

template <class Command, class Visitor>
constexpr bool check_case() {
  if constexpr (!handler_has_case_for<Command, Visitor>)
    return no_case_for_command<Command, Visitor>::value;
  else if constexpr (!case_says_how_to_reply<Command, Visitor>)
    return persist_without_reply_for_command<Command, Visitor>::value;
  else
    return true;
}

/// Stops at the first command type in error (&& short-circuits the instantiations).
template <class Visitor, class... Commands>
constexpr bool check_cases() {
  bool ok = true;
  ((ok = ok && check_case<Commands, Visitor>()), ...);
  return ok;
}

// The effect type the handler returns (from its first well-formed case), so a failed
// check does not add a second error at the caller's `return`.
template <class Visitor, class... Commands>
struct handled_effect {
  using type = void;
};
template <class Visitor, class Command, class... Rest>
struct handled_effect<Visitor, Command, Rest...> {
  template <class R, class = void>
  struct finished {
    using type = R;
  };
  template <class R>
  struct finished<R, std::void_t<typename R::effect_type>> {
    using type = typename R::effect_type;
  };
  static auto pick() {
    if constexpr (handler_has_case_for<Command, Visitor>)
      return static_cast<typename finished<std::invoke_result_t<Visitor&, const Command&>>::type*>(
        nullptr);
    else
      return static_cast<typename handled_effect<Visitor, Rest...>::type*>(nullptr);
  }
  using type = std::remove_pointer_t<decltype(pick())>;
};

template <class T>
T unreachable_effect(); // never defined: only named on a path that failed to compile

} // namespace detail

/// Visits `cmd` with `visitor` (usually a strata::overload of one lambda per command
/// type) and returns its effect. Unlike std::visit, a missing case or a case that
/// returns `effect::persist(...)` without `.then_reply(f)` / `.then_no_reply()` stops
/// the build with one static_assert naming the command type. Pure: it only calls the
/// visitor.
template <class Visitor, class... Commands>
auto handle_with(const std::variant<Commands...>& cmd, Visitor&& visitor) {
  using vis_t = std::remove_reference_t<Visitor>;
  using result_t = typename detail::handled_effect<vis_t, Commands...>::type;
  if constexpr (detail::check_cases<vis_t, Commands...>())
    return std::visit(visitor, cmd);
  else
    return detail::unreachable_effect<result_t>();
}

} // namespace strata
