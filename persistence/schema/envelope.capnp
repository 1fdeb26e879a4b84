# strata's stored and published formats. Every event in the journal, every snapshot,
# and the value of every Kafka record the bridge produces is one of these messages
# Framing (docs/kafka.md, "Consumers in other languages"): unpacked (NOT the packed
# encoding), with the standard segment table (capnp::messageToFlatArray). strata writes
# one segment today; readers should accept the general framing. `payload` is framed the
# same way; its root struct is given by (eventType, schemaVersion) in the aggregate's
# schema (the table capnpc-strata generates: <schema>.strata.md / .strata.json).
#
# Decode a Kafka record outside C++:
#   kcat -C -b HOST:PORT -t strata.account -o beginning -e -f '%s' -c 1 \
#     | capnp decode persistence/schema/envelope.capnp Envelope
@0xb67f819a8fafaf62;

$import "/capnp/c++.capnp".namespace("strata::schema");

struct Envelope {
  persistenceId @0 :Text;    # the stream "<aggregate>:<entity id>", e.g. "account:acct-42"
  seq @1 :UInt64;            # 1-based, gap-free per stream
  position @2 :UInt64;       # 1-based global log position on the writing node
  timestampNs @3 :Int64;     # wall clock at append, ns since the Unix epoch
  eventType @4 :Text;        # e.g. "deposited"
  schemaVersion @5 :UInt32;  # version of the payload schema
  payload @6 :Data;          # the aggregate's own Cap'n Proto event message
  tags @7 :List(Text);
  correlationId @8 :Text;
  causationId @9 :Text;
  writerNode @10 :Text;      # node that appended the event
  shardEpoch @11 :UInt64;    # ownership epoch of the shard at append (fencing)
  checksum @12 :UInt32;      # CRC32C (Castagnoli) of payload
}

struct Snapshot {
  persistenceId @0 :Text;
  seq @1 :UInt64;            # the state includes every event up to this seq
  timestampNs @2 :Int64;
  stateType @3 :Text;
  schemaVersion @4 :UInt32;
  payload @5 :Data;          # the aggregate's own Cap'n Proto state message
  checksum @6 :UInt32;       # CRC32C of payload
}
