#include "strata/kafka/restore.hpp"

#include "reader_util.hpp"
#include "reconcile.hpp"
#include "record_util.hpp"

#include "strata/persistence/codec.hpp"
#include "strata/persistence/journal.hpp"
#include "strata/persistence/snapshot_store.hpp"

#include <librdkafka/rdkafka.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <thread>
#include <unordered_map>

namespace strata::kafka {

using namespace strata::persistence;

namespace {

using clock_type = std::chrono::steady_clock;

/// The steps of restore_shard: a consumer, the partitions; then the snapshot partitions
/// read to their ends (latest snapshot per stream, latest checkpoint per event topic);
/// the streams started at their snapshots where a checkpoint lets the events start
/// later; then the event partitions from their checkpoints, a reader thread consuming
/// and decoding while the calling (journal writer) thread imports the batches it hands
/// over, so reading and importing overlap.
class restorer {
 public:
  restorer(journal& j, const restore_options& o)
    : j_(j), o_(o), what_("kafka restore of shard " + std::to_string(o.shard)),
      deadline_(clock_type::now() + std::chrono::milliseconds(o.timeout_ms)),
      reconcile_(j, o, report_) {}

  status check_options() const;
  status open_consumer();
  status check_topics();
  status list_partitions();
  status read_snapshots();
  status import_bases();
  status read();
  restore_report& report() noexcept { return report_; }
  void finish_report() {
    for (std::size_t i = 0; i < start_.size(); ++i) {
      report_.partitions[i].start_offset = start_[i];
      report_.partitions[i].epoch_in_force = trackers_[i].epoch();
    }
  }

 private:
  bool done() const {
    for (std::size_t i = 0; i < next_.size(); ++i)
      if (active_[i] &&
          (report_.partitions[i].end_offset < 0 || next_[i] < report_.partitions[i].end_offset))
        return false;
    return true;
  }
  /// Assigns the snapshot partitions (`snapshots`) or the event partitions, each from
  /// its start offset; only those count for done() and on_message.
  status assign(bool snapshots);
  status take_checkpoint(const rd_kafka_message_t* m, std::size_t partition);
  /// The event partition whose snapshot partition is `snapshot_partition`.
  std::size_t events_of(std::size_t snapshot_partition) const { return snapshot_partition - 1; }
  status on_message(const rd_kafka_message_t* m);
  void learn_end(const rd_kafka_message_t* m, std::size_t partition);
  status take(const rd_kafka_message_t* m, std::size_t partition);
  status take_snapshot(const rd_kafka_message_t* m, std::size_t partition);
  status save_snapshots();
  struct ready_batch {
    std::vector<event_record> events;
    std::string from; // where its first record came from
  };
  /// Queues the batch being built for the importing thread (waits while 2 are queued).
  void hand_over();
  void reader_loop();
  status import_batch(ready_batch& b);
  status timed_out() const;

  journal& j_;
  const restore_options& o_;
  std::string what_;
  clock_type::time_point deadline_;
  detail::reader_ptr rk_;
  restore_report report_;
  std::unordered_map<std::string, std::size_t> index_; // topic → partitions index
  struct latest_snapshot {
    snapshot_record s;
    std::size_t events = 0; // index of its event partition
  };
  std::map<std::string, latest_snapshot> latest_;        // persistence id → latest snapshot
  std::unordered_map<std::string, std::uint64_t> based_; // stream → seqs not held (1..n)
  std::vector<std::int64_t> next_;                       // next offset to read, per partition
  std::vector<std::int64_t> start_;                      // where reading starts, per partition
  std::vector<bool> active_;                             // assigned now
  // The validity rule per event partition (record_format.hpp): from the partition's
  // start, or from the epoch of the checkpoint reading starts at.
  std::vector<claim_tracker> trackers_;
  ready_batch batch_; // being built by the reader
  std::atomic<bool> retention_cut_{false};

