#include "strata/kafka/bridge.hpp"

#include "strata/kafka/record_format.hpp"

#include "reader_util.hpp"
#include "record_util.hpp"
#include "topic_config_check.hpp"

#include "strata/persistence/codec.hpp"
#include "strata/persistence/envelope_peek.hpp"
#include "strata/persistence/journal.hpp"
#include "strata/persistence/offset_store.hpp"
#include "strata/persistence/persistence_id.hpp"
#include "strata/persistence/snapshot_store.hpp"

#include <librdkafka/rdkafka.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <map>
#include <mutex>
#include <optional>
#include <pthread.h>
#include <set>
#include <thread>
#include <unordered_map>

namespace strata::kafka {

using namespace strata::persistence;

std::string stream_type(std::string_view persistence_id, const std::vector<type_rule>& rules,
                        char separator) {
  const type_rule* best = nullptr;
  for (const auto& r : rules)
    if (persistence_id.substr(0, r.prefix.size()) == r.prefix &&
        (!best || r.prefix.size() > best->prefix.size()))
      best = &r;
  if (best) return best->type;
  return std::string{type_of_persistence_id(persistence_id, separator)};
}

namespace {

using clock_type = std::chrono::steady_clock;

std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
           std::chrono::system_clock::now().time_since_epoch())
    .count();
}

// Deletes a producer: purges what is queued or in flight (the bridge resends from its
// acknowledged position), serves the resulting delivery reports, destroys.
struct producer_deleter {
  void operator()(rd_kafka_t* rk) const noexcept {
    rd_kafka_purge(rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
    auto deadline = clock_type::now() + std::chrono::seconds(5);
    while (rd_kafka_outq_len(rk) > 0 && clock_type::now() < deadline)
      rd_kafka_poll(rk, 10);
    rd_kafka_destroy(rk);
  }
};
using producer_ptr = std::unique_ptr<rd_kafka_t, producer_deleter>;

struct topic_entry;

struct slot {
  std::uint64_t position = 0;
  std::int64_t timestamp_ns = 0;
  std::uint32_t shard = 0;
  bool acked = false;
  std::uint64_t epoch = 0;      // the epoch stamped on the record
  topic_entry* topic = nullptr; // where it went (its partition's fence track)
};

// A when_published call waiting on the bridge thread.
struct publish_wait {
  std::uint32_t shard = 0;
  std::uint64_t target = 0; // the journal's last position at the call
  clock_type::time_point deadline;
  std::function<void(bool)> done;
};

constexpr std::size_t max_publish_waits = 4'096;

// Acknowledgement fencing of one partition (docs/kafka.md, "Fencing"): the offset of
// this bridge's last record in it whose validity is known — its claim, or a record
// acknowledged after a contiguous offset or a gap check — and the epoch it was under.
struct fence_track {
  std::int64_t last = -1;
  std::uint64_t epoch = 0; // 0: no record of an epoch > 0 seen yet
};

struct topic_entry {
  std::string name;
  rd_kafka_topic_t* rkt = nullptr;
  bool checked = false;
  std::vector<fence_track> tracks; // per partition; allocated once, with the entry
};

constexpr const char* content_type = "application/x-capnp; schema=strata.Envelope";
constexpr const char* snapshot_content_type = "application/x-capnp; schema=strata.Snapshot";
// The delivery-report opaque of a snapshot record (event records carry their window
// sequence number, which never gets near it).
void* const snapshot_opaque = reinterpret_cast<void*>(~std::uintptr_t{0});
constexpr std::size_t snapshots_per_round = 1'000;

// The delivery reports of one append_claim or publish_checkpoint call.
struct side_delivery {
  std::atomic<std::size_t> acked{0};
  std::mutex mu;
  std::string errors;                                        // guarded by mu
  std::vector<std::pair<std::string, std::int64_t>> offsets; // topic, offset (guarded by mu)
};

void side_dr_cb(rd_kafka_t*, const rd_kafka_message_t* m, void* opaque) {
  auto* d = static_cast<side_delivery*>(opaque);
  if (!m->err) {
    {
      std::lock_guard<std::mutex> g{d->mu};
      d->offsets.emplace_back(rd_kafka_topic_name(m->rkt), m->offset);
    }
    d->acked.fetch_add(1);
    return;
  }
  std::lock_guard<std::mutex> g{d->mu};
  d->errors += std::string{"; "} + rd_kafka_topic_name(m->rkt) + ": " + rd_kafka_err2str(m->err);
}

// The headers of a snapshot record: its seq, the shard's epoch, the content type.
rd_kafka_headers_t* snapshot_headers(std::uint64_t seq, std::uint64_t epoch) {
  const auto sq = std::to_string(seq), e = std::to_string(epoch);
  rd_kafka_headers_t* hdrs = rd_kafka_headers_new(3);
  rd_kafka_header_add(hdrs, "strata.seq", -1, sq.data(), static_cast<ssize_t>(sq.size()));
  rd_kafka_header_add(hdrs, epoch_header.data(), static_cast<ssize_t>(epoch_header.size()),
                      e.data(), static_cast<ssize_t>(e.size()));
  rd_kafka_header_add(hdrs, "content-type", -1, snapshot_content_type, -1);
  return hdrs;
}

// Produces the claim record to partition `shard` of `topic`. Errors: unavailable.
status produce_claim(rd_kafka_t* rk, const std::string& topic, std::uint32_t shard,
                     std::uint64_t epoch, const std::string& member, const std::string& value) {
  rd_kafka_headers_t* hdrs = rd_kafka_headers_new(2);
  auto e = std::to_string(epoch);
  rd_kafka_header_add(hdrs, claim_header.data(), static_cast<ssize_t>(claim_header.size()),
                      member.data(), static_cast<ssize_t>(member.size()));
  rd_kafka_header_add(hdrs, epoch_header.data(), static_cast<ssize_t>(epoch_header.size()),
                      e.data(), static_cast<ssize_t>(e.size()));
  auto err = rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic.c_str()),
                               RD_KAFKA_V_PARTITION(static_cast<std::int32_t>(shard)),
                               RD_KAFKA_V_KEY(claim_key.data(), claim_key.size()),
                               RD_KAFKA_V_VALUE(const_cast<char*>(value.data()), value.size()),
                               RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_HEADERS(hdrs),
                               RD_KAFKA_V_TIMESTAMP(now_ns() / 1'000'000), RD_KAFKA_V_END);
  if (!err) return {};
  rd_kafka_headers_destroy(hdrs);
  return {errc::unavailable, "kafka bridge: claim of shard " + std::to_string(shard) +
                               " on topic '" + topic + "': " + rd_kafka_err2str(err)};
}

// A claim found by a gap check that fences records of an older epoch.
struct newer_claim {
  std::uint64_t epoch = 0;
  std::string member;
  std::int64_t offset = 0;
};

// The gap check: reads offsets [from, to) of `partition` of `topic` and returns the
// first claim that raises the epoch in force above `epoch` (claim_tracker), if any.
// Errors: unavailable (not read within timeout_ms), invalid_argument (a bad property).
result<std::optional<newer_claim>>
find_newer_claim(const std::string& bootstrap, int log_level,
                 const std::vector<std::pair<std::string, std::string>>& user,
                 const std::string& topic, std::uint32_t partition, std::int64_t from,
                 std::int64_t to, std::uint64_t epoch, std::uint32_t timeout_ms) {
  const auto what = "kafka bridge: gap check of topic '" + topic + "' partition " +
                    std::to_string(partition) + " offsets " + std::to_string(from) + ".." +
                    std::to_string(to - 1);
  auto rk = detail::make_reader(what, bootstrap, "strata-kafka-gap-check", log_level, user);
  if (!rk) return rk.error();
  rd_kafka_topic_partition_list_t* l = rd_kafka_topic_partition_list_new(1);
  rd_kafka_topic_partition_list_add(l, topic.c_str(), static_cast<std::int32_t>(partition))
    ->offset = from;
  auto err = rd_kafka_assign(rk->get(), l);
  rd_kafka_topic_partition_list_destroy(l);
  if (err)
    return status{errc::invalid_argument, what + ": assign failed: " + rd_kafka_err2str(err)};
  auto tracker = claim_tracker::in_force(epoch);
  auto deadline = clock_type::now() + std::chrono::milliseconds(timeout_ms);
  while (clock_type::now() < deadline) {
    rd_kafka_message_t* m = rd_kafka_consumer_poll(rk->get(), 50);
    if (!m) continue;
    std::unique_ptr<rd_kafka_message_t, void (*)(rd_kafka_message_t*)> hold{
      m, rd_kafka_message_destroy};
    if (!m->rkt || m->partition != static_cast<std::int32_t>(partition)) continue;
    if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
      if (m->offset >= to) return std::optional<newer_claim>{};
      continue;
    }
    if (m->err) continue; // transient: librdkafka retries
    if (m->offset >= to) return std::optional<newer_claim>{};
    if (detail::is_claim(m) && tracker.on_claim(detail::claim_epoch(m))) {
      auto c = parse_claim_value({static_cast<const char*>(m->payload), m->len});
      return std::optional<newer_claim>{
        newer_claim{tracker.epoch(), c ? c->member : std::string{"?"}, m->offset}};
    }
    if (m->offset + 1 >= to) return std::optional<newer_claim>{};
  }
  return status{errc::unavailable, what + ": not read within " + std::to_string(timeout_ms) +
                                     " ms; the records stay unacknowledged and are resent"};
}

} // namespace

