// The account aggregate's rules: apply (evolve) and handle (decide).
#include "bank/account.hpp"

#include "strata/runtime/overload.hpp"

#include <limits>
#include <string>

namespace bank {

account::state account::apply(state s, const event& e) noexcept {
  std::visit(strata::overload{
               [&](const opened& x) {
                 s.open = true;
                 s.owner = x.owner;
               },
               [&](const deposited& x) {
                 s.balance += x.cents;
               },
               [&](const withdrawn& x) {
                 s.balance -= x.cents;
               },
               [&](const closed&) {
                 s.open = false;
                 s.closed = true;
               },
             },
             e);
  ++s.seq;
  return s;
}

namespace {

std::string cents(std::int64_t v) { return std::to_string(v); }

/// Why an account that is not open rejects a command (closed, or never opened).
account::effect reject_not_open(const account::state& s) {
  if (s.closed) return account::effect::reject(account::rejection::closed, "the account is closed");
  return account::effect::reject(account::rejection::not_open, "the account was never opened");
}

} // namespace

account::effect account::handle(const state& s, const command& c) {
  auto balance = [](const state& after) {
    return balance_reply{after.balance, after.seq};
  };
  return strata::handle_with(
    c,
    strata::overload{
      [&](const open_account& x) {
        if (s.closed) return effect::reject(rejection::closed, "the account is closed");
        if (s.open)
          return effect::reject(rejection::already_open,
                                "the account is open (owner '" + s.owner + "')");
        return effect::persist({opened{x.owner}}).then_reply(balance);
      },
      [&](const deposit& x) {
        if (!s.open) return reject_not_open(s);
        if (x.cents <= 0)
          return effect::reject(rejection::invalid_amount,
                                "amount " + cents(x.cents) + " is not positive");
        if (x.cents > std::numeric_limits<std::int64_t>::max() - s.balance)
          return effect::reject(rejection::invalid_amount, "balance " + cents(s.balance) +
                                                             " plus " + cents(x.cents) +
                                                             " overflows");
        return effect::persist({deposited{x.cents}}).then_reply(balance);
      },
      [&](const withdraw& x) {
        if (!s.open) return reject_not_open(s);
        if (x.cents <= 0)
          return effect::reject(rejection::invalid_amount,
                                "amount " + cents(x.cents) + " is not positive");
        if (x.cents > s.balance)
          return effect::reject(rejection::insufficient_funds,
                                "balance " + cents(s.balance) + " is less than " + cents(x.cents));
        return effect::persist({withdrawn{x.cents}}).then_reply(balance);
      },
      [&](const close_account&) {
        if (!s.open) return reject_not_open(s);
        if (s.balance != 0)
          return effect::reject(rejection::not_zero_balance,
                                "balance " + cents(s.balance) + " is not 0");
        return effect::persist({closed{}}).then_reply(balance);
      },
      [&](const get_balance&) {
        if (!s.open && !s.closed)
          return effect::reject(rejection::not_open, "the account was never opened");
        return effect::reply(balance);
      },
    });
}

const char* to_string(account::rejection r) noexcept {
  switch (r) {
    case account::rejection::not_open: return "not_open";
    case account::rejection::already_open: return "already_open";
    case account::rejection::invalid_amount: return "invalid_amount";
    case account::rejection::insufficient_funds: return "insufficient_funds";
    case account::rejection::not_zero_balance: return "not_zero_balance";
    case account::rejection::closed: return "closed";
  }
  return "unknown_rejection";
}

} // namespace bank
