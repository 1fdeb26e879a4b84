// tests the Kafka wiring of runtime/src/system.cpp and journal_writer.cpp: the bridge
// publishes what the system persists, and `replicated` replies wait for Kafka's ack.
// Against an in-process librdkafka mock cluster.
#include "counter.hpp"
#include "test_util.hpp"

#include "strata/runtime/testing.hpp"

#include "strata/kafka/bridge.hpp"
#include "strata/kafka/mock.hpp"

#include <atomic>
#include <future>
#include <memory>
#include <vector>

using namespace test_counter;
using namespace test_util;
using namespace std::chrono_literals;
namespace sp = strata::persistence;
namespace sk = strata::kafka;

namespace {

/// open_system with fault injection (strata/runtime/testing.hpp).
std::unique_ptr<strata::system> open_system(const strata::config& c, strata::testing::faults f) {
  auto s = strata::testing::open_with_faults(c, std::move(f));
  if (!s) FAIL("cannot open the system: " << strata::describe(s.error()));
  return std::move(*s);
}

std::unique_ptr<sk::mock_cluster> start_mock() {
  auto mock = sk::mock_cluster::start(3);
  if (!mock) FAIL("mock cluster: " << mock.error().to_string());
  auto st = (*mock)->create_topic("strata.counter", 64);
  if (!st.ok()) FAIL("create topic: " << st.to_string());
  return std::move(*mock);
}

using reply_future = std::future<caf::expected<counter::reply>>;

std::vector<reply_future> send_adds(strata::entities<counter>& c, int n) {
  std::vector<reply_future> futs;
  for (int i = 0; i < n; ++i)
    futs.push_back(c.ask_future("k" + std::to_string(i % 4), add{1}));
  return futs;
}

} // namespace

TEST_CASE("replication: replicated replies wait for Kafka; an outage delays them, loses none") {
  temp_dir dir;
  auto mock = start_mock();
  auto cfg = test_config(dir.path());
  cfg.kafka = mock->bootstrap_servers();
  cfg.replicated = true;
  // This outage is shorter than the timeout (librdkafka may take seconds to reconnect).
  cfg.replication_timeout_ms = 120'000;
  auto sys = open_system(cfg);
  REQUIRE(sys->kafka_bridge() != nullptr);
  CHECK(sys->kafka_bootstrap() == mock->bootstrap_servers());
  auto c = sys->entities<counter>();

  // Healthy: the reply comes after Kafka acknowledged the event.
  auto r = c.ask("a", add{1}, 30s);
  REQUIRE_MESSAGE(r, strata::describe(r.error()));
  auto pos = sys->journal().last_position();
  CHECK(sys->kafka_bridge()->acknowledged_position() >= pos);

  // Every broker down: the events are committed locally, the replies wait.
  mock->set_all_brokers_down();
  auto futs = send_adds(c, 12);
  REQUIRE(eventually([&] {
    return sys->journal().last_position() > pos;
  }));
  // A local reply would come within microseconds of the commit; give it ample time.
  CHECK(futs.front().wait_for(300ms) == std::future_status::timeout);
  for (auto& f : futs)
    CHECK(f.wait_for(0ms) == std::future_status::timeout);
  CHECK(sys->kafka_bridge()->acknowledged_position() < sys->journal().last_position());

  // Kafka returns: every reply completes, and Kafka acknowledged every event.
  mock->set_all_brokers_up();
  for (auto& f : futs) {
    REQUIRE(f.wait_for(60s) == std::future_status::ready);
    auto v = f.get();
    CHECK_MESSAGE(v, (v ? std::string{} : strata::describe(v.error())));
  }
  std::int64_t total = 0;
  for (int k = 0; k < 4; ++k) {
    auto s = c.state_at_seq("k" + std::to_string(k));
    REQUIRE(s);
    total += s->state.value;
  }
  CHECK(total == 12);
  CHECK(eventually([&] {
    return sys->kafka_bridge()->acknowledged_position() == sys->journal().last_position();
  }));
}