struct bridge::impl {
  journal* j = nullptr;
  bridge_options opts;

  // --- bridge thread only -------------------------------------------------------------
  producer_ptr rk;
  std::unordered_map<std::string, topic_entry> topics; // by aggregate type
  std::vector<slot> ring;      // in-flight window, indexed by produce sequence % size
  std::uint64_t head = 0;      // oldest unacknowledged produce sequence
  std::uint64_t tail = 0;      // next produce sequence
  std::uint64_t read_next = 1; // next journal position to read
  bool restart_needed = false;
  std::string pending_check; // aggregate type whose topic must be checked first
  std::uint32_t backoff_ms = 0;
  std::vector<std::uint64_t> scratch; // aligned copy of a misaligned envelope

  // --- shared ---------------------------------------------------------------------------
  std::thread thread;
  std::thread committer;
  std::thread config_checker;           // check_topic_configs, once at start
  std::condition_variable committer_cv; // with wake_mu
  std::atomic<bool> stopping{false};
  std::atomic<bool> stopped{false};
  std::atomic<bool> wake{false};
  std::mutex wake_mu;
  std::condition_variable wake_cv;

  std::atomic<std::uint64_t> acked{0};
  std::mutex ack_mu;
  std::condition_variable ack_cv;

  // Per shard (index < num_partitions): the epoch stamped on its records, and its
  // records in the window not yet acknowledged (bridge thread writes, waiters read).
  std::unique_ptr<std::atomic<std::uint64_t>[]> epochs;
  std::unique_ptr<std::atomic<std::uint32_t>[]> shard_unacked;
  // Per shard: the highest epoch under which the shard was fenced (0: never). Records
  // stamped with an epoch in 1..fenced_upto are not published nor acknowledged.
  std::unique_ptr<std::atomic<std::uint64_t>[]> fenced_upto;
  mutable std::mutex fence_mu;
  std::vector<status> fence_errors; // per shard, the fenced status (guarded by fence_mu)
  // Offsets of this bridge's claims (append_claim): (topic, shard) → (offset, epoch);
  // the first record under that epoch in the partition must follow it (guarded by
  // fence_mu; at most one entry per topic and shard).
  std::map<std::pair<std::string, std::uint32_t>, std::pair<std::int64_t, std::uint64_t>>
    claim_offsets;
  std::atomic<std::uint64_t> gap_checks{0};
  std::atomic<std::uint64_t> fenced_records{0};
  // Every position <= read_done was produced or skipped (read_next - 1). Moves back on
  // a producer restart, which resets it and shard_unacked under ack_mu.
  std::atomic<std::uint64_t> read_done{0};

  mutable std::mutex topics_mu;
  std::set<std::string> known_topics; // guarded by topics_mu

  std::mutex snap_mu;
  // Stream → the journal position that must be acknowledged before its latest snapshot
  // is published (guarded by snap_mu).
  std::unordered_map<std::string, std::uint64_t> pending_snaps;
  std::atomic<bool> has_snaps{false};
  std::atomic<std::uint64_t> snaps_published{0};
  std::atomic<std::uint64_t> snaps_pending{0};
  std::set<std::string> bad_snapshot_topics; // bridge thread: reported once each
  std::vector<bool> held_noted;              // bridge thread: per shard, hold() noted it
  std::atomic<std::uint64_t> held_events{0};

  std::mutex waits_mu;
  std::vector<publish_wait> waits; // guarded by waits_mu
  std::atomic<bool> has_waits{false};

  std::mutex commit_mu;
  std::uint64_t stored = 0; // guarded by commit_mu

  std::atomic<std::uint64_t> produced{0};
  std::atomic<std::uint64_t> in_flight{0};
  std::atomic<std::uint64_t> delivered{0};
  std::atomic<std::uint64_t> queue_full_waits{0};
  std::atomic<std::uint64_t> producer_restarts{0};
  std::atomic<std::uint64_t> delivery_errors{0};
  std::atomic<std::int64_t> oldest_unacked_ns{0};
  // librdkafka's tx_bytes: of the current producer, and of the ones a restart replaced.
  std::atomic<std::uint64_t> wire_bytes_current{0};
  std::atomic<std::uint64_t> wire_bytes_before{0};
  std::atomic<std::uint64_t> wire_reports{0};

  mutable std::mutex err_mu;
  std::string last_error;
  status fatal; // set when the bridge stopped for good (guarded by err_mu)

  // ------------------------------------------------------------------------------------

  void report(const status& st) {
    {
      std::lock_guard<std::mutex> g{err_mu};
      last_error = st.to_string();
    }
    if (opts.on_error) opts.on_error(st);
  }

  // An informational line for on_error (not a problem: last_error stays).
  void note(const status& st) {
    if (opts.on_error) opts.on_error(st);
  }

  // The configs of the declared topics and their snapshot topics (own thread).
  void run_config_check() {
    std::vector<detail::topic_expectation> topics;
    for (const auto& rule : opts.types) {
      topics.push_back({opts.topic_prefix + rule.type, false});
      topics.push_back({opts.topic_prefix + rule.type + opts.snapshot_topic_suffix, true});
    }
    properties props = {{"bootstrap.servers", opts.bootstrap_servers},
                        {"client.id", "strata-kafka-config-check"},
                        {"log_level", std::to_string(opts.log_level)}};
    for (const auto& kv : opts.producer_config)
      props.push_back(kv);
    detail::check_topic_configs(props, topics, opts.config_check_timeout_ms, stopping,
                                [this](const status& st, bool problem) {
                                  if (problem)
                                    report(st);
                                  else
                                    note(st);
                                });
  }

  void fail(status st) {
    {
      std::lock_guard<std::mutex> g{err_mu};
      fatal = st;
    }
    report(st);
  }

  bool failed() const {
    std::lock_guard<std::mutex> g{err_mu};
    return !fatal.ok();
  }

  std::string type_of(std::string_view pid) const {
    return opts.type_of ? opts.type_of(pid) : stream_type(pid, opts.types, opts.type_separator);
  }

  static void dr_cb(rd_kafka_t*, const rd_kafka_message_t* m, void* opaque) {
    static_cast<impl*>(opaque)->on_delivery(m);
  }

  static void error_cb(rd_kafka_t* rk, int err, const char* reason, void* opaque) {
    static_cast<impl*>(opaque)->on_kafka_error(rk, err, reason);
  }

  static int stats_cb(rd_kafka_t*, char* json, size_t len, void* opaque) {
    static_cast<impl*>(opaque)->on_statistics(std::string_view{json, len});
    return 0; // librdkafka frees `json`
  }

  // The top-level "tx_bytes" counter (brokers report theirs as "txbytes").
  void on_statistics(std::string_view json) {
    constexpr std::string_view field = "\"tx_bytes\":";
    auto at = json.find(field);
    if (at == std::string_view::npos) return;
    auto i = at + field.size();
    while (i < json.size() && json[i] == ' ')
      ++i;
    std::uint64_t v = 0;
    for (; i < json.size() && json[i] >= '0' && json[i] <= '9'; ++i)
      v = v * 10 + static_cast<std::uint64_t>(json[i] - '0');
    wire_bytes_current.store(v, std::memory_order_relaxed);
    wire_reports.fetch_add(1, std::memory_order_release);
  }

