// Tests of the Kafka side of a planned shard move (docs/kafka.md, "Epochs and claim
// records", "Restoring a shard"): the bridge's epoch header, claim records
// (kafka/src/record_format.cpp, bridge.cpp), wait_published / when_published, and
// restore_shard (kafka/src/restore.cpp). All against librdkafka's in-process mock; every
// test stays far below its 5 MiB per partition (a few thousand ~200-byte records over
// 64 partitions), so nothing is dropped and every partition starts at offset 0.
#include "kafka_test_util.hpp"

#include "strata/kafka/bridge.hpp"
#include "strata/kafka/record_format.hpp"
#include "strata/kafka/restore.hpp"
#include "strata/kafka/stream_reader.hpp"
#include "strata/persistence/snapshot_store.hpp"

#include <future>
#include <map>
#include <set>

using namespace strata::persistence;
using namespace strata::kafka;
using namespace strata::persistence::test;

namespace {

/// The shards that hold at least one stream "acct-0" … "acct-<streams-1>".
std::set<std::uint32_t> shards_of(std::uint32_t streams) {
  std::set<std::uint32_t> out;
  for (std::uint32_t i = 0; i < streams; ++i)
    out.insert(shard_of("acct-" + std::to_string(i), bridge_rig::partitions));
  return out;
}

restore_options restore_opts(const bridge_rig& rig, std::uint32_t shard) {
  restore_options o;
  o.bootstrap_servers = rig.mock->bootstrap_servers();
  o.topics = {bridge_rig::topic};
  o.shard = shard;
  o.timeout_ms = 30'000;
  return o;
}

/// Every stream of `shard` in `from` is in `to` with the same events (all fields but the
/// local position), and `to` holds no other stream. Returns the events compared.
std::uint64_t check_restored(const journal& from, const journal& to, std::uint32_t shard) {
  auto names = from.list_streams();
  STRATA_REQUIRE_VALUE(names);
  std::uint64_t n = 0;
  for (const auto& pid : *names) {
    INFO("stream " << pid);
    auto a = from.load_stream(pid);
    auto b = to.load_stream(pid);
    STRATA_REQUIRE_VALUE(a);
    STRATA_REQUIRE_VALUE(b);
    if (shard_of(pid, bridge_rig::partitions) != shard) {
      CHECK(b->empty());
      continue;
    }
    REQUIRE(a->size() == b->size());
    for (std::size_t i = 0; i < a->size(); ++i) {
      auto x = (*a)[i], y = (*b)[i];
      x.position = y.position = 0; // the only field an import does not keep
      REQUIRE(x == y);
    }
    n += a->size();
  }
  return n;
}

} // namespace

TEST_CASE("claim values round trip; a malformed one is corrupt") {
  claim c{17, 42, "127.0.0.1:4501 #9"};
  CHECK(encode_claim_value(c) == "shard=17 epoch=42 member=127.0.0.1:4501 #9");
  auto back = parse_claim_value(encode_claim_value(c));
  STRATA_REQUIRE_VALUE(back);
  CHECK(*back == c);
  for (auto bad : {"", "shard=1 epoch=2", "shard=x epoch=2 member=a", "epoch=2 shard=1 member=a",
                   "shard=1 epoch=-2 member=a"}) {
    INFO(bad);
    auto r = parse_claim_value(bad);
    REQUIRE_FALSE(r);
    CHECK(r.error().code() == errc::corrupt);
  }
}

