// An aggregate whose events and state are declared only in order.capnp (tests/package,
// docs/runtime.md): the generated shop::order_schema gives the event variant, the state
// and the codec; this file writes the commands, handle and apply. Places, pays, restarts
// (recovery decodes the generated events), is rejected once. Usage: order_app DATA_DIR.
#include "order.strata.hpp"

#include <strata/runtime/all.hpp>

#include <filesystem>
#include <iostream>
#include <string>

namespace shop {

struct place {
  std::string item;
  std::uint32_t quantity = 0;
};
struct pay {
  std::int64_t cents = 0;
};
struct get {};

struct order : order_schema {
  using command = std::variant<place, pay, get>;
  enum class rejection : std::uint8_t { already_placed = 1, not_placed, already_paid };
  using reply = state;
  using effect = strata::effect<event, rejection, state, reply>;

  static state apply(state s, const event& e) noexcept {
    std::visit(strata::overload{
                 [&](const placed& x) {
                   s.item = x.item;
                   s.quantity = x.quantity;
                 },
                 [&](const paid& x) {
                   s.paid_cents = x.cents;
                 },
               },
               e);
    return s;
  }
  static effect handle(const state& s, const command& c) {
    auto same = [](const state& after) {
      return after;
    };
    return std::visit(strata::overload{
                        [&](const place& x) -> effect {
                          if (!s.item.empty()) return effect::reject(rejection::already_placed);
                          return effect::persist({placed{x.item, x.quantity}}).then_reply(same);
                        },
                        [&](const pay& x) -> effect {
                          if (s.item.empty()) return effect::reject(rejection::not_placed);
                          if (s.paid_cents > 0) return effect::reject(rejection::already_paid);
                          return effect::persist({paid{x.cents}}).then_reply(same);
                        },
                        [&](const get&) -> effect {
                          return effect::reply(same);
                        },
                      },
                      c);
  }
};
inline const char* to_string(order::rejection r) {
  switch (r) {
    case order::rejection::already_placed: return "already_placed";
    case order::rejection::not_placed: return "not_placed";
    case order::rejection::already_paid: return "already_paid";
  }
  return "unknown";
}

} // namespace shop

namespace {

int fail(const std::string& what) {
  std::cerr << "order_app: FAILED: " << what << "\n";
  return 1;
}

std::unique_ptr<strata::system> open(const std::string& dir) {
  strata::config cfg;
  cfg.data_dir = dir;
  auto sys = strata::system::open(cfg);
  return sys ? std::move(*sys) : nullptr;
}

} // namespace

int main(int argc, char** argv) {
  if (argc != 2) return fail("usage: order_app DATA_DIR");
  std::string dir = argv[1];
  std::filesystem::remove_all(dir);
  shop::order_state expected{"tea", 3, 450};
  {
    auto sys = open(dir);
    if (!sys) return fail("open");
    auto orders = sys->entities<shop::order>();
    if (!orders.ask("o-3", shop::place{"tea", 3}) || !orders.ask("o-3", shop::pay{450}))
      return fail("place and pay");
    sys->shutdown();
  }
  auto sys = open(dir); // a new system recovers o-3 from the generated events
  if (!sys) return fail("reopen");
  auto orders = sys->entities<shop::order>();
  auto got = orders.ask("o-3", shop::get{});
  if (!got || !(*got == expected)) return fail("after restart: the state differs");
  auto history = orders.history("o-3");
  if (!history || history->size() != 2 || history->front().type != "placed" ||
      !(history->front().event == shop::order::event{shop::placed{"tea", 3}}))
    return fail("history: expected placed{tea, 3}, paid{450}");
  auto again = orders.ask("o-3", shop::pay{1});
  if (again ||
      strata::rejection_of<shop::order>(again.error()) != shop::order::rejection::already_paid)
    return fail("a second pay must be rejected with already_paid");
  std::cout << "order o-3: " << *got << "; pay again: " << strata::describe(again.error()) << "\n";
  return 0;
}