  void on_delivery(const rd_kafka_message_t* m) {
    if (m->_private == snapshot_opaque) {
      if (!m->err) {
        snaps_published.fetch_add(1);
      } else { // purged by a restart, or failed: publish it again
        std::string pid{static_cast<const char*>(m->key), m->key_len};
        queue_snapshot(pid, 0);
      }
      return;
    }
    auto seq = static_cast<std::uint64_t>(reinterpret_cast<std::uintptr_t>(m->_private));
    if (m->err) {
      if (m->err == RD_KAFKA_RESP_ERR__PURGE_QUEUE || m->err == RD_KAFKA_RESP_ERR__PURGE_INFLIGHT)
        return; // we purged it (restart or stop): it is resent from the journal
      delivery_errors.fetch_add(1, std::memory_order_relaxed);
      if (!restart_needed)
        report({errc::unavailable, std::string{"kafka bridge: delivery failed ("} +
                                     rd_kafka_err2name(m->err) + ": " + rd_kafka_err2str(m->err) +
                                     "); recreating the producer and resending from position " +
                                     std::to_string(acked.load() + 1)});
      restart_needed = true;
      return;
    }
    delivered.fetch_add(1, std::memory_order_relaxed);
    if (seq < head || seq >= tail) return;
    auto& s = ring[seq % ring.size()];
    if (s.acked) return;
    if (s.epoch > 0 && s.topic) {
      switch (verify(s, m->offset)) {
        case verdict::valid: break;
        case verdict::unknown: return; // stays unacknowledged: resent after the restart
        case verdict::fenced:
          fenced_records.fetch_add(1, std::memory_order_relaxed);
          if (opts.on_fenced) opts.on_fenced(s.position, fence_error(s.shard));
          break;
      }
    }
    s.acked = true;
    if (shard_unacked[s.shard].fetch_sub(1) == 1) ack_cv.notify_all(); // wait_published
  }

  enum class verdict { valid, fenced, unknown };

  // Acknowledgement fencing (docs/kafka.md, "Fencing"): may record `s`, delivered at
  // `offset`, be acknowledged — does no claim newer than its epoch precede it? Offset ==
  // the partition's last own record + 1: nobody wrote in between (O(1), no read).
  // Otherwise the gap is read (find_newer_claim, bounded by gap_check_timeout_ms). Bridge
  // thread (delivery reports).
  verdict verify(slot& s, std::int64_t offset) {
    if (s.epoch <= fenced_upto[s.shard].load(std::memory_order_relaxed)) return verdict::fenced;
    auto& t = s.topic->tracks[s.shard];
    if (t.epoch != s.epoch) start_track(t, s, offset);
    if (offset == t.last + 1 || offset <= t.last) { // <=: a resent record, already judged
      t.last = std::max(t.last, offset);
      return verdict::valid;
    }
    if (restart_needed) return verdict::unknown; // resent and checked after the restart
    gap_checks.fetch_add(1, std::memory_order_relaxed);
    auto found =
      find_newer_claim(opts.bootstrap_servers, opts.log_level, opts.producer_config, s.topic->name,
                       s.shard, t.last + 1, offset, s.epoch, opts.gap_check_timeout_ms);
    if (!found) {
      report(found.error());
      restart_needed = true;
      return verdict::unknown;
    }
    if (!*found) {
      t.last = offset;
      return verdict::valid;
    }
    fence(s, offset, **found);
    return verdict::fenced;
  }

  // The first record of `s`'s epoch in its partition: it must follow this bridge's
  // claim there (append_claim). Without one (set_epoch alone, or a topic first seen
  // after the claim) there is nothing to compare with: the record starts the track.
  void start_track(fence_track& t, const slot& s, std::int64_t offset) {
    t.epoch = s.epoch;
    t.last = offset - 1; // no claim known: accept this one
    std::lock_guard<std::mutex> g{fence_mu};
    auto it = claim_offsets.find({s.topic->name, s.shard});
    if (it != claim_offsets.end() && it->second.second == s.epoch) t.last = it->second.first;
  }

  void fence(const slot& s, std::int64_t offset, const newer_claim& c) {
    status st{errc::fenced,
              "kafka bridge: shard " + std::to_string(s.shard) + " was taken over: topic '" +
                s.topic->name + "' partition " + std::to_string(s.shard) +
                " holds a claim of epoch " + std::to_string(c.epoch) + " by member '" + c.member +
                "' at offset " + std::to_string(c.offset) +
                ", before this node's record of position " + std::to_string(s.position) +
                " (offset " + std::to_string(offset) + ", epoch " + std::to_string(s.epoch) +
                "); this write and every later write of the shard under epoch " +
                std::to_string(s.epoch) + " are not acknowledged and not published"};
    {
      std::lock_guard<std::mutex> g{fence_mu};
      if (fenced_upto[s.shard].load() < s.epoch) {
        fenced_upto[s.shard].store(s.epoch);
        fence_errors[s.shard] = st;
      }
    }
    report(st);
  }

  // append_claim with a basis: no claim above `epoch` between what the restore read and
  // where this bridge's claim landed, per topic (find_newer_claim). Errors: fenced,
  // unavailable (not read in time: retry).
  status check_claims(std::uint32_t shard, std::uint64_t epoch, const std::string& what,
                      side_delivery& d, const std::vector<claim_basis>& basis) const {
    std::lock_guard<std::mutex> g{d.mu};
    for (const auto& b : basis)
      for (const auto& [topic, offset] : d.offsets) {
        if (topic != b.topic || offset <= b.offset) continue;
        auto found =
          find_newer_claim(opts.bootstrap_servers, opts.log_level, opts.producer_config, topic,
                           shard, b.offset, offset, epoch, opts.gap_check_timeout_ms);
        if (!found) return {found.error().code(), what + ": " + found.error().message()};
        if (*found)
          return {errc::fenced,
                  what + ": topic '" + topic + "' partition " + std::to_string(shard) +
                    " holds a claim of epoch " + std::to_string((*found)->epoch) + " by member '" +
                    (*found)->member + "' at offset " + std::to_string((*found)->offset) +
                    ", before this claim (offset " + std::to_string(offset) +
                    "): a newer owner; not claimed"};
      }
    return {};
  }

  status fence_error(std::uint32_t shard) const {
    std::lock_guard<std::mutex> g{fence_mu};
    return fence_errors[shard];
  }

  // Every event of `shard` at positions <= target is acknowledged: all of them, or the
  // bridge has read past target and none of the shard's records is unacknowledged.
  bool shard_published(std::uint32_t shard, std::uint64_t target) const {
    if (acked.load() >= target) return true;
    return read_done.load() >= target && shard_unacked[shard].load() == 0;
  }

  // Answers the when_published waits that are published or timed out (all, with
  // their state, when `final`). Bridge thread.
  void check_waits(bool final) {
    std::vector<std::pair<std::function<void(bool)>, bool>> ready;
    {
      std::lock_guard<std::mutex> g{waits_mu};
      auto now = clock_type::now();
      auto keep = std::remove_if(waits.begin(), waits.end(), [&](publish_wait& w) {
        bool ok = shard_published(w.shard, w.target);
        if (!ok && !final && now < w.deadline) return false;
        ready.emplace_back(std::move(w.done), ok);
        return true;
      });
      waits.erase(keep, waits.end());
      has_waits.store(!waits.empty());
    }
    for (auto& [done, ok] : ready)
      done(ok);
  }

  void queue_snapshot(const std::string& pid, std::uint64_t after_position) {
    {
      std::lock_guard<std::mutex> g{snap_mu};
      auto it = pending_snaps.find(pid);
      if (it != pending_snaps.end()) {
        it->second = std::max(it->second, after_position);
        return;
      }
      if (pending_snaps.size() < opts.max_pending_snapshots) {
        pending_snaps.emplace(pid, after_position);
        snaps_pending.store(pending_snaps.size());
        has_snaps.store(true);
        return;
      }
    }
    report({errc::unavailable, "kafka bridge: " + std::to_string(opts.max_pending_snapshots) +
                                 " snapshots wait to be published; the snapshot of '" + pid +
                                 "' is dropped (its next snapshot is published)"});
  }

  // Streams whose snapshots may go out now: every event up to their position is acked.
  std::vector<std::string> ready_snapshots() {
    std::vector<std::string> ready;
    const auto a = acked.load();
    std::lock_guard<std::mutex> g{snap_mu};
    for (auto it = pending_snaps.begin();
         it != pending_snaps.end() && ready.size() < snapshots_per_round;) {
      if (it->second > a) {
        ++it;
        continue;
      }
      ready.push_back(it->first);
      it = pending_snaps.erase(it);
    }
    snaps_pending.store(pending_snaps.size());
    has_snaps.store(!pending_snaps.empty());
    return ready;
  }

  // Publishes the ready snapshots (bridge thread); what cannot go out now is queued again.
  void publish_snapshots() {
    auto ready = ready_snapshots();
    for (std::size_t i = 0; i < ready.size(); ++i)
      if (!produce_snapshot(ready[i])) {
        for (; i < ready.size(); ++i)
          queue_snapshot(ready[i], 0);
        return;
      }
  }

  // The snapshot topic of `type` is usable (checked once). False: try later.
  bool snapshot_topic_ready(const std::string& snap_type, bool& usable) {
    auto& t = topic(snap_type);
    usable = t.checked;
    if (t.checked) return true;
    auto cs = check_topic(snap_type, static_cast<int>(std::min(opts.metadata_timeout_ms, 1000u)));
    if (cs.code() == errc::unavailable) return false;
    if (!cs.ok()) {
      if (bad_snapshot_topics.insert(snap_type).second)
        report({cs.code(), cs.message() + " (snapshots of this type are not published)"});
      return true;
    }
    t.checked = usable = true;
    return true;
  }

