#include "strata/kafka/consumer.hpp"

#include "record_util.hpp"

#include "strata/persistence/codec.hpp"
#include "strata/persistence/journal.hpp"
#include "strata/persistence/offset_store.hpp"

#include <librdkafka/rdkafka.h>

#include <atomic>
#include <chrono>
#include <map>
#include <mutex>
#include <thread>

namespace strata::kafka {

using namespace strata::persistence;

namespace {

struct consumer_deleter {
  void operator()(rd_kafka_t* rk) const noexcept {
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
  }
};
using consumer_ptr = std::unique_ptr<rd_kafka_t, consumer_deleter>;

using partition_key = std::pair<std::string, std::int32_t>;

} // namespace

struct projection_consumer::impl {
  std::unique_ptr<projection_writer> writer;
  consumer_options opts;
  consumer_ptr rk;
  std::map<partition_key, std::int64_t> next_offset; // -1: unknown (nothing applied yet)
  // The validity rule per partition (record_format.hpp), resumed from the epoch in
  // force stored beside the offset ("<offset name>/epoch", written with it).
  std::map<partition_key, claim_tracker> trackers;
  status failed;
  std::atomic<std::uint64_t> read{0};
  std::atomic<std::uint64_t> fenced{0};

  std::thread thread;
  std::atomic<bool> running{false};
  std::atomic<bool> stopping{false};
  mutable std::mutex mu;
  status thread_error;
  projection_stats stats_copy;

  std::string offset_name(const std::string& topic, std::int32_t partition) const {
    return writer->proj().name + "/kafka/" + topic + "/" + std::to_string(partition);
  }
  static std::string epoch_name(const std::string& offset_name) { return offset_name + "/epoch"; }

