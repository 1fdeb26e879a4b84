# The bank sample's formats: one struct per event of the `account` aggregate (the
# payload inside strata's Envelope, published as-is to Kafka), the account state used
# for snapshots, and the commands and their reply (what a node forwards to the owner
# of an account's shard and gets back). Amounts are integer cents.
#
# Decode an event payload outside C++ (e.g. taken from `strata journal dump`; the
# -I root holds /strata/schema/strata.capnp: <build>/persistence/generated, or the
# install prefix's include/):
#   capnp decode -I build/persistence/generated samples/bank/bank.capnp Deposited < payload.bin
#
# capnpc-strata (strata_add_schema in CMakeLists.txt) generates the C++ value types
# bank::opened, ..., bank::account_state, bank::open_account, ..., bank::balance_reply,
# the event and command variants and the codecs (bank::account_schema, which
# bank::account derives from) from this file; the annotations are in strata.capnp
# (docs/runtime.md, "Declaring events in Cap'n Proto").
#
# Evolution rules: add fields only at the end with new ordinals (older events read the
# default); never renumber or change a field's type; never change an event's stored
# type name. Bump $Strata.version when a new field matters; a rename or a split goes
# through an upcaster ($Strata.upcaster). Commands and the reply are not stored, but
# nodes of different versions exchange them: the same rules hold for their fields, and
# a command's name ($Strata.command) never changes.
@0xb4ef1341149cb430;

$import "/capnp/c++.capnp".namespace("bank::schema");
using Strata = import "/strata/schema/strata.capnp";
$Strata.namespace("bank");
$Strata.aggregate("account");

# Event type "opened" (schema version 1).
struct Opened $Strata.event("opened") {
  owner @0 :Text;
}

# Event type "deposited" (schema version 1).
struct Deposited $Strata.event("deposited") {
  cents @0 :Int64;   # > 0
}

# Event type "withdrawn" (schema version 1).
struct Withdrawn $Strata.event("withdrawn") {
  cents @0 :Int64;   # > 0, never more than the balance at the time
}

# Event type "closed" (schema version 1): no fields.
struct Closed $Strata.event("closed") {
}

# Snapshot of an account (schema version 1).
struct AccountState $Strata.state {
  open @0 :Bool;
  closed @1 :Bool;
  owner @2 :Text;
  balance @3 :Int64;   # cents
  seq @4 :UInt64;      # events folded in (= seq of the last one)
}

# -- commands (intent, may be rejected; bank/account.hpp has the rules) --------------

# Opens the account for `owner` (may be empty).
struct OpenAccount $Strata.command("open_account") {
  owner @0 :Text;
}

# Adds `cents` (> 0) to the balance.
struct Deposit $Strata.command("deposit") {
  cents @0 :Int64;
}

# Takes `cents` (> 0, <= balance) from the balance.
struct Withdraw $Strata.command("withdraw") {
  cents @0 :Int64;
}

# Closes the account; only at balance 0. A closed account accepts no more commands.
struct CloseAccount $Strata.command("close_account") {
}

# Replies the balance; stores nothing.
struct GetBalance $Strata.command("get_balance") {
}

# What a successful command (and get_balance) replies.
struct BalanceReply $Strata.reply {
  balance @0 :Int64;   # cents, after the command
  seq @1 :UInt64;      # seq of the account's last event after the command
}
