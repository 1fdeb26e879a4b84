#!/usr/bin/env python3
"""Writes the seed corpus of the fuzz targets into tests/fuzz/corpus/ (run once; the
files are checked in). Envelopes come from the `capnp` tool and the schema, so they
are exactly what the journal and Kafka store."""
import os
import struct
import subprocess
import sys

root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
corpus = os.path.join(root, "tests", "fuzz", "corpus")
schema = os.path.join(root, "persistence", "schema", "envelope.capnp")


def crc32c(data: bytes) -> int:
    crc = 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


def capnp_encode(struct: str, text: str, packed: bool) -> bytes:
    cmd = ["capnp", "encode"] + (["--packed"] if packed else []) + [schema, struct]
    return subprocess.run(cmd, input=text.encode(), capture_output=True, check=True).stdout


def envelope(pid, seq, pos, etype, payload: bytes, tags=(), extra=""):
    fields = ['persistenceId = "%s"' % pid, "seq = %d" % seq, "position = %d" % pos,
              "timestampNs = 1764547200000000000", 'eventType = "%s"' % etype,
              "schemaVersion = 1", 'writerNode = "node-1"', "checksum = %d" % crc32c(payload)]
    if payload:  # the text format has no empty data literal: leave it unset
        fields.append('payload = 0x"%s"' % payload.hex())
    if tags:
        fields.append("tags = [%s]" % ", ".join('"%s"' % t for t in tags))
    return "(" + ", ".join(fields) + extra + ")"


def write(target, name, data: bytes):
    os.makedirs(os.path.join(corpus, target), exist_ok=True)
    with open(os.path.join(corpus, target, name), "wb") as f:
        f.write(data)


envelopes = {
    "deposit": envelope("account:c-1", 1, 1, "deposited", b"\x00\x00\x00\x00\x01\x00\x00\x00"
                        b"\x64\x00\x00\x00\x00\x00\x00\x00"),
    "empty_payload": envelope("account:c-2", 7, 42, "closed", b""),
    "tags": envelope("order:o-9", 3, 1000, "shipped", b"abc", tags=("eu", "priority"),
                     extra=', correlationId = "req-1", causationId = "cmd-2", shardEpoch = 5'),
}
for name, text in envelopes.items():
    write("record_unframe_fuzz", name, capnp_encode("Envelope", text, packed=True))
    write("envelope_decode_fuzz", name, capnp_encode("Envelope", text, packed=False))
write("record_unframe_fuzz", "zero_run", b"\x00\x05")
snap = ('(persistenceId = "account:c-1", seq = 12, timestampNs = 5, stateType = "account",'
        ' schemaVersion = 2, payload = 0x"0102", checksum = %d)' % crc32c(b"\x01\x02"))
write("envelope_decode_fuzz", "snapshot", capnp_encode("Snapshot", snap, packed=False))

args = {
    "bank_cli_fuzz": {
        "open": ["open", "c-1", "--owner", "Ann"],
        "deposit": ["deposit", "c-1", "100"],
        "balance_time": ["balance", "c-1", "--as-of-time=2026-11-22T06:40:00.123456789Z"],
        "balance_seq": ["balance", "c-1", "--as-of-seq", "3"],
        "load": ["load", "--accounts", "5", "--ops", "100", "--clients", "2", "--seed=7"],
        "report": ["report", "--source", "kafka", "--timeout-ms=500"],
    },
    "strata_cli_args_fuzz": {
        "dump": ["dump", "--data", "D", "--stream=account:c-1", "--from", "2", "--limit=10"],
        "verify": ["verify", "--data=D", "-h"],
        "max": ["--limit", "18446744073709551615", "--from", "18446744073709551616"],
    },
    "runtime_config_fuzz": {
        "options": ["--data", "D", "--durability=nosync", "--snapshot-every.account=5",
                    "balances"],
        "kafka": ["--kafka", "mock", "--replication", "replicated", "--kafka-partitions=3",
                  "deposit", "c-1", "1"],
        "set": ["max-inflight-writes", "64"],
    },
}
for target, seeds in args.items():
    for name, argv in seeds.items():
        write(target, name, b"\0".join(a.encode() for a in argv))

times = {
    "nanos": b"2026-11-22T06:40:00.123456789Z",
    "seconds": b"2026-11-22T06:40:00Z",
    "leap": b"2016-12-31T23:59:60z",
    "epoch_int": (1764547200123456789).to_bytes(8, "little"),
}
for name, data in times.items():
    write("iso8601_fuzz", name, data)
ids = {"plain": b"acct-1", "newline": b"a\nseq=99 type=deposited",
       "utf8_bidi": "caf\u00e9 \u202e".encode()}
for name, data in ids.items():
    write("ids_fuzz", name, data)


# Cluster gossip (cluster/src/wire.hpp, format 2) with 4 shards, a heartbeat and member
# ids as text: what a node decodes from the network.
def u8(x): return struct.pack("<B", x)
def u16(x): return struct.pack("<H", x)
def u32(x): return struct.pack("<I", x)
def u64(x): return struct.pack("<Q", x)


def member(m):
    host, port, inc = m
    return u16(len(host)) + host.encode() + u16(port) + u64(inc)


def gossip(kind, members, table, rows):
    out = u8(2) + u8(kind) + u32(len(members))
    for m, status, version in members:
        out += member(m) + u8(status) + u64(version)
    out += u32(len(table))
    for phase, holder, epoch in table:
        out += u8(phase) + (u8(1) + member(holder) if holder else u8(0)) + u64(epoch)
    out += u32(len(rows))
    for observer, version, subjects in rows:
        out += member(observer) + u64(version) + u32(len(subjects))
        for s in subjects:
            out += member(s)
    return out


a, b, c = ("127.0.0.1", 25500, 11), ("127.0.0.1", 25501, 22), ("::1", 25502, 33)
UP, DOWN, SERVING, HANDED_OVER, RESTORING = 1, 4, 1, 4, 5
cluster_seeds = {
    "three_up": gossip(1, [(a, UP, 2), (b, UP, 2), (c, UP, 2)],
                       [(SERVING, a, 1), (SERVING, b, 1), (SERVING, c, 1), (SERVING, a, 3)], []),
    "unreachable": gossip(2, [(a, UP, 2), (b, UP, 2), (c, UP, 2)],
                          [(SERVING, a, 1), (SERVING, b, 1), (SERVING, c, 1), (SERVING, c, 2)],
                          [(a, 1, [c]), (b, 3, [c])]),
    "failover": gossip(2, [(a, UP, 2), (b, UP, 2), (c, DOWN, 3)],
                       [(SERVING, a, 1), (SERVING, b, 1), (HANDED_OVER, a, 2),
                        (RESTORING, b, 5)], [(a, 2, []), (b, 4, [])]),
    "empty": gossip(1, [], [(0, None, 0)] * 4, []),
    "heartbeat": u8(2) + u8(1) + u64(123456789),
    "heartbeat_echo": u8(2) + u8(2) + u64(987654321),
    "member_id": b"127.0.0.1:25500#42",
    "member_id_v6": b"[::1]:4500#18446744073709551615",
}
for name, data in cluster_seeds.items():
    write("cluster_wire_fuzz", name, data)
print("seeds written to", corpus, file=sys.stderr)
