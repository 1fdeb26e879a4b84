// Helpers of the Kafka tests: a workload that appends account-like events, a raw reader
// of a whole topic (every record with its partition, offset, key, headers), the check
// that a topic holds exactly the journal (nothing missing, per-key order, duplicates
// only as byte-exact repeats), and bridge_rig, the set-up every bridge test shares.
#pragma once

#include "../persistence/test_util.hpp" // also strata::test::eventually (tests/support)

#include "strata/kafka/bridge.hpp"
#include "strata/kafka/mock.hpp"
#include "strata/persistence/codec.hpp"
#include "strata/persistence/journal.hpp"
#include "strata/persistence/shard.hpp"

#include <librdkafka/rdkafka.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <random>
#include <string>
#include <thread>
#include <vector>

namespace strata::persistence::test {

/// Appends `events` events in batches of up to `batch` writes, spread over `streams`
/// streams "acct-<i>" chosen by `rng`. Payload "<pid>#<seq>:<amount>". Returns the
/// number appended. `after_batch` (optional) runs after each commit.
template <class Rng>
std::uint64_t append_workload(journal& j, Rng& rng, std::uint64_t events, std::uint32_t streams,
                              std::uint32_t batch = 64,
                              const std::function<void()>& after_batch = {}) {
  std::uniform_int_distribution<std::uint32_t> pick(0, streams - 1);
  std::uniform_int_distribution<int> amount(1, 1000);
  std::uint64_t done = 0;
  while (done < events) {
    std::map<std::string, std::vector<std::string>> per_stream;
    std::uint32_t n = static_cast<std::uint32_t>(std::min<std::uint64_t>(batch, events - done));
    for (std::uint32_t i = 0; i < n; ++i) {
      auto pid = "acct-" + std::to_string(pick(rng));
      per_stream[pid].push_back(std::to_string(amount(rng)));
    }
    std::vector<stream_write> writes;
    for (auto& [pid, amounts] : per_stream) {
      auto head = j.highest_seq(pid);
      STRATA_REQUIRE_VALUE(head);
      stream_write w;
      w.persistence_id = pid;
      w.expected_seq = *head;
      std::uint64_t seq = *head;
      for (auto& a : amounts) {
        event_data e;
        e.type = (std::stoi(a) % 3 == 0) ? "withdrawn" : "deposited";
        e.payload = pid + "#" + std::to_string(++seq) + ":" + a;
        w.events.push_back(std::move(e));
      }
      writes.push_back(std::move(w));
    }
    append_ok(j, writes);
    done += n;
    if (after_batch) after_batch();
  }
  return done;
}

/// One record as read back from Kafka.
struct kafka_record {
  std::int32_t partition = 0;
  std::int64_t offset = 0;
  std::string key;
  std::string value;
  std::map<std::string, std::string> headers;
  std::int64_t timestamp_ms = 0; ///< the record's CreateTime
};

/// Watermarks of a topic through one long-lived client (one ListOffsets request per
/// broker per query, so it can be polled often).
class topic_watch {
 public:
  topic_watch(const std::string& bootstrap, std::string topic, int partitions)
    : topic_(std::move(topic)), partitions_(partitions) {
    char errstr[256];
    rd_kafka_conf_t* conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap.c_str(), errstr, sizeof(errstr));
    rd_kafka_conf_set(conf, "log_level", "2", errstr, sizeof(errstr));
    rd_kafka_conf_set(conf, "socket.nagle.disable", "true", errstr, sizeof(errstr));
    rk_ = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
    REQUIRE(rk_ != nullptr);
  }
  ~topic_watch() { rd_kafka_destroy(rk_); }
  topic_watch(const topic_watch&) = delete;
  topic_watch& operator=(const topic_watch&) = delete;