  result<std::size_t> poll_once(std::uint32_t timeout_ms) {
    if (!failed.ok()) return failed;
    std::vector<event_record> events;
    std::map<partition_key, std::int64_t> advanced;
    std::map<partition_key, claim_tracker> claimed; // trackers a claim moved in this batch
    std::size_t n = 0;
    status corrupt;
    int wait = static_cast<int>(timeout_ms);
    while (n < opts.batch_max_events) {
      rd_kafka_message_t* m = rd_kafka_consumer_poll(rk.get(), wait);
      wait = 0;
      if (!m) break;
      if (m->err) {
        // Partition EOF and transient broker errors are not data; librdkafka recovers.
        rd_kafka_message_destroy(m);
        continue;
      }
      std::string topic = rd_kafka_topic_name(m->rkt);
      partition_key key{topic, m->partition};
      auto& tracker = trackers[key];
      if (detail::is_claim(m)) { // a shard owner's claim, not an event: only the offset moves
        if (tracker.on_claim(detail::claim_epoch(m))) claimed[key] = tracker;
        advanced[key] = m->offset + 1;
        rd_kafka_message_destroy(m);
        ++n;
        continue;
      }
      if (!tracker.valid(detail::record_epoch(m))) {
        // Written by an owner a newer claim had fenced: not an event of the stream.
        fenced.fetch_add(1, std::memory_order_relaxed);
        advanced[key] = m->offset + 1;
        rd_kafka_message_destroy(m);
        ++n;
        continue;
      }
      std::string where = "kafka topic " + topic + " partition " + std::to_string(m->partition) +
                          " offset " + std::to_string(m->offset);
      auto e =
        decode_envelope(std::string_view{static_cast<const char*>(m->payload), m->len}, where);
      if (!e) {
        corrupt = e.error();
        // Stay at this record: a restart (or a fixed record) resumes here.
        rd_kafka_topic_partition_list_t* l = rd_kafka_topic_partition_list_new(1);
        rd_kafka_topic_partition_list_add(l, topic.c_str(), m->partition)->offset = m->offset;
        rd_kafka_seek_partitions(rk.get(), l, 1000);
        rd_kafka_topic_partition_list_destroy(l);
        rd_kafka_message_destroy(m);
        break;
      }
      events.push_back(std::move(*e));
      advanced[{topic, m->partition}] = m->offset + 1;
      rd_kafka_message_destroy(m);
      ++n;
    }
    if (!advanced.empty()) { // events, or claims alone (their offsets are stored too)
      std::vector<std::pair<std::string, std::uint64_t>> offs;
      offs.reserve(advanced.size());
      for (const auto& [k, off] : advanced)
        offs.emplace_back(offset_name(k.first, k.second), static_cast<std::uint64_t>(off));
      for (const auto& [k, t] : claimed)
        offs.emplace_back(epoch_name(offset_name(k.first, k.second)), t.epoch());
      if (auto st = writer->apply_batch(events, offs); !st.ok()) {
        // Nothing of the batch is stored: neither are the epochs its claims raised, and
        // the consumer stops here (failed), so the trackers need no undoing.
        failed = st;
        return st;
      }
      for (const auto& [k, off] : advanced)
        next_offset[k] = off;
      read.fetch_add(n, std::memory_order_relaxed);
      std::lock_guard<std::mutex> g{mu};
      stats_copy = writer->stats();
    }
    if (!corrupt.ok()) {
      failed = corrupt;
      return corrupt;
    }
    return n;
  }
};

result<std::unique_ptr<projection_consumer>> projection_consumer::open(journal& j, projection p,
                                                                       consumer_options o) {
  if (o.bootstrap_servers.empty() || o.topics.empty())
    return status{errc::invalid_argument,
                  "kafka consumer: bootstrap_servers and topics are required"};
  if (o.start != start_from::beginning && o.start != start_from::end)
    return status{errc::invalid_argument, "kafka consumer: start must be beginning or end "
                                          "(positions and timestamps: use journal_projection)"};
  if (o.batch_max_events == 0)
    return status{errc::invalid_argument, "kafka consumer: batch_max_events must be > 0"};
  auto w = projection_writer::open(j, std::move(p));
  if (!w) return w.error();
  auto m = std::make_unique<impl>();
  m->writer = std::move(*w);
  m->opts = std::move(o);

  char errstr[512];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  std::vector<std::pair<std::string, std::string>> props = {
    {"bootstrap.servers", m->opts.bootstrap_servers},
    {"client.id", "strata-projection-" + m->writer->proj().name},
    // librdkafka 2.0 wants a group id even for assign(); nothing is joined or committed.
    {"group.id", "strata-projection-" + m->writer->proj().name},
    {"enable.auto.commit", "false"},
    {"enable.auto.offset.store", "false"},
    {"auto.offset.reset", "earliest"},
    {"reconnect.backoff.max.ms", "1000"},
    {"fetch.wait.max.ms", "50"},
    {"socket.nagle.disable", "true"},
    {"log_level", std::to_string(m->opts.log_level)},
  };
  for (const auto& kv : m->opts.consumer_config)
    props.push_back(kv);
  for (const auto& [k, v] : props)
    if (rd_kafka_conf_set(conf, k.c_str(), v.c_str(), errstr, sizeof(errstr)) != RD_KAFKA_CONF_OK) {
      rd_kafka_conf_destroy(conf);
      return status{errc::invalid_argument,
                    "kafka consumer: property " + k + "=" + v + ": " + errstr};
    }
  rd_kafka_t* h = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
  if (!h) {
    rd_kafka_conf_destroy(conf);
    return status{errc::invalid_argument, std::string{"kafka consumer: "} + errstr};
  }
  m->rk.reset(h);
  rd_kafka_poll_set_consumer(h);

  rd_kafka_topic_partition_list_t* assignment = rd_kafka_topic_partition_list_new(64);
  status problem;
  for (const auto& topic : m->opts.topics) {
    std::vector<std::int32_t> parts = m->opts.partitions;
    if (parts.empty()) {
      rd_kafka_topic_t* rkt = rd_kafka_topic_new(h, topic.c_str(), nullptr);
      const rd_kafka_metadata_t* md = nullptr;
      auto err = rd_kafka_metadata(h, 0, rkt, &md, static_cast<int>(m->opts.metadata_timeout_ms));
      rd_kafka_topic_destroy(rkt);
      if (err) {
        problem = {errc::unavailable, "kafka consumer: no metadata for topic '" + topic +
                                        "' from " + m->opts.bootstrap_servers + ": " +
                                        rd_kafka_err2str(err)};
        break;
      }
      if (md->topic_cnt < 1 || md->topics[0].err) {
        problem = {errc::not_found,
                   "kafka consumer: topic '" + topic +
                     "': " + (md->topic_cnt < 1 ? "missing" : rd_kafka_err2str(md->topics[0].err))};
        rd_kafka_metadata_destroy(md);
        break;
      }
      for (int i = 0; i < md->topics[0].partition_cnt; ++i)
        parts.push_back(md->topics[0].partitions[i].id);
      rd_kafka_metadata_destroy(md);
    }
    for (auto p : parts) {
      auto stored = j.offsets().get(m->offset_name(topic, p));
      if (!stored) {
        problem = stored.error();
        break;
      }
      std::int64_t off =
        m->opts.start == start_from::end ? RD_KAFKA_OFFSET_END : RD_KAFKA_OFFSET_BEGINNING;
      m->next_offset[{topic, p}] = -1;
      auto epoch = j.offsets().get(impl::epoch_name(m->offset_name(topic, p)));
      if (!epoch) {
        problem = epoch.error();
        break;
      }
      m->trackers[{topic, p}] = claim_tracker::in_force(epoch->value_or(0));
      if (*stored) {
        off = static_cast<std::int64_t>(**stored);
        m->next_offset[{topic, p}] = off;
      }
      rd_kafka_topic_partition_list_add(assignment, topic.c_str(), p)->offset = off;
    }
    if (!problem.ok()) break;
  }
  if (problem.ok()) {
    if (auto err = rd_kafka_assign(h, assignment))
      problem = {errc::invalid_argument,
                 std::string{"kafka consumer: assign failed: "} + rd_kafka_err2str(err)};
  }
  rd_kafka_topic_partition_list_destroy(assignment);
  if (!problem.ok()) return problem;
  return std::unique_ptr<projection_consumer>{new projection_consumer(std::move(m))};
}

projection_consumer::projection_consumer(std::unique_ptr<impl> p) : impl_(std::move(p)) {}

projection_consumer::~projection_consumer() { stop(); }

result<std::size_t> projection_consumer::poll(std::uint32_t timeout_ms) {
  if (impl_->running.load())
    return status{errc::invalid_argument, "kafka consumer: poll() while the thread runs"};
  return impl_->poll_once(timeout_ms);
}

status projection_consumer::catch_up(std::uint32_t timeout_ms) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  auto& m = *impl_;
  // Low and high watermarks of every assigned partition, one ListOffsets request per
  // broker for each (a request per partition costs a round trip each).
  auto watermarks = [&](std::int64_t which) -> result<std::map<partition_key, std::int64_t>> {
    rd_kafka_topic_partition_list_t* l =
      rd_kafka_topic_partition_list_new(static_cast<int>(m.next_offset.size()));
    for (const auto& [k, next] : m.next_offset)
      rd_kafka_topic_partition_list_add(l, k.first.c_str(), k.second)->offset = which;
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                  deadline - std::chrono::steady_clock::now())
                  .count();
    auto err = rd_kafka_offsets_for_times(m.rk.get(), l, static_cast<int>(std::max<long>(left, 1)));
    std::map<partition_key, std::int64_t> out;
    status problem;
    for (int i = 0; i < l->cnt; ++i) {
      const auto& p = l->elems[i];
      if (p.err && problem.ok())
        problem = {errc::unavailable, "kafka consumer: offsets of " + std::string{p.topic} + " [" +
                                        std::to_string(p.partition) +
                                        "]: " + rd_kafka_err2str(p.err)};
      out[{p.topic, p.partition}] = p.offset;
    }
    rd_kafka_topic_partition_list_destroy(l);
    if (err)
      return status{errc::unavailable,
                    std::string{"kafka consumer: watermarks: "} + rd_kafka_err2str(err)};
    if (!problem.ok()) return problem;
    return out;
  };
  auto high = watermarks(RD_KAFKA_OFFSET_END);
  if (!high) return high.error();
  auto low = watermarks(RD_KAFKA_OFFSET_BEGINNING);
  if (!low) return low.error();
  std::map<partition_key, std::int64_t> target;
  for (const auto& [k, next] : m.next_offset) {
    std::int64_t lo = (*low)[k], hi = (*high)[k];
    bool done = next >= 0 ? next >= hi : (m.opts.start == start_from::end || lo >= hi);
    if (!done) target[k] = hi;
  }
  while (!target.empty()) {
    auto now = std::chrono::steady_clock::now();
    if (now > deadline)
      return {errc::unavailable, "kafka consumer '" + m.writer->proj().name +
                                   "': " + std::to_string(target.size()) +
                                   " partition(s) did not reach their high watermark in " +
                                   std::to_string(timeout_ms) + " ms"};
    auto n = poll(50);
    if (!n) return n.error();
    for (auto it = target.begin(); it != target.end();) {
      auto cur = m.next_offset[it->first];
      if (cur >= it->second)
        it = target.erase(it);
      else
        ++it;
    }
  }
  return {};
}

status projection_consumer::start() {
  if (impl_->running.exchange(true))
    return {errc::invalid_argument, "kafka consumer: already started"};
  impl_->stopping.store(false);
  auto* m = impl_.get();
  m->thread = std::thread([m] {
    while (!m->stopping.load()) {
      auto n = m->poll_once(100);
      if (!n) {
        std::lock_guard<std::mutex> g{m->mu};
        m->thread_error = n.error();
        break;
      }
    }
  });
  return {};
}

void projection_consumer::stop() {
  if (!impl_->running.load()) return;
  impl_->stopping.store(true);
  if (impl_->thread.joinable()) impl_->thread.join();
  impl_->running.store(false);
}

status projection_consumer::health() const {
  std::lock_guard<std::mutex> g{impl_->mu};
  return impl_->thread_error;
}

projection_stats projection_consumer::stats() const noexcept {
  std::lock_guard<std::mutex> g{impl_->mu};
  return impl_->stats_copy;
}

std::uint64_t projection_consumer::records_read() const noexcept {
  return impl_->read.load(std::memory_order_relaxed);
}

std::uint64_t projection_consumer::records_fenced() const noexcept {
  return impl_->fenced.load(std::memory_order_relaxed);
}

} // namespace strata::kafka
