// File: strata/runtime/testkit.hpp
//
// Given/when/then tests for aggregates (doctest), without actors or a journal:
//
//   #include <strata/runtime/testkit.hpp>
//   using strata::testkit::given;
//
//   TEST_CASE("withdraw more than the balance is rejected") {
//     given<account>({opened{"ann"}, deposited{100}})
//       .when(withdraw{500})
//       .then_rejected(account::rejection::insufficient_funds);
//   }
//   TEST_CASE("the rejection says why") {
//     given<account>({opened{"ann"}, deposited{40}})
//       .when(withdraw{90})
//       .then_rejected(account::rejection::insufficient_funds, "balance 40 is less than 90");
//   }
//   TEST_CASE("withdraw") {
//     given<account>({opened{"ann"}, deposited{100}})
//       .when(withdraw{30})
//       .then_events({withdrawn{30}})
//       .then_reply(70)
//       .then_state([](const account::state& s) { CHECK(s.balance == 70); });
//   }
//
// Every step also checks, with doctest CHECKs:
// - each given and each new event round-trips through A::encode / A::decode
//   (compared with ==, so events need operator==);
// - the state after the command equals the fold of history + new events, and the
//   fold of the *decoded* events gives the same state (when state has operator==);
// - with a state mapping, the state round-trips through encode_state / decode_state;
// - a rejected command or a reply-only command produced no events.
//
// Threads: test code; one thread.
#pragma once

#include "strata/runtime/aggregate.hpp"

#include <doctest/doctest.h>

#include <functional>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

namespace strata::testkit {

namespace detail {
template <class T, class = void>
struct has_eq : std::false_type {};
template <class T>
struct has_eq<T, std::void_t<decltype(std::declval<const T&>() == std::declval<const T&>())>>
  : std::true_type {};

/// "insufficient_funds (4)": the aggregate's name for the code, and its number.
template <class R>
std::string code_name(R r) {
  return std::string(to_string(r)) + " (" +
         std::to_string(static_cast<unsigned>(static_cast<std::underlying_type_t<R>>(r))) + ")";
}

inline const char* kind_name(effect_kind k) {
  switch (k) {
    case effect_kind::persist_then_reply: return "persist_then_reply";
    case effect_kind::persist_then_no_reply: return "persist_then_no_reply";
    case effect_kind::reply: return "reply";
    case effect_kind::reject: return "reject";
  }
  return "?";
}

/// Checks that `e` survives encode → decode; returns the decoded event.
template <class A>
std::optional<typename A::event> round_trip(const typename A::event& e) {
  event_bytes b = A::encode(e);
  CHECK_MESSAGE(!b.type.empty(), "A::encode returned an empty type name");
  std::optional<typename A::event> back;
  try {
    back = A::decode(b.type, b.schema_version, b.payload);
  } catch (...) {
    FAIL_CHECK("A::decode threw for event type '" << b.type << "'");
    return std::nullopt;
  }
  CHECK_MESSAGE(back.has_value(),
                "A::decode does not know event type '" << b.type << "' v" << b.schema_version);
  if (!back) return std::nullopt;
  if constexpr (has_eq<typename A::event>::value)
    CHECK_MESSAGE(*back == e, "event type '" << b.type << "' does not round-trip");
  // The variant alternative must be the same as well.
  CHECK_MESSAGE(back->index() == e.index(),
                "event type '" << b.type << "' decodes to another alternative");
  return back;
}
} // namespace detail

/// The outcome of `when`: assertions chain.
template <class A>
class outcome {
 public:
  using state = typename A::state;
  using event = typename A::event;
  using reply = typename A::reply;
  using rejection = typename A::rejection;
  using effect = strata::detail::effect_of<A>;

  /// The command persisted exactly `expected` (in order). Fails for rejections.
  const outcome& then_events(const std::vector<event>& expected) const {
    REQUIRE_MESSAGE(eff_.kind() != effect_kind::reject,
                    "the command was rejected: " << rejection_text());
    static_assert(detail::has_eq<event>::value, "then_events needs operator== on the events");
    CHECK_MESSAGE(eff_.events().size() == expected.size(),
                  "expected " << expected.size() << " events, got " << eff_.events().size());
    for (std::size_t i = 0; i < expected.size() && i < eff_.events().size(); ++i)
      CHECK_MESSAGE(eff_.events()[i] == expected[i], "event #" << i << " differs");
    return *this;
  }

  /// The command persisted nothing (reply-only or rejected).
  const outcome& then_no_events() const {
    CHECK_MESSAGE(eff_.events().empty(), "expected no events, got " << eff_.events().size());
    return *this;
  }

  /// The command was rejected with `r` (and so stored nothing); any detail.
  const outcome& then_rejected(rejection r) const {
    REQUIRE_MESSAGE(eff_.kind() == effect_kind::reject,
                    "expected a rejection, got effect " << detail::kind_name(eff_.kind()));
    CHECK_MESSAGE(eff_.rejection() == std::optional<rejection>{r},
                  "rejected with " << rejection_text() << ", expected " << detail::code_name(r));
    CHECK(eff_.events().empty());
    return *this;
  }