  // Produces the latest snapshot of `pid`. False: not now (Kafka away, queue full).
  bool produce_snapshot(const std::string& pid) {
    const auto snap_type = type_of(pid) + opts.snapshot_topic_suffix;
    bool usable = false;
    if (!snapshot_topic_ready(snap_type, usable)) return false;
    if (!usable) return true; // reported once; dropped
    auto snap = j->snapshots().load_latest(pid);
    if (!snap) {
      report(snap.error());
      return true;
    }
    if (!*snap) return true;
    const auto shard = shard_of(pid, opts.num_partitions);
    const auto value = encode_snapshot(**snap);
    rd_kafka_headers_t* hdrs = snapshot_headers((*snap)->seq, epochs[shard].load());
    auto err = rd_kafka_producev(rk.get(), RD_KAFKA_V_RKT(topic(snap_type).rkt),
                                 RD_KAFKA_V_PARTITION(static_cast<std::int32_t>(shard)),
                                 RD_KAFKA_V_KEY(pid.data(), pid.size()),
                                 RD_KAFKA_V_VALUE(const_cast<char*>(value.data()), value.size()),
                                 RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_HEADERS(hdrs),
                                 RD_KAFKA_V_TIMESTAMP((*snap)->timestamp_ns / 1'000'000),
                                 RD_KAFKA_V_OPAQUE(snapshot_opaque), RD_KAFKA_V_END);
    if (!err) return true;
    rd_kafka_headers_destroy(hdrs);
    if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL)
      report({errc::unavailable,
              "kafka bridge: snapshot of '" + pid + "': " + rd_kafka_err2str(err) + "; retried"});
    return false;
  }

  void add_known_topic(const std::string& type) {
    std::lock_guard<std::mutex> g{topics_mu};
    known_topics.insert(opts.topic_prefix + type);
  }

  void on_kafka_error(rd_kafka_t* handle, int err, const char* reason) {
    auto e = static_cast<rd_kafka_resp_err_t>(err);
    if (e == RD_KAFKA_RESP_ERR__FATAL) {
      char buf[512];
      auto orig = rd_kafka_fatal_error(handle, buf, sizeof(buf));
      report({errc::unavailable, std::string{"kafka bridge: fatal producer error ("} +
                                   rd_kafka_err2name(orig) + ": " + buf +
                                   "); recreating the producer"});
      restart_needed = true;
      return;
    }
    report({errc::unavailable,
            std::string{"kafka bridge: "} + rd_kafka_err2name(e) + ": " + (reason ? reason : "")});
  }

  using properties = std::vector<std::pair<std::string, std::string>>;

  // The producer's librdkafka properties, producer_config last. Errors:
  // invalid_argument (producer_config overrides a property the guarantees depend on).
  result<producer_ptr> side_producer(const char* client_id, side_delivery& d) const;
  struct checkpoint_group;
  result<std::map<std::string, checkpoint_group>>
  checkpoint_groups(const std::vector<std::string>& pids) const;
  result<std::size_t> produce_checkpoint(rd_kafka_t* rk, const std::string& type,
                                         const checkpoint_group& g, std::uint32_t shard,
                                         std::uint64_t epoch, std::uint32_t timeout_ms,
                                         checkpoint_report& out) const;

  result<properties> producer_properties() const {
    properties props = {
      {"bootstrap.servers", opts.bootstrap_servers},
      {"client.id", "strata-kafka-bridge"},
      {"enable.idempotence", "true"},
      {"acks", "all"},
      // A gap in a partition's series (a batch failing for good while a later one
      // succeeds) stops the producer instead; the bridge then resends from its
      // acknowledged position.
      {"enable.gapless.guarantee", "true"},
      // Never give up on a record: Kafka being away is lag, not loss.
      {"message.timeout.ms", "0"},
      {"max.in.flight.requests.per.connection", std::to_string(opts.max_in_flight_requests)},
      {"linger.ms", std::to_string(opts.linger_ms)},
      {"batch.size", std::to_string(opts.batch_size_bytes)},
      {"batch.num.messages", std::to_string(opts.batch_num_messages)},
      {"compression.type", opts.compression},
      {"queue.buffering.max.messages", std::to_string(opts.max_in_flight_events + 1024)},
      {"queue.buffering.max.kbytes",
       std::to_string(std::max<std::size_t>(opts.max_in_flight_bytes / 1024, 1))},
      {"reconnect.backoff.ms", "50"},
      // Acks are latency (`replicated` durability waits for them): no Nagle delay.
      {"socket.nagle.disable", "true"},
      {"reconnect.backoff.max.ms", "1000"},
      {"topic.metadata.refresh.interval.ms", "10000"},
      {"log_level", std::to_string(opts.log_level)},
      {"statistics.interval.ms", std::to_string(opts.statistics_interval_ms)},
    };
    for (const auto& [k, v] : opts.producer_config) {
      if (k == "enable.idempotence" || k == "acks" || k == "message.timeout.ms" ||
          k == "enable.gapless.guarantee")
        return status{errc::invalid_argument, "kafka bridge: producer property '" + k +
                                                "' is fixed by the bridge (its delivery "
                                                "guarantee depends on it)"};
      props.emplace_back(k, v);
    }
    return props;
  }

  // A configuration of `props`; null with `error` set when librdkafka refuses one.
  static rd_kafka_conf_t* make_conf(const properties& props, status& error) {
    char errstr[512];
    rd_kafka_conf_t* conf = rd_kafka_conf_new();
    for (const auto& [k, v] : props)
      if (rd_kafka_conf_set(conf, k.c_str(), v.c_str(), errstr, sizeof(errstr)) !=
          RD_KAFKA_CONF_OK) {
        rd_kafka_conf_destroy(conf);
        error = {errc::invalid_argument,
                 "kafka bridge: producer property " + k + "=" + v + ": " + errstr};
        return nullptr;
      }
    return conf;
  }

  result<producer_ptr> make_producer() {
    auto props = producer_properties();
    if (!props) return props.error();
    status bad;
    rd_kafka_conf_t* conf = make_conf(*props, bad);
    if (!conf) return bad;
    char errstr[512];
    rd_kafka_conf_set_opaque(conf, this);
    rd_kafka_conf_set_dr_msg_cb(conf, &impl::dr_cb);
    rd_kafka_conf_set_error_cb(conf, &impl::error_cb);
    if (opts.statistics_interval_ms > 0) rd_kafka_conf_set_stats_cb(conf, &impl::stats_cb);
    rd_kafka_t* h = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    if (!h) {
      rd_kafka_conf_destroy(conf);
      return status{errc::invalid_argument, std::string{"kafka bridge: cannot create the "
                                                        "producer: "} +
                                              errstr};
    }
    return producer_ptr{h};
  }

  /// Checks the topic of `type` against the cluster metadata. ok, unavailable (no
  /// answer: try again later), invalid_argument (missing / wrong partition count).
  status check_topic(const std::string& type, int timeout_ms) {
    auto name = opts.topic_prefix + type;
    const rd_kafka_metadata_t* md = nullptr;
    auto err = rd_kafka_metadata(rk.get(), 1, nullptr, &md, timeout_ms);
    if (err)
      return {errc::unavailable, "kafka bridge: no metadata from " + opts.bootstrap_servers + " (" +
                                   rd_kafka_err2str(err) + "); topic '" + name +
                                   "' is checked once Kafka answers"};
    status st{errc::invalid_argument,
              "kafka bridge: topic '" + name + "' does not exist on " + opts.bootstrap_servers +
                "; create it with " + std::to_string(opts.num_partitions) +
                " partitions (one per shard), e.g. kafka-topics.sh --create --topic " + name +
                " --partitions " + std::to_string(opts.num_partitions) +
                ", or strata-kafka-mock --partitions " + std::to_string(opts.num_partitions) +
                " --topics " + name};
    for (int i = 0; i < md->topic_cnt; ++i) {
      const auto& t = md->topics[i];
      if (name != t.topic) continue;
      if (t.err) {
        st = {errc::invalid_argument,
              "kafka bridge: topic '" + name + "': " + rd_kafka_err2str(t.err)};
      } else if (t.partition_cnt != static_cast<int>(opts.num_partitions)) {
        st = {errc::invalid_argument,
              "kafka bridge: topic '" + name + "' has " + std::to_string(t.partition_cnt) +
                " partitions but the bridge needs " + std::to_string(opts.num_partitions) +
                " (partition = shard of the persistence id); refusing to publish. Recreate "
                "the topic with " +
                std::to_string(opts.num_partitions) +
                " partitions or set num_partitions to the cluster's shard count"};
      } else {
        st = {};
      }
      break;
    }
    rd_kafka_metadata_destroy(md);
    return st;
  }

  topic_entry& topic(const std::string& type) {
    auto it = topics.find(type);
    if (it == topics.end()) {
      topic_entry e;
      e.name = opts.topic_prefix + type;
      e.tracks.resize(opts.num_partitions);
      it = topics.emplace(type, std::move(e)).first;
    }
    auto& e = it->second;
    if (!e.rkt && rk) e.rkt = rd_kafka_topic_new(rk.get(), e.name.c_str(), nullptr);
    return e;
  }

  void drop_topic_handles() {
    for (auto& [type, e] : topics)
      if (e.rkt) {
        rd_kafka_topic_destroy(e.rkt);
        e.rkt = nullptr;
      }
  }

  // Events imported from another node (journal::import) are in Kafka already: moves
  // read_next past the imported ranges it is in; `stop_at` gets where the next read
  // stops: the next imported range or `limit` + 1 (a range imported after `limit` was
  // read may be unknown here). False: the journal could not be read (reported).
  bool skip_imported(std::uint64_t limit, std::uint64_t& stop_at) {
    for (;;) {
      auto r = j->next_imported(read_next);
      if (!r) {
        report(r.error());
        restart_needed = true;
        return false;
      }
      if (r->first != 0 && r->first <= read_next) {
        read_next = r->last + 1;
        continue;
      }
      stop_at = r->first != 0 ? std::min(r->first, limit + 1) : limit + 1;
      return true;
    }
  }

  // Produces records from the journal while the window and librdkafka's queue have
  // room, at most a few read batches, so that delivery reports are served in between
  // even while the journal grows as fast as it is read. Returns true when it produced.
  bool fill() {
    bool any = false;
    const std::size_t window = ring.size();
    for (int round = 0; round < 4 && !stopping.load(std::memory_order_relaxed) && !restart_needed;
         ++round) {
      // Everything up to `limit` is committed and visible to the read below (the journal
      // publishes last_position after its commit).
      const std::uint64_t limit = j->last_position();
      if (read_next > limit) break;
      std::size_t room = window - static_cast<std::size_t>(tail - head);
      if (room == 0) break;
      std::size_t n = std::min(room, opts.read_batch_events);
      std::uint64_t stop_at = 0;
      if (!skip_imported(limit, stop_at)) break;
      if (read_next > limit) {
        any = true; // skipped to the end: advance() acknowledges it
        break;
      }
      bool reached_stop = false;
      bool blocked = false;
      std::uint64_t visited = 0;
      status problem;
      auto st = j->read_global_raw(read_next, n, [&](std::uint64_t pos, std::string_view bytes) {
        if (pos >= stop_at) {
          reached_stop = true;
          return false;
        }
        event_view f;
        if (auto s = peek_envelope(bytes, f, scratch); !s.ok()) {
          problem =
            status{s.code(), "kafka bridge: position " + std::to_string(pos) + ": " + s.message()};
          return false;
        }
        std::string type = type_of(f.persistence_id);
        auto& t = topic(type);
        if (!t.checked) {
          pending_check = type;
          return false;
        }
        const auto shard = shard_of(f.persistence_id, opts.num_partitions);
        if (opts.hold_unclaimed_shards && epochs[shard].load() == 0) {
          hold(shard, pos);
          read_next = pos + 1;
          ++visited; // read: the end-of-log test below counts what the read visited
          return true;
        }
        const auto epoch = epochs[shard].load();
        if (epoch > 0 && epoch <= fenced_upto[shard].load(std::memory_order_relaxed)) {
          // Lost the shard under this epoch: the record would be invalid in Kafka.
          skip_fenced(pos, shard, f.timestamp_ns);
          ++visited;
          return true;
        }
        rd_kafka_headers_t* hdrs = rd_kafka_headers_new(7);
        char num[24];
        rd_kafka_header_add(hdrs, "strata.type", -1, f.type.data(),
                            static_cast<ssize_t>(f.type.size()));
        rd_kafka_header_add(hdrs, "strata.aggregate", -1, type.data(),
                            static_cast<ssize_t>(type.size()));
        int len = std::snprintf(num, sizeof(num), "%llu", static_cast<unsigned long long>(f.seq));
        rd_kafka_header_add(hdrs, "strata.seq", -1, num, len);
        len = std::snprintf(num, sizeof(num), "%llu", static_cast<unsigned long long>(pos));
        rd_kafka_header_add(hdrs, "strata.position", -1, num, len);
        len = std::snprintf(num, sizeof(num), "%u", static_cast<unsigned>(f.schema_version));
        rd_kafka_header_add(hdrs, "strata.schema_version", -1, num, len);
        rd_kafka_header_add(hdrs, "content-type", -1, content_type, -1);
        len = std::snprintf(num, sizeof(num), "%llu", static_cast<unsigned long long>(epoch));
        rd_kafka_header_add(hdrs, epoch_header.data(), static_cast<ssize_t>(epoch_header.size()),
                            num, len);
        std::uint64_t seq = tail;
        auto err = rd_kafka_producev(
          rk.get(), RD_KAFKA_V_RKT(t.rkt), RD_KAFKA_V_PARTITION(static_cast<std::int32_t>(shard)),
          RD_KAFKA_V_KEY(f.persistence_id.data(), f.persistence_id.size()),
          RD_KAFKA_V_VALUE(const_cast<char*>(bytes.data()), bytes.size()),
          RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_HEADERS(hdrs),
          // The record's timestamp is the event's (append) time, not the publish time.
          RD_KAFKA_V_TIMESTAMP(f.timestamp_ns / 1'000'000),
          RD_KAFKA_V_OPAQUE(reinterpret_cast<void*>(static_cast<std::uintptr_t>(seq))),
          RD_KAFKA_V_END);
        if (err) {
          rd_kafka_headers_destroy(hdrs);
          if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
            queue_full_waits.fetch_add(1, std::memory_order_relaxed);
          } else {
            problem =
              status{errc::unavailable, "kafka bridge: produce of position " + std::to_string(pos) +
                                          " failed: " + rd_kafka_err2str(err)};
          }
          blocked = true;
          return false;
        }
        auto& s = ring[seq % window];
        s.position = pos;
        s.timestamp_ns = f.timestamp_ns;
        s.shard = shard;
        s.acked = false;
        s.epoch = epoch;
        s.topic = &t;
        shard_unacked[shard].fetch_add(1);
        if (tail == head) oldest_unacked_ns.store(f.timestamp_ns, std::memory_order_relaxed);
        ++tail;
        read_next = pos + 1;
        ++visited;
        produced.store(pos, std::memory_order_relaxed);
        return true;
      });
      in_flight.store(tail - head, std::memory_order_relaxed);
      if (visited) any = true;
      if (!st.ok()) {
        report(st);
        restart_needed = true; // re-read from the acknowledged position after a backoff
        break;
      }
      if (!problem.ok()) {
        if (problem.code() == errc::corrupt)
          fail(problem);
        else
          report(problem);
        restart_needed = problem.code() != errc::corrupt;
        break;
      }
      if (!pending_check.empty()) {
        auto type = std::move(pending_check);
        pending_check.clear();
        // Short metadata waits on this thread keep stop() responsive while Kafka is away.
        auto cs = check_topic(type, static_cast<int>(std::min(opts.metadata_timeout_ms, 1000u)));
        if (cs.ok()) {
          topic(type).checked = true;
          add_known_topic(type);
          any = true; // come back at once
          continue;
        }
        if (cs.code() == errc::invalid_argument) {
          fail(cs);
        } else {
          report(cs);
        }
        break;
      }
      if (blocked) break;
      if (reached_stop) {
        read_next = stop_at; // positions before it that were not visited were deleted
        any = true;
        continue;
      }
      if (visited < n) {
        // The read reached the end of the log: positions up to `limit` that it did not
        // visit were deleted from the journal (delete_events_before); skip them.
        read_next = std::max(read_next, limit + 1);
        break;
      }
    }
    return any;
  }

  // An event of a shard without a claim here (bridge_options::hold_unclaimed_shards):
  // not published; counted, and noted once per shard.
  void hold(std::uint32_t shard, std::uint64_t pos) {
    held_events.fetch_add(1, std::memory_order_relaxed);
    if (held_noted.empty()) held_noted.assign(opts.num_partitions, false);
    if (held_noted[shard]) return;
    held_noted[shard] = true;
    note({errc::conflict, "kafka bridge: shard " + std::to_string(shard) +
                            ": not publishing its events from position " + std::to_string(pos) +
                            " on: this node holds no claim for the shard (written before a "
                            "restart?); reconciliation decides on them when it acquires the "
                            "shard"});
  }

  // A record of a shard fenced under its epoch: not produced; its window slot counts as
  // acknowledged at once (the prefix moves on), after on_fenced told the runtime.
  void skip_fenced(std::uint64_t pos, std::uint32_t shard, std::int64_t timestamp_ns) {
    auto& s = ring[tail % ring.size()];
    s = slot{pos, timestamp_ns, shard, true, 0, nullptr};
    if (tail == head) oldest_unacked_ns.store(timestamp_ns, std::memory_order_relaxed);
    ++tail;
    read_next = pos + 1;
    fenced_records.fetch_add(1, std::memory_order_relaxed);
    if (opts.on_fenced) opts.on_fenced(pos, fence_error(shard));
  }

  // Moves the contiguous acknowledged prefix forward. Returns true when it moved.
  bool advance() {
    std::uint64_t before = acked.load(std::memory_order_relaxed);
    std::uint64_t a = before;
    const std::size_t window = ring.size();
    while (head < tail && ring[head % window].acked) {
      a = ring[head % window].position;
      ++head;
    }
    if (head == tail) {
      // Everything read so far is acknowledged (positions skipped by the reader were
      // deleted from the journal: nothing to publish for them).
      if (read_next - 1 > a) a = read_next - 1;
      oldest_unacked_ns.store(0, std::memory_order_relaxed);
    } else {
      oldest_unacked_ns.store(ring[head % window].timestamp_ns, std::memory_order_relaxed);
    }
    in_flight.store(tail - head, std::memory_order_relaxed);
    if (a <= before) return false;
    {
      std::lock_guard<std::mutex> g{ack_mu};
      acked.store(a, std::memory_order_release);
    }
    if (opts.on_acknowledged) opts.on_acknowledged(a);
    ack_cv.notify_all();
    return true;
  }

  status commit_offset() {
    std::lock_guard<std::mutex> g{commit_mu};
    auto a = acked.load(std::memory_order_acquire);
    if (a <= stored) return {};
    auto st = j->offsets().put(opts.consumer_name, a);
    if (st.ok()) stored = a;
    return st;
  }

  void restart_producer() {
    // Discard the window: what is not acknowledged is read again from the journal.
    rk.reset(); // purges and serves the remaining delivery reports (ignored)
    drop_topic_handles();
    wire_bytes_before.fetch_add(wire_bytes_current.exchange(0), std::memory_order_relaxed);
    head = tail;
    in_flight.store(0, std::memory_order_relaxed);
    read_next = acked.load() + 1;
    {
      // read_done first: a waiter holding ack_mu never sees the counts reset while
      // read_done still says the discarded records were produced.
      std::lock_guard<std::mutex> g{ack_mu};
      read_done.store(read_next - 1);
      for (std::uint32_t i = 0; i < opts.num_partitions; ++i)
        shard_unacked[i].store(0);
    }
    restart_needed = false;
    producer_restarts.fetch_add(1, std::memory_order_relaxed);
    backoff_ms = backoff_ms == 0 ? opts.restart_backoff_ms : std::min(backoff_ms * 2, 10'000u);
    sleep_unless_woken(backoff_ms, /*only_stop=*/true);
    if (stopping.load()) return;
    auto p = make_producer();
    if (!p) {
      fail(p.error());
      return;
    }
    rk = std::move(*p);
  }

  void sleep_unless_woken(std::uint32_t ms, bool only_stop = false) {
    std::unique_lock<std::mutex> lk{wake_mu};
    wake_cv.wait_for(lk, std::chrono::milliseconds(ms), [&] {
      return stopping.load() || (!only_stop && wake.load());
    });
    if (!only_stop) wake.store(false);
  }

  void run() {
    while (!stopping.load()) {
      if (has_waits.load()) check_waits(false);
      if (failed()) {
        sleep_unless_woken(100, true);
        continue;
      }
      if (restart_needed || !rk) {
        restart_producer();
        continue;
      }
      bool produced_any = fill();
      read_done.store(read_next - 1);
      if (produced_any) backoff_ms = 0;
      rd_kafka_poll(rk.get(), 0);
      advance();
      if (has_snaps.load() && !restart_needed) publish_snapshots();
      if (produced_any) continue;
      if (tail > head) {
        rd_kafka_poll(rk.get(), static_cast<int>(opts.idle_poll_ms)); // woken by reports
        advance();
      } else {
        sleep_unless_woken(opts.idle_poll_ms);
      }
    }
    advance();
    check_waits(true);
    rk.reset();
    drop_topic_handles();
  }

  // Stores the acknowledged position every offset_commit_interval_ms. Its own thread:
  // the write transaction waits for LMDB's writer lock, which the journal's commit thread holds
  // most of the time under load, and the producing thread must never wait for it.
  void run_committer() {
    while (!stopping.load()) {
      {
        std::unique_lock<std::mutex> lk{wake_mu};
        committer_cv.wait_for(lk, std::chrono::milliseconds(opts.offset_commit_interval_ms), [&] {
          return stopping.load();
        });
      }
      if (auto st = commit_offset(); !st.ok()) report(st);
    }
  }
};

