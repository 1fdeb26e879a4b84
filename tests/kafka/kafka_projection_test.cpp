// Tests of persistence/src/projection.cpp and kafka/src/consumer.cpp: projections fed
// from the local journal (catch-up from beginning / end / position / timestamp) and from
// Kafka (assigned partitions, de-duplication, offsets in the view's transaction).
#include "kafka_test_util.hpp"

#include "strata/kafka/bridge.hpp"
#include "strata/kafka/consumer.hpp"
#include "strata/kafka/mock.hpp"
#include "strata/persistence/offset_store.hpp"
#include "strata/persistence/projection.hpp"

using namespace strata::persistence;
using namespace strata::kafka;
using namespace strata::persistence::test;

namespace {

// A counting projection: per stream "count,last_seq,sum of payload sizes".
struct counting_view {
  table t;
  std::uint64_t fail_on_position = 0; // apply fails for this position (tests abort)

  projection make(const std::string& name) {
    return projection{name, [this](write_txn& txn, const event_record& e) -> status {
                        if (e.position == fail_on_position)
                          return {errc::invalid_argument, "injected failure"};
                        std::uint64_t count = 0;
                        auto cur = txn.get(t, e.persistence_id);
                        if (!cur) return cur.error();
                        if (*cur) count = std::stoull(std::string{**cur});
                        return txn.put(t, e.persistence_id, std::to_string(count + 1));
                      }};
  }

  std::map<std::string, std::uint64_t> read(const environment& env) const {
    std::map<std::string, std::uint64_t> out;
    STRATA_REQUIRE_OK(env.read([&](read_txn& txn) {
      return txn.scan(t, {}, [&](std::string_view k, std::string_view v) {
        out[std::string{k}] = std::stoull(std::string{v});
        return true;
      });
    }));
    return out;
  }
};

std::map<std::string, std::uint64_t> count_journal(const journal& j, std::uint64_t from = 1) {
  std::map<std::string, std::uint64_t> out;
  for (auto& e : read_global_all(j, from))
    ++out[e.persistence_id];
  return out;
}

counting_view open_view(journal& j, const std::string& name) {
  auto t = j.env().open_table(name);
  STRATA_REQUIRE_VALUE(t);
  return counting_view{*t};
}

} // namespace