  /// The command was rejected with `r` and exactly this detail (the text given to
  /// `effect::reject(code, detail)`; "" when it gave none).
  const outcome& then_rejected(rejection r, std::string_view expected_detail) const {
    then_rejected(r);
    CHECK_MESSAGE(eff_.rejection_detail() == expected_detail,
                  "the rejection's detail is \"" << eff_.rejection_detail() << "\", expected \""
                                                 << std::string(expected_detail) << "\"");
    return *this;
  }

  /// The command was rejected with `r`; checks its detail with CHECKs of your own.
  const outcome& then_rejected(rejection r,
                               const std::function<void(const std::string& detail)>& check) const {
    then_rejected(r);
    check(eff_.rejection_detail());
    return *this;
  }

  /// The reply value (computed from the state after the new events) equals `expected`.
  const outcome& then_reply(const reply& expected) const {
    REQUIRE_MESSAGE(eff_.has_reply(),
                    "the effect has no reply (kind " << detail::kind_name(eff_.kind()) << ")");
    auto got = eff_.make_reply(after_);
    if constexpr (detail::has_eq<reply>::value)
      CHECK_MESSAGE(got == expected, "the reply differs from the expected one");
    return *this;
  }

  /// Checks the reply with a predicate / CHECKs of your own.
  const outcome& then_reply(const std::function<void(const reply&)>& check) const {
    REQUIRE_MESSAGE(eff_.has_reply(),
                    "the effect has no reply (kind " << detail::kind_name(eff_.kind()) << ")");
    check(eff_.make_reply(after_));
    return *this;
  }

  /// The command persisted events and replies nothing.
  const outcome& then_no_reply() const {
    CHECK_MESSAGE(eff_.kind() == effect_kind::persist_then_no_reply,
                  "expected persist_then_no_reply, got " << detail::kind_name(eff_.kind()));
    return *this;
  }

  /// The state after the command equals `expected`.
  const outcome& then_state(const state& expected) const {
    static_assert(detail::has_eq<state>::value, "then_state(value) needs operator== on state");
    CHECK_MESSAGE(after_ == expected, "the state after the command differs");
    return *this;
  }

  /// Checks the state after the command with CHECKs of your own.
  const outcome& then_state(const std::function<void(const state&)>& check) const {
    check(after_);
    return *this;
  }

  const effect& result() const noexcept { return eff_; }
  const state& state_after() const noexcept { return after_; }

  outcome(state before, effect eff) : eff_(std::move(eff)) {
    after_ = fold<A>(before, eff_.events());
    // The fold of the decoded events gives the same state.
    std::vector<event> decoded;
    for (const auto& e : eff_.events())
      if (auto d = detail::round_trip<A>(e)) decoded.push_back(std::move(*d));
    if constexpr (detail::has_eq<state>::value) {
      if (decoded.size() == eff_.events().size())
        CHECK_MESSAGE(fold<A>(before, decoded) == after_,
                      "folding the decoded events gives another state than the originals");
      if constexpr (has_snapshots_v<A>) {
        auto bytes = A::encode_state(after_);
        std::optional<state> back;
        try {
          back = A::decode_state(bytes.schema_version, bytes.payload);
        } catch (...) {
          FAIL_CHECK("A::decode_state threw");
        }
        CHECK_MESSAGE(back.has_value(), "A::decode_state returned nullopt");
        if (back)
          CHECK_MESSAGE(*back == after_, "the state does not round-trip through encode_state");
      }
    }
    if (eff_.kind() == effect_kind::reject || eff_.kind() == effect_kind::reply)
      CHECK_MESSAGE(eff_.events().empty(), "a reply-only or rejected effect carries events");
  }

 private:
  std::string rejection_text() const {
    if (!eff_.rejection()) return "no code";
    auto s = detail::code_name(*eff_.rejection());
    if (!eff_.rejection_detail().empty()) s += ": " + eff_.rejection_detail();
    return s;
  }
  effect eff_;
  state after_;
};

/// The history of one entity before the command.
template <class A>
class scenario {
 public:
  using state = typename A::state;
  using event = typename A::event;

  explicit scenario(std::vector<event> history) : history_(std::move(history)) {
    for (const auto& e : history_)
      detail::round_trip<A>(e);
    before_ = fold<A>(state{}, history_);
  }

  /// Runs the handler on the folded history.
  outcome<A> when(const typename A::command& cmd) const {
    return outcome<A>{before_, A::handle(before_, cmd)};
  }

  /// Runs several commands in sequence (each on the state after the previous ones'
  /// events); returns the outcome of the last.
  outcome<A> when_all(const std::vector<typename A::command>& cmds) const {
    REQUIRE(!cmds.empty());
    state s = before_;
    for (std::size_t i = 0; i + 1 < cmds.size(); ++i)
      s = fold<A>(s, A::handle(s, cmds[i]).events());
    return outcome<A>{s, A::handle(s, cmds.back())};
  }

  const state& state_before() const noexcept { return before_; }

 private:
  std::vector<event> history_;
  state before_;
};

/// given<A>({events...}): the starting point of a scenario.
template <class A>
scenario<A> given(std::vector<typename A::event> history = {}) {
  static_assert(check_aggregate<A>());
  return scenario<A>{std::move(history)};
}

} // namespace strata::testkit