result<std::unique_ptr<bridge>> bridge::start(journal& j, bridge_options opts) {
  if (opts.bootstrap_servers.empty())
    return status{errc::invalid_argument,
                  "kafka bridge: bootstrap_servers is empty (give host:port,… of the Kafka "
                  "cluster)"};
  if (opts.num_partitions == 0 || opts.max_in_flight_events == 0 || opts.read_batch_events == 0)
    return status{errc::invalid_argument, "kafka bridge: num_partitions, max_in_flight_events "
                                          "and read_batch_events must be positive"};
  if (opts.max_in_flight_requests < 1 || opts.max_in_flight_requests > 5)
    return status{errc::invalid_argument, "kafka bridge: max_in_flight_requests must be 1..5 "
                                          "(idempotent producer)"};
  auto p = std::make_unique<impl>();
  p->j = &j;
  p->opts = std::move(opts);
  auto stored = j.offsets().get(p->opts.consumer_name);
  if (!stored) return stored.error();
  std::uint64_t from = stored->value_or(0);
  p->stored = from;
  p->acked.store(from);
  p->read_next = from + 1;
  p->ring.resize(p->opts.max_in_flight_events);
  p->epochs.reset(new std::atomic<std::uint64_t>[p->opts.num_partitions]);
  p->shard_unacked.reset(new std::atomic<std::uint32_t>[p->opts.num_partitions]);
  p->fenced_upto.reset(new std::atomic<std::uint64_t>[p->opts.num_partitions]);
  p->fence_errors.resize(p->opts.num_partitions);
  for (std::uint32_t i = 0; i < p->opts.num_partitions; ++i) {
    p->epochs[i].store(0);
    p->shard_unacked[i].store(0);
    p->fenced_upto[i].store(0);
  }
  p->read_done.store(from);
  if (p->opts.member.empty()) p->opts.member = j.options().writer_node;
  for (const auto& rule : p->opts.types)
    p->add_known_topic(rule.type);
  auto prod = p->make_producer();
  if (!prod) return prod.error();
  p->rk = std::move(*prod);
  // Check the declared topics now, so a misconfigured cluster stops the start.
  bool reachable = true;
  for (const auto& rule : p->opts.types) {
    if (!reachable) break;
    auto st = p->check_topic(rule.type, static_cast<int>(p->opts.metadata_timeout_ms));
    if (st.code() == errc::invalid_argument) return st;
    if (st.code() == errc::unavailable) {
      reachable = false; // checked again on the bridge thread before the first record
      p->report(st);
      break;
    }
    p->topic(rule.type).checked = true;
  }
  auto* raw = p.get();
  std::unique_ptr<bridge> b{new bridge(std::move(p))};
  raw->thread = std::thread([raw] {
    pthread_setname_np(pthread_self(), "strata-kbridge");
    raw->run();
  });
  raw->committer = std::thread([raw] {
    pthread_setname_np(pthread_self(), "strata-kcommit");
    raw->run_committer();
  });
  if (raw->opts.check_topic_configs && !raw->opts.types.empty())
    raw->config_checker = std::thread([raw] {
      pthread_setname_np(pthread_self(), "strata-kconfig");
      raw->run_config_check();
    });
  return b;
}

