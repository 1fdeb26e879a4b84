// Tests of kafka/src/bridge.cpp against librdkafka's in-process mock cluster. What the
// 2.0.2 mock cannot show is not claimed here: it stores a retried request twice (no
// idempotent de-duplication without a transactional id), so the tests accept duplicates
// as long as they are byte-exact repeats and never break per-key order. The set-up they
// share (journal, mock cluster, bridge options) is bridge_rig (kafka_test_util.hpp).
#include "kafka_test_util.hpp"

#include "strata/kafka/bridge.hpp"
#include "strata/kafka/mock.hpp"
#include "strata/persistence/offset_store.hpp"
#include "strata/persistence/shard.hpp"

#include <atomic>
#include <set>

using namespace strata::persistence;
using namespace strata::kafka;
using namespace strata::persistence::test;

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
  std::vector<type_rule> rules{{"acct-", "account"}, {"acct-vip-", "vip"}};
  CHECK(stream_type("acct-7", rules) == "account");
  CHECK(stream_type("acct-vip-7", rules) == "vip");
  CHECK(stream_type("account:acct-7", {}) == "account"); // the runtime's naming
  CHECK(stream_type("order:o-9", rules) == "order");
  CHECK(stream_type("plain", rules) == "plain");
  CHECK(stream_type("order-9", {}, '-') == "order");
}

TEST_CASE("bridge refuses to start on a topic with another partition count or none") {
  bridge_rig rig{1};
  rig.opts.topic_prefix = "four.";
  STRATA_REQUIRE_OK(rig.mock->create_topic("four.account", 4));
  rig.opts.metadata_timeout_ms = 10'000;
  auto b = bridge::start(*rig.j, rig.opts);
  REQUIRE_FALSE(b.has_value());
  CHECK(b.error().code() == errc::invalid_argument);
  INFO(b.error().message());
  CHECK(b.error().message().find("has 4 partitions but the bridge needs 64") != std::string::npos);

  rig.opts.types = {{"ord-", "order"}};
  auto b2 = bridge::start(*rig.j, rig.opts);
  REQUIRE_FALSE(b2.has_value());
  CHECK(b2.error().code() == errc::invalid_argument);
  CHECK(b2.error().message().find("does not exist") != std::string::npos);

  rig.opts.producer_config = {{"acks", "1"}};
  rig.opts.types.clear();
  auto b3 = bridge::start(*rig.j, rig.opts);
  REQUIRE_FALSE(b3.has_value());
  CHECK(b3.error().code() == errc::invalid_argument);
}