  std::mutex q_mu_;
  std::condition_variable q_cv_;
  std::deque<ready_batch> queue_; // guarded by q_mu_, at most max_queued_
  bool reader_done_ = false;      // guarded by q_mu_
  status reader_error_;           // written by the reader before reader_done_
  std::atomic<bool> cancel_{false};
  static constexpr std::size_t max_queued_ = 2;
  detail::reconciler reconcile_; // restore_options::reconcile (reconcile.hpp)
};

status restorer::check_options() const {
  if (o_.bootstrap_servers.empty() || o_.topics.empty())
    return {errc::invalid_argument, what_ + ": bootstrap_servers and topics are required"};
  if (o_.reconcile && o_.num_shards == 0)
    return {errc::invalid_argument, what_ + ": reconcile needs num_shards"};
  if (o_.batch_events == 0 || o_.batch_events > j_.options().max_batch_events)
    return {errc::invalid_argument, what_ + ": batch_events must be 1.." +
                                      std::to_string(j_.options().max_batch_events) +
                                      " (the journal's max_batch_events)"};
  return {};
}

status restorer::open_consumer() {
  auto rk = detail::make_reader(what_, o_.bootstrap_servers, "strata-restore", o_.log_level,
                                o_.consumer_config);
  if (!rk) return rk.error();
  rk_ = std::move(*rk);
  return {};
}

status restorer::check_topics() {
  const rd_kafka_metadata_t* md = nullptr;
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline_ - clock_type::now());
  auto err = rd_kafka_metadata(rk_.get(), 1, nullptr, &md,
                               static_cast<int>(std::max<long long>(left.count(), 1)));
  if (err)
    return {errc::unavailable, what_ + ": no metadata from " + o_.bootstrap_servers + " (" +
                                 rd_kafka_err2str(err) + "); is Kafka reachable?"};
  status st;
  for (const auto& part : report_.partitions) {
    const auto& topic = part.topic;
    int partitions = -1;
    for (int i = 0; i < md->topic_cnt; ++i)
      if (topic == md->topics[i].topic && !md->topics[i].err)
        partitions = md->topics[i].partition_cnt;
    if (partitions <= static_cast<int>(o_.shard)) {
      st = {errc::not_found,
            what_ + ": topic '" + topic + "' partition " + std::to_string(o_.shard) +
              (partitions < 0
                 ? ": the topic does not exist on "
                 : ": the topic has only " + std::to_string(partitions) + " partitions on ") +
              o_.bootstrap_servers};
      break;
    }
  }
  rd_kafka_metadata_destroy(md);
  return st;
}

status restorer::list_partitions() {
  for (const auto& topic : o_.topics) {
    index_[topic] = report_.partitions.size();
    report_.partitions.push_back({topic, false, -1, -1});
    if (!o_.snapshots) continue;
    auto snaps = topic + o_.snapshot_topic_suffix; // right after its events (events_of)
    index_[snaps] = report_.partitions.size();
    report_.partitions.push_back({snaps, true, -1, -1});
  }
  next_.assign(report_.partitions.size(), 0);
  start_.assign(report_.partitions.size(), 0);
  active_.assign(report_.partitions.size(), false);
  trackers_.assign(report_.partitions.size(), claim_tracker{});
  return {};
}

status restorer::assign(bool snapshots) {
  rd_kafka_topic_partition_list_t* l =
    rd_kafka_topic_partition_list_new(static_cast<int>(report_.partitions.size()));
  for (std::size_t i = 0; i < report_.partitions.size(); ++i) {
    const auto& part = report_.partitions[i];
    active_[i] = part.snapshots == snapshots;
    if (!active_[i]) continue;
    next_[i] = start_[i];
    rd_kafka_topic_partition_list_add(l, part.topic.c_str(), static_cast<std::int32_t>(o_.shard))
      // An offset, not OFFSET_BEGINNING: that costs an offset lookup first (~0.5 s on the
      // mock). Where retention removed the start, auto.offset.reset=earliest moves on.
      ->offset = start_[i];
  }
  auto err = rd_kafka_assign(rk_.get(), l);
  rd_kafka_topic_partition_list_destroy(l);
  if (err) return {errc::invalid_argument, what_ + ": assign failed: " + rd_kafka_err2str(err)};
  return {};
}

status restorer::timed_out() const {
  std::string where;
  for (std::size_t i = 0; i < next_.size(); ++i) {
    const auto& part = report_.partitions[i];
    if (part.end_offset < 0)
      where += " topic '" + part.topic + "': no fetch answered;";
    else if (next_[i] < part.end_offset)
      where += " topic '" + part.topic + "' at offset " + std::to_string(next_[i]) + " of " +
               std::to_string(part.end_offset) + ";";
  }
  return {errc::unavailable, what_ + ": not read to the end within " +
                               std::to_string(o_.timeout_ms) + " ms:" + where +
                               " is Kafka reachable at " + o_.bootstrap_servers +
                               "? What was imported stays; run the restore again"};
}

status restorer::take_checkpoint(const rd_kafka_message_t* m, std::size_t partition) {
  ++report_.checkpoints_read;
  auto c = parse_checkpoint_value({static_cast<const char*>(m->payload), m->len});
  if (!c)
    return {errc::corrupt, what_ + ": topic '" + report_.partitions[partition].topic +
                             "' partition " + std::to_string(o_.shard) + " offset " +
                             std::to_string(m->offset) + ": " + c.error().message()};
  auto& start = start_[events_of(partition)];
  // The checkpoint's owner wrote it under the epoch in force at its offset (it owned
  // the shard then), so records from there on are judged against that epoch.
  auto& tracker = trackers_[events_of(partition)];
  if (c->offset > start || (c->offset == start && c->epoch > tracker.epoch()))
    tracker = claim_tracker::in_force(c->epoch);
  start = std::max(start, c->offset);
  return {};
}

status restorer::take_snapshot(const rd_kafka_message_t* m, std::size_t partition) {
  if (detail::is_checkpoint(m)) return take_checkpoint(m, partition);
  ++report_.snapshots_read;
  std::string_view bytes{static_cast<const char*>(m->payload), m->len};
  report_.bytes += bytes.size();
  auto s = decode_snapshot(bytes);
  if (!s)
    return {errc::corrupt, what_ + ": topic '" + report_.partitions[partition].topic +
                             "' partition " + std::to_string(o_.shard) + " offset " +
                             std::to_string(m->offset) + ": " + s.error().message()};
  if (reconcile_.enabled()) reconcile_.seen(s->persistence_id, s->seq);
  auto& keep = latest_[s->persistence_id];
  if (s->seq >= keep.s.seq) keep = {std::move(*s), events_of(partition)};
  return {};
}

// Each stream with a latest snapshot whose event topic has a checkpoint starts at that
// snapshot (journal::import_base), so its events at or below the snapshot's seq — the
// events before the checkpoint among them — need not be read; the reader skips those it
// still meets after the checkpoint, and on a later restore those the journal does not
// hold.
status restorer::import_bases() {
  if (reconcile_.enabled()) {
    bool whole = false;
    if (auto st = reconcile_.before_bases(start_, based_, whole); !st.ok()) return st;
    if (whole) {
      // No bases: every event is read and compared, from offset 0, where no claim is
      // in force yet (the checkpoints' epochs applied from their offsets on).
      std::fill(trackers_.begin(), trackers_.end(), claim_tracker{});
      return {};
    }
  }
  std::vector<snapshot_record> snaps;
  for (const auto& [pid, l] : latest_)
    if (start_[l.events] > 0) snaps.push_back(l.s);
  if (snaps.empty()) return {};
  auto r = o_.import_bases ? o_.import_bases(snaps) : j_.import_bases(snaps);
  if (!r)
    return {r.error().code(), what_ + ": starting " + std::to_string(snaps.size()) +
                                " streams at their snapshots: " + r.error().message()};
  for (std::size_t i = 0; i < snaps.size(); ++i) {
    const auto& pid = snaps[i].persistence_id;
    if ((*r)[i].moved) ++report_.bases;
    if ((*r)[i].snapshot_saved) ++report_.snapshots_saved;
    // The seqs below the first the journal holds (this base, or one of an earlier
    // restore) cannot be compared: the reader skips them.
    auto first = j_.first_held_seq(pid);
    if (!first) return first.error();
    if (*first > 1) based_[pid] = *first - 1;
  }
  return {};
}

// After the events: each latest snapshot whose stream reaches its seq and that the store
// does not have yet (nor a later one) is saved.
status restorer::save_snapshots() {
  for (const auto& [pid, l] : latest_) {
    if (start_[l.events] > 0) continue; // done by import_bases
    const auto& s = l.s;
    auto head = j_.highest_seq(pid);
    if (!head) return head.error();
    auto have = j_.snapshots().load_latest(pid);
    if (!have) return have.error();
    if (*head < s.seq || (*have && (*have)->seq >= s.seq)) {
      ++report_.snapshots_skipped;
      continue;
    }
    if (auto st = j_.snapshots().save(s); !st.ok())
      return {st.code(), what_ + ": saving the snapshot of '" + pid + "' at seq " +
                           std::to_string(s.seq) + ": " + st.message()};
    ++report_.snapshots_saved;
  }
  return {};
}

status restorer::take(const rd_kafka_message_t* m, std::size_t partition) {
  ++report_.records;
  next_[partition] = m->offset + 1;
  if (report_.partitions[partition].snapshots) return take_snapshot(m, partition);
  auto& tracker = trackers_[partition];
  if (detail::is_claim(m)) {
    ++report_.claims;
    tracker.on_claim(detail::claim_epoch(m));
    return {};
  }
  if (auto epoch = detail::record_epoch(m); !tracker.valid(epoch)) {
    // Written by an owner a newer claim had already replaced: not part of the shard.
    ++report_.fenced;
    if (report_.fenced_records.size() < restore_report::fenced_records_max)
      report_.fenced_records.push_back(
        "topic '" + report_.partitions[partition].topic + "' partition " +
        std::to_string(o_.shard) + " offset " + std::to_string(m->offset) + ": epoch " +
        std::to_string(epoch.value_or(0)) + ", claim in force " + std::to_string(tracker.epoch()));
    return {};
  }
  std::string_view bytes{static_cast<const char*>(m->payload), m->len};
  report_.bytes += bytes.size();
  auto e = decode_envelope(bytes);
  if (!e)
    return {errc::corrupt, what_ + ": topic '" + report_.partitions[partition].topic +
                             "' partition " + std::to_string(o_.shard) + " offset " +
                             std::to_string(m->offset) + ": " + e.error().message()};
  if (reconcile_.enabled()) reconcile_.seen(e->persistence_id, e->seq);
  if (!based_.empty()) {
    auto b = based_.find(e->persistence_id);
    if (b != based_.end() && e->seq <= b->second) { // covered by the snapshot it starts at
      ++report_.covered;
      return {};
    }
  }
  if (batch_.events.empty())
    batch_.from =
      "topic '" + report_.partitions[partition].topic + "' offset " + std::to_string(m->offset);
  batch_.events.push_back(std::move(*e));
  if (batch_.events.size() >= o_.batch_events) hand_over();
  return {};
}

void restorer::hand_over() {
  if (batch_.events.empty()) return;
  std::unique_lock<std::mutex> lk{q_mu_};
  q_cv_.wait(lk, [&] {
    return queue_.size() < max_queued_ || cancel_.load();
  });
  queue_.push_back(std::move(batch_));
  batch_ = {};
  q_cv_.notify_all();
}

status restorer::import_batch(ready_batch& b) {
  auto t0 = clock_type::now();
  auto r = o_.import ? o_.import(b.events) : j_.import(b.events);
  if (!r && r.error().code() == errc::conflict && reconcile_.enabled()) {
    // The journal holds events Kafka does not (reconciliation): cut them, import again.
    bool cut = false;
    if (auto st = reconcile_.cut_divergent(b.events, cut); !st.ok()) return st;
    if (cut) r = o_.import ? o_.import(b.events) : j_.import(b.events);
  }
  report_.import_seconds += std::chrono::duration<double>(clock_type::now() - t0).count();
  if (!r) {
    std::string hint;
    if (r.error().code() == errc::invalid_argument && retention_cut_)
      hint = " (a partition of this shard no longer starts at offset 0: retention removed "
             "events the journal lacks; event topics need retention.ms=-1 until a restore can "
             "start from a snapshot: docs/kafka.md, 'Restoring a shard')";
    return {r.error().code(),
            what_ + ": importing the batch from " + b.from + ": " + r.error().message() + hint};
  }
  report_.imported += r->imported;
  report_.duplicates += r->duplicates;
  return {};
}

// The partition's end offset, as of the first fetch that answered: the high watermark
// librdkafka cached from that fetch response (no extra round trip), or the offset of
// the end-of-partition event. Also its first offset (> 0: retention removed records).
void restorer::learn_end(const rd_kafka_message_t* m, std::size_t partition) {
  auto& part = report_.partitions[partition];
  if (part.end_offset >= 0) return;
  std::int64_t lo = 0, hi = -1;
  if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
    hi = m->offset;
  } else if (rd_kafka_get_watermark_offsets(rk_.get(), part.topic.c_str(), m->partition, &lo,
                                            &hi) != RD_KAFKA_RESP_ERR_NO_ERROR ||
             hi <= m->offset) {
    hi = m->offset + 1; // not cached (cannot happen after a fetch): read at least this one
  }
  part.end_offset = hi;
  part.first_offset = m->offset;
  if (m->offset > start_[partition]) retention_cut_.store(true);
}

