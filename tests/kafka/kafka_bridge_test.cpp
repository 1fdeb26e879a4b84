// Tests of persistence/src/kafka_bridge.cpp against librdkafka's in-process mock
// cluster. What the 2.0.2 mock cannot show is not claimed here: it stores a retried
// request twice (no idempotent de-duplication without a transactional id), so the tests
// accept duplicates as long as they are byte-exact repeats and never break per-key order.
#include "kafka_test_util.hpp"

#include "strata/persistence/kafka_bridge.hpp"
#include "strata/persistence/kafka_mock.hpp"
#include "strata/persistence/offset_store.hpp"
#include "strata/persistence/shard.hpp"

#include <atomic>
#include <set>

using namespace strata::persistence;
using namespace strata::persistence::test;

namespace {

constexpr int partitions = 64;
const std::string topic = "strata.account";

std::unique_ptr<kafka_mock_cluster> make_mock(int brokers = 3) {
  auto m = kafka_mock_cluster::start(brokers);
  STRATA_REQUIRE_VALUE(m);
  STRATA_REQUIRE_OK((*m)->create_topic(topic, partitions));
  return std::move(*m);
}

kafka_bridge_options bridge_opts(const kafka_mock_cluster& mock) {
  kafka_bridge_options o;
  o.bootstrap_servers = mock.bootstrap_servers();
  o.types = {{"acct-", "account"}};
  o.offset_commit_interval_ms = 20;
  return o;
}

std::unique_ptr<kafka_bridge> start_bridge(journal& j, kafka_bridge_options o) {
  auto b = kafka_bridge::start(j, std::move(o));
  STRATA_REQUIRE_VALUE(b);
  return std::move(*b);
}

} // namespace

TEST_CASE("shard_of is 64-bit FNV-1a modulo the shard count") {
  CHECK(fnv1a_64("") == 0xcbf29ce484222325ull);
  CHECK(fnv1a_64("a") == 0xaf63dc4c8601ec8cull);
  CHECK(fnv1a_64("foobar") == 0x85944171f73967e8ull);
  CHECK(shard_of("account-42") == fnv1a_64("account-42") % 64);
  CHECK(shard_of("account-42", 64) == 5);
  CHECK(shard_of("acct-0", 64) == 47);
  CHECK(shard_of("x", 0) == 0);
  static_assert(shard_of("account-42", 64) == 5, "usable at compile time");
}

TEST_CASE("stream type: explicit prefix rules, longest first, then text before ':'") {
  std::vector<kafka_type_rule> rules{{"acct-", "account"}, {"acct-vip-", "vip"}};
  CHECK(kafka_stream_type("acct-7", rules) == "account");
  CHECK(kafka_stream_type("acct-vip-7", rules) == "vip");
  CHECK(kafka_stream_type("account:acct-7", {}) == "account"); // the runtime's naming
  CHECK(kafka_stream_type("order:o-9", rules) == "order");
  CHECK(kafka_stream_type("plain", rules) == "plain");
  CHECK(kafka_stream_type("order-9", {}, '-') == "order");
}

TEST_CASE("bridge refuses to start on a topic with another partition count or none") {
  temp_dir dir{"strata-kafka"};
  auto j = open_journal(journal_opts(dir.sub("j")));
  auto mock = kafka_mock_cluster::start(1);
  STRATA_REQUIRE_VALUE(mock);
  STRATA_REQUIRE_OK((*mock)->create_topic("strata.account", 4));
  auto o = bridge_opts(**mock);
  o.metadata_timeout_ms = 10'000;
  auto b = kafka_bridge::start(*j, o);
  REQUIRE_FALSE(b.has_value());
  CHECK(b.error().code() == errc::invalid_argument);
  INFO(b.error().message());
  CHECK(b.error().message().find("has 4 partitions but the bridge needs 64") != std::string::npos);

  o.types = {{"ord-", "order"}};
  auto b2 = kafka_bridge::start(*j, o);
  REQUIRE_FALSE(b2.has_value());
  CHECK(b2.error().code() == errc::invalid_argument);
  CHECK(b2.error().message().find("does not exist") != std::string::npos);

  o.producer_config = {{"acks", "1"}};
  o.types.clear();
  auto b3 = kafka_bridge::start(*j, o);
  REQUIRE_FALSE(b3.has_value());
  CHECK(b3.error().code() == errc::invalid_argument);
}

