// A small application on strata (tests/package, docs/embedding.md): a counter
// aggregate on a strata::system. Adds, is rejected once, restarts and recovers, then
// wraps the last event in an envelope of its own schema (counter.capnp imports strata's
// envelope.capnp). Usage: counter_app DATA_DIR. Exit code 0 = every check passed.
#include "counter.capnp.h"

#include <strata/runtime/all.hpp>
#include <strata/runtime/capnp_bytes.hpp>

#include <capnp/message.h>

#include <cstdint>
#include <filesystem>
#include <iostream>
#include <string>

struct add {
  std::int64_t amount = 0;
};
struct get {};
struct added {
  std::int64_t amount = 0;
  bool operator==(const added& o) const { return amount == o.amount; }
};

struct counter {
  static constexpr const char* type_name = "counter";
  struct state {
    std::int64_t total = 0;
  };
  using command = std::variant<add, get>;
  using event = std::variant<added>;
  enum class rejection : std::uint8_t { not_positive = 1 };
  using reply = std::int64_t;
  using effect = strata::effect<event, rejection, state, reply>;

  static state apply(state s, const event& e) noexcept {
    s.total += std::get<added>(e).amount;
    return s;
  }
  static effect handle(const state&, const command& c) {
    auto total = [](const state& s) {
      return s.total;
    };
    return strata::handle_with(c, strata::overload{
                                    [&](const add& a) {
                                      if (a.amount <= 0)
                                        return effect::reject(rejection::not_positive,
                                                              "amount " + std::to_string(a.amount) +
                                                                " is not positive");
                                      return effect::persist({added{a.amount}}).then_reply(total);
                                    },
                                    [&](const get&) {
                                      return effect::reply(total);
                                    },
                                  });
  }
  static strata::event_bytes encode(const event& e) {
    capnp::MallocMessageBuilder mb;
    mb.initRoot<app::schema::Added>().setAmount(std::get<added>(e).amount);
    return {"added", 1, strata::capnp_to_bytes(mb)};
  }
  static std::optional<event> decode(std::string_view type, std::uint32_t version,
                                     std::string_view payload) {
    if (type != "added" || version != 1) return std::nullopt;
    strata::capnp_reader r{payload};
    return event{added{r.root<app::schema::Added>().getAmount()}};
  }
};
inline const char* to_string(counter::rejection) { return "not_positive"; }

namespace {

int fail(const std::string& what) {
  std::cerr << "counter_app: FAILED: " << what << "\n";
  return 1;
}

// One process lifetime of the system: `adds` then a read of the total.
caf::expected<std::int64_t> run(const std::string& dir, std::initializer_list<std::int64_t> adds) {
  strata::config cfg;
  cfg.data_dir = dir;
  auto sys = strata::system::open(cfg);
  if (!sys) return sys.error();
  auto counters = (*sys)->entities<counter>();
  for (auto n : adds)
    if (auto r = counters.ask("c-1", add{n}); !r) return r.error();
  auto total = counters.ask("c-1", get{});
  (*sys)->shutdown();
  return total;
}

} // namespace

int main(int argc, char** argv) {
  if (argc != 2) return fail("usage: counter_app DATA_DIR");
  std::string dir = argv[1];
  std::filesystem::remove_all(dir);

  auto first = run(dir, {5, 7});
  if (!first || *first != 12) return fail("first run: expected total 12");

  auto again = run(dir, {}); // a new system recovers the counter from the journal
  if (!again || *again != 12) return fail("after restart: expected total 12");

  strata::config cfg;
  cfg.data_dir = dir;
  auto sys = strata::system::open(cfg);
  if (!sys) return fail("open: " + strata::describe(sys.error()));
  auto counters = (*sys)->entities<counter>();
  auto rejected = counters.ask("c-1", add{-1});
  if (rejected ||
      strata::rejection_of<counter>(rejected.error()) != counter::rejection::not_positive)
    return fail("add{-1} must be rejected with not_positive");
  if (strata::describe(rejected.error()) != "rejected: not_positive: amount -1 is not positive")
    return fail("the rejection must say why: " + strata::describe(rejected.error()));
  std::cout << "add -1: " << strata::describe(rejected.error()) << "\n";

  auto history = counters.history("c-1");
  if (!history || history->size() != 2) return fail("history: expected 2 events");
  capnp::MallocMessageBuilder mb;
  auto audited = mb.initRoot<app::schema::Audited>();
  audited.getEnvelope().setPersistenceId("counter:c-1");
  audited.getEnvelope().setSeq(history->back().seq);
  audited.setNote("last event");
  (*sys)->shutdown();

  std::cout << "counter c-1 = " << *again << " after recovery; last seq "
            << audited.asReader().getEnvelope().getSeq() << "\n";
  return audited.asReader().getEnvelope().getSeq() == 2 ? 0 : fail("envelope seq");
}
