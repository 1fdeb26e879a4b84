// Compiled by compile_fail.cmake: without STRATA_FIXED the handler has no case for
// shop::ship_order. strata::handle_with must stop the build with ONE static_assert that
// names the command type (std::visit would print ~100 lines of <variant> errors).
// expect: the handler has no case for a command type
// expect: no_case_for_command<shop::ship_order
// errors-max: 1
// static-asserts: 1
#include "compile_fail_shop.hpp"

namespace shop {

effect handle(const order_state& s, const command& c) {
  return strata::handle_with(c, strata::overload{
                                  [&](const place_order& x) {
                                    return effect::persist({placed{x.id}}).then_reply(ok);
                                  },
                                  [&](const pay_order&) {
                                    if (!s.placed) return effect::reject(rejection::not_placed);
                                    return effect::persist({paid{}}).then_reply(ok);
                                  },
#ifdef STRATA_FIXED
                                  [&](const ship_order&) {
                                    if (!s.paid)
                                      return effect::reject(rejection::not_paid,
                                                            "cannot ship order " + s.id);
                                    return effect::persist({shipped{}}).then_no_reply();
                                  },
#endif
                                });
}

} // namespace shop

int main() { return shop::handle({}, shop::place_order{"o-1"}).events().size() == 1 ? 0 : 1; }
