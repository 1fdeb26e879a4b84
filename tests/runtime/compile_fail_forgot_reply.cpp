// Compiled by compile_fail.cmake: without STRATA_FIXED the handler returns
// `effect::persist(...)` (a persist_builder), which is not an effect: the compiler must
// say how to fix it, in one error.
// expect: add .then_reply(f) or .then_no_reply()
// errors-max: 1
// static-asserts: 1
#include "strata/runtime/effect.hpp"

#include <variant>

struct state {
  int v = 0;
};
struct added {
  int n;
};
using event = std::variant<added>;
enum class rejection : unsigned char { bad = 1 };
using effect = strata::effect<event, rejection, state, int>;

effect handle(const state&, int n) {
#ifdef STRATA_FIXED
  return effect::persist({added{n}}).then_reply([](const state& s) {
    return s.v;
  });
#else
  return effect::persist({added{n}});
#endif
}

int main() { return handle(state{}, 1).events().size() == 1 ? 0 : 1; }