TEST_CASE("every record carries its shard's epoch: 0 on a single node, then set_epoch's") {
  STRATA_TEST_SEED(seed);
  bridge_rig rig{1, seed};
  auto& b = rig.start();
  rig.append(300, 30);
  REQUIRE(b.drain(30'000) == 0);
  const auto before = rig.j->last_position();
  const std::uint32_t moved = shard_of("acct-3", bridge_rig::partitions);
  STRATA_REQUIRE_OK(b.set_epoch(moved, 7));
  CHECK(b.epoch(moved) == 7);
  CHECK(b.set_epoch(bridge_rig::partitions, 1).code() == errc::invalid_argument);
  rig.append(300, 30);
  REQUIRE(b.drain(30'000) == 0);

  std::uint64_t sevens = 0;
  for (const auto& r : rig.records()) {
    auto e = decode_envelope(r.value);
    STRATA_REQUIRE_VALUE(e);
    INFO("partition " << r.partition << " position " << e->position);
    bool later = e->position > before && static_cast<std::uint32_t>(r.partition) == moved;
    REQUIRE(r.headers.count("strata-epoch") == 1);
    CHECK(r.headers.at("strata-epoch") == (later ? "7" : "0"));
    sevens += later;
  }
  CHECK(sevens > 0);
}

TEST_CASE("append_claim lands in partition `shard` of every topic the bridge knows") {
  STRATA_TEST_SEED(seed);
  bridge_rig rig{3, seed};
  STRATA_REQUIRE_OK(rig.mock->create_topic("strata.order", bridge_rig::partitions));
  rig.opts.types.push_back({"ord-", "order"});
  rig.opts.member = "node-a#1";
  auto& b = rig.start();
  CHECK(b.known_topics() == std::vector<std::string>{"strata.account", "strata.order"});
  rig.append(200, 20);
  STRATA_REQUIRE_OK(b.append_claim(9, 3, 10'000));
  CHECK(b.epoch(9) == 3);
  CHECK(b.append_claim(64, 3, 1'000).code() == errc::invalid_argument);
  REQUIRE(b.drain(30'000) == 0);

  for (const char* topic : {"strata.account", "strata.order"}) {
    INFO(topic);
    auto records = read_topic(rig.mock->bootstrap_servers(), topic, bridge_rig::partitions);
    std::vector<kafka_record> claims;
    for (auto& r : records)
      if (is_claim_record(r)) claims.push_back(r);
    REQUIRE(claims.size() == 1);
    CHECK(claims[0].partition == 9);
    CHECK(claims[0].key == "strata-claim");
    CHECK(claims[0].headers.at("strata-claim") == "node-a#1");
    CHECK(claims[0].headers.at("strata-epoch") == "3");
    auto c = parse_claim_value(claims[0].value);
    STRATA_REQUIRE_VALUE(c);
    CHECK(*c == claim{9, 3, "node-a#1"});
  }
}

TEST_CASE("append_claim with every broker down fails as unavailable after its timeout") {
  STRATA_TEST_SEED(seed);
  bridge_rig rig{1, seed};
  auto& b = rig.start();
  rig.mock->set_all_brokers_down();
  auto st = b.append_claim(4, 2, 500);
  CHECK(st.code() == errc::unavailable);
  CHECK(st.message().find("strata.account") != std::string::npos);
  CHECK(b.epoch(4) == 0); // not claimed
}

TEST_CASE("wait_published: true once the shard's events are acked, false while Kafka is down") {
  STRATA_TEST_SEED(seed);
  bridge_rig rig{3, seed};
  auto& b = rig.start();
  rig.append(1'000, 100);
  const std::uint32_t s = shard_of("acct-1", bridge_rig::partitions);
  REQUIRE(b.wait_published(s, 30'000));
  // Everything of shard s the journal held is in its partition now.
  std::set<std::uint64_t> in_kafka;
  for (const auto& r : rig.records())
    if (static_cast<std::uint32_t>(r.partition) == s)
      in_kafka.insert(decode_envelope(r.value)->position);
  for (const auto& e : read_global_all(*rig.j))
    if (shard_of(e.persistence_id, bridge_rig::partitions) == s)
      CHECK(in_kafka.count(e.position) == 1);

  rig.mock->set_all_brokers_down();
  auto head = rig.j->highest_seq("acct-1");
  STRATA_REQUIRE_VALUE(head);
  append_ok(*rig.j, {make_write("acct-1", *head, {"9"})});
  b.notify();
  CHECK_FALSE(b.wait_published(s, 300)); // lag, not loss: the event is in the journal
  std::promise<bool> answer;
  b.when_published(s, 300, [&](bool ok) {
    answer.set_value(ok);
  });
  CHECK_FALSE(answer.get_future().get());
  // A shard without new events is published even while another one waits for Kafka.
  std::uint32_t quiet = 0;
  while (quiet == s || shards_of(100).count(quiet) == 0)
    ++quiet;
  CHECK(b.wait_published(quiet, 10'000));

  rig.mock->set_all_brokers_up();
  std::promise<bool> later;
  b.when_published(s, 30'000, [&](bool ok) {
    later.set_value(ok);
  });
  CHECK(later.get_future().get());
  CHECK(b.wait_published(s, 1'000));
}

TEST_CASE("when_published waits still pending at stop are answered") {
  STRATA_TEST_SEED(seed);
  bridge_rig rig{1, seed};
  auto& b = rig.start();
  rig.mock->set_all_brokers_down();
  rig.append(50, 5);
  std::promise<bool> answer;
  b.when_published(shard_of("acct-0", bridge_rig::partitions), 60'000, [&](bool ok) {
    answer.set_value(ok);
  });
  CHECK(rig.stop(0) > 0);
  CHECK_FALSE(answer.get_future().get());
}

TEST_CASE("restore_shard reproduces the shard's streams exactly, and again is a no-op") {
  STRATA_TEST_SEED(seed);
  bridge_rig rig{3, seed};
  auto& b = rig.start();
  rig.append(3'000, 300);
  // A claim follows the shard's published events (docs/kafka.md, "Fencing"): records of
  // epoch 0 still in flight behind it would be invalid.
  REQUIRE(b.drain(30'000) == 0);
  const std::uint32_t s = shard_of("acct-7", bridge_rig::partitions);
  STRATA_REQUIRE_OK(b.append_claim(s, 2, 10'000)); // skipped by the restore
  rig.append(500, 300);
  REQUIRE(b.drain(30'000) == 0);

  auto target = open_journal(journal_opts(rig.dir.sub("target")));
  auto o = restore_opts(rig, s);
  o.batch_events = 64; // several imports
  auto r = restore_shard(*target, o);
  STRATA_REQUIRE_VALUE(r);
  const auto events = check_restored(*rig.j, *target, s);
  CHECK(events > 0);
  CHECK(r->claims == 1);
  CHECK(r->imported == events);
  // The mock may store a retried batch twice: such repeats are skipped as duplicates.
  CHECK(r->records == events + 1 + r->duplicates);
  REQUIRE(r->partitions.size() == 1);
  CHECK(r->partitions[0].first_offset == 0);
  CHECK(r->partitions[0].end_offset == static_cast<std::int64_t>(r->records));

  auto again = restore_shard(*target, restore_opts(rig, s));
  STRATA_REQUIRE_VALUE(again);
  CHECK(again->imported == 0);
  CHECK(again->duplicates == r->records - 1);
  CHECK(check_restored(*rig.j, *target, s) == events);
  // The imported events are recorded as such: the target's bridge would not republish.
  auto range = target->next_imported(1);
  STRATA_REQUIRE_VALUE(range);
  CHECK(range->first == 1);
}

TEST_CASE("restore_shard of every shard rebuilds the whole journal") {
  STRATA_TEST_SEED(seed);
  bridge_rig rig{3, seed};
  auto& b = rig.start();
  rig.append(2'000, 200);
  REQUIRE(b.drain(30'000) == 0);
  auto target = open_journal(journal_opts(rig.dir.sub("target")));
  std::uint64_t imported = 0;
  for (std::uint32_t s = 0; s < bridge_rig::partitions; ++s) {
    auto r = restore_shard(*target, restore_opts(rig, s));
    STRATA_REQUIRE_VALUE(r);
    imported += r->imported;
  }
  CHECK(imported == 2'000);
  CHECK(target->list_streams()->size() == rig.j->list_streams()->size());
}

TEST_CASE("restore_shard errors name what is wrong") {
  STRATA_TEST_SEED(seed);
  bridge_rig rig{1, seed};
  auto target = open_journal(journal_opts(rig.dir.sub("target")));
  auto o = restore_opts(rig, 3);
  o.batch_events = 0;
  CHECK(restore_shard(*target, o).error().code() == errc::invalid_argument);
  o = restore_opts(rig, 64); // the topic has partitions 0..63
  o.timeout_ms = 5'000;
  auto missing = restore_shard(*target, o);
  REQUIRE_FALSE(missing);
  CHECK(missing.error().code() == errc::not_found);
  CHECK(missing.error().message().find("partition 64") != std::string::npos);

  auto empty = restore_shard(*target, restore_opts(rig, 3)); // no record yet: done at once
  STRATA_REQUIRE_VALUE(empty);
  CHECK(empty->records == 0);
  CHECK(empty->partitions.at(0).end_offset == 0);

  rig.mock->set_all_brokers_down();
  o = restore_opts(rig, 3);
  o.timeout_ms = 500;
  auto down = restore_shard(*target, o);
  REQUIRE_FALSE(down);
  CHECK(down.error().code() == errc::unavailable);
}

namespace {

/// Saves a snapshot of `pid` at its head in `j` (payload "state of <pid> at <seq>").
snapshot_record save_snapshot_at_head(journal& j, const std::string& pid) {
  auto head = j.highest_seq(pid);
  STRATA_REQUIRE_VALUE(head);
  snapshot_record s{pid,
                    *head,
                    1'700'000'000'000'000'000,
                    "account.state",
                    1,
                    "state of " + pid + " at " + std::to_string(*head),
                    0};
  STRATA_REQUIRE_OK(j.snapshots().save(s));
  auto back = j.snapshots().load_latest(pid);
  STRATA_REQUIRE_VALUE(back);
  REQUIRE(back->has_value());
  return **back; // with its checksum
}

constexpr const char* snapshot_topic = "strata.account.snapshots";

} // namespace

TEST_CASE("a snapshot is published to <topic>.snapshots only after the events it covers") {
  STRATA_TEST_SEED(seed);
  bridge_rig rig{1, seed};
  STRATA_REQUIRE_OK(rig.mock->create_topic(snapshot_topic, bridge_rig::partitions));
  auto& b = rig.start();
  rig.append(300, 20);
  REQUIRE(b.drain(30'000) == 0);

  rig.mock->set_all_brokers_down();
  auto head = rig.j->highest_seq("acct-2");
  STRATA_REQUIRE_VALUE(head);
  append_ok(*rig.j, {make_write("acct-2", *head, {"5"})});
  auto snap = save_snapshot_at_head(*rig.j, "acct-2");
  b.snapshot_saved("acct-2");
  const auto shard = shard_of("acct-2", bridge_rig::partitions);
  CHECK_FALSE(b.wait_published(shard, 300)); // its event is not in Kafka ...
  CHECK(b.stats().snapshots_pending == 1);   // ... so neither is the snapshot
  CHECK(b.stats().snapshots_published == 0);

  rig.mock->set_all_brokers_up();
  REQUIRE(strata::test::eventually(
    [&] {
      return b.stats().snapshots_published == 1;
    },
    30'000));
  CHECK(b.wait_published(shard, 1'000));
  auto records = read_topic(rig.mock->bootstrap_servers(), snapshot_topic, bridge_rig::partitions);
  REQUIRE(records.size() == 1);
  CHECK(records[0].key == "acct-2");
  CHECK(records[0].partition == static_cast<std::int32_t>(shard));
  CHECK(records[0].headers.at("strata.seq") == std::to_string(snap.seq));
  CHECK(records[0].headers.at("strata-epoch") == "0");
  auto decoded = decode_snapshot(records[0].value);
  STRATA_REQUIRE_VALUE(decoded);
  CHECK(decoded->seq == snap.seq);
  CHECK(decoded->payload == snap.payload);
}

TEST_CASE("restore with snapshots saves each stream's latest snapshot from Kafka") {
  STRATA_TEST_SEED(seed);
  bridge_rig rig{3, seed};
  STRATA_REQUIRE_OK(rig.mock->create_topic(snapshot_topic, bridge_rig::partitions));
  auto& b = rig.start();
  rig.append(1'000, 50);
  const std::uint32_t s = shard_of("acct-4", bridge_rig::partitions);
  std::map<std::string, snapshot_record> latest;
  for (int round = 0; round < 2; ++round) { // two versions: only the later one counts
    for (std::uint32_t i = 0; i < 50; ++i) {
      auto pid = "acct-" + std::to_string(i);
      if (shard_of(pid, bridge_rig::partitions) != s) continue;
      latest[pid] = save_snapshot_at_head(*rig.j, pid);
      b.snapshot_saved(pid);
    }
    REQUIRE(b.drain(30'000) == 0);
    REQUIRE(strata::test::eventually(
      [&] {
        return b.stats().snapshots_pending == 0;
      },
      30'000));
    rig.append(200, 50);
  }
  REQUIRE(b.drain(30'000) == 0);
  REQUIRE(strata::test::eventually(
    [&] {
      return b.stats().snapshots_published >= latest.size();
    },
    30'000));

  auto target = open_journal(journal_opts(rig.dir.sub("target")));
  auto o = restore_opts(rig, s);
  o.snapshots = true;
  auto r = restore_shard(*target, o);
  STRATA_REQUIRE_VALUE(r);
  check_restored(*rig.j, *target, s);
  CHECK(r->snapshots_read >= latest.size());
  CHECK(r->snapshots_saved == latest.size());
  for (const auto& [pid, snap] : latest) {
    INFO(pid);
    auto got = target->snapshots().load_latest(pid);
    STRATA_REQUIRE_VALUE(got);
    REQUIRE(got->has_value());
    CHECK((*got)->seq == snap.seq);
    CHECK((*got)->payload == snap.payload);
  }
  auto again = restore_shard(*target, o);
  STRATA_REQUIRE_VALUE(again);
  CHECK(again->snapshots_saved == 0);
  CHECK(again->snapshots_skipped == latest.size());

  o.snapshot_topic_suffix = ".missing";
  CHECK(restore_shard(*target, o).error().code() == errc::not_found);
}

TEST_CASE("checkpoint values round trip; a malformed one is corrupt") {
  checkpoint c{9, 1234, 3, "127.0.0.1:4501#17 with spaces"};
  auto back = parse_checkpoint_value(encode_checkpoint_value(c));
  STRATA_REQUIRE_VALUE(back);
  CHECK(*back == c);
  for (const char* bad : {"", "shard=1 offset=2 epoch=3", "shard=1 offset=-2 epoch=3 member=x",
                          "shard=1 epoch=3 member=x", "offset=2 shard=1 epoch=3 member=x"}) {
    INFO(bad);
    CHECK(parse_checkpoint_value(bad).error().code() == errc::corrupt);
  }
}

namespace {

/// The streams "acct-0" … "acct-<streams-1>" of `shard`.
std::vector<std::string> streams_of(std::uint32_t shard, std::uint32_t streams) {
  std::vector<std::string> out;
  for (std::uint32_t i = 0; i < streams; ++i) {
    auto pid = "acct-" + std::to_string(i);
    if (shard_of(pid, bridge_rig::partitions) == shard) out.push_back(pid);
  }
  return out;
}

/// The events of `pids` in `j` with a seq above `above[pid]`.
std::uint64_t events_above(const journal& j, const std::vector<std::string>& pids,
                           const std::map<std::string, std::uint64_t>& above) {
  std::uint64_t n = 0;
  for (const auto& pid : pids) {
    auto head = j.highest_seq(pid);
    STRATA_REQUIRE_VALUE(head);
    n += *head - above.at(pid);
  }
  return n;
}

} // namespace

TEST_CASE("a checkpoint: the restore starts each stream at its snapshot and reads only the "
          "events after it") {
  STRATA_TEST_SEED(seed);
  bridge_rig rig{1, seed};
  STRATA_REQUIRE_OK(rig.mock->create_topic(snapshot_topic, bridge_rig::partitions));
  rig.opts.member = "old-owner";
  auto& b = rig.start();
  rig.append(3'000, 50); // the history a checkpoint must spare the next owner
  REQUIRE(b.drain(30'000) == 0);
  const std::uint32_t s = shard_of("acct-4", bridge_rig::partitions);
  // The owner's epoch, which its checkpoint names: a restore from the checkpoint judges
  // the records after it by that epoch (docs/kafka.md, "Fencing").
  STRATA_REQUIRE_OK(b.set_epoch(s, 2));
  const auto pids = streams_of(s, 50);
  REQUIRE(pids.size() >= 1);

  // Streams past their latest snapshot: no checkpoint for their type.
  auto none = b.publish_checkpoint(s, 2, pids, 10'000);
  STRATA_REQUIRE_VALUE(none);
  CHECK(none->topics.empty());
  REQUIRE(none->uncovered.size() == 1);
  CHECK(none->uncovered[0] == pids[0]);

  std::map<std::string, std::uint64_t> snap_seq;
  for (const auto& pid : pids)
    snap_seq[pid] = save_snapshot_at_head(*rig.j, pid).seq;
  auto cp = b.publish_checkpoint(s, 2, pids, 10'000);
  STRATA_REQUIRE_VALUE(cp);
  CHECK(cp->uncovered.empty());
  CHECK(cp->snapshots == pids.size());
  REQUIRE(cp->topics.size() == 1);
  CHECK(cp->topics[0].first == bridge_rig::topic);
  const auto at = cp->topics[0].second;
  CHECK(at > 0);
  auto snaps = read_topic(rig.mock->bootstrap_servers(), snapshot_topic, bridge_rig::partitions);
  REQUIRE_FALSE(snaps.empty());
  CHECK(snaps.back().key == std::string(checkpoint_key));
  CHECK(snaps.back().headers.at(std::string(checkpoint_header)) == std::to_string(at));
  CHECK(snaps.back().headers.at("strata-epoch") == "2");

  rig.append(400, 50); // after the checkpoint: read and imported
  REQUIRE(b.drain(30'000) == 0);
  // A later snapshot of one stream covers some events after the checkpoint: skipped.
  const auto later = save_snapshot_at_head(*rig.j, pids[0]);
  b.snapshot_saved(pids[0]);
  REQUIRE(strata::test::eventually(
    [&] {
      return b.stats().snapshots_published == 1;
    },
    30'000));

  auto target = open_journal(journal_opts(rig.dir.sub("target")));
  auto o = restore_opts(rig, s);
  o.snapshots = true;
  auto r = restore_shard(*target, o);
  STRATA_REQUIRE_VALUE(r);
  CHECK(r->bases == pids.size());
  CHECK(r->checkpoints_read == 1); // the empty-handed call wrote none
  auto base = snap_seq;
  base[pids[0]] = later.seq;
  CHECK(r->imported == events_above(*rig.j, pids, base));
  CHECK(r->covered == later.seq - snap_seq[pids[0]]);
  // Not one event record before the checkpoint was read.
  CHECK(r->records - r->snapshots_read - r->checkpoints_read - r->claims ==
        events_above(*rig.j, pids, snap_seq));
  REQUIRE(r->partitions.size() == 2);
  CHECK(r->partitions[0].start_offset == at);
  for (const auto& pid : pids) {
    INFO(pid);
    auto head = target->highest_seq(pid);
    auto src = rig.j->highest_seq(pid);
    STRATA_REQUIRE_VALUE(head);
    STRATA_REQUIRE_VALUE(src);
    CHECK(*head == *src);
    auto first = target->first_held_seq(pid);
    STRATA_REQUIRE_VALUE(first);
    CHECK(*first == base[pid] + 1);
    auto got = target->load_stream(pid, base[pid] + 1);
    auto want = rig.j->load_stream(pid, base[pid] + 1);
    STRATA_REQUIRE_VALUE(got);
    STRATA_REQUIRE_VALUE(want);
    REQUIRE(got->size() == want->size());
    for (std::size_t i = 0; i < got->size(); ++i) {
      auto x = (*got)[i], y = (*want)[i];
      x.position = y.position = 0;
      CHECK(x == y);
    }
    auto snap = target->snapshots().load_latest(pid);
    STRATA_REQUIRE_VALUE(snap);
    REQUIRE(snap->has_value());
    CHECK((*snap)->seq == base[pid]);
  }
  auto again = restore_shard(*target, o);
  STRATA_REQUIRE_VALUE(again);
  CHECK(again->imported == 0);
  CHECK(again->bases == 0);
}

TEST_CASE("read_stream_events reads one stream's events back from its partition") {
  STRATA_TEST_SEED(seed);
  bridge_rig rig{1, seed};
  auto& b = rig.start();
  rig.append(1'500, 30);
  REQUIRE(b.drain(30'000) == 0);
  const std::string pid = "acct-7";
  stream_read_options o{rig.mock->bootstrap_servers(), bridge_rig::topic,
                        shard_of(pid, bridge_rig::partitions)};
  auto want = rig.j->load_stream(pid);
  STRATA_REQUIRE_VALUE(want);
  REQUIRE(want->size() >= 10);
  for (auto [from, to] : {std::pair<std::uint64_t, std::uint64_t>{1, ~std::uint64_t{0}}, {3, 9}}) {
    INFO(from << ".." << to);
    auto got = read_stream_events(o, pid, from, to);
    STRATA_REQUIRE_VALUE(got);
    auto n = std::min<std::uint64_t>(to, want->size()) - from + 1;
    REQUIRE(got->size() == n);
    for (std::size_t i = 0; i < n; ++i) {
      auto x = (*got)[i], y = (*want)[from - 1 + i];
      x.position = y.position = 0;
      CHECK(x == y);
    }
  }
  auto none = read_stream_events(o, "acct-unknown", 1, 10);
  STRATA_REQUIRE_VALUE(none);
  CHECK(none->empty());
  o.topic = "strata.missing";
  o.timeout_ms = 5'000;
  auto missing = read_stream_events(o, pid, 1, 10);
  REQUIRE_FALSE(missing);
  CHECK((missing.error().code() == errc::not_found || missing.error().code() == errc::unavailable));
}

TEST_CASE("topic configs: the mock has no admin API, so the bridge says they were not checked") {
  STRATA_TEST_SEED(seed);
  bridge_rig rig{1, seed};
  std::mutex mu;
  std::vector<std::string> lines;
  rig.opts.config_check_timeout_ms = 300;
  rig.opts.on_error = [&](const status& st) {
    std::lock_guard<std::mutex> g{mu};
    lines.push_back(st.message());
  };
  auto& b = rig.start();
  REQUIRE(strata::test::eventually(
    [&] {
      std::lock_guard<std::mutex> g{mu};
      for (const auto& l : lines)
        if (l.find("topic configs not checked") != std::string::npos) return true;
      return false;
    },
    10'000));
  CHECK(b.stats().last_error.empty()); // a note, not a problem
  CHECK(b.health().ok());
}
