// Scenarios `baseline-kafka`, `bridge` and `bridge-lag` (docs/kafka.md, docs/performance.md).
//
// Both sides of the ratio publish the same records — the journal's stored envelopes of
// N events over --streams streams, key = persistence id, partition = shard_of(id, 64),
// the bridge's six headers — to a fresh in-process 3-broker librdkafka mock cluster
// with the bridge's producer configuration (idempotence, acks=all, linger 5 ms, 1 MB
// batches, zstd compression; STRATA_BENCH_KAFKA_COMPRESSION=none|gzip|snappy|lz4|zstd
// overrides it for both), and are timed until the last delivery report:
// - baseline-kafka: a raw librdkafka producer fed from records prepared in memory;
// - bridge: bridge::start on the journal holding those events, until its
//   acknowledged position reaches the last event (reads LMDB, produces, tracks acks).
//   Also reports the bytes on the wire: librdkafka's tx_bytes (every byte the producer
//   wrote to the brokers: compressed batches, request headers, metadata) per event,
//   beside payload_bytes and the envelope (Kafka value) size value_bytes.
// - bridge-lag: the runtime end to end at full speed (closed-loop clients depositing to
//   10k account aggregates, as the e2e scenario) while a bridge publishes the node's
//   journal; reports the largest lag seen (events and ms), the drain time after, and
//   the bytes on the wire per event while publishing as the journal grows.
//   Built without the runtime, the load is journal appends at full speed instead
//   (field "load" says which).
#include "scenario.hpp"

#include "strata/kafka/bridge.hpp"
#include "strata/kafka/mock.hpp"
#include "strata/persistence/codec.hpp"
#include "strata/persistence/journal.hpp"
#include "strata/persistence/offset_store.hpp"
#include "strata/persistence/shard.hpp"

#include <librdkafka/rdkafka.h>

#if __has_include("strata/runtime/all.hpp")
#include "bench_account.hpp"
#include "strata/runtime/all.hpp"
#define STRATA_BENCH_KAFKA_WITH_RUNTIME 1
#endif

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

