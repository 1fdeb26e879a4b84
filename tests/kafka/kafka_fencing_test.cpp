// Tests of fencing through the log (docs/kafka.md, "Fencing"): the validity rule
// (claim_tracker, kafka/include/strata/kafka/record_format.hpp) over hand-built
// sequences; the bridge's acknowledgement fencing (kafka/src/bridge.cpp: contiguous
// offsets acknowledged without a read, a gap read for a newer claim); and the readers
// that apply the rule: restore_shard, read_stream_events, projection_consumer. Two
// bridges on two journals play two nodes on one mock cluster. The mock does not fence
// by transactional.id, so everything here rests on strata's claims and epochs alone.
#include "kafka_test_util.hpp"

#include "strata/kafka/bridge.hpp"
#include "strata/kafka/consumer.hpp"
#include "strata/kafka/record_format.hpp"
#include "strata/kafka/restore.hpp"
#include "strata/kafka/stream_reader.hpp"
#include "strata/persistence/projection.hpp"

#include <mutex>
#include <set>

using namespace strata::persistence;
using namespace strata::kafka;
using namespace strata::persistence::test;

namespace {

/// The streams "acct-0" … "acct-<n-1>" of `shard`.
std::vector<std::string> streams_in(std::uint32_t shard, std::uint32_t n) {
  std::vector<std::string> out;
  for (std::uint32_t i = 0; i < n; ++i) {
    auto pid = "acct-" + std::to_string(i);
    if (shard_of(pid, bridge_rig::partitions) == shard) out.push_back(pid);
  }
  return out;
}

/// Appends `n` events to `pid` with payloads "<tag>#<seq>"; returns the journal's last
/// position after the commit.
std::uint64_t append_to(journal& j, const std::string& pid, int n, const std::string& tag) {
  auto head = j.highest_seq(pid);
  STRATA_REQUIRE_VALUE(head);
  stream_write w;
  w.persistence_id = pid;
  w.expected_seq = *head;
  for (int i = 1; i <= n; ++i) {
    event_data e;
    e.type = "deposited";
    e.payload = tag + "#" + std::to_string(*head + static_cast<std::uint64_t>(i));
    w.events.push_back(std::move(e));
  }
  append_ok(j, {w});
  return j.last_position();
}

/// What a bridge's on_fenced reported (bridge thread → test thread).
struct fence_log {
  std::mutex mu;
  std::set<std::uint64_t> positions;
  std::string last_why;
  errc last_code = errc::ok;

  void attach(bridge_options& o) {
    o.on_fenced = [this](std::uint64_t pos, const status& why) {
      std::lock_guard<std::mutex> g{mu};
      positions.insert(pos);
      last_why = why.message();
      last_code = why.code();
    };
  }
  std::size_t count() {
    std::lock_guard<std::mutex> g{mu};
    return positions.size();
  }
};

} // namespace

TEST_CASE("the validity rule over hand-built partitions") {
  using e = std::optional<std::uint64_t>;
  SUBCASE("before the first claim every record is valid, with or without an epoch") {
    claim_tracker t;
    CHECK_FALSE(t.claimed());
    CHECK(t.valid(std::nullopt)); // single node, no header
    CHECK(t.valid(e{0}));         // single node
    CHECK(t.valid(e{5}));         // an owner whose claim predates the topic
  }
  SUBCASE("after a claim only its epoch is valid") {
    claim_tracker t;
    CHECK(t.on_claim(1));
    CHECK(t.valid(e{1}));
    CHECK_FALSE(t.valid(e{0}));
    CHECK_FALSE(t.valid(std::nullopt)); // no header counts as epoch 0
    CHECK_FALSE(t.valid(e{2}));         // an epoch no claim announced
    CHECK(t.on_claim(2));               // the next owner
    CHECK_FALSE(t.valid(e{1}));         // the old owner is fenced
    CHECK(t.valid(e{2}));
  }
  SUBCASE("a claim at or below the epoch in force changes nothing (late, retried)") {
    claim_tracker t;
    t.on_claim(3);
    CHECK_FALSE(t.on_claim(2)); // an older owner's claim landing late
    CHECK_FALSE(t.on_claim(3)); // a retried claim
    CHECK(t.epoch() == 3);
    CHECK(t.valid(e{3}));
    CHECK_FALSE(t.valid(e{2}));
  }
  SUBCASE("a sequence: claims, events with and without epochs") {
    // (claim?, epoch) in partition order, and whether each event is valid.
    struct rec {
      bool claim;
      std::optional<std::uint64_t> epoch;
      bool valid;
    };
    const std::vector<rec> log = {
      {false, std::nullopt, true}, {false, e{0}, true},  {true, e{1}, true},   {false, e{1}, true},
      {false, e{0}, false},        {true, e{2}, true},   {false, e{1}, false}, {false, e{2}, true},
      {true, e{1}, true},          {false, e{1}, false}, {false, e{2}, true},
    };
    claim_tracker t;
    for (std::size_t i = 0; i < log.size(); ++i) {
      INFO("record " << i);
      if (log[i].claim)
        t.on_claim(*log[i].epoch);
      else
        CHECK(t.valid(log[i].epoch) == log[i].valid);
    }
  }
  SUBCASE("starting at a checkpoint: its epoch is in force") {
    auto t = claim_tracker::in_force(4);
    CHECK(t.claimed());
    CHECK(t.valid(e{4}));
    CHECK_FALSE(t.valid(e{3}));
    CHECK(t.on_claim(5));
    CHECK_FALSE(t.valid(e{4}));
    // A single node's checkpoint (epoch 0): no claim known, everything valid until one.
    auto single = claim_tracker::in_force(0);
    CHECK_FALSE(single.claimed());
    CHECK(single.valid(e{0}));
    CHECK(single == claim_tracker{});
  }
  CHECK(parse_epoch("17") == std::optional<std::uint64_t>{17});
  CHECK_FALSE(parse_epoch("").has_value());
  CHECK_FALSE(parse_epoch("1x").has_value());
}

