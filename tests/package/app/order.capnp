# An order aggregate whose events and state live only here (tests/package): the app
# writes handle and apply; capnpc-strata (strata_add_schema) generates the rest.
@0xc3b1f0e2d4a59687;

$import "/capnp/c++.capnp".namespace("shop::schema");
using Strata = import "/strata/schema/strata.capnp";
$Strata.namespace("shop");
$Strata.aggregate("order");

struct Placed $Strata.event("placed") {
  item @0 :Text;
  quantity @1 :UInt32;
}

struct Paid $Strata.event("paid") {
  cents @0 :Int64;
}

struct OrderState $Strata.state {
  item @0 :Text;
  quantity @1 :UInt32;
  paidCents @2 :Int64;
}