namespace strata::bench {
namespace {

namespace sp = strata::persistence;
namespace sk = strata::kafka;

constexpr int brokers = 3;
constexpr std::uint32_t partitions = 64;
const std::string topic = "strata.account";

std::unique_ptr<sk::mock_cluster> make_mock() {
  auto m = sk::mock_cluster::start(brokers);
  if (!m) fail("kafka mock: " + m.error().to_string());
  if (auto st = (*m)->create_topic(topic, static_cast<int>(partitions)); !st.ok())
    fail("kafka mock: " + st.to_string());
  return std::move(*m);
}

sp::journal_options journal_opts(const std::filesystem::path& dir, const options& o, bool nosync) {
  sp::journal_options jo;
  jo.env.path = dir.string();
  jo.env.sync = nosync ? sp::sync_mode::nosync : sp::sync_mode::sync;
  jo.env.map_size_bytes = map_size_for(o);
  jo.env.map_size_max_bytes = std::max(jo.env.map_size_max_bytes, jo.env.map_size_bytes);
  return jo;
}

/// Appends o.events events ("acct-<k>", k < o.streams, picked at random with a fixed
/// seed; payload fill_payload) in batches of o.batch_events. `on_batch` runs after each.
void write_events(sp::journal& j, const options& o, const std::function<void()>& on_batch) {
  std::mt19937_64 rng(7);
  std::uniform_int_distribution<std::uint64_t> pick(0, o.streams - 1);
  std::vector<std::uint64_t> heads(o.streams, 0);
  std::uint64_t i = 0;
  while (i < o.events) {
    std::vector<sp::stream_write> batch;
    std::unordered_map<std::uint64_t, std::size_t> where;
    std::uint64_t end = std::min(o.events, i + o.batch_events);
    for (; i < end; ++i) {
      auto s = pick(rng);
      auto it = where.find(s);
      if (it == where.end()) {
        it = where.emplace(s, batch.size()).first;
        batch.emplace_back();
        batch.back().persistence_id = "acct-" + std::to_string(s);
        batch.back().expected_seq = heads[s];
      }
      sp::event_data e;
      e.type = "deposited";
      fill_payload(e.payload, i, o.payload_bytes);
      batch[it->second].events.push_back(std::move(e));
    }
    auto res = j.append(batch);
    if (!res) fail("journal::append: " + res.error().to_string());
    for (std::size_t k = 0; k < batch.size(); ++k) {
      if (!(*res)[k].st.ok()) fail("journal::append: " + (*res)[k].st.to_string());
      heads[std::stoull(batch[k].persistence_id.substr(5))] = (*res)[k].last_seq;
    }
    if (on_batch) on_batch();
  }
}

/// The journal both sides publish (written once per invocation, not timed).
std::filesystem::path prepared_journal(context& ctx) {
  if (auto p = ctx.artifact("kafka-journal")) return *p;
  progress("kafka: writing " + std::to_string(ctx.opts().events) +
           " events to a journal (not timed)");
  auto dir = ctx.fresh_dir("kafka-journal");
  auto j = sp::journal::open(journal_opts(dir, ctx.opts(), /*nosync=*/true));
  if (!j) fail("journal::open: " + j.error().to_string());
  write_events(**j, ctx.opts(), {});
  if (auto st = (*j)->close(); !st.ok()) fail("journal::close: " + st.to_string());
  ctx.put_artifact("kafka-journal", dir);
  return dir;
}

struct prepared_record {
  std::string key;
  std::string value;
  std::int32_t partition = 0;
  std::uint64_t seq = 0;
  std::uint64_t position = 0;
  std::string type;
  std::uint32_t schema_version = 1;
  std::int64_t timestamp_ms = 0;
};

/// The compression both sides use: the bridge's default, or
/// $STRATA_BENCH_KAFKA_COMPRESSION.
std::string bench_compression() {
  const char* env = std::getenv("STRATA_BENCH_KAFKA_COMPRESSION");
  return env && *env ? std::string{env} : sk::bridge_options{}.compression;
}

/// The bridge's producer configuration (kafka/src/bridge.cpp make_producer, defaults).
std::vector<std::pair<std::string, std::string>> bridge_producer_props(const std::string& bs) {
  sk::bridge_options d;
  d.compression = bench_compression();
  return {
    {"bootstrap.servers", bs},
    {"enable.idempotence", "true"},
    {"acks", "all"},
    {"enable.gapless.guarantee", "true"},
    {"message.timeout.ms", "0"},
    {"max.in.flight.requests.per.connection", std::to_string(d.max_in_flight_requests)},
    {"linger.ms", std::to_string(d.linger_ms)},
    {"batch.size", std::to_string(d.batch_size_bytes)},
    {"batch.num.messages", std::to_string(d.batch_num_messages)},
    {"compression.type", d.compression},
    {"queue.buffering.max.messages", std::to_string(d.max_in_flight_events + 1024)},
    {"queue.buffering.max.kbytes", std::to_string(d.max_in_flight_bytes / 1024)},
    {"reconnect.backoff.ms", "50"},
    {"reconnect.backoff.max.ms", "1000"},
    {"socket.nagle.disable", "true"},
    {"log_level", "3"},
  };
}

/// Total size of the journal's envelopes (the Kafka values the bridge sends).
std::uint64_t envelope_bytes(const sp::journal& j) {
  std::uint64_t total = 0;
  auto st = j.read_global_raw(1, ~std::size_t{0}, [&](std::uint64_t, std::string_view b) {
    total += b.size();
    return true;
  });
  if (!st.ok()) fail("read_global_raw: " + st.to_string());
  return total;
}

/// The bridge's stats once librdkafka reported its statistics twice more (so
/// wire_bytes covers every acknowledged batch), at most 10 s later.
sk::bridge_stats settled_stats(const sk::bridge& b) {
  const auto first = b.stats().wire_reports;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (b.stats().wire_reports < first + 2) {
    if (std::chrono::steady_clock::now() > deadline)
      fail("bridge: no librdkafka statistics within 10 s (wire_bytes unknown)");
    std::this_thread::sleep_for(std::chrono::milliseconds(10)); // polling a counter
  }
  return b.stats();
}

std::atomic<std::uint64_t> baseline_delivered{0};
std::atomic<std::uint64_t> baseline_failed{0};

void baseline_dr(rd_kafka_t*, const rd_kafka_message_t* m, void*) {
  if (m->err)
    baseline_failed.fetch_add(1);
  else
    baseline_delivered.fetch_add(1);
}

result run_baseline_kafka(context& ctx) {
  const options& o = ctx.opts();
  auto dir = prepared_journal(ctx);
  std::vector<prepared_record> records;
  records.reserve(o.events);
  {
    auto j = sp::journal::open(journal_opts(dir, o, true));
    if (!j) fail("journal::open: " + j.error().to_string());
    auto st = (*j)->read_global_raw(1, ~std::size_t{0}, [&](std::uint64_t, std::string_view b) {
      auto e = sp::decode_envelope(b);
      if (!e) fail("decode: " + e.error().to_string());
      prepared_record r;
      r.key = e->persistence_id;
      r.value.assign(b);
      r.partition = static_cast<std::int32_t>(sp::shard_of(r.key, partitions));
      r.seq = e->seq;
      r.position = e->position;
      r.type = e->type;
      r.schema_version = e->schema_version;
      r.timestamp_ms = e->timestamp_ns / 1'000'000;
      records.push_back(std::move(r));
      return true;
    });
    if (!st.ok()) fail("read_global_raw: " + st.to_string());
  }
  auto mock = make_mock();
  baseline_delivered = 0;
  baseline_failed = 0;

  stopwatch sw;
  char errstr[512];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  for (const auto& [k, v] : bridge_producer_props(mock->bootstrap_servers()))
    if (rd_kafka_conf_set(conf, k.c_str(), v.c_str(), errstr, sizeof(errstr)) != RD_KAFKA_CONF_OK)
      fail("baseline-kafka: " + k + ": " + errstr);
  rd_kafka_conf_set_dr_msg_cb(conf, baseline_dr);
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
  if (!rk) fail(std::string{"baseline-kafka: "} + errstr);
  rd_kafka_topic_t* rkt = rd_kafka_topic_new(rk, topic.c_str(), nullptr);
  std::uint64_t queue_full = 0;
  std::uint64_t produced = 0;
  static const char* content_type = "application/x-capnp; schema=strata.Envelope";
  for (const auto& r : records) {
    for (;;) {
      rd_kafka_headers_t* h = rd_kafka_headers_new(6);
      char num[24];
      rd_kafka_header_add(h, "strata.type", -1, r.type.data(), static_cast<ssize_t>(r.type.size()));
      rd_kafka_header_add(h, "strata.aggregate", -1, "account", 7);
      int len = std::snprintf(num, sizeof(num), "%llu", static_cast<unsigned long long>(r.seq));
      rd_kafka_header_add(h, "strata.seq", -1, num, len);
      len = std::snprintf(num, sizeof(num), "%llu", static_cast<unsigned long long>(r.position));
      rd_kafka_header_add(h, "strata.position", -1, num, len);
      len = std::snprintf(num, sizeof(num), "%u", r.schema_version);
      rd_kafka_header_add(h, "strata.schema_version", -1, num, len);
      rd_kafka_header_add(h, "content-type", -1, content_type, -1);
      auto err =
        rd_kafka_producev(rk, RD_KAFKA_V_RKT(rkt), RD_KAFKA_V_PARTITION(r.partition),
                          RD_KAFKA_V_KEY(r.key.data(), r.key.size()),
                          RD_KAFKA_V_VALUE(const_cast<char*>(r.value.data()), r.value.size()),
                          RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_HEADERS(h),
                          RD_KAFKA_V_TIMESTAMP(r.timestamp_ms), RD_KAFKA_V_END);
      if (!err) break;
      rd_kafka_headers_destroy(h);
      if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL)
        fail(std::string{"baseline-kafka: produce: "} + rd_kafka_err2str(err));
      ++queue_full;
      rd_kafka_poll(rk, 1);
    }
    if ((++produced & 1023) == 0) // serve delivery reports now and then, not per record
      rd_kafka_poll(rk, 0);
  }
  while (baseline_delivered.load() + baseline_failed.load() < records.size())
    rd_kafka_poll(rk, 10);
  double secs = sw.seconds();
  rd_kafka_topic_destroy(rkt);
  rd_kafka_destroy(rk);
  if (baseline_failed.load() > 0)
    fail("baseline-kafka: " + std::to_string(baseline_failed.load()) + " deliveries failed");
  result res;
  res.events = records.size();
  res.seconds = secs;
  res.add("brokers", brokers)
    .add("partitions", static_cast<std::uint64_t>(partitions))
    .add("payload_bytes", static_cast<std::uint64_t>(o.payload_bytes))
    .add("compression", bench_compression())
    .add("queue_full_waits", queue_full);
  return res;
}

result run_bridge(context& ctx) {
  const options& o = ctx.opts();
  auto dir = prepared_journal(ctx);
  auto j = sp::journal::open(journal_opts(dir, o, true));
  if (!j) fail("journal::open: " + j.error().to_string());
  // Publish from the beginning each time (another run may have stored an offset).
  if (auto st = (*j)->offsets().put("bench-bridge", 0); !st.ok())
    fail("offsets: " + st.to_string());
  const auto value_bytes = envelope_bytes(**j);
  auto mock = make_mock();
  sk::bridge_options bo;
  bo.bootstrap_servers = mock->bootstrap_servers();
  bo.consumer_name = "bench-bridge";
  bo.types = {{"acct-", "account"}};
  bo.compression = bench_compression();
  bo.statistics_interval_ms = 100; // wire_bytes
  const auto last = (*j)->last_position();

  stopwatch sw;
  auto b = sk::bridge::start(**j, bo);
  if (!b) fail("bridge::start: " + b.error().to_string());
  if (!(*b)->wait_acknowledged(last, 600'000))
    fail("bridge: not everything acknowledged within 10 minutes");
  double secs = sw.seconds();
  auto st = settled_stats(**b);
  (*b)->stop(10'000);
  const double per_event = last ? 1.0 / static_cast<double>(last) : 0.0;
  result res;
  res.events = last;
  res.seconds = secs;
  res.add("brokers", brokers)
    .add("partitions", static_cast<std::uint64_t>(partitions))
    .add("max_in_flight_events", static_cast<std::uint64_t>(bo.max_in_flight_events))
    .add("queue_full_waits", st.queue_full_waits)
    .add("producer_restarts", st.producer_restarts)
    .add("compression", bo.compression)
    .add("payload_bytes", static_cast<std::uint64_t>(o.payload_bytes))
    .add("value_bytes", static_cast<double>(value_bytes) * per_event)
    .add("wire_bytes_per_event", static_cast<double>(st.wire_bytes) * per_event);
  return res;
}

/// Samples a bridge's lag every 5 ms on its own thread until stopped.
class lag_sampler {
 public:
  explicit lag_sampler(sk::bridge& b)
    : b_(b), thread_([this] {
        run();
      }) {}
  ~lag_sampler() { stop(); }
  void stop() {
    done_ = true;
    if (thread_.joinable()) thread_.join();
  }
  std::uint64_t max_lag_events = 0;
  std::int64_t max_lag_ms = 0;

 private:
  void run() {
    while (!done_.load()) {
      auto s = b_.stats();
      max_lag_events = std::max(max_lag_events, s.lag_events);
      max_lag_ms = std::max(max_lag_ms, s.lag_ms);
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }
  sk::bridge& b_;
  std::atomic<bool> done_{false};
  std::thread thread_;
};

std::unique_ptr<sk::bridge> start_lag_bridge(sp::journal& j, const sk::mock_cluster& mock) {
  sk::bridge_options bo;
  bo.bootstrap_servers = mock.bootstrap_servers();
  bo.types = {{"account:", "account"}, {"acct-", "account"}};
  bo.compression = bench_compression();
  bo.statistics_interval_ms = 100; // wire_bytes
  auto b = sk::bridge::start(j, bo);
  if (!b) fail("bridge::start: " + b.error().to_string());
  return std::move(*b);
}

#ifdef STRATA_BENCH_KAFKA_WITH_RUNTIME

result run_bridge_lag(context& ctx) {
  const options& o = ctx.opts();
  strata::config cfg;
  cfg.data_dir = ctx.fresh_dir("bridge-lag").string();
  cfg.durability = o.nosync ? sp::sync_mode::nosync : sp::sync_mode::sync;
  cfg.map_size_bytes = std::size_t{1} << 30;
  cfg.passivate_after_ms = 0;
  cfg.snapshot_every = 0;
  auto sys = strata::system::open(cfg);
  if (!sys) fail("system::open: " + strata::describe(sys.error()));
  auto h = (*sys)->entities<account>();
  const std::size_t n_ids = 10'000, clients = 16'384;
  std::vector<std::string> ids;
  for (std::size_t k = 0; k < n_ids; ++k)
    ids.push_back("acct-" + std::to_string(k));
  const std::uint64_t total = std::max<std::uint64_t>(o.events, 100'000);
  auto mock = make_mock();
  auto bridge = start_lag_bridge((*sys)->journal(), *mock);
  lag_sampler sampler{*bridge};

  // Closed loop: each client sends its next deposit when the previous one is answered.
  std::atomic<std::uint64_t> sent{0}, done{0}, errors{0};
  std::mutex mu;
  std::condition_variable cv;
  std::size_t finished = 0;
  std::function<void(std::size_t)> next = [&](std::size_t c) {
    auto k = sent.fetch_add(1, std::memory_order_relaxed);
    if (k >= total || errors.load() > 0) {
      std::lock_guard<std::mutex> g{mu};
      if (++finished == clients) cv.notify_all();
      return;
    }
    h.ask_async(ids[(k * 7919 + c) % n_ids], deposit{1}, [&, c](caf::expected<std::int64_t> r) {
      if (!r) errors.fetch_add(1);
      done.fetch_add(1, std::memory_order_relaxed);
      next(c);
    });
  };
  stopwatch sw;
  for (std::size_t c = 0; c < clients; ++c)
    next(c);
  {
    std::unique_lock<std::mutex> g{mu};
    cv.wait(g, [&] {
      return finished == clients;
    });
  }
  double load_s = sw.seconds();
  stopwatch drain_sw;
  auto left = bridge->drain(600'000);
  double drain_s = drain_sw.seconds();
  sampler.stop();
  if (errors.load() > 0) fail("bridge-lag: " + std::to_string(errors.load()) + " commands failed");
  if (left != 0)
    fail("bridge-lag: " + std::to_string(left) + " events unpublished after 10 minutes");
  auto st = settled_stats(*bridge);
  auto published = st.acknowledged_position;
  bridge->stop(0);
  result res;
  res.events = done.load();
  res.seconds = load_s;
  res.add("load", "e2e")
    .add("aggregates", static_cast<std::uint64_t>(n_ids))
    .add("clients", static_cast<std::uint64_t>(clients))
    .add("durability", o.nosync ? "nosync" : "sync")
    .add("max_lag_events", sampler.max_lag_events)
    .add("max_lag_ms", sampler.max_lag_ms)
    .add("drain_after_load_s", drain_s)
    .add("published", published)
    .add("compression", bench_compression())
    .add("wire_bytes_per_event",
         published ? static_cast<double>(st.wire_bytes) / static_cast<double>(published) : 0.0);
  return res;
}

#else

result run_bridge_lag(context& ctx) {
  const options& o = ctx.opts();
  auto dir = ctx.fresh_dir("bridge-lag");
  auto j = sp::journal::open(journal_opts(dir, o, o.nosync));
  if (!j) fail("journal::open: " + j.error().to_string());
  auto mock = make_mock();
  auto bridge = start_lag_bridge(**j, *mock);
  lag_sampler sampler{*bridge};
  stopwatch sw;
  write_events(**j, o, [&] {
    bridge->notify();
  });
  double write_s = sw.seconds();
  stopwatch drain_sw;
  auto left = bridge->drain(600'000);
  double drain_s = drain_sw.seconds();
  sampler.stop();
  if (left != 0)
    fail("bridge-lag: " + std::to_string(left) + " events unpublished after 10 minutes");
  auto st = settled_stats(*bridge);
  bridge->stop(0);
  result res;
  res.events = o.events;
  res.seconds = write_s;
  res.add("load", "journal")
    .add("sync", o.nosync ? "nosync" : "fsync")
    .add("max_lag_events", sampler.max_lag_events)
    .add("max_lag_ms", sampler.max_lag_ms)
    .add("drain_after_load_s", drain_s)
    .add("compression", bench_compression())
    .add("payload_bytes", static_cast<std::uint64_t>(o.payload_bytes))
    .add("wire_bytes_per_event", static_cast<double>(st.wire_bytes) /
                                   static_cast<double>(std::max<std::uint64_t>(o.events, 1)));
  return res;
}

#endif

const registrar reg_baseline{{"baseline-kafka",
                              "raw librdkafka producer: the journal's N envelopes (prepared in "
                              "memory) with the bridge's key/partition/headers/config to a "
                              "3-broker mock cluster, until the last delivery report",
                              60, "", true, run_baseline_kafka}};
const registrar reg_bridge{{"bridge",
                            "bridge publishing the same N journal events (LMDB read, "
                            "produce, contiguous-ack tracking) to a fresh 3-broker mock",
                            160, "baseline-kafka", true, run_bridge}};
const registrar reg_lag{
  {"bridge-lag",
   "a bridge publishing while the runtime runs e2e at full speed (10k "
   "aggregates, 16384 closed-loop clients as e2e; without the runtime: journal "
   "appends): max lag (events, ms), drain time after the load",
   210, "", true, run_bridge_lag}};

} // namespace
} // namespace strata::bench
