// tests runtime/include/strata/runtime/effect.hpp, aggregate.hpp, errors.hpp
#include "counter.hpp"

#include "strata/runtime/errors.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <iterator>
#include <string>

using namespace test_counter;
using effect = counter::effect;

namespace {
struct other_aggregate {
  static constexpr const char* type_name = "other";
  enum class rejection : std::uint8_t { x = 2 };
};
} // namespace

TEST_CASE(
  "effect: persist then reply carries the events and computes the reply on the state after") {
  auto e = effect::persist({added{2}, added{3}}).then_reply([](const counter::state& s) {
    return s.value * 10;
  });
  CHECK(e.kind() == strata::effect_kind::persist_then_reply);
  REQUIRE(e.events().size() == 2);
  CHECK(std::get<added>(e.events()[1]).n == 3);
  REQUIRE(e.has_reply());
  auto after = strata::fold<counter>(counter::state{}, e.events());
  CHECK(after.value == 5);
  CHECK(e.make_reply(after) == 50);
  CHECK_FALSE(e.rejection().has_value());
}

TEST_CASE("effect: persist with no reply, reply only, reject") {
  auto n = effect::persist({touched{}}).then_no_reply();
  CHECK(n.kind() == strata::effect_kind::persist_then_no_reply);
  CHECK_FALSE(n.has_reply());
  CHECK(n.events().size() == 1);

  auto r = effect::reply([](const counter::state& s) {
    return s.value + 1;
  });
  CHECK(r.kind() == strata::effect_kind::reply);
  CHECK(r.events().empty());
  counter::state s;
  s.value = 41;
  CHECK(r.make_reply(s) == 42);

  auto j = effect::reject(counter::rejection::insufficient);
  CHECK(j.kind() == strata::effect_kind::reject);
  CHECK(j.events().empty());
  CHECK_FALSE(j.has_reply());
  REQUIRE(j.rejection().has_value());
  CHECK(*j.rejection() == counter::rejection::insufficient);
}

TEST_CASE("effect: persist accepts a vector built at run time") {
  std::vector<counter::event> evs;
  for (int i = 1; i <= 4; ++i)
    evs.emplace_back(added{i});
  auto e = effect::persist(evs).then_no_reply();
  CHECK(e.events().size() == 4);
  CHECK(strata::fold<counter>(counter::state{}, e.events()).value == 10);
}

TEST_CASE("handler: decides on the given state, rejections store nothing") {
  counter::state s;
  s.value = 5;
  auto ok = counter::handle(s, sub{5});
  CHECK(ok.kind() == strata::effect_kind::persist_then_reply);
  CHECK(ok.make_reply(strata::fold<counter>(s, ok.events())) == 0);
  auto no = counter::handle(s, sub{6});
  CHECK(no.kind() == strata::effect_kind::reject);
  CHECK(*no.rejection() == counter::rejection::insufficient);
  CHECK(no.events().empty());
}

TEST_CASE("errors: a rejection travels as caf::error and converts back") {
  auto err = strata::make_rejection<counter>(counter::rejection::insufficient);
  CHECK(strata::is_rejection(err));
  auto back = strata::rejection_of<counter>(err);
  REQUIRE(back.has_value());
  CHECK(*back == counter::rejection::insufficient);
  CHECK(strata::describe(err) == "rejected: insufficient");
  CHECK_FALSE(strata::runtime_error_of(err).has_value());

  // Another aggregate's rejection is not this one's.
  CHECK_FALSE(strata::rejection_of<other_aggregate>(err).has_value());
}

TEST_CASE("effect: reject(code, detail) carries the detail; reject(code) has none") {
  auto bare = effect::reject(counter::rejection::insufficient);
  CHECK(bare.rejection_detail().empty());
  auto why = effect::reject(counter::rejection::insufficient, "value 3 is less than 5");
  CHECK(why.kind() == strata::effect_kind::reject);
  CHECK(why.events().empty());
  CHECK(*why.rejection() == counter::rejection::insufficient);
  CHECK(why.rejection_detail() == "value 3 is less than 5");
  // The handler builds it from the state.
  counter::state s;
  s.value = 3;
  CHECK(counter::handle(s, sub{5}).rejection_detail() == "value 3 is less than 5");
}