  /// Offsets per partition: RD_KAFKA_OFFSET_END = high watermarks, _BEGINNING = low.
  /// Empty on error.
  std::vector<std::int64_t> offsets(std::int64_t which) {
    rd_kafka_topic_partition_list_t* l = rd_kafka_topic_partition_list_new(partitions_);
    for (int p = 0; p < partitions_; ++p)
      rd_kafka_topic_partition_list_add(l, topic_.c_str(), p)->offset = which;
    std::vector<std::int64_t> out;
    if (rd_kafka_offsets_for_times(rk_, l, 10'000) == 0) {
      out.assign(static_cast<std::size_t>(partitions_), 0);
      for (int i = 0; i < l->cnt; ++i) {
        if (l->elems[i].err) {
          out.clear();
          break;
        }
        out[static_cast<std::size_t>(l->elems[i].partition)] = l->elems[i].offset;
      }
    }
    rd_kafka_topic_partition_list_destroy(l);
    return out;
  }

  /// Records retained in the topic; -1 on error.
  std::int64_t count() {
    auto hi = offsets(RD_KAFKA_OFFSET_END);
    auto lo = offsets(RD_KAFKA_OFFSET_BEGINNING);
    if (hi.empty() || lo.empty()) return -1;
    std::int64_t n = 0;
    for (std::size_t p = 0; p < hi.size(); ++p)
      n += hi[p] - lo[p];
    return n;
  }

 private:
  std::string topic_;
  int partitions_;
  rd_kafka_t* rk_ = nullptr;
};

/// Reads every record of `topic` (partitions 0..partitions-1) from the beginning up to
/// the high watermarks at the call, in offset order per partition.
inline std::vector<kafka_record> read_topic(const std::string& bootstrap, const std::string& topic,
                                            int partitions) {
  char errstr[256];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap.c_str(), errstr, sizeof(errstr));
  rd_kafka_conf_set(conf, "enable.auto.commit", "false", errstr, sizeof(errstr));
  rd_kafka_conf_set(conf, "group.id", "strata-test-reader", errstr, sizeof(errstr));
  rd_kafka_conf_set(conf, "log_level", "2", errstr, sizeof(errstr));
  rd_kafka_conf_set(conf, "socket.nagle.disable", "true", errstr, sizeof(errstr));
  rd_kafka_conf_set(conf, "fetch.wait.max.ms", "20", errstr, sizeof(errstr));
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
  REQUIRE(rk != nullptr);
  rd_kafka_poll_set_consumer(rk);
  topic_watch watch{bootstrap, topic, partitions};
  auto high = watch.offsets(RD_KAFKA_OFFSET_END);
  auto low = watch.offsets(RD_KAFKA_OFFSET_BEGINNING);
  REQUIRE(high.size() == static_cast<std::size_t>(partitions));
  REQUIRE(low.size() == static_cast<std::size_t>(partitions));
  rd_kafka_topic_partition_list_t* l = rd_kafka_topic_partition_list_new(partitions);
  std::int64_t remaining = 0;
  for (int p = 0; p < partitions; ++p) {
    // The mock keeps at most 100k message sets / 5 MiB per partition: the tests stay far
    // below, so the log must start at 0.
    INFO("partition " << p);
    REQUIRE(low[static_cast<std::size_t>(p)] == 0);
    remaining += high[static_cast<std::size_t>(p)];
    rd_kafka_topic_partition_list_add(l, topic.c_str(), p)->offset = RD_KAFKA_OFFSET_BEGINNING;
  }
  REQUIRE(rd_kafka_assign(rk, l) == 0);
  rd_kafka_topic_partition_list_destroy(l);
  std::vector<kafka_record> out;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (remaining > 0) {
    REQUIRE(std::chrono::steady_clock::now() < deadline);
    rd_kafka_message_t* m = rd_kafka_consumer_poll(rk, 100);
    if (!m) continue;
    if (m->err) {
      rd_kafka_message_destroy(m);
      continue;
    }
    if (m->offset < high[static_cast<std::size_t>(m->partition)]) {
      kafka_record r;
      r.partition = m->partition;
      r.offset = m->offset;
      r.key.assign(static_cast<const char*>(m->key), m->key_len);
      r.value.assign(static_cast<const char*>(m->payload), m->len);
      r.timestamp_ms = rd_kafka_message_timestamp(m, nullptr);
      rd_kafka_headers_t* hdrs = nullptr;
      if (rd_kafka_message_headers(m, &hdrs) == 0) {
        const char* name;
        const void* val;
        size_t size;
        for (size_t i = 0; rd_kafka_header_get_all(hdrs, i, &name, &val, &size) == 0; ++i)
          r.headers[name] = std::string(static_cast<const char*>(val), size);
      }
      out.push_back(std::move(r));
      --remaining;
    }
    rd_kafka_message_destroy(m);
  }
  rd_kafka_consumer_close(rk);
  rd_kafka_destroy(rk);
  return out;
}

/// A claim record (strata/kafka/record_format.hpp) rather than an event.
inline bool is_claim_record(const kafka_record& r) { return r.headers.count("strata-claim") == 1; }

struct topic_check {
  std::uint64_t records = 0;
  std::uint64_t duplicates = 0; ///< records that repeat an earlier (pid, seq)
  std::uint64_t journal_events = 0;
};

