#!/usr/bin/env bash
# The network-partition test (issue 11, Cluster II): three `strata-bank node` processes,
# each in a Linux network namespace of its own, bound to that namespace's non-loopback
# address, and one strata-kafka-mock in a hub namespace that holds
# the bridge every node is linked to. Under `load`, node 3 is cut off from nodes 1 and 2
# (nft rules in the node namespaces; Kafka stays reachable), must down itself (exit 5),
# the others must down it and own every shard; the link heals, node 3 restarts (same
# data directory, new incarnation) and takes shards back. Then: every acknowledged op
# at its seq, histories 1..n, balances equal the folds, and no two valid records of the
# topic at one (persistence id, seq) with different events. See docs/cluster.md
# ("Partition test").
#
#   partition_test.sh STRATA_BANK STRATA_KAFKA_MOCK SOURCE_DIR [addr|nat]
#
# addr (default): each node binds its namespace's address. nat: each node binds
# 127.0.0.1 in its namespace and is reached there through NAT, as Kafka is.
#
# Needs root, iproute2 and nftables (scripts/install-deps), kcat and python3. Every
# namespace, link, rule and process it makes is removed on exit, also on failure.
# STRATA_PARTITION_KEEP=1 keeps the work directory (logs) after a success too.
set -euo pipefail

bank=${1:?usage: partition_test.sh STRATA_BANK STRATA_KAFKA_MOCK SOURCE_DIR}
mock=${2:?usage: partition_test.sh STRATA_BANK STRATA_KAFKA_MOCK SOURCE_DIR}
# SOURCE_DIR (the source tree) is not used at present; ctest passes it.
: "${3:?usage: partition_test.sh STRATA_BANK STRATA_KAFKA_MOCK SOURCE_DIR}"
bank=$(readlink -f "$bank")
mock=$(readlink -f "$mock")

t0=$SECONDS
step() { echo "[partition $(date -u +%T) +$((SECONDS - t0))s] $*"; }
fail() {
  echo "[partition $(date -u +%T) +$((SECONDS - t0))s] FAIL: $*" >&2
  exit 1
}
skip() {
  echo "[partition] SKIP: $*"
  exit 77
}

[[ $(id -u) == 0 ]] || skip "needs root (network namespaces)"
for tool in ip nft kcat python3; do
  command -v "$tool" >/dev/null || skip "needs $tool (scripts/install-deps)"
done

# Names unique to this run (namespace names are global; links live inside them).
tag="sp$$"
hub="${tag}-hub"
ns=("" "${tag}-n1" "${tag}-n2" "${tag}-n3")
net=10.77.0
hub_ip=$net.100
ip_of() { echo "$net.1$1"; }
port=4500
# addr: node I binds its namespace's address $net.1I:4500. nat: node I binds
# 127.0.0.1:450I in its namespace, and every namespace reaches it there through NAT (as
# Kafka).
transport=${4:-addr}
[[ $transport == addr || $transport == nat ]] || fail "transport must be addr or nat"
addr_of() {
  if [[ $transport == addr ]]; then echo "$(ip_of "$1"):$port"; else echo "127.0.0.1:$((port + $1))"; fi
}

work=$(mktemp -d /tmp/strata-partition.XXXXXX)
declare -A pids=()
created_ns=()