TEST_CASE("errors: describe gives rejected: <name>: <detail> and the detail converts back") {
  auto err =
    strata::make_rejection<counter>(counter::rejection::insufficient, "value 3 is less than 5");
  CHECK(strata::describe(err) == "rejected: insufficient: value 3 is less than 5");
  CHECK(strata::rejection_detail(err) == "value 3 is less than 5");
  CHECK(strata::rejection_of<counter>(err) == counter::rejection::insufficient);
  // Without a detail: the name only.
  auto bare = strata::make_rejection<counter>(counter::rejection::invalid_amount);
  CHECK(strata::describe(bare) == "rejected: invalid_amount");
  CHECK(strata::rejection_detail(bare).empty());
  // Not a rejection: no detail.
  CHECK(strata::rejection_detail(
          strata::make_runtime_error(strata::runtime_errc::io_error, "disk on fire"))
          .empty());
}

TEST_CASE("handle_with: visits the command like std::visit") {
  counter::state s;
  s.value = 2;
  CHECK(counter::handle(s, add{1}).kind() == strata::effect_kind::persist_then_reply);
  CHECK(counter::handle(s, touch{}).kind() == strata::effect_kind::persist_then_no_reply);
  CHECK(counter::handle(s, get{}).kind() == strata::effect_kind::reply);
  CHECK_THROWS(counter::handle(s, boom{}));
}

TEST_CASE("aggregate: the rejection codes must have names (to_string)") {
  CHECK(strata::detail::has_rejection_names<counter>::value);
  CHECK_FALSE(strata::detail::has_rejection_names<other_aggregate>::value);
}

TEST_CASE("errors: infrastructure failures keep their code and message") {
  strata::persistence::status st{strata::persistence::errc::io_error, "disk on fire"};
  auto err = strata::to_error(st);
  CHECK_FALSE(strata::is_rejection(err));
  REQUIRE(strata::runtime_error_of(err).has_value());
  CHECK(*strata::runtime_error_of(err) == strata::runtime_errc::io_error);
  CHECK(strata::describe(err) == "io_error: disk on fire");
  CHECK_FALSE(strata::rejection_of<counter>(err).has_value());
  CHECK_FALSE(strata::to_error(strata::persistence::status{}));
}

TEST_CASE("errors: every persistence code reaches the runtime with its number and name") {
  namespace sp = strata::persistence;
  std::size_t named = 0;
  for (unsigned v = 1; v < sp::errc_end; ++v) {
    const auto code = static_cast<sp::errc>(v);
    const std::string name = sp::to_string(code);
    CAPTURE(v);
    CAPTURE(name);
    // The runtime names every value below errc_end as persistence does ("unknown" for
    // the values no code uses), so a persistence code cannot be missing in the runtime.
    CHECK(std::string(strata::to_string(static_cast<strata::runtime_errc>(v))) == name);
    if (name == "unknown") continue;
    ++named;
    CHECK(std::find(std::begin(sp::all_error_codes), std::end(sp::all_error_codes), code) !=
          std::end(sp::all_error_codes));
    auto err = strata::to_error(sp::status{code, "what happened"});
    REQUIRE(strata::runtime_error_of(err).has_value());
    CHECK(static_cast<unsigned>(*strata::runtime_error_of(err)) == v);
    CHECK(strata::describe(err) == name + ": what happened");
    // A status prints the same way as the caf::error it becomes.
    CHECK(strata::describe(sp::status{code, "what happened"}) == strata::describe(err));
  }
  CHECK(named == std::size(sp::all_error_codes));
  CHECK(strata::describe(sp::status{}) == "ok");
  CHECK(std::string(strata::to_string(strata::runtime_errc::read_only)) == "read_only");
}

TEST_CASE("aggregate concept: the traits see what is missing") {
  struct not_an_aggregate {};
  CHECK_FALSE(strata::is_aggregate_v<not_an_aggregate>);
  CHECK(strata::is_aggregate_v<counter>);
  CHECK(strata::has_snapshots_v<counter>);
}
