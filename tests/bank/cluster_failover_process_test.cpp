// Failures of a bank cluster in real processes on loopback (issue 11, Cluster II): a
// node SIGKILLed under `load --ack-log` with `replicated` durability, a node frozen
// (SIGSTOP) past the detection time and woken, and a killed node restarted. After each,
// the checker of cluster_rig.hpp (every acknowledged op exactly once at its seq, balances
// equal the folds) and a check of the Kafka topic read by a plain librdkafka consumer:
// among the valid records (docs/kafka.md, "Fencing"), no (persistence id, seq) carries
// two different events.
#include "../kafka/kafka_test_util.hpp"
#include "cluster_rig.hpp"

#include "strata/persistence/codec.hpp"
#include "strata/persistence/timestamp.hpp"

#include <doctest/doctest.h>

#include <signal.h>

#include <map>
#include <set>
#include <sstream>
#include <string>
#include <tuple>

using namespace bank::test;

namespace {

const std::vector<std::string> replicated{"--replication", "replicated"};

/// What the topic check found.
struct topic_report {
  std::uint64_t events = 0;    ///< valid event records
  std::uint64_t claims = 0;    ///< claim records
  std::uint64_t invalid = 0;   ///< event records behind a newer claim (fenced)
  std::uint64_t conflicts = 0; ///< valid (pid, seq) seen with two different events
  std::uint64_t repeats = 0;   ///< valid (pid, seq) seen twice with the same event
  /// Claims per member named in the claim records' `strata-claim` header.
  std::map<std::string, std::uint64_t> claimants;
  /// Every valid event as (persistence id, seq, timestamp ns).
  std::set<std::tuple<std::string, std::uint64_t, std::int64_t>> valid;
};

/// Reads every record of strata.account with a plain consumer and applies the fencing
/// rule by itself, from the headers alone: per partition, an event record is valid when
/// its `strata-epoch` header equals the epoch of the last claim record before it (or
/// when no claim precedes it). Two valid records of one (pid, seq) must be the same
/// event (type, payload, timestamp).
topic_report check_topic(const std::string& bootstrap) {
  using strata::persistence::test::is_claim_record;
  auto records = strata::persistence::test::read_topic(bootstrap, "strata.account",
                                                       static_cast<int>(cluster_shards));
  std::sort(records.begin(), records.end(), [](const auto& a, const auto& b) {
    return std::tie(a.partition, a.offset) < std::tie(b.partition, b.offset);
  });
  topic_report out;
  std::map<std::int32_t, std::string> claimed; // partition → epoch of its last claim
  std::map<std::pair<std::string, std::uint64_t>, std::string> seen;
  for (const auto& r : records) {
    auto epoch = r.headers.count("strata-epoch") ? r.headers.at("strata-epoch") : "";
    if (is_claim_record(r)) {
      ++out.claims;
      ++out.claimants[r.headers.count("strata-claim") ? r.headers.at("strata-claim") : ""];
      claimed[r.partition] = epoch;
      continue;
    }
    if (auto c = claimed.find(r.partition); c != claimed.end() && c->second != epoch) {
      ++out.invalid;
      continue;
    }
    ++out.events;
    auto e = strata::persistence::decode_envelope(r.value, "topic record");
    INFO("partition " << r.partition << " offset " << r.offset);
    REQUIRE(e);
    std::string what = e->type + '\0' + e->payload + '\0' + std::to_string(e->timestamp_ns);
    out.valid.emplace(e->persistence_id, e->seq, e->timestamp_ns);
    auto [at, fresh] = seen.emplace(std::make_pair(e->persistence_id, e->seq), what);
    if (!fresh) ++(at->second == what ? out.repeats : out.conflicts);
  }
  return out;
}

/// One event line of `strata journal dump`.
struct dumped_event {
  std::uint64_t position = 0;
  std::string stream;
  std::uint64_t seq = 0;
  std::int64_t time_ns = 0;
};

/// `strata journal dump --data DIR`: position, stream, seq, time, type, payload bytes.
std::vector<dumped_event> dump_journal(const std::string& scratch, const std::string& data) {
  auto dump = run_exe(scratch, STRATA_CLI_PATH, {"journal", "dump", "--data", data});
  INFO("journal dump: " << dump.err);
  REQUIRE(dump.exit_code == 0);
  std::vector<dumped_event> out;
  std::istringstream lines(dump.out);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream fields(line);
    std::string f[4];
    for (auto& x : f)
      std::getline(fields, x, '\t');
    auto t = strata::parse_iso8601(f[3]);
    INFO(line);
    REQUIRE(t);
    out.push_back({std::stoull(f[0]), f[1], std::stoull(f[2]), *t});
  }
  return out;
}