bridge::bridge(std::unique_ptr<impl> p) : impl_(std::move(p)) {}

bridge::~bridge() { (void)stop(0); }

void bridge::notify() noexcept {
  impl_->wake.store(true);
  impl_->wake_cv.notify_one();
}

std::uint64_t bridge::acknowledged_position() const noexcept {
  return impl_->acked.load(std::memory_order_acquire);
}

bool bridge::wait_acknowledged(std::uint64_t position, std::uint32_t timeout_ms) {
  notify();
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  std::unique_lock<std::mutex> lk{impl_->ack_mu};
  while (impl_->acked.load(std::memory_order_acquire) < position) {
    if (impl_->failed() || impl_->stopped.load())
      return false; // nothing will be acknowledged before a restart
    // Short waits: a failure does not signal ack_cv.
    auto now = std::chrono::steady_clock::now();
    if (now >= deadline) return false;
    impl_->ack_cv.wait_until(lk, std::min(deadline, now + std::chrono::milliseconds(50)));
  }
  return true;
}

std::uint64_t bridge::drain(std::uint32_t timeout_ms) {
  auto target = impl_->j->last_position();
  if (!impl_->stopped.load()) (void)wait_acknowledged(target, timeout_ms);
  if (auto st = impl_->commit_offset(); !st.ok()) impl_->report(st);
  auto a = acknowledged_position();
  return a >= target ? 0 : target - a;
}