TEST_CASE("a type first seen at run time with a bad topic stops the bridge with that error") {
  temp_dir dir{"strata-kafka"};
  auto j = open_journal(journal_opts(dir.sub("j")));
  auto mock = make_mock(1);
  STRATA_REQUIRE_OK(mock->create_topic("strata.widget", 3));
  auto b = start_bridge(*j, bridge_opts(*mock));
  append_ok(*j, {make_write("widget:1", 0, {"x"})});
  b->notify();
  REQUIRE(eventually(
    [&] {
      return !b->health().ok();
    },
    20'000));
  CHECK(b->health().code() == errc::invalid_argument);
  CHECK(b->health().message().find("strata.widget") != std::string::npos);
  CHECK(b->stop(0) == 1); // the event is still unpublished
}

TEST_CASE("round trip: every event arrives, per key in seq order, none missing") {
  auto seed = test_seed();
  std::mt19937_64 rng{seed};
  temp_dir dir{"strata-kafka"};
  auto j = open_journal(journal_opts(dir.sub("j")));
  auto mock = make_mock();
  // Events before the bridge starts and while it runs.
  append_workload(*j, rng, 1'000, 300);
  auto b = start_bridge(*j, bridge_opts(*mock));
  append_workload(*j, rng, 4'000, 300, 50, [&] {
    b->notify();
  });
  CHECK(b->drain(30'000) == 0);
  auto st = b->stats();
  CHECK(st.acknowledged_position == j->last_position());
  CHECK(st.stored_position == j->last_position());
  CHECK(st.lag_events == 0);
  CHECK(st.lag_ms == 0);
  CHECK(st.in_flight == 0);
  CHECK(b->health().ok());
  auto stored = j->offsets().get("kafka-bridge");
  STRATA_REQUIRE_VALUE(stored);
  CHECK(stored->value_or(0) == j->last_position());

  auto records = read_topic(mock->bootstrap_servers(), topic, partitions);
  auto c = check_topic_matches_journal(*j, records, partitions);
  CHECK(c.journal_events == 5'000);
  // A healthy run on the mock produces every record once.
  CHECK(c.duplicates == 0);
  CHECK(records.front().headers.at("strata.aggregate") == "account");
  CHECK(records.front().headers.at("content-type") ==
        "application/x-capnp; schema=strata.Envelope");

  // A restarted bridge resumes from its stored offset: nothing is sent again.
  CHECK(b->stop(10'000) == 0);
  b.reset();
  auto b2 = start_bridge(*j, bridge_opts(*mock));
  append_workload(*j, rng, 100, 300, 50, [&] {
    b2->notify();
  });
  CHECK(b2->drain(30'000) == 0);
  auto again = read_topic(mock->bootstrap_servers(), topic, partitions);
  auto c2 = check_topic_matches_journal(*j, again, partitions);
  CHECK(c2.records == 5'100);
  CHECK(c2.duplicates == 0);
}

TEST_CASE("wait_acknowledged and on_acknowledged report the contiguous acked position") {
  temp_dir dir{"strata-kafka"};
  auto j = open_journal(journal_opts(dir.sub("j")));
  auto mock = make_mock(1);
  std::atomic<std::uint64_t> seen{0};
  auto o = bridge_opts(*mock);
  o.on_acknowledged = [&](std::uint64_t p) {
    CHECK(p > seen.load()); // strictly increasing
    seen = p;
  };
  auto b = start_bridge(*j, o);
  auto r = append_ok(*j, {make_write("acct-1", 0, {"1", "2", "3"})});
  b->notify();
  CHECK(b->wait_acknowledged(r[0].last_position, 20'000));
  CHECK(b->acknowledged_position() >= r[0].last_position);
  CHECK(eventually(
    [&] {
      return seen.load() >= r[0].last_position;
    },
    5'000));

  mock->set_all_brokers_down();
  auto r2 = append_ok(*j, {make_write("acct-1", 3, {"4"})});
  b->notify();
  CHECK_FALSE(b->wait_acknowledged(r2[0].last_position, 300)); // no ack while down
  CHECK(b->drain(200) == 1);                                   // bounded wait, reports 1
  mock->set_all_brokers_up();
  CHECK(b->wait_acknowledged(r2[0].last_position, 30'000));
}

TEST_CASE("all brokers down: journal keeps accepting writes, lag grows, bounded, then drains") {
  auto seed = test_seed();
  std::mt19937_64 rng{seed};
  temp_dir dir{"strata-kafka"};
  auto j = open_journal(journal_opts(dir.sub("j")));
  auto mock = make_mock(3);
  auto o = bridge_opts(*mock);
  o.max_in_flight_events = 1'000; // the bound under test
  auto b = start_bridge(*j, o);
  append_workload(*j, rng, 2'000, 200, 50, [&] {
    b->notify();
  });
  CHECK(b->wait_acknowledged(j->last_position(), 30'000));
  // Go down right after a burst, while records may still be in flight.
  append_workload(*j, rng, 3'000, 200, 50, [&] {
    b->notify();
  });
  mock->set_all_brokers_down();
  const auto at_down = j->last_position(); // nothing appended from now on can be acked
  auto down_since = std::chrono::steady_clock::now();
  std::uint64_t max_in_flight = 0;
  // Keep persisting for several seconds while Kafka is away.
  while (std::chrono::steady_clock::now() - down_since < std::chrono::seconds(3)) {
    append_workload(*j, rng, 100, 200, 50, [&] {
      b->notify();
    });
    max_in_flight = std::max(max_in_flight, b->stats().in_flight);
    std::this_thread::sleep_for(std::chrono::milliseconds(20)); // pacing, not sync
  }
  auto during = b->stats();
  MESSAGE("while down: lag " << during.lag_events << " events, " << during.lag_ms
                             << " ms, in flight " << during.in_flight);
  CHECK(during.acknowledged_position <= at_down);
  CHECK(during.lag_events >= j->last_position() - at_down);
  CHECK(during.lag_ms > 0);
  CHECK(max_in_flight <= 1'000);
  CHECK(during.acknowledged_position < j->last_position());

  mock->set_all_brokers_up();
  CHECK(b->drain(60'000) == 0);
  auto after = b->stats();
  CHECK(after.lag_events == 0);
  CHECK(b->health().ok());
  auto records = read_topic(mock->bootstrap_servers(), topic, partitions);
  auto c = check_topic_matches_journal(*j, records, partitions);
  MESSAGE("records " << c.records << ", duplicates (exact repeats) " << c.duplicates);
}

TEST_CASE("one broker down: its partitions wait, the others flow, nothing lost") {
  auto seed = test_seed();
  std::mt19937_64 rng{seed};
  temp_dir dir{"strata-kafka"};
  auto j = open_journal(journal_opts(dir.sub("j")));
  auto mock = make_mock(3);
  auto b = start_bridge(*j, bridge_opts(*mock));
  append_workload(*j, rng, 500, 100, 50, [&] {
    b->notify();
  });
  STRATA_REQUIRE_OK(mock->set_broker_down(2));
  append_workload(*j, rng, 2'000, 100, 50, [&] {
    b->notify();
  });
  STRATA_REQUIRE_OK(mock->set_broker_up(2));
  CHECK(b->drain(60'000) == 0);
  auto records = read_topic(mock->bootstrap_servers(), topic, partitions);
  check_topic_matches_journal(*j, records, partitions);
}

TEST_CASE("injected produce errors are retried, nothing is lost") {
  auto seed = test_seed();
  std::mt19937_64 rng{seed};
  temp_dir dir{"strata-kafka"};
  auto j = open_journal(journal_opts(dir.sub("j")));
  auto mock = make_mock(3);
  auto o = bridge_opts(*mock);
  // With several requests in flight, a real broker rejects the request after a failed
  // one (OUT_OF_ORDER_SEQUENCE) and librdkafka retries both in order. The 2.0.2 mock
  // checks sequences only for transactional producers and would store the later request
  // first, which no real cluster does. One request in flight keeps this test about
  // what it can show: failed produce requests are retried until stored.
  o.max_in_flight_requests = 1;
  auto b = start_bridge(*j, o);
  append_workload(*j, rng, 300, 100, 50, [&] {
    b->notify();
  });
  REQUIRE(b->wait_acknowledged(j->last_position(), 30'000));
  for (int code : {6 /* NOT_LEADER_OR_FOLLOWER */, 56 /* KAFKA_STORAGE_ERROR */,
                   7 /* REQUEST_TIMED_OUT */, 19 /* NOT_ENOUGH_REPLICAS */}) {
    CAPTURE(code);
    mock->push_produce_errors(5, code);
    append_workload(*j, rng, 1'000, 100, 50, [&] {
      b->notify();
    });
    CHECK(b->drain(60'000) == 0);
  }
  CHECK(b->health().ok());
  auto records = read_topic(mock->bootstrap_servers(), topic, partitions);
  auto c = check_topic_matches_journal(*j, records, partitions);
  MESSAGE("records " << c.records << ", duplicates (exact repeats) " << c.duplicates);
}

TEST_CASE("stop while Kafka is down reports what is unpublished; the next start sends it") {
  auto seed = test_seed();
  std::mt19937_64 rng{seed};
  temp_dir dir{"strata-kafka"};
  auto j = open_journal(journal_opts(dir.sub("j")));
  auto mock = make_mock(3);
  {
    auto b = start_bridge(*j, bridge_opts(*mock));
    append_workload(*j, rng, 500, 50, 50, [&] {
      b->notify();
    });
    REQUIRE(b->wait_acknowledged(j->last_position(), 30'000));
    mock->set_all_brokers_down();
    const auto acked = b->acknowledged_position();
    append_workload(*j, rng, 700, 50, 50, [&] {
      b->notify();
    });
    // A CLI exiting while Kafka is away: bounded wait, then the count left behind.
    CHECK(b->stop(300) == j->last_position() - acked);
  }
  auto stored = j->offsets().get("kafka-bridge");
  STRATA_REQUIRE_VALUE(stored);
  CHECK(stored->value_or(0) < j->last_position());
  mock->set_all_brokers_up();
  auto b = start_bridge(*j, bridge_opts(*mock));
  CHECK(b->drain(30'000) == 0);
  auto records = read_topic(mock->bootstrap_servers(), topic, partitions);
  check_topic_matches_journal(*j, records, partitions);
}

TEST_CASE("events deleted from the journal before publishing are skipped, not waited for") {
  temp_dir dir{"strata-kafka"};
  auto j = open_journal(journal_opts(dir.sub("j")));
  auto mock = make_mock(1);
  append_ok(*j, {make_write("acct-1", 0, {"a", "b", "c"}), make_write("acct-2", 0, {"x", "y"})});
  append_ok(*j, {make_write("acct-3", 0, {"p", "q"})});    // the tail of the log …
  STRATA_REQUIRE_OK(j->delete_events_before("acct-3", 2)); // … is deleted
  STRATA_REQUIRE_OK(j->delete_events_before("acct-1", 1));
  auto b = start_bridge(*j, bridge_opts(*mock));
  CHECK(b->drain(30'000) == 0);
  CHECK(b->acknowledged_position() == j->last_position());
  auto records = read_topic(mock->bootstrap_servers(), topic, partitions);
  std::multiset<std::string> got;
  for (auto& r : records)
    got.insert(r.key + "#" + r.headers.at("strata.seq"));
  CHECK(got == std::multiset<std::string>{"acct-1#2", "acct-1#3", "acct-2#1", "acct-2#2"});
}

TEST_CASE("a bridge started while Kafka is down checks its topics and publishes once it is up") {
  auto seed = test_seed();
  std::mt19937_64 rng{seed};
  temp_dir dir{"strata-kafka"};
  auto j = open_journal(journal_opts(dir.sub("j")));
  auto mock = make_mock(3);
  mock->set_all_brokers_down();
  auto o = bridge_opts(*mock);
  o.metadata_timeout_ms = 300;
  std::atomic<int> errors{0};
  o.on_error = [&](const status&) {
    ++errors;
  };
  auto b = start_bridge(*j, o); // starts anyway: the journal must not wait for Kafka
  append_workload(*j, rng, 1'000, 100, 50, [&] {
    b->notify();
  });
  CHECK(b->stats().acknowledged_position == 0);
  CHECK(errors.load() > 0); // the unreachable cluster was reported
  mock->set_all_brokers_up();
  CHECK(b->drain(60'000) == 0);
  CHECK(b->health().ok());
  auto records = read_topic(mock->bootstrap_servers(), topic, partitions);
  check_topic_matches_journal(*j, records, partitions);
}

TEST_CASE("librdkafka's QUEUE_FULL is backpressure: the bridge waits, nothing is lost") {
  auto seed = test_seed();
  std::mt19937_64 rng{seed};
  temp_dir dir{"strata-kafka"};
  auto j = open_journal(journal_opts(dir.sub("j")));
  auto mock = make_mock(1);
  auto o = bridge_opts(*mock);
  o.max_in_flight_bytes = 64 * 1024; // a few hundred records fill librdkafka's queue
  auto b = start_bridge(*j, o);
  REQUIRE(b->health().ok());
  mock->set_all_brokers_down();
  append_workload(*j, rng, 3'000, 100, 50, [&] {
    b->notify();
  });
  REQUIRE(eventually(
    [&] {
      return b->stats().queue_full_waits > 0;
    },
    30'000));
  CHECK(b->stats().in_flight < 3'000);
  mock->set_all_brokers_up();
  CHECK(b->drain(60'000) == 0);
  CHECK(b->stats().delivery_errors == 0);
  auto records = read_topic(mock->bootstrap_servers(), topic, partitions);
  check_topic_matches_journal(*j, records, partitions);
}