/// The sum of N over a node's "shard S: discarded N unpublished events" log lines.
std::uint64_t discarded_in_log(const std::string& log) {
  const std::string key = ": discarded ";
  std::uint64_t n = 0;
  for (auto at = log.find(key); at != std::string::npos; at = log.find(key, at + 1))
    n += std::stoull(log.substr(at + key.size()));
  return n;
}

/// The shards `address` owns in a `shards` listing.
std::set<std::uint32_t> shards_of(const std::vector<std::string>& owners,
                                  const std::string& address) {
  std::set<std::uint32_t> out;
  for (std::uint32_t s = 0; s < owners.size(); ++s)
    if (owners[s] == address) out.insert(s);
  return out;
}

/// Waits for the load to end and checks it printed its summary (exit 0, or 4 when some
/// ops ended with an error of unknown outcome: `--on-error continue`).
void await_load(process& load) {
  REQUIRE(load.wait_exit(std::chrono::seconds(180)));
  INFO("load stdout: " << load.out() << "\nload stderr: " << load.err());
  CHECK((load.exit_code() == 0 || load.exit_code() == 4));
  CHECK(load.out().find("load: accounts=") != std::string::npos);
}

} // namespace

TEST_CASE("cluster failover: SIGKILL of a node under load loses no acknowledged op") {
  cluster_rig rig{replicated};
  auto before = start_three(rig);
  const auto lost = shards_of(before, rig.address(2));
  REQUIRE(!lost.empty());
  const std::string log = rig.dir().sub("acks.log");
  auto load = start_load(rig, 0, log, 6000, {"--on-error", "continue"});
  REQUIRE(rig.node(2).kill9());
  // Its shards serve again on the survivors; node 2 is down or removed everywhere.
  auto after = rig.await_stable(0, {rig.address(0), rig.address(1)}, {rig.address(2)});
  CHECK(rig.await_stable(1, {rig.address(0), rig.address(1)}, {rig.address(2)}) == after);
  CHECK(shards_of(after, rig.address(2)).empty());
  await_load(*load);
  verify_accounts(rig, 1, log);
  auto t = check_topic(rig.bootstrap());
  INFO("events " << t.events << " claims " << t.claims << " invalid " << t.invalid);
  CHECK(t.events > 0);
  CHECK(t.claims >= 64 + lost.size()); // first owners, then a new claim per lost shard
  CHECK(t.conflicts == 0);
  CHECK(t.repeats == 0);
  // Each claim names its member (address#incarnation), and only the three nodes claim.
  std::set<std::string> addresses;
  for (const auto& [member, n] : t.claimants) {
    INFO("claimant '" << member << "': " << n << " claims");
    auto hash = member.find('#');
    REQUIRE(hash != std::string::npos);
    addresses.insert(member.substr(0, hash));
  }
  for (const auto& a : addresses)
    CHECK((a == rig.address(0) || a == rig.address(1) || a == rig.address(2)));
}

