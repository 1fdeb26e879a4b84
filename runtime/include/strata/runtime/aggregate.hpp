// File: strata/runtime/aggregate.hpp
//
// The aggregate concept: what a type must provide to become a persistent actor, and
// the mapping of its events (and, optionally, its state) to Cap'n Proto bytes, which
// lives next to the aggregate.
//
//   struct account {
//     static constexpr const char* type_name = "account";   // stream prefix, Kafka topic
//     struct state { bool open = false; std::int64_t balance = 0; };
//     using command   = std::variant<open_account, deposit, get_balance>;   // value types
//     using event     = std::variant<opened, deposited>;                    // value types
//     enum class rejection : std::uint8_t { not_open = 1, invalid_amount };  // codes 1..255
//     using reply     = std::int64_t;                                        // what asks return
//     using effect    = strata::effect<event, rejection, state, reply>;
//
//     static state apply(state s, const event& e) noexcept;                 // pure, total
//     static effect handle(const state& s, const command& c);               // pure
//
//     // Mapping to the user's Cap'n Proto schema (define these in a .cpp that includes
//     // the generated header; see capnp_bytes.hpp for helpers):
//     static strata::event_bytes encode(const event& e);     // {type name, version, payload}
//     static std::optional<event> decode(std::string_view type, std::uint32_t version,
//                                        std::string_view payload);  // nullopt: unknown
//     // Optional; enables snapshots (config snapshot_every):
//     static strata::state_bytes encode_state(const state& s);
//     static std::optional<state> decode_state(std::uint32_t version, std::string_view payload);
//     // Optional; required to route its commands across nodes (wire.hpp; generated from
//     // $Strata.command / $Strata.reply structs, or strata::wire::reply_codec<reply>):
//     static std::string encode_command(const command& c);
//     static std::optional<command> decode_command(std::string_view bytes);  // never throws
//     static std::string encode_reply(const reply& r);
//     static std::optional<reply> decode_reply(std::string_view bytes);      // never throws
//   };
//   const char* to_string(account::rejection r) noexcept;   // "not_open", ... (found by ADL)
//   static_assert(strata::is_aggregate_v<account>);
//   strata::check_aggregate<account>();   // or: readable static_assert messages
//   static_assert(strata::is_routable_v<account>);   // strata::check_routable<account>()
//
// `decode`/`decode_state` may throw (Cap'n Proto throws kj::Exception on malformed
// input): the runtime catches everything at that edge and reports `corrupt`.
// `decode_command`/`decode_reply` read bytes from other nodes and must not throw: they
// return nullopt for an unknown command name or malformed bytes.
// A payload string_view is NOT guaranteed to be word-aligned: copy before handing it
// to Cap'n Proto (strata::capnp_reader does that).
#pragma once

#include "strata/runtime/effect.hpp"
#include "strata/runtime/overload.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <variant>