cleanup() {
  local rc=$? p n
  set +e
  for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
  # Anything else still running inside our namespaces was started by this script.
  for n in "${created_ns[@]}"; do
    for p in $(ip netns pids "$n" 2>/dev/null); do kill -KILL "$p" 2>/dev/null; done
  done
  # Deleting a namespace deletes its veth ends (and so the pairs), the bridge and its
  # nft tables.
  for n in "${created_ns[@]}"; do ip netns del "$n" 2>/dev/null; done
  if ((rc != 0)); then
    echo "[partition] failed (exit $rc); logs in $work:" >&2
    for f in "$work"/*.log; do
      [[ -f "$f" ]] || continue
      echo "--- tail $f" >&2
      tail -n 15 "$f" >&2
    done
  elif [[ "${STRATA_PARTITION_KEEP:-0}" != 1 ]]; then
    rm -rf "$work"
  else
    echo "[partition] logs kept in $work"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Polls "$@" every 0.2 s until it succeeds or DEADLINE seconds pass.
await() {
  local limit=$1 deadline=$((SECONDS + $1)) what=$2
  shift 2
  until "$@"; do
    ((SECONDS < deadline)) || fail "not within ${limit}s: $what"
    sleep 0.2
  done
}

in_ns() { ip netns exec "$1" "${@:2}"; }

# ---------------------------------------------------------------------------------------
step "1. namespaces: hub $hub (bridge $hub_ip, Kafka mock, clients) and ${ns[*]:1}"
ip netns add "$hub"
created_ns+=("$hub")
in_ns "$hub" ip link set lo up
in_ns "$hub" ip link add br0 type bridge
in_ns "$hub" ip addr add "$hub_ip/24" dev br0
in_ns "$hub" ip link set br0 up
for i in 1 2 3; do
  ip netns add "${ns[$i]}"
  created_ns+=("${ns[$i]}")
  in_ns "${ns[$i]}" ip link set lo up
  # One veth pair, created straight into the two namespaces (nothing in the root one).
  ip link add eth0 netns "${ns[$i]}" type veth peer name "n$i" netns "$hub"
  in_ns "${ns[$i]}" ip addr add "$(ip_of "$i")/24" dev eth0
  in_ns "${ns[$i]}" ip link set eth0 up
  in_ns "$hub" ip link set "n$i" master br0
  in_ns "$hub" ip link set "n$i" up
done

# ---------------------------------------------------------------------------------------
step "2. strata-kafka-mock in $hub"
in_ns "$hub" "$mock" --bootstrap-file "$work/kafka.bootstrap" >"$work/kafka.log" 2>&1 </dev/null &
pids[kafka]=$!
bootstrap_ready() {
  kill -0 "${pids[kafka]}" 2>/dev/null || fail "strata-kafka-mock exited (log $work/kafka.log)"
  [[ -s "$work/kafka.bootstrap" ]]
}
await 30 "the mock's bootstrap list" bootstrap_ready
bootstrap=$(tr -d '\n' <"$work/kafka.bootstrap")
kafka_ports=$(tr ',' '\n' <<<"$bootstrap" | sed 's/.*://' | paste -sd, -)
step "   bootstrap $bootstrap"

# The mock's brokers listen on 127.0.0.1 of the hub and advertise 127.0.0.1:PORT. Each
# node namespace sends 127.0.0.1:PORT (those ports only) to the hub's bridge address
# (DNAT in output, SNAT to its own address), and the hub sends what arrives there on
# those ports back to 127.0.0.1 (DNAT in prerouting); route_localnet lets the kernel
# route 127.0.0.1 across the link. With transport nat the nodes' ports are forwarded the
# same way: 127.0.0.1:450J of any namespace is node J's 127.0.0.1:450J.
nat_table() { # NAMESPACE OWN_ADDRESS DEVICE ; rules on stdin: "out PORTS TO" / "in PORTS"
  local n=$1 own=$2 dev=$3 kind ports to out="" in=""
  while read -r kind ports to; do
    case $kind in
      out) out+="    ip daddr 127.0.0.1 tcp dport { $ports } dnat to $to"$'\n' ;;
      in) in+="    iifname \"$dev\" ip daddr $own tcp dport { $ports } dnat to 127.0.0.1"$'\n' ;;
    esac
  done
  in_ns "$n" sysctl -qw net.ipv4.conf.all.route_localnet=1
  in_ns "$n" nft -f - <<EOF
table ip strata_nat {
  chain output {
    type nat hook output priority -100; policy accept;
$out  }
  chain postrouting {
    type nat hook postrouting priority 100; policy accept;
    oifname "$dev" ip saddr 127.0.0.0/8 snat to $own
  }
  chain prerouting {
    type nat hook prerouting priority -100; policy accept;
$in  }
}
EOF
}
{
  echo "in $kafka_ports"
  if [[ $transport == nat ]]; then for j in 1 2 3; do echo "out $((port + j)) $(ip_of "$j")"; done; fi
} | nat_table "$hub" "$hub_ip" br0
for i in 1 2 3; do
  {
    echo "out $kafka_ports $hub_ip"
    if [[ $transport == nat ]]; then
      echo "in $((port + i))"
      for j in 1 2 3; do ((j == i)) || echo "out $((port + j)) $(ip_of "$j")"; done
    fi
  } | nat_table "${ns[$i]}" "$(ip_of "$i")" eth0
done
for i in 1 2 3; do
  in_ns "${ns[$i]}" kcat -b "$bootstrap" -L -m 5 >"$work/kcat-n$i.txt" 2>&1 ||
    fail "node namespace $i does not reach Kafka at $bootstrap (log $work/kcat-n$i.txt)"
done
step "   every node namespace reaches Kafka at $bootstrap"

# ---------------------------------------------------------------------------------------
start_node() {
  local i=$1 addr
  addr=$(addr_of "$i")
  in_ns "${ns[$i]}" "$bank" --data "$work/node-$i" --kafka "$bootstrap" --replication replicated \
    node --host "${addr%:*}" --port "${addr##*:}" --seeds "$(addr_of 1)" \
    >>"$work/node-$i.log" 2>&1 </dev/null &
  pids[node$i]=$!
}
client() {
  in_ns "$hub" "$bank" --cluster "$(addr_of 1)" "$@"
}
alive() { kill -0 "${pids[$1]}" 2>/dev/null; }

# All three up (one line per address) and 64 shards with an owner each (none moving or
# unowned); $1: the address that must own at least one shard (optional).
all_serving() {
  local i m s
  for i in 1 2 3; do alive "node$i" || fail "node $i exited (log $work/node-$i.log)"; done
  m=$(client members 2>/dev/null) || return 1
  for i in 1 2 3; do grep -q "^$(addr_of "$i") up " <<<"$m" || return 1; done
  s=$(client shards 2>/dev/null) || return 1
  [[ $(grep -cE '^[0-9]+ ' <<<"$s") == 64 ]] || return 1
  ! grep -qE '^[0-9]+ (moving|-)( |$)' <<<"$s" || return 1
  if [[ -n "${1:-}" ]]; then grep -qE "^[0-9]+ $1 " <<<"$s" || return 1; fi
  echo "$m" >"$work/members.last"
  echo "$s" >"$work/shards.last"
}

step "3. three nodes (replicated, transport $transport), node 1 the seed"
for i in 1 2 3; do start_node "$i"; done
await 60 "3 members up and 64 shards owned" all_serving "$(addr_of 3)"
inc3=$(awk -v a="$(addr_of 3)" '$1 == a && $2 == "up" {print $3}' "$work/members.last")
step "   up: $(awk '{print $1}' "$work/members.last" | paste -sd' ' -); node 3 owns $(grep -c " $(addr_of 3) " "$work/shards.last") shards"

# ---------------------------------------------------------------------------------------
step "4. load through node 1 (client in $hub)"
ack_log=$work/acks.log
in_ns "$hub" "$bank" --cluster "$(addr_of 1)" load --accounts 40 --ops 14000 \
  --clients 8 --ack-log "$ack_log" --on-error continue --seed 11 \
  >"$work/load.out" 2>"$work/load.log" </dev/null &
pids[load]=$!
acked() { # a few hundred acknowledged ops: the load is under way
  [[ -f "$ack_log" ]] && (($(wc -l <"$ack_log") >= 300)) && return 0
  alive load || fail "load ended before its first ack (log $work/load.log)"
  return 1
}
await 30 "300 acknowledged ops" acked

# ---------------------------------------------------------------------------------------
[[ -n "${STRATA_PARTITION_HOLD:-}" ]] && sleep "$STRATA_PARTITION_HOLD"
step "5. partition: node 3 cut off from nodes 1 and 2 (Kafka stays reachable)"
acks_before=$(wc -l <"$ack_log")
# Each side drops what it sends to the other: established connections (heartbeats,
# gossip, forwarded commands) go silent; a new connection is refused at once with ICMP
# host-unreachable, as from a router that lost the route, so that the nodes' connect
# attempts across the cut fail at once instead of waiting for SYN retransmissions.
cut_off() { # NAMESPACE PEER_ADDRESS...
  local n=$1 peers
  shift
  peers=$(printf '%s, ' "$@")
  in_ns "$n" nft -f - <<EOF
table ip strata_partition {
  chain output {
    type filter hook output priority 0; policy accept;
    ip daddr { ${peers%, } } ct state new reject with icmp type host-unreachable
    ip daddr { ${peers%, } } drop
  }
}
EOF
}
cut_off "${ns[3]}" "$(ip_of 1)" "$(ip_of 2)"
cut_off "${ns[1]}" "$(ip_of 3)"
cut_off "${ns[2]}" "$(ip_of 3)"
cut_at=$SECONDS
in_ns "${ns[3]}" kcat -b "$bootstrap" -L -m 5 >"$work/kcat-n3-cut.txt" 2>&1 ||
  fail "node 3 lost Kafka with the cut (log $work/kcat-n3-cut.txt)"
# Node 3 must stop serving: it logs that it was downed (the losing side) within 20 s.
node3_downed() {
  grep -q "was downed by the cluster and exits" "$work/node-3.log" && return 0
  alive node3 || fail "node 3 exited without saying it was downed (log $work/node-3.log)"
  return 1
}
await 20 "node 3 (the minority) downs itself" node3_downed
step "   node 3 downed itself $((SECONDS - cut_at))s after the cut: $(grep -m1 -o 'is DOWN.*' "$work/node-3.log" | cut -c1-100)"
# Then it must exit 5. Known strata/CAF bug (docs/cluster.md, Limits): now and then the
# downed process hangs in caf::io::middleman::stop() while its connections to the silent
# peers are still open; it is not killed then (the flock of its data directory outlived
# a SIGKILL in such a run) but the link is healed early, after which it exits. Reported
# as a WARNING; STRATA_PARTITION_STRICT=1 makes it a failure.
node3_exited() { ! alive node3; }
heal() { for i in 1 2 3; do in_ns "${ns[$i]}" nft delete table ip strata_partition; done; }
healed=no
exit_wait=${STRATA_PARTITION_EXIT_WAIT:-15}
if ! (
  fail() { exit 1; }
  await "$exit_wait" "node 3 exits" node3_exited
) 2>/dev/null; then
  [[ "${STRATA_PARTITION_STRICT:-0}" != 1 ]] ||
    fail "node 3 was downed but has not exited ${exit_wait}s later (log $work/node-3.log)"
  echo "[partition] WARNING: node 3 was downed but has not exited ${exit_wait}s later" \
    "(known bug: stuck in caf::io::middleman::stop(), docs/cluster.md Limits); healing the link now" >&2
  heal
  healed=yes
  await 30 "node 3 exits once the link is healed" node3_exited
fi
rc=0
wait "${pids[node3]}" || rc=$?
((rc == 5)) || fail "node 3 exited $rc, not 5 (downed) (log $work/node-3.log)"
step "   node 3 exited 5 $((SECONDS - cut_at))s after the cut"
unset 'pids[node3]'

majority_took_over() {
  local m s
  for i in 1 2; do alive "node$i" || fail "node $i exited (log $work/node-$i.log)"; done
  m=$(client members 2>/dev/null) || return 1
  grep -q "^$(addr_of 1) up " <<<"$m" && grep -q "^$(addr_of 2) up " <<<"$m" || return 1
  ! grep -q "^$(addr_of 3) \(up\|joining\|leaving\|exiting\) " <<<"$m" || return 1
  s=$(client shards 2>/dev/null) || return 1
  [[ $(grep -cE '^[0-9]+ ' <<<"$s") == 64 ]] || return 1
  ! grep -qE '^[0-9]+ (moving|-)( |$)' <<<"$s" || return 1
  ! grep -q " $(addr_of 3) " <<<"$s" || return 1
  echo "$m" >"$work/members.last"
}
await 30 "nodes 1 and 2 down node 3 and own every shard" majority_took_over
step "   majority serves all 64 shards $((SECONDS - cut_at))s after the cut; node 3: $(grep "^$(addr_of 3) " "$work/members.last" | awk '{print $2}' | paste -sd, -)"

# ---------------------------------------------------------------------------------------
step "6. heal the link; restart node 3 (same data, new incarnation)"
[[ $healed == yes ]] || heal
heal_at=$SECONDS
start_node 3
await 60 "3 members up again and node 3 owning shards" all_serving "$(addr_of 3)"
inc3_new=$(awk -v a="$(addr_of 3)" '$1 == a && $2 == "up" {print $3}' "$work/members.last")
[[ -n "$inc3_new" && "$inc3_new" != "$inc3" ]] ||
  fail "node 3 is up as incarnation '$inc3_new', not a new one (was $inc3)"
step "   back $((SECONDS - heal_at))s after the heal as incarnation $inc3_new (was $inc3): node 3 owns $(grep -c " $(addr_of 3) " "$work/shards.last") shards"
alive load && load_running=yes || load_running=no
step "   load still running at the heal: $load_running (acks before the cut $acks_before, now $(wc -l <"$ack_log"))"

# ---------------------------------------------------------------------------------------
step "7. waiting for the load to end"
load_ended() { ! alive load; }
await 240 "the load ends" load_ended
rc=0
wait "${pids[load]}" || rc=$?
unset 'pids[load]'
((rc == 0 || rc == 4)) || fail "load exited $rc (log $work/load.log)"
grep -q "load: accounts=" "$work/load.out" || fail "load printed no summary ($work/load.out)"
step "   load: $(grep 'load: accounts=' "$work/load.out")"

step "8. checks: acknowledged ops, histories, balances"
client balances >"$work/balances.txt"
: >"$work/histories.txt"
while read -r id rest; do
  client history "$id" | sed "s|^|$id |" >>"$work/histories.txt"
done <"$work/balances.txt"
python3 - "$work/balances.txt" "$work/histories.txt" "$ack_log" <<'EOF'
import sys
bal_f, hist_f, ack_f = sys.argv[1:]
balances = {}
for line in open(bal_f):
    ident, b = line.rstrip("\n").rsplit(" balance=", 1)
    balances[ident] = int(b)
hist = {}
for line in open(hist_f):
    ident, seq, time, typ, *rest = line.rstrip("\n").split(" ")
    assert seq.startswith("seq=") and typ.startswith("type="), line
    amount = 0
    if rest and rest[0].startswith("amount="):
        amount = int(rest[0][7:])
    hist.setdefault(ident, []).append((int(seq[4:]), typ[5:], amount))
errors = []
for ident, b in balances.items():
    h = hist.get(ident, [])
    for k, (seq, _, _) in enumerate(h):
        if seq != k + 1:
            errors.append(f"{ident}: history has seq {seq} at index {k}")
            break
    fold = sum(a if t == "deposited" else -a if t == "withdrawn" else 0 for _, t, a in h)
    if fold != b:
        errors.append(f"{ident}: balance {b} but the history folds to {fold}")
text = open(ack_f).read()
lines = text.split("\n")[:-1]  # a last line without '\n' is torn
seen = set()
for line in lines:
    ident, seq, op, amount = line.split(" ")
    seq, amount = int(seq), int(amount)
    if (ident, seq) in seen:
        errors.append(f"two acknowledged ops at {ident} seq {seq}")
    seen.add((ident, seq))
    h = hist.get(ident, [])
    if not 1 <= seq <= len(h):
        errors.append(f"acknowledged {line!r} is not in the history ({len(h)} events)")
        continue
    _, t, a = h[seq - 1]
    want = "deposited" if op == "deposit" else "withdrawn"
    if t != want or a != amount:
        errors.append(f"acknowledged {line!r}, history has {t} {a} at seq {seq}")
for e in errors[:20]:
    print("  " + e, file=sys.stderr)
print(f"  {len(balances)} accounts, {sum(len(h) for h in hist.values())} events, "
      f"{len(lines)} acknowledged ops checked; {len(errors)} errors")
sys.exit(1 if errors else 0)
EOF

step "9. topic check: strata.account read with kcat, fencing applied from the headers"
# One header line per record, then its key and value bytes and a newline.
in_ns "$hub" kcat -C -b "$bootstrap" -t strata.account -e -q \
  -f '%p %o %K %S %h\n%k%s\n' >"$work/topic.bin" 2>"$work/kcat-topic.log" ||
  fail "kcat could not read strata.account (log $work/kcat-topic.log)"
python3 - "$work/topic.bin" <<'EOF'
import hashlib, sys
data = open(sys.argv[1], "rb").read()
pos, records = 0, []
while pos < len(data):
    nl = data.index(b"\n", pos)
    p, o, klen, vlen, *h = data[pos:nl].decode().split(" ", 4)
    headers = {}
    for kv in (h[0].split(",") if h and h[0] else []):
        k, _, v = kv.partition("=")
        headers[k] = v
    klen, vlen = max(int(klen), 0), max(int(vlen), 0)
    body = data[nl + 1: nl + 1 + klen + vlen]
    pos = nl + 1 + klen + vlen + 1
    records.append((int(p), int(o), body[:klen], body[klen:], headers))
records.sort(key=lambda r: (r[0], r[1]))
in_force, seen = {}, {}
claims = valid = invalid = repeats = conflicts = 0
for p, o, key, value, headers in records:
    epoch = headers.get("strata-epoch", "")
    if "strata-claim" in headers:
        claims += 1
        e = int(epoch or 0)
        in_force[p] = max(in_force.get(p, e), e)
        continue
    if p in in_force and int(epoch or 0) != in_force[p]:
        invalid += 1
        continue
    valid += 1
    seq = headers.get("strata.seq")
    if seq is None:
        print(f"  record {p}/{o} has no strata.seq header", file=sys.stderr)
        conflicts += 1
        continue
    what = hashlib.sha256(value).hexdigest()
    prev = seen.setdefault((key, seq), what)
    if prev != what:
        conflicts += 1
        print(f"  {key!r} seq {seq}: two different valid events (partition {p} offset {o})",
              file=sys.stderr)
print(f"  {len(records)} records: {claims} claims, {valid} valid events "
      f"({len(seen)} distinct (key, seq), {valid - len(seen)} repeats), "
      f"{invalid} fenced; {conflicts} conflicts")
if claims < 64:
    print("  fewer claims than shards", file=sys.stderr)
    sys.exit(1)
sys.exit(1 if conflicts else 0)
EOF

step "PASS in $((SECONDS - t0))s"