status restorer::on_message(const rd_kafka_message_t* m) {
  const auto where = [&] {
    return (m->rkt ? "topic '" + std::string{rd_kafka_topic_name(m->rkt)} + "' " : std::string{}) +
           "partition " + std::to_string(o_.shard);
  };
  if (m->err == RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC ||
      m->err == RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION ||
      m->err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART)
    return {errc::not_found, what_ + ": " + where() + " does not exist on " + o_.bootstrap_servers +
                               " (" + rd_kafka_err2str(m->err) + ")"};
  if (!m->rkt) return {}; // a client-level event (a broker away): librdkafka retries
  auto it = index_.find(rd_kafka_topic_name(m->rkt));
  if (it == index_.end() || m->partition != static_cast<std::int32_t>(o_.shard) ||
      !active_[it->second])
    return {};
  if (m->err && m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) return {}; // transient
  learn_end(m, it->second);
  if (m->err) { // end of partition: nothing before m->offset is left
    next_[it->second] = std::max(next_[it->second], m->offset);
    return {};
  }
  // Records appended after the start are not part of this restore.
  if (m->offset >= report_.partitions[it->second].end_offset) return {};
  return take(m, it->second);
}

void restorer::reader_loop() {
  status st;
  while (!done() && !cancel_.load()) {
    if (clock_type::now() >= deadline_) {
      st = timed_out();
      break;
    }
    rd_kafka_message_t* m = rd_kafka_consumer_poll(rk_.get(), 100);
    if (!m) continue;
    st = on_message(m);
    rd_kafka_message_destroy(m);
    if (!st.ok()) break;
  }
  if (st.ok()) hand_over();
  std::lock_guard<std::mutex> g{q_mu_};
  reader_error_ = st;
  reader_done_ = true;
  q_cv_.notify_all();
}

