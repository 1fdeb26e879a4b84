# strata's annotations for an aggregate's schema, read by capnpc-strata (the Cap'n
# Proto compiler plugin run by the CMake function strata_add_schema; docs/runtime.md,
# "Declaring events in Cap'n Proto").
#
#   using Strata = import "/strata/schema/strata.capnp";
#   $Strata.aggregate("account");        # generates bank::account_schema
#   $Strata.namespace("bank");           # C++ namespace of the generated value types
#
#   struct Opened $Strata.event("opened") { owner @0 :Text; }
#   struct Deposited $Strata.event("deposited") $Strata.version(2) { ... }
#   struct AccountState $Strata.state { ... }
#   struct Deposit $Strata.command("deposit") { cents @0 :Int64; }
#   struct BalanceReply $Strata.reply { balance @0 :Int64; }
#
# The IDs are fixed: capnpc-strata looks the annotations up by these numbers.
@0xccfe8a058226a58a;

$import "/capnp/c++.capnp".namespace("strata::schema::annotations");

# File: the aggregate's type name (stream prefix "<name>:<id>", Kafka topic
# "strata.<name>"). Generates `struct <name>_schema` (type_name, event, state, command,
# reply, encode/decode/encode_state/decode_state, encode_command/decode_command,
# encode_reply/decode_reply) for the aggregate to derive from.
annotation aggregate @0xe39c6dc5b8d3eb8e (file) :Text;

# File: the C++ namespace of the generated value types and codec, e.g. "bank" or
# "shop::order". Required.
annotation namespace @0xe2f4b9ba6e6feebc (file) :Text;

# File: the aggregate has an upcaster. The generated decode first calls
# `static strata::event_bytes <name>_schema::upcast(strata::event_bytes stored)`, which
# the application defines: it may rename the type, change the version or rewrite the
# payload of events stored by an older schema.
annotation upcaster @0xaab555b33d870a6f (file) :Void;

# Struct: an event. The Text is the stored event type name (envelope eventType); empty
# means the struct name in snake_case. Part of the stored format: never change it (use
# the upcaster to read old names).
annotation event @0x877cc411a8ebc980 (struct) :Text;

# Struct: the aggregate's snapshot state (at most one per file).
annotation state @0xbef704e3cbde6b39 (struct) :Void;

# Struct: a command of the aggregate. The Text is the command's wire name (what a node
# that forwards the command to the shard's owner sends before the message); empty
# means the struct name in snake_case. Generates `using command = std::variant<...>`
# (in declaration order) and encode_command/decode_command in <name>_schema. Commands
# are not stored, but nodes of different versions exchange them: never change a name.
annotation command @0x865f11baf513bce8 (struct) :Text;

# Struct: what the aggregate's commands reply (at most one per file). Generates
# `using reply = <struct>` and encode_reply/decode_reply in <name>_schema.
annotation reply @0xe22c629f0ffef2f6 (struct) :Void;

# Struct (event or state): the schema version written by encode (default 1). Decode
# accepts every version from 1 to this one (Cap'n Proto rules: a field added later
# reads its default from older payloads) and returns nullopt above it.
annotation version @0x9be20ffa998d9031 (struct) :UInt32;