TEST_CASE("a type first seen at run time with a bad topic stops the bridge with that error") {
  bridge_rig rig{1};
  STRATA_REQUIRE_OK(rig.mock->create_topic("strata.widget", 3));
  auto& b = rig.start();
  append_ok(*rig.j, {make_write("widget:1", 0, {"x"})});
  b.notify();
  REQUIRE(eventually(
    [&] {
      return !b.health().ok();
    },
    20'000));
  CHECK(b.health().code() == errc::invalid_argument);
  CHECK(b.health().message().find("strata.widget") != std::string::npos);
  CHECK(b.stop(0) == 1); // the event is still unpublished
}

TEST_CASE("round trip: every event arrives, per key in seq order, none missing") {
  STRATA_TEST_SEED(seed);
  bridge_rig rig{3, seed};
  rig.append(1'000, 300, 64); // before the bridge starts …
  rig.start();
  rig.append(4'000, 300); // … and while it runs
  auto& j = *rig.j;
  CHECK(rig.b->drain(30'000) == 0);
  auto st = rig.b->stats();
  CHECK(st.acknowledged_position == j.last_position());
  CHECK(st.stored_position == j.last_position());
  CHECK(st.lag_events == 0);
  CHECK(st.lag_ms == 0);
  CHECK(st.in_flight == 0);
  CHECK(rig.b->health().ok());
  auto stored = j.offsets().get("kafka-bridge");
  STRATA_REQUIRE_VALUE(stored);
  CHECK(stored->value_or(0) == j.last_position());

  auto records = rig.records();
  auto c = check_topic_matches_journal(j, records, rig.partitions);
  CHECK(c.journal_events == 5'000);
  // A healthy run on the mock produces every record once.
  CHECK(c.duplicates == 0);
  CHECK(records.front().headers.at("strata.aggregate") == "account");
  CHECK(records.front().headers.at("content-type") ==
        "application/x-capnp; schema=strata.Envelope");

  // A restarted bridge resumes from its stored offset: nothing is sent again.
  CHECK(rig.stop() == 0);
  rig.start();
  rig.append(100, 300);
  CHECK(rig.b->drain(30'000) == 0);
  auto c2 = rig.check();
  CHECK(c2.records == 5'100);
  CHECK(c2.duplicates == 0);
}

TEST_CASE("wait_acknowledged and on_acknowledged report the contiguous acked position") {
  bridge_rig rig{1};
  std::atomic<std::uint64_t> seen{0};
  rig.opts.on_acknowledged = [&](std::uint64_t p) {
    CHECK(p > seen.load()); // strictly increasing
    seen = p;
  };
  auto& b = rig.start();
  auto r = append_ok(*rig.j, {make_write("acct-1", 0, {"1", "2", "3"})});
  b.notify();
  CHECK(b.wait_acknowledged(r[0].last_position, 20'000));
  CHECK(b.acknowledged_position() >= r[0].last_position);
  CHECK(eventually(
    [&] {
      return seen.load() >= r[0].last_position;
    },
    5'000));

  rig.mock->set_all_brokers_down();
  auto r2 = append_ok(*rig.j, {make_write("acct-1", 3, {"4"})});
  b.notify();
  CHECK_FALSE(b.wait_acknowledged(r2[0].last_position, 300)); // no ack while down
  CHECK(b.drain(200) == 1);                                   // bounded wait, reports 1
  rig.mock->set_all_brokers_up();
  CHECK(b.wait_acknowledged(r2[0].last_position, 30'000));
}

TEST_CASE("all brokers down: journal keeps accepting writes, lag grows, bounded, then drains") {
  STRATA_TEST_SEED(seed);
  bridge_rig rig{3, seed};
  rig.opts.max_in_flight_events = 1'000; // the bound under test
  auto& b = rig.start();
  auto& j = *rig.j;
  rig.append(2'000, 200);
  CHECK(b.wait_acknowledged(j.last_position(), 30'000));
  // Go down right after a burst, while records may still be in flight.
  rig.append(3'000, 200);
  rig.mock->set_all_brokers_down();
  const auto at_down = j.last_position(); // nothing appended from now on can be acked
  auto down_since = std::chrono::steady_clock::now();
  std::uint64_t max_in_flight = 0;
  // Keep persisting for several seconds while Kafka is away.
  while (std::chrono::steady_clock::now() - down_since < std::chrono::seconds(3)) {
    rig.append(100, 200);
    max_in_flight = std::max(max_in_flight, b.stats().in_flight);
    std::this_thread::sleep_for(std::chrono::milliseconds(20)); // pacing, not sync
  }
  auto during = b.stats();
  MESSAGE("while down: lag " << during.lag_events << " events, " << during.lag_ms
                             << " ms, in flight " << during.in_flight);
  CHECK(during.acknowledged_position <= at_down);
  CHECK(during.lag_events >= j.last_position() - at_down);
  CHECK(during.lag_ms > 0);
  CHECK(max_in_flight <= 1'000);
  CHECK(during.acknowledged_position < j.last_position());

  rig.mock->set_all_brokers_up();
  CHECK(b.drain(60'000) == 0);
  CHECK(b.stats().lag_events == 0);
  CHECK(b.health().ok());
  auto c = rig.check();
  MESSAGE("records " << c.records << ", duplicates (exact repeats) " << c.duplicates);
}

TEST_CASE("one broker down: its partitions wait, the others flow, nothing lost") {
  STRATA_TEST_SEED(seed);
  bridge_rig rig{3, seed};
  rig.start();
  rig.append(500, 100);
  STRATA_REQUIRE_OK(rig.mock->set_broker_down(2));
  rig.append(2'000, 100);
  STRATA_REQUIRE_OK(rig.mock->set_broker_up(2));
  CHECK(rig.b->drain(60'000) == 0);
  rig.check();
}

TEST_CASE("injected produce errors are retried, nothing is lost") {
  STRATA_TEST_SEED(seed);
  bridge_rig rig{3, seed};
  // With several requests in flight, a real broker rejects the request after a failed
  // one (OUT_OF_ORDER_SEQUENCE) and librdkafka retries both in order. The 2.0.2 mock
  // checks sequences only for transactional producers and would store the later request
  // first, which no real cluster does. One request in flight keeps this test about
  // what it can show: failed produce requests are retried until stored.
  rig.opts.max_in_flight_requests = 1;
  auto& b = rig.start();
  rig.append(300, 100);
  REQUIRE(b.wait_acknowledged(rig.j->last_position(), 30'000));
  for (int code : {6 /* NOT_LEADER_OR_FOLLOWER */, 56 /* KAFKA_STORAGE_ERROR */,
                   7 /* REQUEST_TIMED_OUT */, 19 /* NOT_ENOUGH_REPLICAS */}) {
    CAPTURE(code);
    rig.mock->push_produce_errors(5, code);
    rig.append(1'000, 100);
    CHECK(b.drain(60'000) == 0);
  }
  CHECK(b.health().ok());
  auto c = rig.check();
  MESSAGE("records " << c.records << ", duplicates (exact repeats) " << c.duplicates);
}

TEST_CASE("stop while Kafka is down reports what is unpublished; the next start sends it") {
  STRATA_TEST_SEED(seed);
  bridge_rig rig{3, seed};
  auto& j = *rig.j;
  rig.start();
  rig.append(500, 50);
  REQUIRE(rig.b->wait_acknowledged(j.last_position(), 30'000));
  rig.mock->set_all_brokers_down();
  const auto acked = rig.b->acknowledged_position();
  rig.append(700, 50);
  // A CLI exiting while Kafka is away: bounded wait, then the count left behind.
  CHECK(rig.stop(300) == j.last_position() - acked);
  auto stored = j.offsets().get("kafka-bridge");
  STRATA_REQUIRE_VALUE(stored);
  CHECK(stored->value_or(0) < j.last_position());
  rig.mock->set_all_brokers_up();
  CHECK(rig.start().drain(30'000) == 0);
  rig.check();
}

TEST_CASE("events deleted from the journal before publishing are skipped, not waited for") {
  bridge_rig rig{1};
  auto& j = *rig.j;
  append_ok(j, {make_write("acct-1", 0, {"a", "b", "c"}), make_write("acct-2", 0, {"x", "y"})});
  append_ok(j, {make_write("acct-3", 0, {"p", "q"})});    // the tail of the log …
  STRATA_REQUIRE_OK(j.delete_events_before("acct-3", 2)); // … is deleted
  STRATA_REQUIRE_OK(j.delete_events_before("acct-1", 1));
  auto& b = rig.start();
  CHECK(b.drain(30'000) == 0);
  CHECK(b.acknowledged_position() == j.last_position());
  std::multiset<std::string> got;
  for (auto& r : rig.records())
    got.insert(r.key + "#" + r.headers.at("strata.seq"));
  CHECK(got == std::multiset<std::string>{"acct-1#2", "acct-1#3", "acct-2#1", "acct-2#2"});
}

TEST_CASE("a bridge started while Kafka is down checks its topics and publishes once it is up") {
  STRATA_TEST_SEED(seed);
  bridge_rig rig{3, seed};
  rig.mock->set_all_brokers_down();
  rig.opts.metadata_timeout_ms = 300;
  std::atomic<int> errors{0};
  rig.opts.on_error = [&](const status&) {
    ++errors;
  };
  auto& b = rig.start(); // starts anyway: the journal must not wait for Kafka
  rig.append(1'000, 100);
  CHECK(b.stats().acknowledged_position == 0);
  CHECK(errors.load() > 0); // the unreachable cluster was reported
  rig.mock->set_all_brokers_up();
  CHECK(b.drain(60'000) == 0);
  CHECK(b.health().ok());
  rig.check();
}

TEST_CASE("librdkafka's QUEUE_FULL is backpressure: the bridge waits, nothing is lost") {
  STRATA_TEST_SEED(seed);
  bridge_rig rig{1, seed};
  rig.opts.max_in_flight_bytes = 64 * 1024; // a few hundred records fill librdkafka's queue
  auto& b = rig.start();
  REQUIRE(b.health().ok());
  rig.mock->set_all_brokers_down();
  rig.append(3'000, 100);
  REQUIRE(eventually(
    [&] {
      return b.stats().queue_full_waits > 0;
    },
    30'000));
  CHECK(b.stats().in_flight < 3'000);
  rig.mock->set_all_brokers_up();
  CHECK(b.drain(60'000) == 0);
  CHECK(b.stats().delivery_errors == 0);
  rig.check();
}

TEST_CASE("compression shrinks the bytes on the wire; consumers read the records unchanged") {
  STRATA_TEST_SEED(seed);
  // The same 3,000 events published without compression, with lz4 and with the default
  // (zstd), counted from librdkafka's statistics (tx_bytes).
  auto published_bytes = [&](const std::string& compression) {
    bridge_rig rig{1, seed};
    rig.opts.compression = compression;
    rig.opts.statistics_interval_ms = 20;
    rig.append(3'000, 100);
    auto& b = rig.start();
    CHECK(b.drain(30'000) == 0);
    const auto reports = b.stats().wire_reports;
    REQUIRE(eventually(
      [&] {
        return b.stats().wire_reports >= reports + 2; // covers the last batch
      },
      10'000));
    auto c = rig.check(); // values, keys and headers exactly as in the journal
    CHECK(c.records == 3'000);
    return b.stats().wire_bytes;
  };
  CHECK(bridge_options{}.compression == "zstd");
  const auto none = published_bytes("none");
  const auto lz4 = published_bytes("lz4");
  const auto zstd = published_bytes("zstd");
  MESSAGE("bytes on the wire per event: none " << none / 3'000.0 << ", lz4 " << lz4 / 3'000.0
                                               << ", zstd " << zstd / 3'000.0);
  CHECK(none > 3'000 * 100); // an envelope alone is over 100 bytes
  CHECK(lz4 * 2 < none);
  CHECK(zstd * 3 < none);
}

TEST_CASE("an unknown compression name stops the start") {
  bridge_rig rig{1};
  rig.opts.compression = "brotli";
  auto b = bridge::start(*rig.j, rig.opts);
  REQUIRE_FALSE(b.has_value());
  CHECK(b.error().code() == errc::invalid_argument);
  CHECK(b.error().message().find("compression.type") != std::string::npos);
}

namespace {

/// Events 1..n of `pid` as another node wrote them (what journal::import takes).
std::vector<event_record> foreign_events(const std::string& pid, std::uint64_t from,
                                         std::uint64_t to) {
  std::vector<event_record> v;
  for (auto s = from; s <= to; ++s) {
    event_record e;
    e.persistence_id = pid;
    e.seq = s;
    e.timestamp_ns = 1'700'000'000'000'000'000ll + static_cast<std::int64_t>(s);
    e.type = "deposited";
    e.payload = pid + "#" + std::to_string(s);
    e.writer_node = "node-a";
    v.push_back(std::move(e));
  }
  return v;
}

std::multiset<std::string> published(const bridge_rig& rig) {
  std::multiset<std::string> got;
  for (auto& r : rig.records())
    got.insert(r.key + "#" + r.headers.at("strata.seq"));
  return got;
}

} // namespace

TEST_CASE("imported events are not published again; later local appends to their streams are") {
  bridge_rig rig{1};
  auto& j = *rig.j;
  append_ok(j, {make_write("acct-1", 0, {"a", "b"})});            // positions 1-2
  STRATA_REQUIRE_VALUE(j.import(foreign_events("acct-2", 1, 3))); // 3-5, before the start
  auto& b = rig.start();
  CHECK(b.drain(30'000) == 0);
  CHECK(b.acknowledged_position() == j.last_position());          // past the imported tail
  STRATA_REQUIRE_VALUE(j.import(foreign_events("acct-3", 1, 2))); // 6-7, while it runs
  b.notify();
  append_ok(j, {make_write("acct-2", 3, {"local"}), make_write("acct-3", 2, {"local"})}); // 8-9
  STRATA_REQUIRE_VALUE(j.import(foreign_events("acct-4", 1, 1)));                         // 10
  b.notify();
  CHECK(b.drain(30'000) == 0);
  CHECK(j.last_position() == 10);
  CHECK(b.acknowledged_position() == 10);
  auto want = std::multiset<std::string>{"acct-1#1", "acct-1#2", "acct-2#4", "acct-3#3"};
  CHECK(published(rig) == want);
  // A restart resumes from the stored offset (past the imports): nothing is sent again.
  CHECK(rig.stop() == 0);
  auto stored = j.offsets().get("kafka-bridge");
  STRATA_REQUIRE_VALUE(stored);
  CHECK(stored->value_or(0) == 10);
  rig.start();
  append_ok(j, {make_write("acct-4", 1, {"local"})}); // 11
  rig.b->notify();
  CHECK(rig.b->drain(30'000) == 0);
  want.insert("acct-4#2");
  CHECK(published(rig) == want);
}