/// Checks `records` (one topic, `partitions` partitions) against the journal:
/// - every value decodes and is byte-identical to the journal's envelope at its position
///   (so a duplicate is always an exact repeat);
/// - key = persistence id, partition = shard_of(key), headers agree with the envelope;
/// - per key, in partition offset order, the first occurrence of each seq is the
///   previous highest + 1 (order kept, no gap);
/// - every journal event whose stream matches `pid_prefix` appears.
inline topic_check check_topic_matches_journal(const journal& j,
                                               const std::vector<kafka_record>& records,
                                               int partitions,
                                               const std::string& pid_prefix = "acct-") {
  std::map<std::uint64_t, std::string> raw; // position → envelope bytes
  STRATA_REQUIRE_OK(
    j.read_global_raw(1, ~std::size_t{0}, [&](std::uint64_t pos, std::string_view b) {
      raw.emplace(pos, std::string(b));
      return true;
    }));
  std::map<std::string, std::uint64_t> journal_head;
  std::uint64_t expected = 0;
  for (auto& [pos, bytes] : raw) {
    auto e = decode_envelope(bytes);
    STRATA_REQUIRE_VALUE(e);
    if (e->persistence_id.rfind(pid_prefix, 0) != 0) continue;
    ++expected;
    journal_head[e->persistence_id] = e->seq;
  }
  // records are grouped per partition in offset order by sorting
  std::vector<const kafka_record*> sorted;
  for (auto& r : records)
    sorted.push_back(&r);
  std::sort(sorted.begin(), sorted.end(), [](auto* a, auto* b) {
    return a->partition != b->partition ? a->partition < b->partition : a->offset < b->offset;
  });
  topic_check out;
  out.journal_events = expected;
  std::map<std::string, std::uint64_t> highest;
  for (auto* r : sorted) {
    ++out.records;
    auto e = decode_envelope(r->value, "test record");
    STRATA_REQUIRE_VALUE(e);
    INFO("partition " << r->partition << " offset " << r->offset << " key " << r->key << " seq "
                      << e->seq << " position " << e->position);
    REQUIRE(r->key == e->persistence_id);
    REQUIRE(r->partition == static_cast<std::int32_t>(shard_of(r->key, partitions)));
    auto it = raw.find(e->position);
    REQUIRE(it != raw.end());
    REQUIRE(it->second == r->value); // exact bytes of the journal
    REQUIRE(r->headers.at("strata.seq") == std::to_string(e->seq));
    REQUIRE(r->headers.at("strata.position") == std::to_string(e->position));
    REQUIRE(r->headers.at("strata.type") == e->type);
    REQUIRE(r->headers.at("strata.schema_version") == std::to_string(e->schema_version));
    REQUIRE(r->headers.count("content-type") == 1);
    REQUIRE(r->timestamp_ms == e->timestamp_ns / 1'000'000); // event time, not publish time
    auto& h = highest[r->key];
    if (e->seq <= h) {
      ++out.duplicates;
      continue;
    }
    REQUIRE(e->seq == h + 1);
    h = e->seq;
  }
  for (auto& [pid, head] : journal_head) {
    INFO("stream " << pid);
    CHECK(highest[pid] == head);
  }
  REQUIRE(out.records - out.duplicates == expected);
  return out;
}

/// The world of one bridge test: a journal in a fresh directory, a mock cluster of
/// `brokers` brokers holding topic "strata.account" with 64 partitions, the bridge's
/// options for them (streams "acct-…" are type "account", offsets stored every 20 ms)
/// and, once start() ran, the bridge. A test changes the options or the cluster, then
/// states only what it does and checks.
///
///   STRATA_TEST_SEED(seed);
///   bridge_rig rig{3, seed};
///   rig.opts.max_in_flight_events = 1'000;   // what this test is about
///   rig.start();
///   rig.append(2'000, 200);                  // commits of 50, notify() after each
///   CHECK(rig.b->drain(30'000) == 0);
///   rig.check();                             // the topic holds exactly the journal
struct bridge_rig {
  static constexpr int partitions = 64;
  static constexpr const char* topic = "strata.account";

  explicit bridge_rig(int brokers = 3, std::uint64_t seed_in = 0)
    : seed(seed_in), rng(seed_in), dir("strata-kafka"),
      j(open_journal(journal_opts(dir.sub("j")))) {
    auto m = kafka::mock_cluster::start(brokers);
    STRATA_REQUIRE_VALUE(m);
    mock = std::move(*m);
    STRATA_REQUIRE_OK(mock->create_topic(topic, partitions));
    opts.bootstrap_servers = mock->bootstrap_servers();
    opts.types = {{"acct-", "account"}};
    opts.offset_commit_interval_ms = 20;
  }

  /// Starts the bridge with `opts` (a failure ends the test) and returns it.
  kafka::bridge& start() {
    auto started = kafka::bridge::start(*j, opts);
    STRATA_REQUIRE_VALUE(started);
    b = std::move(*started);
    return *b;
  }

  /// Stops and destroys the bridge (stop(drain_ms)); returns what stop() left unpublished.
  std::uint64_t stop(std::uint32_t drain_ms = 10'000) {
    auto left = b->stop(drain_ms);
    b.reset();
    return left;
  }

  /// Appends `events` events over `streams` streams "acct-<i>" in commits of `batch`,
  /// waking the bridge (when started) after each commit.
  void append(std::uint64_t events, std::uint32_t streams, std::uint32_t batch = 50) {
    append_workload(*j, rng, events, streams, batch, [this] {
      if (b) b->notify();
    });
  }

  /// Every record of the topic up to its high watermarks.
  std::vector<kafka_record> records() const {
    return read_topic(mock->bootstrap_servers(), topic, partitions);
  }

  /// Reads the topic and checks it holds exactly the journal (check_topic_matches_journal).
  topic_check check() const { return check_topic_matches_journal(*j, records(), partitions); }

  const std::uint64_t seed;
  std::mt19937_64 rng;
  temp_dir dir;
  std::unique_ptr<journal> j;
  std::unique_ptr<kafka::mock_cluster> mock;
  kafka::bridge_options opts;
  std::unique_ptr<kafka::bridge> b;
};

} // namespace strata::persistence::test