// Reads the snapshot partitions to their ends (restore_options::snapshots).
status restorer::read_snapshots() {
  if (!o_.snapshots) return {};
  if (auto st = assign(true); !st.ok()) return st;
  reader_loop();
  std::lock_guard<std::mutex> g{q_mu_};
  reader_done_ = false;
  return reader_error_;
}

status restorer::read() {
  if (auto st = assign(false); !st.ok()) return st;
  std::thread reader{[this] {
    reader_loop();
  }};
  status st;
  for (;;) {
    ready_batch b;
    {
      std::unique_lock<std::mutex> lk{q_mu_};
      q_cv_.wait(lk, [&] {
        return !queue_.empty() || reader_done_;
      });
      if (queue_.empty()) break;
      b = std::move(queue_.front());
      queue_.pop_front();
      q_cv_.notify_all();
    }
    if (st = import_batch(b); !st.ok()) break;
  }
  if (!st.ok()) {
    std::lock_guard<std::mutex> g{q_mu_};
    cancel_.store(true);
    q_cv_.notify_all();
  }
  reader.join();
  if (!st.ok()) return st;
  if (!reader_error_.ok()) return reader_error_;
  if (reconcile_.enabled())
    if (auto rs = reconcile_.cut_tails(retention_cut_.load()); !rs.ok()) return rs;
  return save_snapshots();
}

} // namespace

