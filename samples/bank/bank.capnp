# The bank sample's stored formats: one struct per event of the `account` aggregate
# (the payload inside strata's Envelope, published as-is to Kafka), and the account
# state used for snapshots. Amounts are integer cents.
#
# Decode an event payload outside C++ (e.g. taken from `strata journal dump`):
#   capnp decode samples/bank/bank.capnp Deposited < payload.bin
#
# Evolution rules: add fields only at the end with new ordinals; never renumber or
# change a field's type. A breaking change gets a new struct and a new schema version
# in account_mapping.cpp.
@0xb4ef1341149cb430;

$import "/capnp/c++.capnp".namespace("bank::schema");

# Event type "opened" (schema version 1).
struct Opened {
  owner @0 :Text;
}

# Event type "deposited" (schema version 1).
struct Deposited {
  cents @0 :Int64;   # > 0
}

# Event type "withdrawn" (schema version 1).
struct Withdrawn {
  cents @0 :Int64;   # > 0, never more than the balance at the time
}

# Event type "closed" (schema version 1): no fields.
struct Closed {
}

# Snapshot of an account (schema version 1).
struct AccountState {
  open @0 :Bool;
  closed @1 :Bool;
  owner @2 :Text;
  balance @3 :Int64;   # cents
  seq @4 :UInt64;      # events folded in (= seq of the last one)
}
