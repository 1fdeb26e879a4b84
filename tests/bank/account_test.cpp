// Given/when/then tests of the bank account aggregate (samples/bank/account.cpp) with
// strata's test kit. Every step also checks the fold and the Cap'n Proto round trip.
#include "bank/account.hpp"

#include "strata/runtime/testkit.hpp"

#include <doctest/doctest.h>

#include <limits>

using namespace bank;
using strata::testkit::given;
using rej = account::rejection;

namespace {
balance_reply reply_of(std::int64_t balance, std::uint64_t seq) {
  return balance_reply{balance, seq};
}
} // namespace

TEST_CASE("open: a fresh account opens with its owner") {
  given<account>()
    .when(open_account{"ann"})
    .then_events({opened{"ann"}})
    .then_reply(reply_of(0, 1))
    .then_state([](const account_state& s) {
      CHECK(s.open);
      CHECK_FALSE(s.closed);
      CHECK(s.owner == "ann");
      CHECK(s.balance == 0);
      CHECK(s.seq == 1);
    });
}

TEST_CASE("open: an empty owner is allowed") {
  given<account>().when(open_account{}).then_events({opened{""}}).then_reply(reply_of(0, 1));
}

TEST_CASE("open: rejected with already_open on an open account") {
  given<account>({opened{"ann"}, deposited{10}})
    .when(open_account{"bob"})
    .then_rejected(rej::already_open)
    .then_state([](const account_state& s) {
      CHECK(s.owner == "ann");
      CHECK(s.balance == 10);
    });
}

TEST_CASE("open: rejected with closed on a closed account") {
  given<account>({opened{"ann"}, closed{}}).when(open_account{"ann"}).then_rejected(rej::closed);
}

TEST_CASE("deposit: adds to the balance") {
  given<account>({opened{"ann"}, deposited{100}})
    .when(deposit{250})
    .then_events({deposited{250}})
    .then_reply(reply_of(350, 3))
    .then_state([](const account_state& s) {
      CHECK(s.balance == 350);
    });
}

TEST_CASE("deposit: rejections") {
  SUBCASE("not_open") { given<account>().when(deposit{5}).then_rejected(rej::not_open); }
  SUBCASE("invalid_amount: zero") {
    given<account>({opened{"a"}}).when(deposit{0}).then_rejected(rej::invalid_amount);
  }
  SUBCASE("invalid_amount: negative") {
    given<account>({opened{"a"}}).when(deposit{-7}).then_rejected(rej::invalid_amount);
  }
  SUBCASE("invalid_amount: the balance would overflow") {
    given<account>({opened{"a"}, deposited{std::numeric_limits<std::int64_t>::max() - 5}})
      .when(deposit{6})
      .then_rejected(rej::invalid_amount);
  }
  SUBCASE("closed") {
    given<account>({opened{"a"}, closed{}}).when(deposit{5}).then_rejected(rej::closed);
  }
}

TEST_CASE("deposit: up to the largest balance is accepted") {
  given<account>({opened{"a"}, deposited{std::numeric_limits<std::int64_t>::max() - 5}})
    .when(deposit{5})
    .then_events({deposited{5}})
    .then_reply(reply_of(std::numeric_limits<std::int64_t>::max(), 3));
}

TEST_CASE("withdraw: takes from the balance, down to exactly zero") {
  given<account>({opened{"ann"}, deposited{100}})
    .when(withdraw{30})
    .then_events({withdrawn{30}})
    .then_reply(reply_of(70, 3));
  given<account>({opened{"ann"}, deposited{100}})
    .when(withdraw{100})
    .then_events({withdrawn{100}})
    .then_reply(reply_of(0, 3));
}

TEST_CASE("withdraw: rejections") {
  SUBCASE("not_open") { given<account>().when(withdraw{5}).then_rejected(rej::not_open); }
  SUBCASE("invalid_amount") {
    given<account>({opened{"a"}, deposited{10}})
      .when(withdraw{0})
      .then_rejected(rej::invalid_amount);
    given<account>({opened{"a"}, deposited{10}})
      .when(withdraw{-1})
      .then_rejected(rej::invalid_amount);
  }
  SUBCASE("insufficient_funds") {
    given<account>({opened{"a"}, deposited{100}, withdrawn{40}})
      .when(withdraw{61})
      .then_rejected(rej::insufficient_funds)
      .then_state([](const account_state& s) {
        CHECK(s.balance == 60);
      });
  }
  SUBCASE("closed") {
    given<account>({opened{"a"}, closed{}}).when(withdraw{1}).then_rejected(rej::closed);
  }
}