namespace strata {

/// One event as stored: the user's type name, the schema version of the payload,
/// and the payload (a serialised Cap'n Proto message of the user's schema).
struct event_bytes {
  std::string type;
  std::uint32_t schema_version = 1;
  std::string payload;
};

/// A state as stored in a snapshot.
struct state_bytes {
  std::uint32_t schema_version = 1;
  std::string payload;
};

namespace detail {

template <class, class = void>
struct has_state : std::false_type {};
template <class A>
struct has_state<A, std::void_t<typename A::state>> : std::true_type {};
template <class, class = void>
struct has_command : std::false_type {};
template <class A>
struct has_command<A, std::void_t<typename A::command>> : std::true_type {};
template <class, class = void>
struct has_event : std::false_type {};
template <class A>
struct has_event<A, std::void_t<typename A::event>> : std::true_type {};
template <class, class = void>
struct has_rejection : std::false_type {};
template <class A>
struct has_rejection<A, std::void_t<typename A::rejection>> : std::true_type {};
template <class, class = void>
struct has_reply : std::false_type {};
template <class A>
struct has_reply<A, std::void_t<typename A::reply>> : std::true_type {};
template <class, class = void>
struct has_type_name : std::false_type {};
template <class A>
struct has_type_name<A,
                     std::enable_if_t<std::is_convertible_v<decltype(A::type_name), const char*>>>
  : std::true_type {};

template <class, class = void>
struct has_apply : std::false_type {};
template <class A>
struct has_apply<
  A, std::enable_if_t<std::is_same_v<decltype(A::apply(std::declval<typename A::state>(),
                                                       std::declval<const typename A::event&>())),
                                     typename A::state>>> : std::true_type {};

template <class, class = void>
struct apply_is_noexcept : std::false_type {};
template <class A>
struct apply_is_noexcept<
  A, std::enable_if_t<noexcept(
       A::apply(std::declval<typename A::state>(), std::declval<const typename A::event&>()))>>
  : std::true_type {};

template <class A>
using effect_of =
  effect<typename A::event, typename A::rejection, typename A::state, typename A::reply>;

template <class, class = void>
struct has_handle : std::false_type {};
template <class A>
struct has_handle<
  A,
  std::enable_if_t<std::is_same_v<decltype(A::handle(std::declval<const typename A::state&>(),
                                                     std::declval<const typename A::command&>())),
                                  effect_of<A>>>> : std::true_type {};

template <class, class = void>
struct has_encode : std::false_type {};
template <class A>
struct has_encode<A, std::enable_if_t<std::is_same_v<
                       decltype(A::encode(std::declval<const typename A::event&>())), event_bytes>>>
  : std::true_type {};

template <class, class = void>
struct has_decode : std::false_type {};
template <class A>
struct has_decode<
  A, std::enable_if_t<std::is_same_v<decltype(A::decode(std::declval<std::string_view>(),
                                                        std::declval<std::uint32_t>(),
                                                        std::declval<std::string_view>())),
                                     std::optional<typename A::event>>>> : std::true_type {};

template <class, class = void>
struct has_state_codec : std::false_type {};
template <class A>
struct has_state_codec<
  A, std::enable_if_t<
       std::is_same_v<decltype(A::encode_state(std::declval<const typename A::state&>())),
                      state_bytes> &&
       std::is_same_v<decltype(A::decode_state(std::declval<std::uint32_t>(),
                                               std::declval<std::string_view>())),
                      std::optional<typename A::state>>>> : std::true_type {};

// Exact signatures (a function pointer of that type), so that a reply or command type
// that merely converts does not count; inherited static members (a generated schema,
// wire::reply_codec) do.
template <class, class = void>
struct has_command_codec : std::false_type {};
template <class A>
struct has_command_codec<
  A, std::void_t<decltype(static_cast<std::string (*)(const typename A::command&)>(
                   &A::encode_command)),
                 decltype(static_cast<std::optional<typename A::command> (*)(std::string_view)>(
                   &A::decode_command))>> : std::true_type {};

template <class, class = void>
struct has_reply_codec : std::false_type {};
template <class A>
struct has_reply_codec<
  A, std::void_t<decltype(static_cast<std::string (*)(const typename A::reply&)>(&A::encode_reply)),
                 decltype(static_cast<std::optional<typename A::reply> (*)(std::string_view)>(
                   &A::decode_reply))>> : std::true_type {};

template <class A, class = void>
struct has_rejection_names : std::false_type {};
template <class A>
struct has_rejection_names<
  A, std::enable_if_t<std::is_convertible_v<
       decltype(to_string(std::declval<typename A::rejection>())), std::string_view>>>
  : std::true_type {};

template <class T>
struct is_variant : std::false_type {};
template <class... Ts>
struct is_variant<std::variant<Ts...>> : std::true_type {};

template <class E, bool = std::is_enum_v<E>>
struct rejection_fits : std::false_type {};
template <class E>
struct rejection_fits<E, true> : std::bool_constant<sizeof(std::underlying_type_t<E>) == 1> {};

} // namespace detail

/// True when `A` satisfies the whole aggregate concept (see the file comment).
template <class A>
constexpr bool is_aggregate_v = [] {
  if constexpr (detail::has_state<A>::value && detail::has_command<A>::value &&
                detail::has_event<A>::value && detail::has_rejection<A>::value &&
                detail::has_reply<A>::value && detail::has_type_name<A>::value) {
    return detail::is_variant<typename A::command>::value &&
           detail::is_variant<typename A::event>::value &&
           detail::rejection_fits<typename A::rejection>::value &&
           detail::has_rejection_names<A>::value && detail::has_apply<A>::value &&
           detail::apply_is_noexcept<A>::value && detail::has_handle<A>::value &&
           detail::has_encode<A>::value && detail::has_decode<A>::value &&
           std::is_copy_constructible_v<typename A::state> &&
           std::is_default_constructible_v<typename A::state>;
  } else {
    return false;
  }
}();

/// Whether snapshots are possible for `A` (it maps its state to bytes).
template <class A>
constexpr bool has_snapshots_v = detail::has_state_codec<A>::value;

/// Whether `A`'s commands can be routed to another node: it has `command` and `reply`
/// and the four static members encode_command, decode_command, encode_reply and
/// decode_reply with exactly the signatures in the file comment (wire.hpp).
template <class A>
constexpr bool is_routable_v = [] {
  if constexpr (detail::has_command<A>::value && detail::has_reply<A>::value)
    return detail::has_command_codec<A>::value && detail::has_reply_codec<A>::value;
  else
    return false;
}();

/// Checks is_routable_v with one readable message per missing piece (for code that
/// routes commands across nodes). Does nothing at run time.
template <class A>
constexpr bool check_routable() {
  static_assert(detail::has_command<A>::value && detail::has_reply<A>::value,
                "routable aggregate: missing `using command = ...;` or `using reply = ...;`");
  if constexpr (detail::has_command<A>::value && detail::has_reply<A>::value) {
    static_assert(detail::has_command_codec<A>::value,
                  "routable aggregate: missing `static std::string encode_command(const "
                  "command&);` or `static std::optional<command> "
                  "decode_command(std::string_view);` (declare the commands with "
                  "$Strata.command in the schema, docs/runtime.md)");
    static_assert(detail::has_reply_codec<A>::value,
                  "routable aggregate: missing `static std::string encode_reply(const "
                  "reply&);` or `static std::optional<reply> decode_reply(std::string_view);` "
                  "($Strata.reply in the schema, or derive strata::wire::reply_codec<reply>)");
  }
  return true;
}

/// Checks the concept with one readable message per missing piece. Call it anywhere
/// (it is constexpr and does nothing at run time); the runtime calls it too.
template <class A>
constexpr bool check_aggregate() {
  static_assert(detail::has_state<A>::value, "aggregate: missing `using state = ...;`");
  static_assert(detail::has_command<A>::value,
                "aggregate: missing `using command = std::variant<...>;`");
  static_assert(detail::has_event<A>::value,
                "aggregate: missing `using event = std::variant<...>;`");
  static_assert(detail::has_rejection<A>::value,
                "aggregate: missing `enum class rejection : std::uint8_t {...};`");
  static_assert(detail::has_reply<A>::value,
                "aggregate: missing `using reply = ...;` (the value an ask returns)");
  static_assert(detail::has_type_name<A>::value,
                "aggregate: missing `static constexpr const char* type_name = \"...\";`");
  if constexpr (detail::has_state<A>::value && detail::has_command<A>::value &&
                detail::has_event<A>::value && detail::has_rejection<A>::value &&
                detail::has_reply<A>::value) {
    static_assert(detail::is_variant<typename A::command>::value,
                  "aggregate: `command` must be a std::variant of command structs");
    static_assert(detail::is_variant<typename A::event>::value,
                  "aggregate: `event` must be a std::variant of event structs");
    static_assert(detail::rejection_fits<typename A::rejection>::value,
                  "aggregate: `rejection` must be an enum with a 1-byte underlying type "
                  "(enum class rejection : std::uint8_t), values 1..255");
    static_assert(detail::has_rejection_names<A>::value,
                  "aggregate: missing `const char* to_string(rejection) noexcept;` (or one "
                  "returning std::string) in the aggregate's namespace: it names the codes in "
                  "\"rejected: <name>: <detail>\"");
    static_assert(std::is_default_constructible_v<typename A::state> &&
                    std::is_copy_constructible_v<typename A::state>,
                  "aggregate: `state` must be a default-constructible, copyable value");
    static_assert(detail::has_apply<A>::value,
                  "aggregate: missing `static state apply(state, const event&) noexcept;`");
    if constexpr (detail::has_apply<A>::value)
      static_assert(detail::apply_is_noexcept<A>::value,
                    "aggregate: `apply(state, const event&)` must be noexcept");
    static_assert(detail::has_handle<A>::value,
                  "aggregate: missing `static strata::effect<event, rejection, state, reply> "
                  "handle(const state&, const command&);`");
    static_assert(detail::has_encode<A>::value,
                  "aggregate mapping: missing `static strata::event_bytes encode(const "
                  "event&);`");
    static_assert(detail::has_decode<A>::value,
                  "aggregate mapping: missing `static std::optional<event> "
                  "decode(std::string_view type, std::uint32_t version, std::string_view "
                  "payload);`");
  }
  return true;
}

/// Folds events into a state with `A::apply` (what recovery does).
template <class A, class Range>
typename A::state fold(typename A::state s, const Range& events) noexcept {
  for (const auto& e : events)
    s = A::apply(std::move(s), e);
  return s;
}

} // namespace strata