TEST_CASE("replication: local replies do not wait for Kafka; the bridge catches up") {
  temp_dir dir;
  auto mock = start_mock();
  auto cfg = test_config(dir.path());
  cfg.kafka = mock->bootstrap_servers();
  auto sys = open_system(cfg); // replication = local (default)
  auto c = sys->entities<counter>();
  mock->set_all_brokers_down();
  auto futs = send_adds(c, 12);
  for (auto& f : futs) {
    REQUIRE(f.wait_for(60s) == std::future_status::ready);
    CHECK(f.get());
  }
  CHECK(sys->kafka_bridge()->acknowledged_position() < sys->journal().last_position());
  mock->set_all_brokers_up();
  CHECK(eventually([&] {
    return sys->kafka_bridge()->acknowledged_position() == sys->journal().last_position();
  }));
}

TEST_CASE("replication: config keys and `kafka = mock`") {
  strata::config c;
  CHECK(c.set("replication", "replicated").ok());
  CHECK(c.set("replication.order", "local").ok());
  CHECK_FALSE(c.set("replication", "sometimes").ok());
  CHECK(c.replicated_for("account"));
  CHECK_FALSE(c.replicated_for("order"));

  temp_dir dir;
  auto cfg = test_config(dir.path());
  cfg.replicated = true; // without Kafka: refused, not silently local
  auto refused = strata::system::open(cfg);
  REQUIRE_FALSE(refused);
  CHECK(strata::describe(refused.error()).find("needs Kafka") != std::string::npos);
  cfg.kafka = "mock";
  cfg.replicated = true;
  auto sys = open_system(cfg);
  REQUIRE(sys->kafka_bridge() != nullptr);
  CHECK(sys->kafka_bootstrap().find("127.0.0.1:") == 0);
  auto cs = sys->entities<counter>(); // creates strata.counter on the mock
  auto r = cs.ask("x", add{3}, 30s);
  REQUIRE_MESSAGE(r, strata::describe(r.error()));
  CHECK(*r == 3);
  CHECK(sys->kafka_bridge()->acknowledged_position() >= sys->journal().last_position());
}

TEST_CASE("replication: an outage longer than replication-timeout-ms fails the reply with "
          "not_replicated; the event stays stored and is published when Kafka returns") {
  temp_dir dir;
  auto mock = start_mock();
  auto cfg = test_config(dir.path());
  cfg.kafka = mock->bootstrap_servers();
  cfg.replicated = true;
  cfg.replication_timeout_ms = 1'500;
  const auto timeout = std::chrono::milliseconds(cfg.replication_timeout_ms);
  auto sys = open_system(cfg);
  auto c = sys->entities<counter>();
  auto r = c.ask("a", add{1}, 30s);
  REQUIRE_MESSAGE(r, strata::describe(r.error()));

  // Every broker down: the reply fails after the timeout (not the ask's 30 s), names
  // the seq and the stream, and the event is in the journal.
  mock->set_all_brokers_down();
  auto t0 = std::chrono::steady_clock::now();
  auto down = c.ask("a", add{5}, 30s);
  auto waited = std::chrono::steady_clock::now() - t0;
  REQUIRE_FALSE(down);
  CHECK(strata::runtime_error_of(down.error()) == strata::runtime_errc::not_replicated);
  CHECK(strata::describe(down.error()) ==
        "not_replicated: stored locally at seq 2 of counter:a, not yet acknowledged by "
        "Kafka; the bridge keeps publishing it");
  CHECK(waited >= timeout - 100ms);
  CHECK(waited < timeout + 10s);
  auto h = c.history("a");
  REQUIRE(h);
  REQUIRE(h->size() == 2);
  CHECK(h->back().seq == 2);
  auto stored = c.state_at_seq("a");
  REQUIRE(stored);
  CHECK(stored->state.value == 6);
  const auto last = sys->journal().last_position();
  CHECK(sys->kafka_bridge()->acknowledged_position() < last);

  // Kafka is known to be behind: later replicated writes do not wait again (a load keeps
  // its pace); each is stored and says so. The entity goes on from its stored state.
  t0 = std::chrono::steady_clock::now();
  auto behind = c.ask("a", add{10}, 30s);
  CHECK(std::chrono::steady_clock::now() - t0 < timeout);
  REQUIRE_FALSE(behind);
  CHECK(strata::describe(behind.error()).find("stored locally at seq 3 of counter:a") !=
        std::string::npos);
  auto other = c.ask("b", add{7}, 30s);
  REQUIRE_FALSE(other);
  CHECK(strata::runtime_error_of(other.error()) == strata::runtime_errc::not_replicated);
  CHECK(strata::describe(other.error()).find("seq 1 of counter:b") != std::string::npos);

  // Kafka returns: the bridge publishes every stored event (lag, not loss), and
  // replicated replies wait for Kafka again.
  mock->set_all_brokers_up();
  CHECK(eventually(
    [&] {
      return sys->kafka_bridge()->acknowledged_position() >= sys->journal().last_position();
    },
    60s));
  auto again = c.ask("a", add{100}, 30s);
  REQUIRE_MESSAGE(again, strata::describe(again.error()));
  CHECK(*again == 116);
  CHECK(sys->kafka_bridge()->acknowledged_position() >= sys->journal().last_position());
}