TEST_CASE("cluster failover: a frozen node is downed and, woken, writes nothing") {
  cluster_rig rig{replicated};
  start_three(rig);
  const std::string log = rig.dir().sub("acks.log");
  auto load = start_load(rig, 0, log, 6000, {"--on-error", "continue"});
  rig.node(2).signal(SIGSTOP);
  auto after = rig.await_stable(0, {rig.address(0), rig.address(1)}, {rig.address(2)});
  CHECK(shards_of(after, rig.address(2)).empty());
  // Woken, it learns it was downed: it stops serving and exits with an error. Its
  // write gate refuses every batch gathered after the freeze (it no longer holds the
  // write lease: it heard no majority), so at most the one batch that was between the
  // gate and the journal when it froze lands after the wake-up — at most one event per
  // load client, at the end of its log — and its Kafka records are fenced.
  const auto woken_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
  rig.node(2).signal(SIGCONT);
  REQUIRE(rig.node(2).wait_exit(std::chrono::seconds(60)));
  INFO("node-2 stderr: " << rig.node(2).err());
  CHECK(rig.node(2).exit_code() == 5); // strata-bank node: downed by the cluster
  CHECK(rig.node(2).err().find("was downed by the cluster") != std::string::npos);
  auto journal = dump_journal(rig.dir().path(), rig.dir().sub("node-2"));
  std::uint64_t events = journal.size(), after_wake = 0, last_position = 0, first_after_wake = 0;
  for (const auto& e : journal) {
    last_position = e.position;
    if (e.time_ns >= woken_ns && after_wake++ == 0) first_after_wake = e.position;
  }
  CHECK(events > 0);
  INFO("events written after the wake-up: " << after_wake);
  CHECK(after_wake <= 8); // the load's clients: one command in flight each
  if (after_wake > 0) {
    CHECK(last_position - first_after_wake + 1 == after_wake); // one run at the end
    CHECK(rig.node(2).err().find("fenced") != std::string::npos);
  }
  await_load(*load);
  verify_accounts(rig, 0, log);
  auto t = check_topic(rig.bootstrap());
  INFO("events " << t.events << " claims " << t.claims << " invalid " << t.invalid);
  CHECK(t.conflicts == 0);
  CHECK(t.repeats == 0);
}

TEST_CASE("cluster failover: a killed node restarts as a new incarnation and takes shards back") {
  cluster_rig rig{replicated};
  auto before = start_three(rig);
  const std::string log = rig.dir().sub("acks.log");
  auto load = start_load(rig, 0, log, 4000, {"--on-error", "continue"});
  REQUIRE(rig.node(2).kill9());
  rig.await_stable(0, {rig.address(0), rig.address(1)}, {rig.address(2)});
  // What the killed node's journal holds (it is dead: nothing changes it until restart).
  const auto journal = dump_journal(rig.dir().path(), rig.dir().sub("node-2"));
  REQUIRE(!journal.empty());
  rig.start_node(2); // same port and data directory, new incarnation
  auto back =
    rig.await_stable(0, {rig.address(0), rig.address(1), rig.address(2)}, {rig.address(2)});
  // The same address set gives the same allocation: its shards come back to it.
  CHECK(back == before);
  await_load(*load);
  verify_accounts(rig, 2, log);
  // Before serving a shard again it reconciled its journal with Kafka: it discarded
  // exactly the events of its journal that no valid Kafka record holds (never published
  // before the kill: never acknowledged, in replicated mode), and logged the counts.
  INFO("node-2 (restarted) stderr: " << rig.node(2).err());
  CHECK(rig.node(2).err().find("restored from Kafka") != std::string::npos);
  auto t = check_topic(rig.bootstrap());
  CHECK(t.conflicts == 0);
  CHECK(t.repeats == 0);
  std::uint64_t unpublished = 0;
  for (const auto& e : journal)
    if (t.valid.count({e.stream, e.seq, e.time_ns}) == 0) ++unpublished;
  MESSAGE("the killed node's journal: " << journal.size() << " events, " << unpublished
                                        << " not in Kafka");
  CHECK(discarded_in_log(rig.node(2).err()) == unpublished);
}