TEST_CASE("journal projection from the beginning equals the fold and resumes after reopen") {
  auto seed = test_seed();
  std::mt19937_64 rng{seed};
  temp_dir dir{"strata-proj"};
  auto j = open_journal(journal_opts(dir.sub("j")));
  append_workload(*j, rng, 3'000, 50);
  auto view = open_view(*j, "count.view");
  {
    journal_projection_options o;
    o.batch_max_events = 700;
    auto p = journal_projection::open(*j, view.make("count"), o);
    STRATA_REQUIRE_VALUE(p);
    STRATA_REQUIRE_OK((*p)->catch_up(30'000));
    CHECK((*p)->position() == j->last_position());
    CHECK((*p)->stats().applied == 3'000);
    CHECK(view.read(j->env()) == count_journal(*j));
  }
  append_workload(*j, rng, 500, 50);
  auto p = journal_projection::open(*j, view.make("count"), {});
  STRATA_REQUIRE_VALUE(p);
  STRATA_REQUIRE_OK((*p)->catch_up(30'000));
  CHECK((*p)->stats().applied == 500); // resumed from the stored offset
  CHECK(view.read(j->env()) == count_journal(*j));
  auto stored = j->offsets().get("count/journal");
  STRATA_REQUIRE_VALUE(stored);
  CHECK(stored->value_or(0) == j->last_position());
}

TEST_CASE("journal projection start points: end, position, timestamp") {
  auto seed = test_seed();
  std::mt19937_64 rng{seed};
  temp_dir dir{"strata-proj"};
  auto j = open_journal(journal_opts(dir.sub("j")));
  append_workload(*j, rng, 1'000, 20);
  const auto first_part = j->last_position();

  SUBCASE("end") {
    auto view = open_view(*j, "end.view");
    journal_projection_options o;
    o.start = start_from::end;
    auto p = journal_projection::open(*j, view.make("end"), o);
    STRATA_REQUIRE_VALUE(p);
    append_workload(*j, rng, 200, 20);
    STRATA_REQUIRE_OK((*p)->catch_up(30'000));
    CHECK((*p)->stats().applied == 200);
    CHECK(view.read(j->env()) == count_journal(*j, first_part + 1));
  }
  SUBCASE("position") {
    auto view = open_view(*j, "pos.view");
    journal_projection_options o;
    o.start = start_from::position;
    o.position = 401;
    auto p = journal_projection::open(*j, view.make("pos"), o);
    STRATA_REQUIRE_VALUE(p);
    STRATA_REQUIRE_OK((*p)->catch_up(30'000));
    CHECK((*p)->stats().applied == first_part - 400);
    CHECK(view.read(j->env()) == count_journal(*j, 401));
  }
  SUBCASE("timestamp") {
    auto all = read_global_all(*j);
    // pick an event in the middle; its timestamp (stamped at append) is the start
    auto pivot = all[all.size() / 2];
    std::uint64_t expected_from = 0;
    for (auto& e : all)
      if (e.timestamp_ns >= pivot.timestamp_ns) {
        expected_from = e.position;
        break;
      }
    auto view = open_view(*j, "ts.view");
    journal_projection_options o;
    o.start = start_from::timestamp;
    o.timestamp_ns = pivot.timestamp_ns;
    auto p = journal_projection::open(*j, view.make("ts"), o);
    STRATA_REQUIRE_VALUE(p);
    STRATA_REQUIRE_OK((*p)->catch_up(30'000));
    CHECK(view.read(j->env()) == count_journal(*j, expected_from));
  }
}

TEST_CASE("journal projection on its own thread tails new events") {
  auto seed = test_seed();
  std::mt19937_64 rng{seed};
  temp_dir dir{"strata-proj"};
  auto j = open_journal(journal_opts(dir.sub("j")));
  auto view = open_view(*j, "bg.view");
  auto p = journal_projection::open(*j, view.make("bg"), {});
  STRATA_REQUIRE_VALUE(p);
  STRATA_REQUIRE_OK((*p)->start());
  append_workload(*j, rng, 1'000, 30);
  CHECK(eventually(
    [&] {
      return (*p)->position() == j->last_position();
    },
    30'000));
  (*p)->stop();
  STRATA_CHECK_OK((*p)->health());
  CHECK(view.read(j->env()) == count_journal(*j));
}

TEST_CASE("projection_writer drops exact duplicates, counts gaps, aborts a failing batch whole") {
  temp_dir dir{"strata-proj"};
  auto j = open_journal(journal_opts(dir.sub("j")));
  append_ok(*j, {make_write("acct-1", 0, {"a", "b", "c"}), make_write("acct-2", 0, {"x"})});
  auto all = read_global_all(*j);
  REQUIRE(all.size() == 4);
  auto view = open_view(*j, "w.view");
  auto w = projection_writer::open(*j, view.make("w"));
  STRATA_REQUIRE_VALUE(w);
  STRATA_REQUIRE_OK((*w)->apply_batch({all[0], all[1], all[0], all[1]}, {{"w/test", 2}}));
  CHECK((*w)->stats().applied == 2);
  CHECK((*w)->stats().duplicates == 2);
  STRATA_REQUIRE_OK((*w)->apply_batch({all[1], all[2], all[3], all[3]}, {{"w/test", 4}}));
  CHECK((*w)->stats().applied == 4);
  CHECK((*w)->stats().duplicates == 4);
  CHECK((*w)->stats().gaps == 0);
  auto h = (*w)->highest_seq("acct-1");
  STRATA_REQUIRE_VALUE(h);
  CHECK(*h == 3);
  CHECK(view.read(j->env()) == std::map<std::string, std::uint64_t>{{"acct-1", 3}, {"acct-2", 1}});

  // A failing apply stores nothing of its batch: neither view, seqs nor offsets.
  append_ok(*j, {make_write("acct-1", 3, {"d", "e"})});
  auto more = read_global_all(*j, 5);
  view.fail_on_position = more[1].position;
  auto st = (*w)->apply_batch(more, {{"w/test", 6}});
  CHECK(st.code() == errc::invalid_argument);
  auto h2 = (*w)->highest_seq("acct-1");
  STRATA_REQUIRE_VALUE(h2);
  CHECK(*h2 == 3);
  auto off = j->offsets().get("w/test");
  STRATA_REQUIRE_VALUE(off);
  CHECK(off->value_or(0) == 4);
  CHECK(view.read(j->env()).at("acct-1") == 3);

  // A seq that skips ahead is applied and counted as a gap.
  view.fail_on_position = 0;
  STRATA_REQUIRE_OK((*w)->apply_batch({more[1]}, {}));
  CHECK((*w)->stats().gaps == 1);
}

TEST_CASE("kafka projection: consumes the bridge's topic, de-duplicates, resumes") {
  STRATA_TEST_SEED(seed);
  bridge_rig rig{3, seed};
  auto& j = *rig.j;
  rig.append(2'000, 100, 64);
  rig.start();
  REQUIRE(rig.stop(30'000) == 0);
  // A second, separate read side (its own data dir) fed only from Kafka.
  auto reader = open_journal(journal_opts(rig.dir.sub("reader")));
  auto view = open_view(*reader, "k.view");
  consumer_options co;
  co.bootstrap_servers = rig.mock->bootstrap_servers();
  co.topics = {"strata.account"};
  co.batch_max_events = 300;
  {
    auto c = projection_consumer::open(*reader, view.make("k"), co);
    STRATA_REQUIRE_VALUE(c);
    STRATA_REQUIRE_OK((*c)->catch_up(30'000));
    CHECK((*c)->stats().applied == 2'000);
    CHECK((*c)->stats().duplicates == 0);
    CHECK(view.read(reader->env()) == count_journal(j));
  }
  // Republish everything (the bridge's offset reset: every record is now on the topic
  // twice, the at-least-once worst case) plus new events.
  STRATA_REQUIRE_OK(j.offsets().put("kafka-bridge", 0));
  rig.append(300, 100, 64);
  rig.start();
  REQUIRE(rig.stop(30'000) == 0);
  auto c = projection_consumer::open(*reader, view.make("k"), co);
  STRATA_REQUIRE_VALUE(c);
  STRATA_REQUIRE_OK((*c)->catch_up(30'000));
  // Resumed after the 2,000 already applied: reads the 2,300 republished records, of
  // which 2,000 are duplicates of applied events.
  CHECK((*c)->records_read() == 2'300);
  CHECK((*c)->stats().applied == 300);
  CHECK((*c)->stats().duplicates == 2'000);
  CHECK((*c)->stats().gaps == 0);
  CHECK(view.read(reader->env()) == count_journal(j));

  // From the end: nothing old is applied.
  auto view2 = open_view(*reader, "k2.view");
  co.start = start_from::end;
  auto c2 = projection_consumer::open(*reader, view2.make("k2"), co);
  STRATA_REQUIRE_VALUE(c2);
  STRATA_REQUIRE_OK((*c2)->catch_up(30'000));
  CHECK((*c2)->stats().applied == 0);
}

TEST_CASE("kafka projection: a record that is not an envelope stops the consumer there") {
  temp_dir dir{"strata-proj"};
  auto j = open_journal(journal_opts(dir.sub("j")));
  auto mock = mock_cluster::start(1);
  STRATA_REQUIRE_VALUE(mock);
  STRATA_REQUIRE_OK((*mock)->create_topic("junk", 1));
  {
    char errstr[256];
    rd_kafka_conf_t* conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "bootstrap.servers", (*mock)->bootstrap_servers().c_str(), errstr,
                      sizeof(errstr));
    rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    REQUIRE(rk);
    REQUIRE(rd_kafka_producev(rk, RD_KAFKA_V_TOPIC("junk"), RD_KAFKA_V_PARTITION(0),
                              RD_KAFKA_V_VALUE(const_cast<char*>("not capnp"), 9),
                              RD_KAFKA_V_END) == 0);
    REQUIRE(rd_kafka_flush(rk, 10'000) == 0);
    rd_kafka_destroy(rk);
  }
  auto view = open_view(*j, "junk.view");
  consumer_options co;
  co.bootstrap_servers = (*mock)->bootstrap_servers();
  co.topics = {"junk"};
  auto c = projection_consumer::open(*j, view.make("junk"), co);
  STRATA_REQUIRE_VALUE(c);
  auto st = (*c)->catch_up(20'000);
  CHECK(st.code() == errc::corrupt);
  CHECK(st.message().find("kafka topic junk partition 0 offset 0") != std::string::npos);
  auto off = j->offsets().get("junk/kafka/junk/0");
  STRATA_REQUIRE_VALUE(off);
  CHECK_FALSE(off->has_value());
}

TEST_CASE("kafka consumer: claim records are skipped, their offsets stored, events applied") {
  STRATA_TEST_SEED(seed);
  bridge_rig rig{1, seed};
  auto& b = rig.start();
  rig.append(400, 40);
  REQUIRE(b.drain(30'000) == 0);
  for (std::uint32_t shard : {0u, 5u, 63u})
    STRATA_REQUIRE_OK(b.append_claim(shard, 2, 10'000));
  rig.append(100, 40); // events after the claims are applied too
  REQUIRE(b.drain(30'000) == 0);

  auto view = open_view(*rig.j, "proj-claims");
  consumer_options o;
  o.bootstrap_servers = rig.mock->bootstrap_servers();
  o.topics = {bridge_rig::topic};
  auto c = projection_consumer::open(*rig.j, view.make("proj-claims"), o);
  STRATA_REQUIRE_VALUE(c);
  // Without the skip the first claim stops the consumer with `corrupt`.
  STRATA_REQUIRE_OK((*c)->catch_up(30'000));
  CHECK(view.read(rig.j->env()) == count_journal(*rig.j));
  CHECK((*c)->stats().applied == 500);
  CHECK((*c)->records_read() == 503);
  auto next = rig.j->offsets().get("proj-claims/kafka/strata.account/63");
  STRATA_REQUIRE_VALUE(next);
  REQUIRE(next->has_value());
  auto hi =
    topic_watch{rig.mock->bootstrap_servers(), bridge_rig::topic, 64}.offsets(RD_KAFKA_OFFSET_END);
  CHECK(static_cast<std::int64_t>(**next) == hi.at(63)); // past the claim
}
