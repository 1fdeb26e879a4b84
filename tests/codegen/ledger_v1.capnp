# Version 1 of a test aggregate's schema (tests/codegen): every field kind capnpc-strata
# maps, in events, commands and the reply. ledger_v2.capnp is the same schema after a
# change (fields added, an event renamed, a command dropped); codegen_test.cpp decodes
# v1 bytes with the v2 code.
@0xd7e0c4b1a2f39e51;

$import "/capnp/c++.capnp".namespace("ledger_v1::schema");
using Strata = import "/strata/schema/strata.capnp";
$Strata.namespace("ledger_v1");
$Strata.aggregate("ledger");

enum Kind {
  cash @0;
  bankCard @1;
}

struct Meta {
  note @0 :Text;
  tags @1 :List(Text);
}

struct Credited $Strata.event("credited") {
  cents @0 :Int64;
  kind @1 :Kind;
  meta @2 :Meta;
}

struct Debited $Strata.event("debited") {
  cents @0 :Int64;
  flags @1 :List(Bool);
  small @2 :Int8 = -3;
  ratio @3 :Float64;
  blob @4 :Data;
  counts @5 :List(UInt16);
  metas @6 :List(Meta);
  kinds @7 :List(Kind);
  limit @8 :UInt64 = 1000;
}

struct Frozen $Strata.event("") {
}

struct LedgerState $Strata.state {
  balance @0 :Int64;
  lastKind @1 :Kind = bankCard;
}

struct Audit $Strata.command("") {
  note @0 :Text;
}

struct Transfer $Strata.command("transfer") {
  debit @0 :Debited;
  to @1 :Text;
  kinds @2 :List(Kind);
}

struct Receipt $Strata.reply {
  balance @0 :Int64;
  metas @1 :List(Meta);
}
