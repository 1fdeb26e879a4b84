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

// -- events: facts, past tense (mapped to bank.capnp in account_mapping.cpp) --------

struct opened {
  std::string owner;
  friend bool operator==(const opened& a, const opened& b) { return a.owner == b.owner; }
};
struct deposited {
  std::int64_t cents = 0;
  friend bool operator==(const deposited& a, const deposited& b) { return a.cents == b.cents; }
};
struct withdrawn {
  std::int64_t cents = 0;
  friend bool operator==(const withdrawn& a, const withdrawn& b) { return a.cents == b.cents; }
};
struct closed {
  friend bool operator==(const closed&, const closed&) { return true; }
};

/// The state of one account (the fold of its events).
struct account_state {
  bool open = false;   ///< opened and not closed
  bool closed = false; ///< closed (then open == false)
  std::string owner;
  std::int64_t balance = 0; ///< cents, never negative
  std::uint64_t seq = 0;    ///< events folded in = the journal seq of the last one

  friend bool operator==(const account_state& a, const account_state& b) {
    return a.open == b.open && a.closed == b.closed && a.owner == b.owner &&
           a.balance == b.balance && a.seq == b.seq;
  }
  friend bool operator!=(const account_state& a, const account_state& b) { return !(a == b); }
};

/// What a successful command (and get_balance) replies.
struct balance_reply {
  std::int64_t balance = 0; ///< cents, after the command
  std::uint64_t seq = 0;    ///< seq of the account's last event after the command

  friend bool operator==(const balance_reply& a, const balance_reply& b) {
    return a.balance == b.balance && a.seq == b.seq;
  }
};

struct account {
  static constexpr const char* type_name = "account";

  using state = account_state;
  using command = std::variant<open_account, deposit, withdraw, close_account, get_balance>;
  using event = std::variant<opened, deposited, withdrawn, closed>;
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

  // Mapping to bank.capnp (account_mapping.cpp). decode returns nullopt for an unknown
  // type or schema version and throws kj::Exception on malformed bytes.
  static strata::event_bytes encode(const event& e);
  static std::optional<event> decode(std::string_view type, std::uint32_t version,
                                     std::string_view payload);
  static strata::state_bytes encode_state(const state& s);
  static std::optional<state> decode_state(std::uint32_t version, std::string_view payload);
};

/// "not_open", "insufficient_funds", ... (stable names, used in "rejected: <name>").
const char* to_string(account::rejection r) noexcept;

/// The stored type name of an event: "opened", "deposited", "withdrawn", "closed".
const char* event_type_name(const account::event& e) noexcept;

} // namespace bank