TEST_CASE("the happy path: an owner's contiguous records are acknowledged without a read") {
  STRATA_TEST_SEED(seed);
  bridge_rig rig{3, seed};
  fence_log fenced;
  fenced.attach(rig.opts);
  rig.opts.linger_ms = 0;
  auto& b = rig.start();
  const std::uint32_t s = shard_of("acct-3", bridge_rig::partitions);
  STRATA_REQUIRE_OK(b.append_claim(s, 1, 10'000));
  const auto pids = streams_in(s, 400);
  REQUIRE(pids.size() >= 2);
  std::uint64_t last = 0;
  for (int round = 0; round < 20; ++round)
    for (const auto& pid : pids) {
      last = append_to(*rig.j, pid, 1 + round % 3, "A");
      b.notify();
    }
  rig.append(500, 300); // other shards, epoch 0, interleaved in the log
  REQUIRE(b.wait_acknowledged(last, 30'000));
  REQUIRE(b.drain(30'000) == 0);
  auto st = b.stats();
  CHECK(st.gap_checks == 0);
  CHECK(st.fenced_records == 0);
  CHECK(fenced.count() == 0);
  CHECK(b.fenced(s).ok());
  for (const auto& r : rig.records())
    if (r.partition == static_cast<std::int32_t>(s)) CHECK(r.headers.at("strata-epoch") == "1");
}

TEST_CASE("two owners of one shard: the stale one is fenced, readers skip its records") {
  STRATA_TEST_SEED(seed);
  bridge_rig rig{3, seed}; // node A: rig.j, rig.b
  const std::uint32_t s = shard_of("acct-5", bridge_rig::partitions);
  const auto pids = streams_in(s, 400);
  REQUIRE(pids.size() >= 2);
  const auto& x = pids[0];
  const auto& y = pids[1];
  fence_log fenced_a;
  fenced_a.attach(rig.opts);
  rig.opts.member = "node-a";
  rig.opts.linger_ms = 0;
  auto& a = rig.start();

  // A owns s under epoch 1 and writes; every write is acknowledged.
  STRATA_REQUIRE_OK(a.append_claim(s, 1, 10'000));
  append_to(*rig.j, x, 3, "A");
  auto a_first = append_to(*rig.j, y, 2, "A");
  a.notify();
  REQUIRE(a.wait_acknowledged(a_first, 30'000));
  CHECK(fenced_a.count() == 0);

  // B takes s under epoch 2 (A is not told): restores the shard, claims, writes.
  auto jb = open_journal(journal_opts(rig.dir.sub("b")));
  restore_options ro;
  ro.bootstrap_servers = rig.mock->bootstrap_servers();
  ro.topics = {bridge_rig::topic};
  ro.shard = s;
  ro.timeout_ms = 30'000;
  STRATA_REQUIRE_VALUE(restore_shard(*jb, ro));
  auto bo = rig.opts;
  bo.on_fenced = {};
  bo.member = "node-b";
  auto b_started = bridge::start(*jb, bo);
  STRATA_REQUIRE_VALUE(b_started);
  auto& b = **b_started;
  STRATA_REQUIRE_OK(b.append_claim(s, 2, 10'000));
  auto b_last = append_to(*jb, x, 1, "B"); // x: seq 4 under epoch 2
  b.notify();
  REQUIRE(b.wait_acknowledged(b_last, 30'000));

  // A writes again under epoch 1: the same seqs, and past B's head of x.
  const auto before = rig.j->last_position();
  auto a_second = append_to(*rig.j, x, 3, "A"); // x: seqs 4..6 under epoch 1
  a.notify();
  // Not acknowledged: A learns of B's claim (a gap check) and reports every record.
  REQUIRE(strata::test::eventually(
    [&] {
      return fenced_a.count() == a_second - before;
    },
    30'000));
  CHECK(a.stats().gap_checks >= 1);
  {
    std::lock_guard<std::mutex> g{fenced_a.mu};
    CHECK(fenced_a.last_code == errc::fenced);
    CHECK(fenced_a.last_why.find("shard " + std::to_string(s)) != std::string::npos);
    CHECK(fenced_a.last_why.find("epoch 2") != std::string::npos);
    CHECK(fenced_a.last_why.find("node-b") != std::string::npos);
  }
  CHECK(a.fenced(s).code() == errc::fenced);
  // A's later writes of s fail too, and are not even published.
  auto published = rig.records().size();
  auto a_third = append_to(*rig.j, y, 2, "A");
  a.notify();
  REQUIRE(strata::test::eventually(
    [&] {
      return fenced_a.count() == a_third - before;
    },
    30'000));
  REQUIRE(a.drain(30'000) == 0); // the acknowledged position moves over fenced records
  CHECK(rig.records().size() == published);
  // B's next writes are acknowledged as usual.
  b_last = append_to(*jb, y, 1, "B");
  b.notify();
  REQUIRE(b.wait_acknowledged(b_last, 30'000));
  REQUIRE(b.drain(30'000) == 0);

  // Valid records: A's before B's claim, then B's. A's fenced ones reached Kafka.
  const std::uint64_t a_fenced_in_kafka = a_second - before;

  { // restore_shard imports only the valid records
    auto jc = open_journal(journal_opts(rig.dir.sub("c")));
    auto r = restore_shard(*jc, ro);
    STRATA_REQUIRE_VALUE(r);
    CHECK(r->fenced == a_fenced_in_kafka);
    REQUIRE(r->fenced_records.size() == a_fenced_in_kafka);
    CHECK(r->fenced_records[0].find("claim in force 2") != std::string::npos);
    CHECK(r->claims == 2);
    for (const auto& pid : {x, y}) {
      INFO(pid);
      auto want = jb->load_stream(pid);
      auto got = jc->load_stream(pid);
      STRATA_REQUIRE_VALUE(want);
      STRATA_REQUIRE_VALUE(got);
      REQUIRE(got->size() == want->size());
      for (std::size_t i = 0; i < got->size(); ++i)
        CHECK((*got)[i].payload == (*want)[i].payload);
    }
    CHECK(jc->load_stream(x)->back().payload == "B#4");
  }
  { // read_stream_events skips them
    stream_read_options so;
    so.bootstrap_servers = rig.mock->bootstrap_servers();
    so.topic = bridge_rig::topic;
    so.partition = s;
    auto got = read_stream_events(so, x, 1, ~std::uint64_t{0});
    STRATA_REQUIRE_VALUE(got);
    std::vector<std::string> payloads;
    for (const auto& e : *got)
      payloads.push_back(e.payload);
    CHECK(payloads == std::vector<std::string>{"A#1", "A#2", "A#3", "B#4"});
  }
  { // the projection consumer skips them, also across a restart
    auto jc = open_journal(journal_opts(rig.dir.sub("view")));
    auto t = jc->env().open_table("fence.view");
    STRATA_REQUIRE_VALUE(t);
    const table view = *t;
    projection p{"fence", [view](write_txn& txn, const event_record& e) -> status {
                   return txn.put(view, e.persistence_id + "#" + std::to_string(e.seq), e.payload);
                 }};
    consumer_options co;
    co.bootstrap_servers = rig.mock->bootstrap_servers();
    co.topics = {bridge_rig::topic};
    co.partitions = {static_cast<std::int32_t>(s)};
    {
      // Stop right after B's claim and B's first record (offsets 0..7: claim A, five
      // events of A, claim B, x#4 of B): the next consumer must resume with epoch 2 in
      // force, from the offset store, to skip A's records that follow.
      co.batch_max_events = 1;
      auto c = projection_consumer::open(*jc, p, co);
      STRATA_REQUIRE_VALUE(c);
      REQUIRE(strata::test::eventually(
        [&] {
          STRATA_REQUIRE_VALUE((*c)->poll(100));
          return (*c)->records_read() >= 8;
        },
        30'000));
      CHECK((*c)->records_fenced() == 0);
    }
    co.batch_max_events = 10'000;
    auto c = projection_consumer::open(*jc, p, co);
    STRATA_REQUIRE_VALUE(c);
    STRATA_REQUIRE_OK((*c)->catch_up(30'000));
    CHECK((*c)->records_fenced() == a_fenced_in_kafka);
    std::map<std::string, std::string> got;
    STRATA_REQUIRE_OK(jc->env().read([&](read_txn& txn) {
      return txn.scan(view, {}, [&](std::string_view k, std::string_view v) {
        got[std::string{k}] = std::string{v};
        return true;
      });
    }));
    std::map<std::string, std::string> want;
    for (const auto& pid : {x, y}) {
      auto events = jb->load_stream(pid);
      STRATA_REQUIRE_VALUE(events);
      for (const auto& e : *events)
        want[pid + "#" + std::to_string(e.seq)] = e.payload;
    }
    CHECK(got == want); // each (pid, seq) once, B's where A's fenced records collide
  }
  { // no (persistence id, seq) appears twice among the valid records
    claim_tracker t;
    std::set<std::pair<std::string, std::uint64_t>> seen;
    std::uint64_t invalid = 0;
    for (const auto& r : rig.records()) {
      if (r.partition != static_cast<std::int32_t>(s)) continue;
      auto epoch = parse_epoch(r.headers.at("strata-epoch"));
      if (is_claim_record(r)) {
        t.on_claim(*epoch);
        continue;
      }
      if (!t.valid(epoch)) {
        ++invalid;
        continue;
      }
      auto e = decode_envelope(r.value);
      STRATA_REQUIRE_VALUE(e);
      // The mock may store a retried batch twice: an exact repeat, not a second writer.
      if (!seen.insert({e->persistence_id, e->seq}).second) {
        auto want = jb->load_stream(e->persistence_id);
        STRATA_REQUIRE_VALUE(want);
        CHECK((*want)[e->seq - 1].payload == e->payload);
      }
    }
    CHECK(invalid == a_fenced_in_kafka);
  }
  (void)b.stop(0);
}

TEST_CASE("a claim behind a newer one counts for nothing: append_claim with the restore's basis") {
  STRATA_TEST_SEED(seed);
  bridge_rig rig{1, seed};
  rig.opts.member = "node-a";
  auto& a = rig.start();
  const std::uint32_t s = shard_of("acct-2", bridge_rig::partitions);
  STRATA_REQUIRE_OK(a.append_claim(s, 1, 10'000));
  auto start_other = [&](const std::string& name) {
    auto j = open_journal(journal_opts(rig.dir.sub(name)));
    auto o = rig.opts;
    o.member = name;
    auto b = bridge::start(*j, o);
    STRATA_REQUIRE_VALUE(b);
    return std::make_pair(std::move(j), std::move(*b));
  };
  auto [jb, b] = start_other("node-b");
  auto [jc, c] = start_other("node-c");
  STRATA_REQUIRE_OK(b->append_claim(s, 3, 10'000));
  restore_options ro;
  ro.bootstrap_servers = rig.mock->bootstrap_servers();
  ro.topics = {bridge_rig::topic};
  ro.shard = s;
  ro.timeout_ms = 30'000;
  auto basis_of = [&](journal& j) {
    auto r = restore_shard(j, ro);
    STRATA_REQUIRE_VALUE(r);
    REQUIRE(r->partitions.size() == 1);
    const auto& p = r->partitions[0];
    return std::vector<claim_basis>{{p.topic, p.end_offset, p.epoch_in_force}};
  };
  auto claims_in_kafka = [&] {
    std::size_t n = 0;
    for (const auto& r : rig.records())
      if (r.partition == static_cast<std::int32_t>(s) && is_claim_record(r)) ++n;
    return n;
  };

  // The restore saw epoch 3 in force: claiming epoch 2 fails at once, nothing appended.
  auto basis = basis_of(*jc);
  CHECK(basis[0].epoch_in_force == 3);
  auto st = c->append_claim(s, 2, 10'000, basis);
  CHECK(st.code() == errc::fenced);
  CHECK(st.message().find("epoch 3") != std::string::npos);
  CHECK(claims_in_kafka() == 2);
  CHECK(c->epoch(s) == 0);

  // A newer claim lands between the restore and the claim: the gap check finds it.
  basis = basis_of(*jc);
  STRATA_REQUIRE_OK(b->append_claim(s, 5, 10'000));
  st = c->append_claim(s, 4, 10'000, basis);
  CHECK(st.code() == errc::fenced);
  CHECK(st.message().find("epoch 5") != std::string::npos);
  CHECK(st.message().find("node-b") != std::string::npos);
  CHECK(c->epoch(s) == 0);

  // With the newest epoch the claim holds.
  STRATA_REQUIRE_OK(c->append_claim(s, 6, 10'000, basis_of(*jc)));
  CHECK(c->epoch(s) == 6);
  c->stop(0);
  b->stop(0);
}
