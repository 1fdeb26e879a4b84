// Property tests (RapidCheck) of recovery: random command sequences against a simple
// reference model, with snapshots every few events, passivations and restarts in
// between. Checks every reply, and that snapshot + tail == full replay == the model,
// also at every intermediate seq.
#include "counter.hpp"
#include "test_util.hpp"

#include <rapidcheck.h>

#include <map>

using namespace test_counter;
using namespace test_util;

namespace {

struct op {
  int kind = 0; // 0 add, 1 sub, 2 add_twice, 3 get, 4 touch, 5 passivate all, 6 restart
  int id = 0;
  int amount = 0;
};

counter::command to_command(const op& o) {
  switch (o.kind) {
    case 0: return add{o.amount};
    case 1: return sub{o.amount};
    case 2: return add_twice{o.amount};
    case 3: return get{};
    default: return touch{};
  }
}

} // namespace

namespace rc {
template <>
struct Arbitrary<op> {
  static Gen<op> arbitrary() {
    return gen::build<op>(
      gen::set(&op::kind,
               gen::weightedElement<int>({{5, 0}, {4, 1}, {2, 2}, {2, 3}, {1, 4}, {1, 5}, {1, 6}})),
      gen::set(&op::id, gen::inRange(0, 3)), gen::set(&op::amount, gen::inRange(-1, 9)));
  }
};
} // namespace rc

TEST_CASE("property: replies match a reference model; snapshot + tail == full replay") {
  auto ok = rc::check("runtime vs model", [](const std::vector<op>& ops) {
    temp_dir dir;
    auto cfg = test_config(dir.path());
    cfg.snapshot_every = *rc::gen::inRange<std::uint64_t>(1, 6);
    cfg.max_inflight_writes = *rc::gen::inRange<std::size_t>(1, 4);
    auto sys = open_system(cfg);
    auto c = std::make_unique<strata::entities<counter>>(sys->entities<counter>());
    std::map<int, std::vector<counter::event>> model; // events per entity
    for (const auto& o : ops) {
      if (o.kind == 5) {
        sys->passivate_idle(0);
        RC_ASSERT(eventually([&] {
          return c->live() == 0;
        }));
        continue;
      }
      if (o.kind == 6) {
        c.reset();
        sys.reset();
        sys = open_system(cfg);
        c = std::make_unique<strata::entities<counter>>(sys->entities<counter>());
        continue;
      }
      auto id = "e" + std::to_string(o.id);
      auto cmd = to_command(o);
      auto before = strata::fold<counter>(counter::state{}, model[o.id]);
      auto eff = counter::handle(before, cmd);
      auto r = c->ask(id, cmd);
      if (eff.kind() == strata::effect_kind::reject) {
        RC_ASSERT(!r);
        RC_ASSERT(strata::rejection_of<counter>(r.error()) == eff.rejection());
        continue;
      }
      for (auto& e : eff.events())
        model[o.id].push_back(e);
      auto after = strata::fold<counter>(counter::state{}, model[o.id]);
      if (eff.has_reply()) {
        RC_ASSERT(static_cast<bool>(r));
        RC_ASSERT(*r == after.value);
      } else {
        RC_ASSERT(!r);
        RC_ASSERT(strata::runtime_error_of(r.error()) == strata::runtime_errc::no_reply);
      }
    }
    for (auto& [k, evs] : model) {
      auto id = "e" + std::to_string(k);
      auto expected = strata::fold<counter>(counter::state{}, evs);
      auto cur = c->current(id);
      auto full = c->state_at_seq(id);
      RC_ASSERT(static_cast<bool>(cur));
      RC_ASSERT(static_cast<bool>(full));
      RC_ASSERT(cur->seq == evs.size());
      RC_ASSERT(cur->state == expected);
      RC_ASSERT(full->state == expected);
      for (std::size_t s = 0; s <= evs.size(); ++s) {
        auto at = c->state_at_seq(id, s);
        RC_ASSERT(static_cast<bool>(at));
        std::vector<counter::event> prefix(evs.begin(), evs.begin() + static_cast<long>(s));
        RC_ASSERT(at->state == strata::fold<counter>(counter::state{}, prefix));
      }
      // The running entity agrees as well (recovering it if it was passivated).
      auto now = c->ask(id, get{});
      RC_ASSERT(static_cast<bool>(now));
      RC_ASSERT(*now == expected.value);
    }
  });
  CHECK(ok);
}