TEST_CASE("replication: replication-timeout-ms config key") {
  strata::config c;
  CHECK(c.replication_timeout_ms == 10'000);
  CHECK(c.set("replication-timeout-ms", "250").ok());
  CHECK(c.replication_timeout_ms == 250);
  CHECK_FALSE(c.set("replication-timeout-ms", "0").ok());
  CHECK_FALSE(c.set("replication-timeout-ms", "soon").ok());
  const char* argv[] = {"x", "--replication-timeout-ms", "1234"};
  auto parsed = strata::config::from_args(3, argv);
  REQUIRE(parsed);
  CHECK(parsed->replication_timeout_ms == 1234);
}

TEST_CASE("replication: kafka-compression config key reaches the bridge") {
  strata::config c;
  CHECK(c.kafka_compression == "zstd");
  CHECK(c.set("kafka-compression", "lz4").ok());
  CHECK(c.kafka_compression == "lz4");
  auto bad = c.set("kafka-compression", "brotli");
  CHECK(bad.code() == sp::errc::invalid_argument);
  CHECK(bad.message().find("none|gzip|snappy|lz4|zstd") != std::string::npos);
  CHECK(c.kafka_compression == "lz4");

  temp_dir dir;
  auto mock = start_mock();
  auto cfg = test_config(dir.path());
  cfg.kafka = mock->bootstrap_servers();
  REQUIRE(cfg.set("kafka-compression", "lz4").ok());
  auto sys = open_system(cfg);
  REQUIRE(sys->kafka_bridge() != nullptr);
  CHECK(sys->kafka_bridge()->options().compression == "lz4");
}

TEST_CASE("replication: a failed write does not overtake the same entity's earlier write "
          "still waiting for Kafka") {
  temp_dir dir;
  auto mock = start_mock();
  auto cfg = test_config(dir.path());
  cfg.kafka = mock->bootstrap_servers();
  cfg.replicated = true;
  cfg.replication_timeout_ms = 1'000;
  // The entity's second write (head 1 → 2) fails before it is stored, once.
  auto failed = std::make_shared<std::atomic<bool>>(false);
  strata::testing::faults faults;
  faults.append = [failed](strata::testing::append_phase p,
                           const std::vector<sp::stream_write>& ws) {
    for (const auto& w : ws)
      if (p == strata::testing::append_phase::before && w.persistence_id == "counter:f" &&
          w.expected_seq == 1 && !failed->exchange(true))
        return sp::status{sp::errc::io_error, "injected: disk gone"};
    return sp::status{};
  };
  auto sys = open_system(cfg, std::move(faults));
  auto c = sys->entities<counter>();
  mock->set_all_brokers_down();
  auto first = c.ask_future("f", add{1}); // stored, waits for Kafka
  REQUIRE(eventually([&] {
    return sys->journal().last_position() >= 1;
  }));
  auto second = c.ask_future("f", add{2}); // decided on top of it, fails
  REQUIRE(first.wait_for(30s) == std::future_status::ready);
  REQUIRE(second.wait_for(30s) == std::future_status::ready);
  auto r1 = first.get();
  REQUIRE_FALSE(r1);
  CHECK(strata::runtime_error_of(r1.error()) == strata::runtime_errc::not_replicated);
  auto r2 = second.get();
  REQUIRE_FALSE(r2);
  CHECK(strata::describe(r2.error()).find("injected: disk gone") != std::string::npos);
  // The entity recovered from the journal and goes on.
  auto h = c.history("f");
  REQUIRE(h);
  CHECK(h->size() == 1);
  mock->set_all_brokers_up();
  CHECK(eventually(
    [&] {
      return sys->kafka_bridge()->acknowledged_position() >= sys->journal().last_position();
    },
    60s));
  auto r3 = c.ask("f", add{5}, 30s);
  REQUIRE_MESSAGE(r3, strata::describe(r3.error()));
  CHECK(*r3 == 6);
}

TEST_CASE("replication: a write behind a newer owner's claim fails with fenced; later ones too") {
  // docs/kafka.md, "Fencing": this system owns the counter's shard under epoch 1 (its
  // bridge's claim); a second bridge on a journal of its own — another node, which
  // this one is not told about — claims it under epoch 2. The next replicated write
  // is not acknowledged: the gate answers it fenced, the entity stops, and every later
  // write of the shard fails the same way.
  temp_dir dir;
  auto mock = start_mock();
  auto cfg = test_config(dir.path());
  cfg.kafka = mock->bootstrap_servers();
  cfg.replicated = true;
  auto sys = open_system(cfg);
  auto c = sys->entities<counter>();
  auto* a = sys->kafka_bridge();
  REQUIRE(a != nullptr);
  auto r = c.ask("z", add{1}, 30s); // publishes once: the bridge knows strata.counter
  REQUIRE_MESSAGE(r, strata::describe(r.error()));
  const auto shard = a->partition_for("counter:z");
  REQUIRE(a->append_claim(shard, 1, 10'000).ok());
  r = c.ask("z", add{1}, 30s);
  REQUIRE_MESSAGE(r, strata::describe(r.error()));
  CHECK(*r == 2);

  sp::journal_options jo;
  jo.env.path = dir.path() + "/other-node";
  jo.env.sync = sp::sync_mode::nosync;
  jo.env.map_size_bytes = std::size_t{1} << 20;
  jo.writer_node = "other-node";
  auto other_journal = sp::journal::open(jo);
  REQUIRE(other_journal);
  sk::bridge_options bo;
  bo.bootstrap_servers = mock->bootstrap_servers();
  bo.types = {{"counter:", "counter"}};
  auto other = sk::bridge::start(**other_journal, bo);
  REQUIRE(other);
  REQUIRE((*other)->append_claim(shard, 2, 10'000).ok());

  auto lost = c.ask("z", add{1}, 30s);
  REQUIRE_FALSE(lost);
  CHECK(strata::runtime_error_of(lost.error()) == strata::runtime_errc::fenced);
  const auto why = strata::describe(lost.error());
  CHECK(why.find("shard " + std::to_string(shard)) != std::string::npos);
  CHECK(why.find("epoch 2") != std::string::npos);
  CHECK(why.find("other-node") != std::string::npos);
  CHECK(a->fenced(shard).code() == sp::errc::fenced);
  auto later = c.ask("z", add{1}, 30s); // a new incarnation, fenced again
  REQUIRE_FALSE(later);
  CHECK(strata::runtime_error_of(later.error()) == strata::runtime_errc::fenced);
  (*other)->stop(0);
}
