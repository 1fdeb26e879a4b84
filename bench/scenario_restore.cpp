// Scenarios `baseline-kafka-consume` and `restore` (docs/kafka.md "Restoring a shard",
// docs/performance.md): how fast a new shard owner restores shards from Kafka, against
// a raw librdkafka consumer reading the same partitions in the same run.
//
// Set-up (once per invocation, not timed): N events (--events, --payload) over
// --streams streams "account:<k>" written to a journal and published by the bridge to
// an in-process 3-broker mock cluster (topic strata.account, 64 partitions, zstd), then
// the journal is closed; only Kafka holds them. librdkafka 2.0.2's mock keeps about
// 5 MiB of batches per partition: the set-up fails if any partition lost records (the
// default 1M 100-byte events take about 2.3 MiB per partition).
// - baseline-kafka-consume: for each of the 64 shards, a raw librdkafka consumer with
//   the restore's consumer properties assigns the partition at offset 0 and polls
//   until the end offset it found (records counted, values touched);
// - restore: kafka::restore_shard for each of the 64 shards into one fresh journal
//   (decode every envelope, skip claims, journal::import in batches of 10k; fsync per
//   batch unless --nosync), then checks every event was imported.
#include "kafka_raw.hpp"
#include "scenario.hpp"

#include "strata/kafka/bridge.hpp"
#include "strata/kafka/mock.hpp"
#include "strata/kafka/restore.hpp"
#include "strata/persistence/journal.hpp"
#include "strata/persistence/shard.hpp"

#include <librdkafka/rdkafka.h>

#include <chrono>
#include <memory>
#include <random>
#include <string>
#include <vector>

