// The account aggregate the runtime and Kafka benchmarks load: deposits and a balance
// query, events as 8 raw bytes (the bank sample shows the Cap'n Proto mapping).
#pragma once

#include "strata/runtime/aggregate.hpp"

#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

namespace strata::bench {

struct deposit {
  std::int64_t cents = 0;
};
struct get_balance {};
struct deposited {
  std::int64_t cents = 0;
};

struct account {
  static constexpr const char* type_name = "account";
  struct state {
    std::int64_t balance = 0;
  };
  using command = std::variant<deposit, get_balance>;
  using event = std::variant<deposited>;
  enum class rejection : std::uint8_t { invalid_amount = 1 };
  using reply = std::int64_t;
  using effect = strata::effect<event, rejection, state, reply>;

  static state apply(state s, const event& e) noexcept {
    std::visit(strata::overload{[&](const deposited& d) {
                 s.balance += d.cents;
               }},
               e);
    return s;
  }
  static effect handle(const state&, const command& c) {
    auto balance = [](const state& s) {
      return s.balance;
    };
    return std::visit(
      strata::overload{[&](const deposit& d) {
                         if (d.cents <= 0) return effect::reject(rejection::invalid_amount);
                         return effect::persist({deposited{d.cents}}).then_reply(balance);
                       },
                       [&](const get_balance&) {
                         return effect::reply(balance);
                       }},
      c);
  }
  static std::string i64(std::int64_t v) {
    std::string s(8, '\0');
    std::memcpy(s.data(), &v, 8);
    return s;
  }
  static strata::event_bytes encode(const event& e) {
    return {"deposited", 1, i64(std::get<deposited>(e).cents)};
  }
  static std::optional<event> decode(std::string_view type, std::uint32_t,
                                     std::string_view payload) {
    if (type != "deposited" || payload.size() != 8) return std::nullopt;
    std::int64_t v;
    std::memcpy(&v, payload.data(), 8);
    return event{deposited{v}};
  }
  static strata::state_bytes encode_state(const state& s) { return {1, i64(s.balance)}; }
  static std::optional<state> decode_state(std::uint32_t, std::string_view p) {
    if (p.size() != 8) return std::nullopt;
    state s;
    std::memcpy(&s.balance, p.data(), 8);
    return s;
  }
};

/// The rejection's name (check_aggregate requires one).
inline const char* to_string(account::rejection) noexcept { return "invalid_amount"; }

} // namespace strata::bench