std::uint64_t bridge::stop(std::uint32_t drain_timeout_ms) {
  std::uint64_t left = 0;
  if (!impl_->stopped.load()) left = drain(drain_timeout_ms);
  if (!impl_->stopped.exchange(true)) {
    {
      std::lock_guard<std::mutex> g{impl_->wake_mu};
      impl_->stopping.store(true);
    }
    impl_->wake_cv.notify_all();
    impl_->committer_cv.notify_all();
    if (impl_->thread.joinable()) impl_->thread.join();
    if (impl_->committer.joinable()) impl_->committer.join();
    if (impl_->config_checker.joinable()) impl_->config_checker.join();
    if (auto st = impl_->commit_offset(); !st.ok()) impl_->report(st);
    impl_->check_waits(true); // when_published calls that raced with the thread's end
  }
  auto target = impl_->j->last_position();
  auto a = acknowledged_position();
  left = a >= target ? 0 : target - a;
  return left;
}

bridge_stats bridge::stats() const {
  bridge_stats s;
  s.journal_position = impl_->j->last_position();
  s.produced_position = impl_->produced.load(std::memory_order_relaxed);
  s.acknowledged_position = acknowledged_position();
  {
    std::lock_guard<std::mutex> g{impl_->commit_mu};
    s.stored_position = impl_->stored;
  }
  s.lag_events =
    s.journal_position > s.acknowledged_position ? s.journal_position - s.acknowledged_position : 0;
  std::int64_t oldest = impl_->oldest_unacked_ns.load(std::memory_order_relaxed);
  if (oldest == 0 && s.lag_events > 0) {
    // Nothing in flight but the journal is ahead: the oldest unpublished event is the
    // first one after the acknowledged position.
    (void)impl_->j->read_global(s.acknowledged_position + 1, 1, [&](const event_record& e) {
      oldest = e.timestamp_ns;
      return false;
    });
  }
  if (oldest > 0 && s.lag_events > 0)
    s.lag_ms = std::max<std::int64_t>(0, (now_ns() - oldest) / 1'000'000);
  s.in_flight = impl_->in_flight.load(std::memory_order_relaxed);
  s.delivered = impl_->delivered.load(std::memory_order_relaxed);
  s.queue_full_waits = impl_->queue_full_waits.load(std::memory_order_relaxed);
  s.producer_restarts = impl_->producer_restarts.load(std::memory_order_relaxed);
  s.delivery_errors = impl_->delivery_errors.load(std::memory_order_relaxed);
  s.wire_reports = impl_->wire_reports.load(std::memory_order_acquire);
  s.snapshots_published = impl_->snaps_published.load();
  s.snapshots_pending = impl_->snaps_pending.load();
  s.held_events = impl_->held_events.load();
  s.gap_checks = impl_->gap_checks.load(std::memory_order_relaxed);
  s.fenced_records = impl_->fenced_records.load(std::memory_order_relaxed);
  s.wire_bytes = impl_->wire_bytes_before.load(std::memory_order_relaxed) +
                 impl_->wire_bytes_current.load(std::memory_order_relaxed);
  {
    std::lock_guard<std::mutex> g{impl_->err_mu};
    s.last_error = impl_->last_error;
  }
  return s;
}

status bridge::health() const {
  std::lock_guard<std::mutex> g{impl_->err_mu};
  return impl_->fatal;
}

std::string bridge::topic_for(std::string_view persistence_id) const {
  return impl_->opts.topic_prefix + impl_->type_of(persistence_id);
}

std::uint32_t bridge::partition_for(std::string_view persistence_id) const noexcept {
  return shard_of(persistence_id, impl_->opts.num_partitions);
}

const bridge_options& bridge::options() const noexcept { return impl_->opts; }

void bridge::snapshot_saved(std::string_view persistence_id) {
  impl_->queue_snapshot(std::string{persistence_id}, impl_->j->last_position());
  notify();
}

status bridge::set_epoch(std::uint32_t shard, std::uint64_t epoch) {
  if (shard >= impl_->opts.num_partitions)
    return {errc::invalid_argument, "kafka bridge: set_epoch: shard " + std::to_string(shard) +
                                      " is out of range (num_partitions " +
                                      std::to_string(impl_->opts.num_partitions) + ")"};
  impl_->epochs[shard].store(epoch);
  return {};
}

status bridge::fenced(std::uint32_t shard) const {
  if (shard >= impl_->opts.num_partitions) return {};
  return impl_->fence_error(shard);
}

std::uint64_t bridge::epoch(std::uint32_t shard) const noexcept {
  return shard < impl_->opts.num_partitions ? impl_->epochs[shard].load() : 0;
}

