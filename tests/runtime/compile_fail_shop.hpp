// A small order aggregate's types for the compile-fail snippets (effect.hpp only).
#pragma once

#include "strata/runtime/effect.hpp"
#include "strata/runtime/overload.hpp"

#include <string>
#include <variant>

namespace shop {

struct place_order {
  std::string id;
};
struct pay_order {};
struct ship_order {};

struct placed {
  std::string id;
};
struct paid {};
struct shipped {};

struct order_state {
  std::string id;
  bool placed = false;
  bool paid = false;
};

using command = std::variant<place_order, pay_order, ship_order>;
using event = std::variant<placed, paid, shipped>;
enum class rejection : unsigned char { not_placed = 1, not_paid };
using effect = strata::effect<event, rejection, order_state, bool>;

inline bool ok(const order_state&) { return true; }

} // namespace shop
