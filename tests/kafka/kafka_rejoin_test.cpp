// Tests of rejoin reconciliation (docs/kafka.md, "Rejoining: reconciliation"):
// restore_shard with restore_options::reconcile (kafka/src/reconcile.cpp) discards what a
// node's journal holds of the shard but Kafka does not — another owner's different
// events under the same seqs, an unpublished tail, a stream Kafka never saw — and the
// bridge in cluster mode (bridge_options::hold_unclaimed_shards) publishes no event of a
// shard it holds no claim for. Against librdkafka's in-process mock, as
// kafka_handoff_test.
#include "kafka_test_util.hpp"

#include "strata/kafka/bridge.hpp"
#include "strata/kafka/restore.hpp"
#include "strata/persistence/snapshot_store.hpp"

#include <lmdb.h>

#include <algorithm>
#include <mutex>
#include <string>
#include <vector>

using namespace strata::persistence;
using namespace strata::kafka;
using namespace strata::persistence::test;

namespace {

constexpr std::uint32_t shards = bridge_rig::partitions;

/// The first `n` persistence ids "acct-<i>" of shard `shard`.
std::vector<std::string> pids_of(std::uint32_t shard, std::size_t n) {
  std::vector<std::string> out;
  for (std::uint32_t i = 0; out.size() < n; ++i)
    if (shard_of("acct-" + std::to_string(i), shards) == shard)
      out.push_back("acct-" + std::to_string(i));
  return out;
}

restore_options reconcile_opts(const bridge_rig& rig, std::uint32_t shard) {
  restore_options o;
  o.bootstrap_servers = rig.mock->bootstrap_servers();
  o.topics = {bridge_rig::topic};
  o.shard = shard;
  o.timeout_ms = 30'000;
  o.reconcile = true;
  o.num_shards = shards;
  return o;
}

/// Appends `payloads` to `pid` at head `head` and wakes the bridge (when there is one).
void append_to(journal& j, bridge* b, const std::string& pid, std::uint64_t head,
               const std::vector<std::string>& payloads) {
  append_ok(j, {make_write(pid, head, payloads)});
  if (b) b->notify();
}

/// The stream's events without their local positions.
std::vector<event_record> events_of(const journal& j, const std::string& pid) {
  auto v = load_all(j, pid);
  for (auto& e : v)
    e.position = 0;
  return v;
}

/// The payloads of the event records in the topic (claims left out), sorted.
std::vector<std::string> published_payloads(const bridge_rig& rig) {
  std::vector<std::string> out;
  for (const auto& r : rig.records()) {
    if (is_claim_record(r)) continue;
    auto e = decode_envelope(r.value);
    STRATA_REQUIRE_VALUE(e);
    out.push_back(e->payload);
  }
  std::sort(out.begin(), out.end());
  return out;
}

/// A restarted node: its journal restored shard `s` from Kafka once (it owned it), then
/// wrote events the bridge never published (it crashed before).
struct restarted_node {
  restarted_node(bridge_rig& rig, std::uint32_t s)
    : j(open_journal(journal_opts(rig.dir.sub("restarted")))) {
    auto r = restore_shard(*j, reconcile_opts(rig, s));
    STRATA_REQUIRE_VALUE(r);
    CHECK(r->discarded == 0);
  }
  std::unique_ptr<journal> j;
};

} // namespace

