// A tiny aggregate for the runtime tests: a bounded counter (a mini account).
// Its mapping uses a hand-rolled byte format (the runtime only sees bytes); the bank
// sample shows the Cap'n Proto mapping.
#pragma once

#include "strata/runtime/aggregate.hpp"

#include <cstdint>
#include <cstring>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <variant>

namespace test_counter {

struct add {
  std::int64_t n = 0;
};
struct sub {
  std::int64_t n = 0;
};
struct add_twice { // persists two events
  std::int64_t n = 0;
};
struct touch {}; // persists, replies nothing
struct get {};
struct boom {}; // the handler throws (tests the runtime's guard)

struct added {
  std::int64_t n = 0;
  friend bool operator==(const added& a, const added& b) { return a.n == b.n; }
};
struct subtracted {
  std::int64_t n = 0;
  friend bool operator==(const subtracted& a, const subtracted& b) { return a.n == b.n; }
};
struct touched {
  friend bool operator==(const touched&, const touched&) { return true; }
};

struct counter {
  static constexpr const char* type_name = "counter";
  /// An amount whose `added` event cannot be encoded (tests a mapping that throws);
  /// `add_twice{unencodable}` persists `added{1}` before it.
  static constexpr std::int64_t unencodable = 999'999'937;
  struct state {
    std::int64_t value = 0;
    std::uint64_t events = 0; // how many events were applied (detects double apply)
    friend bool operator==(const state& a, const state& b) {
      return a.value == b.value && a.events == b.events;
    }
  };
  using command = std::variant<add, sub, add_twice, touch, get, boom>;
  using event = std::variant<added, subtracted, touched>;
  enum class rejection : std::uint8_t { invalid_amount = 1, insufficient = 2 };
  using reply = std::int64_t;
  using effect = strata::effect<event, rejection, state, reply>;

  static state apply(state s, const event& e) noexcept {
    std::visit(strata::overload{[&](const added& x) {
                                  s.value += x.n;
                                },
                                [&](const subtracted& x) {
                                  s.value -= x.n;
                                },
                                [&](const touched&) {}},
               e);
    ++s.events;
    return s;
  }

  static effect handle(const state& s, const command& c) {
    auto value = [](const state& after) {
      return after.value;
    };
    return strata::handle_with(
      c, strata::overload{
           [&](const add& x) {
             if (x.n <= 0) return effect::reject(rejection::invalid_amount); // no detail
             return effect::persist({added{x.n}}).then_reply(value);
           },
           [&](const sub& x) {
             if (x.n <= 0) return effect::reject(rejection::invalid_amount);
             if (x.n > s.value)
               return effect::reject(rejection::insufficient, "value " + std::to_string(s.value) +
                                                                " is less than " +
                                                                std::to_string(x.n));
             return effect::persist({subtracted{x.n}}).then_reply(value);
           },
           [&](const add_twice& x) {
             if (x.n <= 0) return effect::reject(rejection::invalid_amount);
             if (x.n == unencodable) // the first event encodes, the second throws
               return effect::persist({added{1}, added{x.n}}).then_reply(value);
             return effect::persist({added{x.n}, added{x.n}}).then_reply(value);
           },
           [&](const touch&) {
             return effect::persist({touched{}}).then_no_reply();
           },
           [&](const get&) {
             return effect::reply(value);
           },
           [&](const boom&) -> effect {
             throw std::runtime_error("boom");
           },
         });
  }

  // -- mapping: 8 little-endian bytes per integer ------------------------------
  static std::string i64(std::int64_t v) {
    std::string s(8, '\0');
    std::memcpy(s.data(), &v, 8);
    return s;
  }
  static std::optional<std::int64_t> read_i64(std::string_view p) {
    if (p.size() != 8) return std::nullopt;
    std::int64_t v;
    std::memcpy(&v, p.data(), 8);
    return v;
  }

  static strata::event_bytes encode(const event& e) {
    return std::visit(strata::overload{[](const added& x) {
                                         if (x.n == unencodable)
                                           throw std::runtime_error("unencodable amount");
                                         return strata::event_bytes{"added", 1, i64(x.n)};
                                       },
                                       [](const subtracted& x) {
                                         return strata::event_bytes{"subtracted", 1, i64(x.n)};
                                       },
                                       [](const touched&) {
                                         return strata::event_bytes{"touched", 1, {}};
                                       }},
                      e);
  }
  static std::optional<event> decode(std::string_view type, std::uint32_t version,
                                     std::string_view payload) {
    if (version != 1) return std::nullopt;
    if (type == "touched") return event{touched{}};
    auto v = read_i64(payload);
    if (!v) return std::nullopt;
    if (type == "added") return event{added{*v}};
    if (type == "subtracted") return event{subtracted{*v}};
    return std::nullopt;
  }
  static strata::state_bytes encode_state(const state& s) {
    return {1, i64(s.value) + i64(static_cast<std::int64_t>(s.events))};
  }
  static std::optional<state> decode_state(std::uint32_t version, std::string_view p) {
    if (version != 1 || p.size() != 16) return std::nullopt;
    state s;
    s.value = *read_i64(p.substr(0, 8));
    s.events = static_cast<std::uint64_t>(*read_i64(p.substr(8, 8)));
    return s;
  }
};

inline const char* to_string(counter::rejection r) {
  switch (r) {
    case counter::rejection::invalid_amount: return "invalid_amount";
    case counter::rejection::insufficient: return "insufficient";
  }
  return "?";
}

static_assert(strata::is_aggregate_v<counter>);
static_assert(strata::has_snapshots_v<counter>);

} // namespace test_counter