namespace strata::bench {

namespace {
/// The consumer properties of restore_shard (kafka/src/restore.cpp).
rd_kafka_t* raw_consumer(const std::string& bootstrap) {
  char errstr[512];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  for (auto [k, v] :
       std::vector<std::pair<std::string, std::string>>{{"bootstrap.servers", bootstrap},
                                                        {"group.id", "strata-bench-raw"},
                                                        {"enable.auto.commit", "false"},
                                                        {"enable.auto.offset.store", "false"},
                                                        {"enable.partition.eof", "false"},
                                                        {"auto.offset.reset", "earliest"},
                                                        {"fetch.wait.max.ms", "10"},
                                                        {"log_level", "3"}})
    if (rd_kafka_conf_set(conf, k.c_str(), v.c_str(), errstr, sizeof(errstr)) != RD_KAFKA_CONF_OK)
      fail("raw consumer: " + k + ": " + errstr);
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
  if (!rk) fail(std::string{"raw consumer: "} + errstr);
  rd_kafka_poll_set_consumer(rk);
  return rk;
}

} // namespace

void watermarks(const std::string& bootstrap, const std::string& topic, std::uint32_t shards,
                std::vector<std::int64_t>& lo, std::vector<std::int64_t>& hi) {
  char errstr[256];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap.c_str(), errstr, sizeof(errstr));
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
  if (!rk) fail(std::string{"restore: consumer: "} + errstr);
  lo.assign(shards, 0);
  hi.assign(shards, 0);
  for (std::uint32_t s = 0; s < shards; ++s)
    if (auto err = rd_kafka_query_watermark_offsets(rk, topic.c_str(), static_cast<std::int32_t>(s),
                                                    &lo[s], &hi[s], 10'000))
      fail("restore: watermarks of partition " + std::to_string(s) + ": " + rd_kafka_err2str(err));
  rd_kafka_destroy(rk);
}

std::uint64_t raw_read(const std::string& bootstrap, const std::string& topic, std::uint32_t shard,
                       std::int64_t end, std::uint64_t& checksum) {
  if (end == 0) return 0;
  rd_kafka_t* rk = raw_consumer(bootstrap);
  rd_kafka_topic_partition_list_t* l = rd_kafka_topic_partition_list_new(1);
  rd_kafka_topic_partition_list_add(l, topic.c_str(), static_cast<std::int32_t>(shard))->offset = 0;
  rd_kafka_assign(rk, l);
  rd_kafka_topic_partition_list_destroy(l);
  std::uint64_t n = 0;
  std::int64_t next = 0;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::minutes(5);
  while (next < end) {
    if (std::chrono::steady_clock::now() > deadline) fail("raw consumer: timed out");
    rd_kafka_message_t* m = rd_kafka_consumer_poll(rk, 100);
    if (!m) continue;
    if (!m->err && m->offset < end) {
      ++n;
      next = m->offset + 1;
      if (m->len) checksum += static_cast<const unsigned char*>(m->payload)[m->len / 2];
    }
    rd_kafka_message_destroy(m);
  }
  rd_kafka_consumer_close(rk);
  rd_kafka_destroy(rk);
  return n;
}

namespace {

namespace sp = strata::persistence;
namespace sk = strata::kafka;

constexpr std::uint32_t shards = 64;
const std::string topic = "strata.account";

/// The Kafka side both scenarios read: built by the first of them to run.
struct restore_fixture {
  std::unique_ptr<sk::mock_cluster> mock;
  std::vector<std::int64_t> end_offsets; // per shard
  std::uint64_t events = 0;
};

sp::journal_options journal_opts(const std::filesystem::path& dir, const options& o, bool nosync) {
  sp::journal_options jo;
  jo.env.path = dir.string();
  jo.env.sync = nosync ? sp::sync_mode::nosync : sp::sync_mode::sync;
  jo.env.map_size_bytes = map_size_for(o);
  jo.env.map_size_max_bytes = std::max(jo.env.map_size_max_bytes, jo.env.map_size_bytes);
  return jo;
}

/// Appends o.events events over o.streams streams (fixed seed) in batches.
void write_events(sp::journal& j, const options& o) {
  std::mt19937_64 rng(11);
  std::uniform_int_distribution<std::uint64_t> pick(0, o.streams - 1);
  std::vector<std::uint64_t> heads(o.streams, 0);
  for (std::uint64_t i = 0; i < o.events;) {
    std::vector<sp::stream_write> batch;
    std::vector<std::uint64_t> ids;
    std::vector<std::int64_t> slot(o.streams, -1);
    for (std::uint64_t end = std::min(o.events, i + o.batch_events); i < end; ++i) {
      auto s = pick(rng);
      if (slot[s] < 0) {
        slot[s] = static_cast<std::int64_t>(batch.size());
        batch.emplace_back();
        batch.back().persistence_id = "account:" + std::to_string(s);
        batch.back().expected_seq = heads[s];
        ids.push_back(s);
      }
      sp::event_data e;
      e.type = "deposited";
      fill_payload(e.payload, i, o.payload_bytes);
      batch[static_cast<std::size_t>(slot[s])].events.push_back(std::move(e));
    }
    auto res = j.append(batch);
    if (!res) fail("journal::append: " + res.error().to_string());
    for (std::size_t k = 0; k < batch.size(); ++k)
      heads[ids[k]] = (*res)[k].last_seq;
  }
}

restore_fixture& fixture(context& ctx) {
  static std::unique_ptr<restore_fixture> f;
  if (f) return *f;
  const options& o = ctx.opts();
  progress("restore: publishing " + std::to_string(o.events) + " events to a mock (not timed)");
  auto fx = std::make_unique<restore_fixture>();
  auto m = sk::mock_cluster::start(3);
  if (!m) fail("kafka mock: " + m.error().to_string());
  fx->mock = std::move(*m);
  if (auto st = fx->mock->create_topic(topic, static_cast<int>(shards)); !st.ok())
    fail("kafka mock: " + st.to_string());
  auto dir = ctx.fresh_dir("restore-source");
  auto j = sp::journal::open(journal_opts(dir, o, /*nosync=*/true));
  if (!j) fail("journal::open: " + j.error().to_string());
  write_events(**j, o);
  sk::bridge_options bo;
  bo.bootstrap_servers = fx->mock->bootstrap_servers();
  bo.types = {{"account:", "account"}};
  auto b = sk::bridge::start(**j, bo);
  if (!b) fail("bridge: " + b.error().to_string());
  if (auto left = (*b)->stop(600'000); left != 0)
    fail("bridge: " + std::to_string(left) + " events not published");
  b->reset();
  (void)(*j)->close();
  std::vector<std::int64_t> lo;
  watermarks(fx->mock->bootstrap_servers(), topic, shards, lo, fx->end_offsets);
  for (std::uint32_t s = 0; s < shards; ++s)
    if (lo[s] != 0)
      fail("restore: partition " + std::to_string(s) +
           " lost its first records (the mock keeps ~5 MiB per partition): use fewer --events");
  fx->events = o.events;
  f = std::move(fx);
  return *f;
}

result run_baseline_consume(context& ctx) {
  auto& f = fixture(ctx);
  const auto& bs = f.mock->bootstrap_servers();
  stopwatch sw;
  std::uint64_t n = 0, checksum = 0;
  for (std::uint32_t s = 0; s < shards; ++s)
    n += raw_read(bs, topic, s, f.end_offsets[s], checksum);
  result r;
  r.seconds = sw.seconds();
  r.events = n;
  if (n != f.events) fail("raw consumer read " + std::to_string(n) + " records");
  return r.add("partitions", static_cast<std::uint64_t>(shards)).add("checksum", checksum);
}

result run_restore(context& ctx) {
  const options& o = ctx.opts();
  auto& f = fixture(ctx);
  auto j = sp::journal::open(journal_opts(ctx.fresh_dir("restore-target"), o, o.nosync));
  if (!j) fail("journal::open: " + j.error().to_string());
  sk::restore_options ro;
  ro.bootstrap_servers = f.mock->bootstrap_servers();
  ro.topics = {topic};
  stopwatch sw;
  std::uint64_t records = 0, imported = 0;
  double import_s = 0;
  for (std::uint32_t s = 0; s < shards; ++s) {
    ro.shard = s;
    auto rep = sk::restore_shard(**j, ro);
    if (!rep) fail("restore_shard: " + rep.error().to_string());
    records += rep->records;
    imported += rep->imported;
    import_s += rep->import_seconds;
  }
  result r;
  r.seconds = sw.seconds();
  r.events = records;
  if (imported != f.events) fail("restore imported " + std::to_string(imported) + " events");
  return r.add("partitions", static_cast<std::uint64_t>(shards))
    .add("imported", imported)
    .add("import_s", import_s)
    .add("batch_events", static_cast<std::uint64_t>(ro.batch_events))
    .add("sync", o.nosync ? "nosync" : "fsync");
}

const registrar reg_consume{{"baseline-kafka-consume",
                             "raw librdkafka consumer reading the 64 partitions of N published "
                             "events, one partition after the other, from offset 0 to the end",
                             62, "", true, run_baseline_consume}};
const registrar reg_restore{{"restore",
                             "kafka::restore_shard of each of the 64 shards into a fresh "
                             "journal (decode, journal::import in 10k batches)",
                             170, "baseline-kafka-consume", true, run_restore}};

} // namespace
} // namespace strata::bench
