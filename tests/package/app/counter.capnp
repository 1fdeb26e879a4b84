@0x81f52538a7d23d21;
# The sample application's events (tests/package): a counter's one event, and a record
# of the application's own that embeds strata's envelope (shows that the installed
# envelope schema can be imported: import root = STRATA_CAPNP_IMPORT_DIR).

$import "/capnp/c++.capnp".namespace("app::schema");
using Strata = import "/strata/schema/envelope.capnp";

struct Added {
  amount @0 :Int64;
}

struct Audited {
  envelope @0 :Strata.Envelope;
  note @1 :Text;
}
