// Compiled by compile_fail.cmake: without STRATA_FIXED the case for shop::pay_order
// returns `effect::persist(...)` without a reply. strata::handle_with must say how to
// fix it and name the command type, in one static_assert.
// expect: add .then_reply(f) or .then_no_reply()
// expect: persist_without_reply_for_command<shop::pay_order
// errors-max: 1
// static-asserts: 1
#include "compile_fail_shop.hpp"

namespace shop {

effect handle(const order_state&, const command& c) {
  return strata::handle_with(c, strata::overload{
                                  [&](const place_order& x) {
                                    return effect::persist({placed{x.id}}).then_reply(ok);
                                  },
                                  [&](const pay_order&) {
#ifdef STRATA_FIXED
                                    return effect::persist({paid{}}).then_reply(ok);
#else
                                    return effect::persist({paid{}});
#endif
                                  },
                                  [&](const ship_order&) {
                                    return effect::reject(rejection::not_paid);
                                  },
                                });
}

} // namespace shop

int main() { return shop::handle({}, shop::pay_order{}).events().size() == 1 ? 0 : 1; }