result<restore_report> restore_shard(journal& j, const restore_options& o) {
  auto start = clock_type::now();
  restorer r{j, o};
  if (auto st = r.check_options(); !st.ok()) return st;
  for (auto step : {&restorer::open_consumer, &restorer::list_partitions, &restorer::check_topics,
                    &restorer::read_snapshots, &restorer::import_bases, &restorer::read})
    if (auto st = (r.*step)(); !st.ok()) return st;
  r.finish_report();
  r.report().seconds = std::chrono::duration<double>(clock_type::now() - start).count();
  return std::move(r.report());
}

persistence::result<std::vector<std::string>>
list_event_topics(const std::string& bootstrap_servers, const std::string& prefix,
                  const std::string& snapshot_suffix, std::uint32_t timeout_ms) {
  using persistence::errc;
  if (bootstrap_servers.empty())
    return persistence::status{errc::invalid_argument, "list_event_topics: no bootstrap servers"};
  char errstr[512];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  for (auto [k, v] : {std::pair<const char*, std::string>{"bootstrap.servers", bootstrap_servers},
                      {"client.id", "strata-restore"},
                      {"log_level", "3"}})
    if (rd_kafka_conf_set(conf, k, v.c_str(), errstr, sizeof(errstr)) != RD_KAFKA_CONF_OK) {
      rd_kafka_conf_destroy(conf);
      return persistence::status{errc::invalid_argument,
                                 std::string("list_event_topics: ") + k + ": " + errstr};
    }
  std::unique_ptr<rd_kafka_t, void (*)(rd_kafka_t*)> rk{
    rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr)), rd_kafka_destroy};
  if (!rk) {
    rd_kafka_conf_destroy(conf);
    return persistence::status{errc::invalid_argument,
                               std::string("list_event_topics: cannot create a client: ") + errstr};
  }
  const rd_kafka_metadata_t* md = nullptr;
  auto err = rd_kafka_metadata(rk.get(), 1, nullptr, &md, static_cast<int>(timeout_ms));
  if (err)
    return persistence::status{errc::unavailable, "no metadata from " + bootstrap_servers + " (" +
                                                    rd_kafka_err2str(err) +
                                                    "); is Kafka reachable?"};
  std::vector<std::string> out;
  auto ends_with = [](const std::string& s, const std::string& suffix) {
    return !suffix.empty() && s.size() >= suffix.size() &&
           s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
  };
  for (int i = 0; i < md->topic_cnt; ++i) {
    std::string t = md->topics[i].topic;
    if (!md->topics[i].err && t.rfind(prefix, 0) == 0 && !ends_with(t, snapshot_suffix))
      out.push_back(std::move(t));
  }
  rd_kafka_metadata_destroy(md);
  std::sort(out.begin(), out.end());
  return out;
}

} // namespace strata::kafka
