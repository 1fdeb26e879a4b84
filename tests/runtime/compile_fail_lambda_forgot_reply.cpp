// Compiled by compile_fail.cmake: without STRATA_FIXED one case rejects on one path and
// returns `effect::persist(...)` without a reply on the other, so the lambda's return
// types disagree. The compiler's first complaint is about the lambda; the static_assert
// right after it must say how to fix it.
// expect: add .then_reply(f) or .then_no_reply()
// errors-max: 2
// static-asserts: 1
#include "compile_fail_shop.hpp"

namespace shop {

effect handle(const order_state& s, const command& c) {
  return strata::handle_with(c, strata::overload{
                                  [&](const place_order& x) {
                                    if (s.placed) return effect::reject(rejection::not_placed);
#ifdef STRATA_FIXED
                                    return effect::persist({placed{x.id}}).then_no_reply();
#else
                                    return effect::persist({placed{x.id}});
#endif
                                  },
                                  [&](const pay_order&) {
                                    return effect::persist({paid{}}).then_reply(ok);
                                  },
                                  [&](const ship_order&) {
                                    return effect::reject(rejection::not_paid);
                                  },
                                });
}

} // namespace shop

int main() { return shop::handle({}, shop::pay_order{}).events().size() == 1 ? 0 : 1; }