TEST_CASE("close: only at balance zero") {
  given<account>({opened{"a"}, deposited{5}, withdrawn{5}})
    .when(close_account{})
    .then_events({closed{}})
    .then_reply(reply_of(0, 4))
    .then_state([](const account_state& s) {
      CHECK(s.closed);
      CHECK_FALSE(s.open);
    });
  given<account>({opened{"a"}, deposited{5}})
    .when(close_account{})
    .then_rejected(rej::not_zero_balance);
  given<account>().when(close_account{}).then_rejected(rej::not_open);
  given<account>({opened{"a"}, closed{}}).when(close_account{}).then_rejected(rej::closed);
}

TEST_CASE("get_balance: replies without storing anything") {
  given<account>({opened{"a"}, deposited{5}, deposited{7}})
    .when(get_balance{})
    .then_no_events()
    .then_reply(reply_of(12, 3));
  // A closed account still answers (balance 0); a never-opened one is not_open.
  given<account>({opened{"a"}, closed{}})
    .when(get_balance{})
    .then_no_events()
    .then_reply(reply_of(0, 2));
  given<account>().when(get_balance{}).then_rejected(rej::not_open);
}

TEST_CASE("a sequence of commands: each decided on the state after the previous") {
  given<account>()
    .when_all({open_account{"z"}, deposit{10}, withdraw{3}, deposit{1}})
    .then_events({deposited{1}})
    .then_reply(reply_of(8, 4));
}

TEST_CASE("every event round-trips through bank.capnp, including odd values") {
  for (const account::event& e :
       {account::event{opened{""}}, account::event{opened{"Zoë O'Brien, \"quoted\""}},
        account::event{opened{std::string(1000, 'x')}}, account::event{deposited{1}},
        account::event{deposited{std::numeric_limits<std::int64_t>::max()}},
        account::event{withdrawn{1}}, account::event{withdrawn{-3}}, account::event{closed{}}}) {
    auto b = account::encode(e);
    CHECK(b.type == event_type_name(e));
    CHECK(b.schema_version == 1);
    auto back = account::decode(b.type, b.schema_version, b.payload);
    REQUIRE(back.has_value());
    CHECK(*back == e);
  }
}

TEST_CASE("decode: unknown type or version → nullopt; garbage → throws") {
  auto b = account::encode(deposited{5});
  CHECK_FALSE(account::decode("refunded", 1, b.payload).has_value());
  CHECK_FALSE(account::decode("deposited", 2, b.payload).has_value());
  CHECK_THROWS(account::decode("deposited", 1, std::string("\x05\x00\x00\x00garbage!", 12)));
}

TEST_CASE("the state round-trips through its snapshot mapping") {
  account_state s;
  s.open = true;
  s.owner = "ann";
  s.balance = 12345;
  s.seq = 99;
  auto b = account::encode_state(s);
  auto back = account::decode_state(b.schema_version, b.payload);
  REQUIRE(back.has_value());
  CHECK(*back == s);
  CHECK_FALSE(account::decode_state(b.schema_version + 1, b.payload).has_value());
}

TEST_CASE("rejection names are stable") {
  CHECK(std::string(to_string(rej::not_open)) == "not_open");
  CHECK(std::string(to_string(rej::already_open)) == "already_open");
  CHECK(std::string(to_string(rej::invalid_amount)) == "invalid_amount");
  CHECK(std::string(to_string(rej::insufficient_funds)) == "insufficient_funds");
  CHECK(std::string(to_string(rej::not_zero_balance)) == "not_zero_balance");
  CHECK(std::string(to_string(rej::closed)) == "closed");
}

TEST_CASE("rejections say why, from the state") {
  given<account>({opened{"a"}, deposited{40}})
    .when(withdraw{90})
    .then_rejected(rej::insufficient_funds, "balance 40 is less than 90");
  given<account>({opened{"a"}, deposited{5}})
    .when(close_account{})
    .then_rejected(rej::not_zero_balance, "balance 5 is not 0");
  given<account>().when(deposit{5}).then_rejected(rej::not_open, "the account was never opened");
  given<account>({opened{"a"}, closed{}})
    .when(withdraw{1})
    .then_rejected(rej::closed, "the account is closed");
  given<account>({opened{"ann"}})
    .when(open_account{"bob"})
    .then_rejected(rej::already_open, "the account is open (owner 'ann')");
  given<account>({opened{"a"}})
    .when(deposit{-7})
    .then_rejected(rej::invalid_amount, "amount -7 is not positive");
}