TEST_CASE("reconcile: another owner's different 4..6 replace the journal's unpublished 4..5") {
  STRATA_TEST_SEED(seed);
  bridge_rig rig{1, seed};
  auto& b = rig.start(); // the other owner's bridge
  const std::uint32_t s = 5;
  const auto pid = pids_of(s, 1)[0];
  append_to(*rig.j, &b, pid, 0, {"1", "2", "3"});
  REQUIRE(b.drain(30'000) == 0);
  restarted_node node{rig, s};
  append_to(*node.j, nullptr, pid, 3, {"mine-4", "mine-5"}); // never reached Kafka
  append_to(*rig.j, &b, pid, 3, {"theirs-4", "theirs-5", "theirs-6"});
  REQUIRE(b.drain(30'000) == 0);

  SUBCASE("without reconcile: a conflict") {
    auto o = reconcile_opts(rig, s);
    o.reconcile = false;
    auto r = restore_shard(*node.j, o);
    REQUIRE(!r);
    CHECK(r.error().code() == errc::conflict);
  }
  SUBCASE("with reconcile: Kafka's 1..6") {
    auto r = restore_shard(*node.j, reconcile_opts(rig, s));
    STRATA_REQUIRE_VALUE(r);
    CHECK(r->discarded == 2);
    CHECK(r->discarded_streams == 1);
    CHECK(r->imported == 3);
    CHECK(events_of(*node.j, pid) == events_of(*rig.j, pid));
    CHECK(payloads_of(load_all(*node.j, pid)) ==
          std::vector<std::string>{"1", "2", "3", "theirs-4", "theirs-5", "theirs-6"});
    check_clean(*node.j);
  }
}

TEST_CASE("reconcile: an unpublished tail and a stream Kafka never saw are discarded; other "
          "shards are left alone") {
  STRATA_TEST_SEED(seed);
  bridge_rig rig{1, seed};
  auto& b = rig.start();
  const std::uint32_t s = 9;
  const auto pids = pids_of(s, 2);
  const auto other = pids_of(s + 1, 1)[0];
  append_to(*rig.j, &b, pids[0], 0, {"1", "2", "3"});
  REQUIRE(b.drain(30'000) == 0);
  restarted_node node{rig, s};
  append_to(*node.j, nullptr, pids[0], 3, {"4", "5"});
  append_to(*node.j, nullptr, pids[1], 0, {"new-1", "new-2", "new-3"});
  append_to(*node.j, nullptr, other, 0, {"x"}); // another shard: not this restore's business

  auto r = restore_shard(*node.j, reconcile_opts(rig, s));
  STRATA_REQUIRE_VALUE(r);
  CHECK(r->discarded == 5);
  CHECK(r->discarded_streams == 2);
  CHECK(r->imported == 0);
  CHECK(events_of(*node.j, pids[0]) == events_of(*rig.j, pids[0]));
  CHECK(load_all(*node.j, pids[1]).empty());
  CHECK(payloads_of(load_all(*node.j, other)) == std::vector<std::string>{"x"});
  check_clean(*node.j);
  // The stream continues at seq 4 again.
  append_to(*node.j, nullptr, pids[0], 3, {"4"});
}

TEST_CASE("reconcile: nothing differs, nothing is discarded and nothing is written") {
  STRATA_TEST_SEED(seed);
  bridge_rig rig{1, seed};
  auto& b = rig.start();
  const std::uint32_t s = 17;
  for (const auto& pid : pids_of(s, 3))
    append_to(*rig.j, &b, pid, 0, {"1", "2", "3"});
  REQUIRE(b.drain(30'000) == 0);
  restarted_node node{rig, s};
  const auto before = last_txn(*node.j);
  auto r = restore_shard(*node.j, reconcile_opts(rig, s));
  STRATA_REQUIRE_VALUE(r);
  CHECK(r->discarded == 0);
  CHECK(r->discarded_streams == 0);
  CHECK(r->imported == 0);
  CHECK(r->duplicates == 9);
  CHECK(last_txn(*node.j) == before); // no discard (nor any other) transaction
}

TEST_CASE("reconcile needs num_shards") {
  bridge_rig rig{1};
  auto o = reconcile_opts(rig, 0);
  o.num_shards = 0;
  auto r = restore_shard(*rig.j, o);
  REQUIRE(!r);
  CHECK(r.error().code() == errc::invalid_argument);
}

TEST_CASE("cluster mode: the bridge holds the events of a shard it has no claim for until the "
          "shard is acquired; reconciliation then discards them") {
  STRATA_TEST_SEED(seed);
  bridge_rig rig{1, seed};
  const std::uint32_t mine = 3, stale = 4;
  const auto a = pids_of(mine, 1)[0], z = pids_of(stale, 1)[0];
  // Written before a restart, never published: the journal's whole content.
  append_to(*rig.j, nullptr, z, 0, {"z1", "z2"});
  rig.opts.hold_unclaimed_shards = true;
  std::mutex notes_mu;
  std::vector<std::string> notes; // the bridge's on_error lines that name a held shard
  rig.opts.on_error = [&](const status& st) {
    std::lock_guard<std::mutex> g{notes_mu};
    if (st.message().find("holds no claim") != std::string::npos) notes.push_back(st.message());
  };
  auto& b = rig.start();
  STRATA_REQUIRE_OK(b.append_claim(mine, 1, 10'000)); // this incarnation owns `mine` only
  append_to(*rig.j, &b, a, 0, {"a1", "a2", "a3"});
  append_to(*rig.j, &b, z, 2, {"z3"});
  REQUIRE(b.drain(30'000) == 0);
  CHECK(b.stats().held_events == 3);
  {
    std::lock_guard<std::mutex> g{notes_mu};
    REQUIRE(notes.size() == 1); // once per shard, not per event
    CHECK(notes[0].find("shard " + std::to_string(stale) + ":") != std::string::npos);
  }
  CHECK(published_payloads(rig) == std::vector<std::string>{"a1", "a2", "a3"});
  CHECK(payloads_of(load_all(*rig.j, z)) == std::vector<std::string>{"z1", "z2", "z3"}); // kept

  // Acquiring `stale`: Kafka holds nothing of z, so reconciliation discards what the
  // journal held; afterwards the shard's new events are published.
  auto r = restore_shard(*rig.j, reconcile_opts(rig, stale));
  STRATA_REQUIRE_VALUE(r);
  CHECK(r->discarded == 3);
  CHECK(r->discarded_streams == 1);
  STRATA_REQUIRE_OK(b.append_claim(stale, 2, 10'000));
  append_to(*rig.j, &b, z, 0, {"Z1"});
  REQUIRE(b.drain(30'000) == 0);
  CHECK(b.stats().held_events == 3);
  CHECK(published_payloads(rig) == std::vector<std::string>{"Z1", "a1", "a2", "a3"});
  check_clean(*rig.j);
  rig.stop(); // before `notes` goes: the bridge calls on_error until it stopped
}

TEST_CASE("reconcile past a checkpoint: a journal holding the shard reads it from offset 0, "
          "so a difference before the checkpoint is found; a fresh one starts at it") {
  STRATA_TEST_SEED(seed);
  bridge_rig rig{1, seed};
  STRATA_REQUIRE_OK(rig.mock->create_topic("strata.account.snapshots", bridge_rig::partitions));
  auto& b = rig.start();
  const std::uint32_t s = 21;
  const auto pid = pids_of(s, 1)[0];
  append_to(*rig.j, &b, pid, 0, {"1", "2", "3"});
  REQUIRE(b.drain(30'000) == 0);
  restarted_node node{rig, s};
  append_to(*node.j, nullptr, pid, 3, {"mine-4", "mine-5"});
  append_to(*rig.j, &b, pid, 3, {"theirs-4", "theirs-5", "theirs-6"});
  REQUIRE(b.drain(30'000) == 0);
  // The other owner checkpoints at seq 6 (its release), then writes on, under the epoch
  // its checkpoint names (what a reader starting there holds it to: kafka.md, "Fencing").
  STRATA_REQUIRE_OK(b.set_epoch(s, 2));
  STRATA_REQUIRE_OK(rig.j->snapshots().save(
    snapshot_record{pid, 6, 1'700'000'000'000'000'000, "account.state", 1, "state@6", 0}));
  auto cp = b.publish_checkpoint(s, 2, {pid}, 10'000);
  STRATA_REQUIRE_VALUE(cp);
  REQUIRE(cp->topics.size() == 1);
  append_to(*rig.j, &b, pid, 6, {"theirs-7"});
  REQUIRE(b.drain(30'000) == 0);

  auto o = reconcile_opts(rig, s);
  o.snapshots = true;
  auto r = restore_shard(*node.j, o);
  STRATA_REQUIRE_VALUE(r);
  CHECK(r->discarded == 2);
  CHECK(r->bases == 0);
  REQUIRE(r->partitions.size() == 2);
  CHECK(r->partitions[0].start_offset == 0);
  CHECK(payloads_of(load_all(*node.j, pid)) ==
        std::vector<std::string>{"1", "2", "3", "theirs-4", "theirs-5", "theirs-6", "theirs-7"});
  check_clean(*node.j);

  auto fresh = open_journal(journal_opts(rig.dir.sub("fresh")));
  auto f = restore_shard(*fresh, o);
  STRATA_REQUIRE_VALUE(f);
  CHECK(f->bases == 1);
  CHECK(f->partitions[0].start_offset == cp->topics[0].second);
  CHECK(f->discarded == 0);
  CHECK(payloads_of(load_all(*fresh, pid)) == std::vector<std::string>{"theirs-7"});
}