// A producer beside the bridge's (its configuration, idempotent, linger 0) whose
// delivery reports count into `d`: append_claim and publish_checkpoint use one, so
// they do not queue behind the bridge's backlog.
result<producer_ptr> bridge::impl::side_producer(const char* client_id, side_delivery& d) const {
  auto props = producer_properties();
  if (!props) return props.error();
  props->emplace_back("client.id", client_id);
  props->emplace_back("linger.ms", "0");
  props->emplace_back("statistics.interval.ms", "0");
  status bad;
  rd_kafka_conf_t* conf = make_conf(*props, bad);
  if (!conf) return bad;
  rd_kafka_conf_set_opaque(conf, &d);
  rd_kafka_conf_set_dr_msg_cb(conf, &side_dr_cb);
  char errstr[512];
  producer_ptr rk{rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr))};
  if (!rk) {
    rd_kafka_conf_destroy(conf);
    return status{errc::invalid_argument, std::string{"cannot create a producer: "} + errstr};
  }
  // Every topic's leaders now, from one metadata request answered at once: a fresh
  // handle producing to a topic it has no metadata for holds the records until its
  // next metadata refresh (measured: about 1 s for a checkpoint's snapshot topic).
  const rd_kafka_metadata_t* md = nullptr;
  if (rd_kafka_metadata(rk.get(), 1, nullptr, &md, 5'000) == RD_KAFKA_RESP_ERR_NO_ERROR)
    rd_kafka_metadata_destroy(md);
  return rk;
}

void bridge::set_member(std::string member) {
  if (!member.empty()) impl_->opts.member = std::move(member);
}

status bridge::append_claim(std::uint32_t shard, std::uint64_t epoch, std::uint32_t timeout_ms,
                            const std::vector<claim_basis>& basis) {
  auto& m = *impl_;
  const auto what = "kafka bridge: claim of shard " + std::to_string(shard) + " under epoch " +
                    std::to_string(epoch);
  if (shard >= m.opts.num_partitions)
    return {errc::invalid_argument, what + ": shard out of range (num_partitions " +
                                      std::to_string(m.opts.num_partitions) + ")"};
  auto topics = known_topics();
  if (topics.empty())
    return {errc::invalid_argument, what + ": the bridge knows no topic yet (list the "
                                           "aggregate types in bridge_options::types)"};
  for (const auto& b : basis)
    if (b.epoch_in_force > epoch)
      return {errc::fenced, what + ": topic '" + b.topic + "' partition " + std::to_string(shard) +
                              " already holds a claim of epoch " +
                              std::to_string(b.epoch_in_force) + " (before offset " +
                              std::to_string(b.offset) + "): a newer owner; not claimed"};
  side_delivery d;
  auto rk = m.side_producer("strata-kafka-claim", d);
  if (!rk) return {rk.error().code(), what + ": " + rk.error().message()};
  const auto value = encode_claim_value({shard, epoch, m.opts.member});
  for (const auto& t : topics)
    if (auto st = produce_claim(rk->get(), t, shard, epoch, m.opts.member, value); !st.ok())
      return st;
  rd_kafka_flush(rk->get(), static_cast<int>(timeout_ms)); // serves the delivery reports
  if (d.acked.load() == topics.size()) {
    if (auto st = m.check_claims(shard, epoch, what, d, basis); !st.ok()) return st;
    {
      // The first record under `epoch` in each partition must follow its claim: the
      // acknowledgement fencing compares with these offsets (set before the epoch).
      std::lock_guard<std::mutex> g{d.mu}, f{m.fence_mu};
      for (const auto& [topic, offset] : d.offsets) {
        auto& c = m.claim_offsets[{topic, shard}];
        if (c.second != epoch || offset > c.first) c = {offset, epoch};
      }
    }
    return set_epoch(shard, epoch);
  }
  std::string names;
  for (const auto& t : topics)
    names += (names.empty() ? "" : ", ") + t;
  std::lock_guard<std::mutex> g{d.mu};
  return {errc::unavailable, what + ": " + std::to_string(d.acked.load()) + " of " +
                               std::to_string(topics.size()) + " claim records (topics " + names +
                               ") acknowledged within " + std::to_string(timeout_ms) + " ms" +
                               d.errors + "; is Kafka reachable at " + m.opts.bootstrap_servers +
                               "? Retry with the same epoch"};
}

// The streams of one type in a checkpoint, with their latest snapshots; `uncovered`
// when one of them has events past its latest snapshot (that topic gets no checkpoint).
struct bridge::impl::checkpoint_group {
  std::vector<snapshot_record> snapshots;
  std::string uncovered; // the first stream not covered, for the report
};

result<std::map<std::string, bridge::impl::checkpoint_group>>
bridge::impl::checkpoint_groups(const std::vector<std::string>& pids) const {
  std::map<std::string, checkpoint_group> groups;
  for (const auto& pid : pids) {
    auto& g = groups[type_of(pid)];
    if (!g.uncovered.empty()) continue;
    auto head = j->highest_seq(pid);
    if (!head) return head.error();
    auto snap = j->snapshots().load_latest(pid);
    if (!snap) return snap.error();
    if (!*snap || (*snap)->seq < *head) {
      g.uncovered = pid;
      g.snapshots.clear();
      continue;
    }
    g.snapshots.push_back(std::move(**snap));
  }
  return groups;
}

// Produces the snapshots of `g` and then the checkpoint at the event partition's high
// watermark to partition `shard` of the type's snapshot topic. Returns the records
// produced (their delivery reports count into the side producer's side_delivery).
result<std::size_t> bridge::impl::produce_checkpoint(rd_kafka_t* rk, const std::string& type,
                                                     const checkpoint_group& g, std::uint32_t shard,
                                                     std::uint64_t epoch, std::uint32_t timeout_ms,
                                                     checkpoint_report& out) const {
  const auto events = opts.topic_prefix + type, snaps = events + opts.snapshot_topic_suffix;
  std::int64_t lo = 0, hi = 0;
  auto err = rd_kafka_query_watermark_offsets(rk, events.c_str(), static_cast<std::int32_t>(shard),
                                              &lo, &hi, static_cast<int>(timeout_ms));
  if (err)
    return status{errc::unavailable, "topic '" + events + "' partition " + std::to_string(shard) +
                                       ": no high watermark (" + rd_kafka_err2str(err) + ")"};
  std::size_t produced = 0;
  const auto part = static_cast<std::int32_t>(shard);
  for (const auto& s : g.snapshots) {
    auto value = encode_snapshot(s);
    rd_kafka_headers_t* hdrs = snapshot_headers(s.seq, epoch);
    auto e = rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(snaps.c_str()), RD_KAFKA_V_PARTITION(part),
                               RD_KAFKA_V_KEY(s.persistence_id.data(), s.persistence_id.size()),
                               RD_KAFKA_V_VALUE(value.data(), value.size()),
                               RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_HEADERS(hdrs),
                               RD_KAFKA_V_TIMESTAMP(s.timestamp_ns / 1'000'000), RD_KAFKA_V_END);
    if (e) {
      rd_kafka_headers_destroy(hdrs);
      return status{errc::unavailable, "snapshot of '" + s.persistence_id + "' to '" + snaps +
                                         "': " + rd_kafka_err2str(e)};
    }
    ++produced;
  }
  const auto value = encode_checkpoint_value({shard, hi, epoch, opts.member});
  const auto offset = std::to_string(hi), ep = std::to_string(epoch);
  rd_kafka_headers_t* hdrs = rd_kafka_headers_new(2);
  rd_kafka_header_add(hdrs, checkpoint_header.data(),
                      static_cast<ssize_t>(checkpoint_header.size()), offset.data(),
                      static_cast<ssize_t>(offset.size()));
  rd_kafka_header_add(hdrs, epoch_header.data(), static_cast<ssize_t>(epoch_header.size()),
                      ep.data(), static_cast<ssize_t>(ep.size()));
  auto e = rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(snaps.c_str()), RD_KAFKA_V_PARTITION(part),
                             RD_KAFKA_V_KEY(checkpoint_key.data(), checkpoint_key.size()),
                             RD_KAFKA_V_VALUE(const_cast<char*>(value.data()), value.size()),
                             RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_HEADERS(hdrs),
                             RD_KAFKA_V_TIMESTAMP(now_ns() / 1'000'000), RD_KAFKA_V_END);
  if (e) {
    rd_kafka_headers_destroy(hdrs);
    return status{errc::unavailable, "checkpoint to '" + snaps + "': " + rd_kafka_err2str(e)};
  }
  out.topics.push_back({events, hi});
  out.snapshots += g.snapshots.size();
  return produced + 1;
}

result<checkpoint_report> bridge::publish_checkpoint(std::uint32_t shard, std::uint64_t epoch,
                                                     const std::vector<std::string>& pids,
                                                     std::uint32_t timeout_ms) {
  auto& m = *impl_;
  const auto what = "kafka bridge: checkpoint of shard " + std::to_string(shard) + " (epoch " +
                    std::to_string(epoch) + ")";
  if (shard >= m.opts.num_partitions)
    return status{errc::invalid_argument, what + ": shard out of range (num_partitions " +
                                            std::to_string(m.opts.num_partitions) + ")"};
  // A fenced owner's snapshots may hold events that are invalid in Kafka, and a
  // restore would take the checkpoint's epoch as the one in force: no checkpoint.
  if (epoch > 0 && epoch <= m.fenced_upto[shard].load()) {
    auto st = m.fence_error(shard);
    return status{errc::fenced, what + ": " + st.message()};
  }
  auto groups = m.checkpoint_groups(pids);
  if (!groups) return status{groups.error().code(), what + ": " + groups.error().message()};
  side_delivery d;
  auto rk = m.side_producer("strata-kafka-checkpoint", d);
  if (!rk) return status{rk.error().code(), what + ": " + rk.error().message()};
  checkpoint_report out;
  std::size_t produced = 0;
  for (const auto& [type, g] : *groups) {
    if (!g.uncovered.empty()) {
      out.uncovered.push_back(g.uncovered);
      continue;
    }
    auto n = m.produce_checkpoint(rk->get(), type, g, shard, epoch, timeout_ms, out);
    if (!n) return status{n.error().code(), what + ": " + n.error().message()};
    produced += *n;
  }
  rd_kafka_flush(rk->get(), static_cast<int>(timeout_ms));
  if (d.acked.load() == produced) return out;
  std::lock_guard<std::mutex> g{d.mu};
  return status{errc::unavailable, what + ": " + std::to_string(d.acked.load()) + " of " +
                                     std::to_string(produced) + " records acknowledged within " +
                                     std::to_string(timeout_ms) + " ms" + d.errors +
                                     "; is Kafka reachable at " + m.opts.bootstrap_servers + "?"};
}

std::vector<std::string> bridge::known_topics() const {
  std::lock_guard<std::mutex> g{impl_->topics_mu};
  return {impl_->known_topics.begin(), impl_->known_topics.end()};
}

bool bridge::wait_published(std::uint32_t shard, std::uint32_t timeout_ms) {
  auto& m = *impl_;
  if (shard >= m.opts.num_partitions) return false;
  const auto target = m.j->last_position();
  notify();
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  std::unique_lock<std::mutex> lk{m.ack_mu};
  while (!m.shard_published(shard, target)) {
    if (m.failed() || m.stopped.load()) return false; // nothing moves before a restart
    auto now = std::chrono::steady_clock::now();
    if (now >= deadline) return false;
    // Short waits: a failure does not signal ack_cv.
    m.ack_cv.wait_until(lk, std::min(deadline, now + std::chrono::milliseconds(20)));
  }
  return true;
}

void bridge::when_published(std::uint32_t shard, std::uint32_t timeout_ms,
                            std::function<void(bool)> done) {
  auto& m = *impl_;
  bool refused = shard >= m.opts.num_partitions;
  bool full = false;
  if (!refused) {
    // Under waits_mu: stop() sets `stopped` before its last check_waits, which takes it.
    std::lock_guard<std::mutex> g{m.waits_mu};
    full = m.waits.size() >= max_publish_waits;
    refused = full || m.stopped.load();
    if (!refused) {
      m.waits.push_back({shard, m.j->last_position(),
                         clock_type::now() + std::chrono::milliseconds(timeout_ms),
                         std::move(done)});
      m.has_waits.store(true);
    }
  }
  if (full)
    m.report(
      {errc::unavailable, "kafka bridge: when_published: " + std::to_string(max_publish_waits) +
                            " waits are pending; refusing another"});
  if (refused) {
    done(false);
    return;
  }
  notify();
}

} // namespace strata::kafka
