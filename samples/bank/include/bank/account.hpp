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

// -- declared in bank.capnp; capnpc-strata generates them in bank/schema/bank.strata.hpp
// (with ==, operator<<):
// - commands (intent, may be rejected): open_account{owner}, deposit{cents},
//   withdraw{cents}, close_account{}, get_balance{} and the variant account::command;
// - the reply balance_reply{balance, seq}: cents after the command, and the seq of the
//   account's last event after it;
// - events opened, deposited, withdrawn, closed, the state account_state, the event
//   variant; the codecs of all of them (bank::account_schema). -------------------------

/// The aggregate: type_name ("account"), event, state, command, reply, encode/decode,
/// encode_state/decode_state, encode_command/decode_command and
/// encode_reply/decode_reply come from bank.capnp through account_schema (generated;
/// decode returns nullopt for an unknown type or a newer schema version and throws
/// kj::Exception on malformed bytes; decode_command/decode_reply return nullopt for
/// anything malformed and never throw). Written here: rejections, handle and apply.
struct account : account_schema {
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
  using effect = strata::effect<event, rejection, state, reply>;

  /// Folds one event in. Pure, total over every event type.
  static state apply(state s, const event& e) noexcept;
  /// Decides a command. Pure (no I/O, clock or randomness).
  static effect handle(const state& s, const command& c);
};

/// "not_open", "insufficient_funds", ... (stable names, used in "rejected: <name>").
const char* to_string(account::rejection r) noexcept;

// Generated with the types: event_type_name(const account::event&) ("opened",
// "deposited", "withdrawn", "closed") and operator<< for every event, command, the
// state and the reply.

// A node may forward an account's commands to the owner of its shard (wire.hpp).
static_assert(strata::is_routable_v<account>);

} // namespace bank
