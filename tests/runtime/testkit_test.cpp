// tests runtime/include/strata/runtime/testkit.hpp on the counter aggregate
#include "counter.hpp"

#include "strata/runtime/testkit.hpp"

using namespace test_counter;
using strata::testkit::given;

TEST_CASE("testkit: given/when/then on the counter") {
  given<counter>({added{10}})
    .when(sub{3})
    .then_events({subtracted{3}})
    .then_reply(7)
    .then_state([](const counter::state& s) {
      CHECK(s.value == 7);
      CHECK(s.events == 2);
    });
  given<counter>({added{10}}).when(sub{11}).then_rejected(counter::rejection::insufficient);
  given<counter>().when(add{0}).then_rejected(counter::rejection::invalid_amount);
  given<counter>({added{1}, added{2}}).when(get{}).then_no_events().then_reply(3);
  given<counter>().when(touch{}).then_events({touched{}}).then_no_reply();
  given<counter>().when(add_twice{4}).then_events({added{4}, added{4}}).then_reply(8);
  counter::state expected;
  expected.value = 2;
  expected.events = 2;
  given<counter>().when_all({add{1}, add{1}}).then_state(expected);
}

TEST_CASE("testkit: then_rejected checks the detail the handler built from the state") {
  given<counter>({added{3}})
    .when(sub{5})
    .then_rejected(counter::rejection::insufficient, "value 3 is less than 5");
  given<counter>().when(add{0}).then_rejected(counter::rejection::invalid_amount, "");
  given<counter>({added{3}})
    .when(sub{5})
    .then_rejected(counter::rejection::insufficient, [](const std::string& detail) {
      CHECK(detail.find("less than 5") != std::string::npos);
    });
}
