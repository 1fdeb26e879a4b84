# ledger_v1.capnp after a schema change (tests/codegen): Credited is renamed to the
# event "deposited" (the upcaster maps the old type name) and gains `currency` (old
# events read its default); the state gains `frozen`; the command "audit" gains `by`,
# "transfer" is gone and "freeze" is new; the reply gains `frozen`. Same layout
# otherwise.
@0xe1a9b7c3d5f20864;

$import "/capnp/c++.capnp".namespace("ledger_v2::schema");
using Strata = import "/strata/schema/strata.capnp";
$Strata.namespace("ledger_v2");
$Strata.aggregate("ledger");
$Strata.upcaster;

enum Kind {
  cash @0;
  bankCard @1;
}

struct Meta {
  note @0 :Text;
  tags @1 :List(Text);
}

struct Deposited $Strata.event("deposited") $Strata.version(2) {
  cents @0 :Int64;
  kind @1 :Kind;
  meta @2 :Meta;
  currency @3 :Text = "EUR";
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

struct LedgerState $Strata.state $Strata.version(2) {
  balance @0 :Int64;
  lastKind @1 :Kind = bankCard;
  frozen @2 :Bool;
}

struct Audit $Strata.command("audit") {
  note @0 :Text;
  by @1 :Text = "system";
}

struct Freeze $Strata.command("") {
}

struct Receipt $Strata.reply {
  balance @0 :Int64;
  metas @1 :List(Meta);
  frozen @2 :Bool;
}
