// File: bank/account.hpp
//
// The bank sample's aggregate: one bank account, amounts in integer cents.
//
//   #include <bank/account.hpp>
//   #include <strata/runtime/all.hpp>
//
//   auto sys = strata::system::open(cfg);
//   auto accounts = (*sys)->entities<bank::account>();          // type name "account"
//   accounts.ask("acct-1", bank::open_account{"ann"});           // -> {balance 0, seq 1}
//   auto r = accounts.ask("acct-1", bank::deposit{500});         // -> {balance 500, seq 2}
//   r = accounts.ask("acct-1", bank::withdraw{900});
//   // r.error(): rejected, strata::rejection_of<bank::account>(r.error())
//   //            == bank::account::rejection::insufficient_funds
//
// Rules (handle):
// - open_account: a fresh account opens (event `opened`); an open one is rejected with
//   already_open; a closed one with `closed` (ids are not reused).
// - deposit / withdraw: rejected with `closed` on a closed account, `not_open` on one
//   never opened, `invalid_amount` for cents <= 0 (or a deposit that would overflow
//   the balance), and withdraw with `insufficient_funds` when cents > balance.
// - close_account: `closed` / `not_open` as above; `not_zero_balance` unless the
//   balance is exactly 0.
// - get_balance: replies the balance (a closed account replies 0); `not_open` on an
//   account never opened.
// Every successful command and get_balance reply {balance, seq}: the balance after the
// command and the seq of the account's last event (the event this command stored, if
// any) — so a client can log exactly which journal entry acknowledged its command.
//
// Threads: plain values and pure functions; any thread.
#pragma once

#include "bank/schema/bank.strata.hpp"
#include "strata/runtime/aggregate.hpp"
#include "strata/runtime/effect.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

namespace bank {

// -- commands: intent, may be rejected ---------------------------------------------

/// Opens the account for `owner` (may be empty).
struct open_account {
  std::string owner;
};
/// Adds `cents` (> 0) to the balance.
struct deposit {
  std::int64_t cents = 0;
};
/// Takes `cents` (> 0, <= balance) from the balance.
struct withdraw {
  std::int64_t cents = 0;
};
/// Closes the account; only at balance 0. A closed account accepts no more commands.
struct close_account {};
/// Replies the balance; stores nothing.
struct get_balance {};

// -- events and state: declared in bank.capnp; capnpc-strata generates bank::opened,
// deposited, withdrawn, closed, account_state (with ==, operator<<), the event variant
// and the codec in bank/schema/bank.strata.hpp (bank::account_schema) -------------

/// What a successful command (and get_balance) replies.
struct balance_reply {
  std::int64_t balance = 0; ///< cents, after the command
  std::uint64_t seq = 0;    ///< seq of the account's last event after the command

  friend bool operator==(const balance_reply& a, const balance_reply& b) {
    return a.balance == b.balance && a.seq == b.seq;
  }
};

/// The aggregate: type_name ("account"), event, state, encode/decode and
/// encode_state/decode_state come from bank.capnp through account_schema (generated;
/// decode returns nullopt for an unknown type or a newer schema version and throws
/// kj::Exception on malformed bytes). Written here: commands, rejections, the reply,
/// handle and apply.
struct account : account_schema {
  using command = std::variant<open_account, deposit, withdraw, close_account, get_balance>;
  /// Domain rejections (travel as caf::error in category "rejected"; see
  /// strata::rejection_of<account>). Numbers are stable.
  enum class rejection : std::uint8_t {
    not_open = 1,       ///< the account was never opened
    already_open,       ///< open_account on an open account
    invalid_amount,     ///< cents <= 0, or the deposit would overflow the balance
    insufficient_funds, ///< withdraw more than the balance
    not_zero_balance,   ///< close_account while the balance is not 0
    closed,             ///< any command but get_balance on a closed account
  };
  using reply = balance_reply;
  using effect = strata::effect<event, rejection, state, reply>;

  /// Folds one event in. Pure, total over every event type.
  static state apply(state s, const event& e) noexcept;
  /// Decides a command. Pure (no I/O, clock or randomness).
  static effect handle(const state& s, const command& c);
};

/// "not_open", "insufficient_funds", ... (stable names, used in "rejected: <name>").
const char* to_string(account::rejection r) noexcept;

// Generated with the types: event_type_name(const account::event&) ("opened",
// "deposited", "withdrawn", "closed") and operator<< for every event and the state.

} // namespace bank
