// Property (RapidCheck): random command sequences against the account aggregate agree
// with a tiny reference model of an account; the balance never goes negative; a
// rejected command changes nothing; the state is always the fold of the history; a
// snapshot of any prefix plus the remaining events folds to the same state; every
// stored event decodes back to itself.
#include "bank/account.hpp"

#include <doctest/doctest.h>
#include <rapidcheck.h>

#include <limits>
#include <optional>
#include <string>
#include <vector>

using namespace bank;
using rej = account::rejection;

namespace {

/// The reference: what a bank clerk with a notebook would do.
struct model {
  enum class status { never_opened, open, closed } st = status::never_opened;
  std::int64_t balance = 0;
  std::string owner;

  /// The expected rejection of `c`, or nullopt when it succeeds (then applied).
  std::optional<rej> run(const account::command& c) {
    if (auto* o = std::get_if<open_account>(&c)) {
      if (st == status::closed) return rej::closed;
      if (st == status::open) return rej::already_open;
      st = status::open;
      owner = o->owner;
      return std::nullopt;
    }
    if (std::holds_alternative<get_balance>(c))
      return st == status::never_opened ? std::optional<rej>{rej::not_open} : std::nullopt;
    if (st == status::closed) return rej::closed;
    if (st == status::never_opened) return rej::not_open;
    if (auto* d = std::get_if<deposit>(&c)) {
      if (d->cents <= 0 || d->cents > std::numeric_limits<std::int64_t>::max() - balance)
        return rej::invalid_amount;
      balance += d->cents;
      return std::nullopt;
    }
    if (auto* w = std::get_if<withdraw>(&c)) {
      if (w->cents <= 0) return rej::invalid_amount;
      if (w->cents > balance) return rej::insufficient_funds;
      balance -= w->cents;
      return std::nullopt;
    }
    // close_account
    if (balance != 0) return rej::not_zero_balance;
    st = status::closed;
    return std::nullopt;
  }
};

/// A command biased towards the interesting edges (exact balance, zero, huge).
account::command random_command(std::int64_t balance) {
  const int kind = *rc::gen::inRange(0, 100);
  auto amount = [&]() -> std::int64_t {
    switch (*rc::gen::inRange(0, 8)) {
      case 0: return 0;
      case 1: return -*rc::gen::inRange<std::int64_t>(1, 1000);
      case 2: return balance;
      case 3: // one more than the balance (UBSan: not past INT64_MAX)
        return balance < std::numeric_limits<std::int64_t>::max() ? balance + 1 : balance;
      case 4: return std::numeric_limits<std::int64_t>::max();
      default: return *rc::gen::inRange<std::int64_t>(1, 5000);
    }
  };
  if (kind < 8) return open_account{*rc::gen::element<std::string>("ann", "bob", "", "Zoë")};
  if (kind < 50) return deposit{amount()};
  if (kind < 85) return withdraw{amount()};
  if (kind < 92) return close_account{};
  return get_balance{};
}

} // namespace

TEST_CASE("random command sequences agree with the reference model") {
  const bool ok = rc::check("account vs reference model", [] {
    model ref;
    account::state s;
    std::vector<account::event> history;
    // Usually open first, so that most sequences exercise the open account.
    if (*rc::gen::inRange(0, 10) != 0) {
      history.push_back(opened{"first"});
      s = account::apply(s, history.back());
      RC_ASSERT(!ref.run(open_account{"first"}).has_value());
    }
    const int n = *rc::gen::inRange(1, 80);
    for (int i = 0; i < n; ++i) {
      const auto cmd = random_command(s.balance);
      const auto before = s;
      const auto expected = ref.run(cmd);
      auto eff = account::handle(s, cmd);
      if (expected) {
        RC_ASSERT(eff.kind() == strata::effect_kind::reject);
        RC_ASSERT(eff.rejection() == expected);
        RC_ASSERT(eff.events().empty());
      } else {
        RC_ASSERT(eff.kind() != strata::effect_kind::reject);
        RC_ASSERT(eff.has_reply());
        // Commands that change something store exactly one event; queries none.
        RC_ASSERT(eff.events().size() == (std::holds_alternative<get_balance>(cmd) ? 0u : 1u));
      }
      for (const auto& e : eff.events()) {
        auto b = account::encode(e);
        auto back = account::decode(b.type, b.schema_version, b.payload);
        RC_ASSERT(back.has_value());
        RC_ASSERT(*back == e);
        history.push_back(e);
        s = account::apply(s, e);
      }
      if (expected) RC_ASSERT(s == before); // a rejected command changes nothing
      if (eff.has_reply()) {
        auto r = eff.make_reply(s);
        RC_ASSERT(r.balance == s.balance);
        RC_ASSERT(r.seq == history.size());
      }
      RC_ASSERT(s.balance >= 0);
      RC_ASSERT(s.balance == ref.balance);
      RC_ASSERT(s.open == (ref.st == model::status::open));
      RC_ASSERT(s.closed == (ref.st == model::status::closed));
      RC_ASSERT(s.seq == history.size());
    }
    // State = fold(history); snapshot(prefix) + suffix = fold(history).
    RC_ASSERT(strata::fold<account>(account::state{}, history) == s);
    const auto cut =
      static_cast<std::size_t>(*rc::gen::inRange<std::size_t>(0, history.size() + 1));
    std::vector<account::event> prefix(history.begin(),
                                       history.begin() + static_cast<std::ptrdiff_t>(cut));
    std::vector<account::event> suffix(history.begin() + static_cast<std::ptrdiff_t>(cut),
                                       history.end());
    auto snap = account::encode_state(strata::fold<account>(account::state{}, prefix));
    auto restored = account::decode_state(snap.schema_version, snap.payload);
    RC_ASSERT(restored.has_value());
    RC_ASSERT(strata::fold<account>(*restored, suffix) == s);
  });
  CHECK(ok);
}
