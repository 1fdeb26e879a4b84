#include "reconcile.hpp"

#include "strata/persistence/shard.hpp"

#include <algorithm>
#include <map>

namespace strata::kafka::detail {

using namespace strata::persistence;

namespace {

/// The rule journal::import compares duplicates by.
bool same_event(const event_view& v, const event_record& e) {
  return v.type == e.type && v.schema_version == e.schema_version && v.payload == e.payload &&
         v.timestamp_ns == e.timestamp_ns;
}

/// The last seq of `pid` the journal agrees with Kafka on, given Kafka's events of it
/// (seq → event): one below the first stored event that differs, or `head` when none does.
/// Seqs the journal does not hold (below its first held seq) cannot differ.
result<std::uint64_t> agreed_through(const journal& j, const std::string& pid,
                                     const std::map<std::uint64_t, const event_record*>& kafka) {
  auto head = j.highest_seq(pid);
  if (!head) return head.error();
  auto first = j.first_held_seq(pid);
  if (!first) return first.error();
  auto from = std::max(*first, kafka.begin()->first);
  auto to = std::min(*head, kafka.rbegin()->first);
  std::uint64_t agreed = *head;
  if (from > to) return agreed;
  auto st = j.read_stream_view(pid, from, to, [&](const event_view& v) {
    auto it = kafka.find(v.seq);
    if (it == kafka.end() || same_event(v, *it->second)) return true;
    agreed = v.seq - 1;
    return false;
  });
  if (!st.ok()) return st;
  return agreed;
}

} // namespace

status reconciler::cut_divergent(const std::vector<event_record>& events, bool& cut) {
  cut = false;
  // Kafka's events per stream; the first of a seq counts (import would reject a second
  // different one anyway).
  std::map<std::string, std::map<std::uint64_t, const event_record*>> by_stream;
  for (const auto& e : events)
    by_stream[e.persistence_id].emplace(e.seq, &e);
  std::vector<discard_point> points;
  for (const auto& [pid, kafka] : by_stream) {
    auto head = j_.highest_seq(pid);
    if (!head) return head.error();
    auto agreed = agreed_through(j_, pid, kafka);
    if (!agreed) return agreed.error();
    if (*agreed < *head) points.push_back({pid, *agreed});
  }
  if (points.empty()) return {};
  cut = true;
  return discard(points);
}

status reconciler::list_local() {
  if (listed_) return {};
  if (o_.num_shards == 0)
    return {errc::invalid_argument,
            "kafka restore of shard " + std::to_string(o_.shard) +
              ": reconcile needs num_shards (which streams are the shard's)"};
  auto all = j_.list_streams();
  if (!all) return all.error();
  for (auto& pid : *all)
    if (shard_of(pid, o_.num_shards) == o_.shard) local_.push_back(std::move(pid));
  listed_ = true;
  return {};
}

status reconciler::before_bases(std::vector<std::int64_t>& start,
                                std::unordered_map<std::string, std::uint64_t>& based,
                                bool& whole) {
  whole = false;
  if (auto st = list_local(); !st.ok()) return st;
  if (local_.empty()) return {};
  whole = true;
  std::fill(start.begin(), start.end(), 0);
  for (const auto& pid : local_) {
    auto first = j_.first_held_seq(pid);
    if (!first) return first.error();
    if (*first > 1) based[pid] = *first - 1;
  }
  return {};
}

status reconciler::cut_tails(bool retention_cut) {
  // A stream only the journal holds was here before the restore (it imports only what
  // Kafka holds): the list taken before it is enough.
  if (auto st = list_local(); !st.ok()) return st;
  std::vector<discard_point> points;
  for (auto& pid : local_) {
    auto it = kafka_last_.find(pid);
    if (it == kafka_last_.end() && retention_cut) continue;
    const std::uint64_t kafka = it == kafka_last_.end() ? 0 : it->second;
    auto head = j_.highest_seq(pid);
    if (!head) return head.error();
    if (*head > kafka) points.push_back({pid, kafka});
  }
  if (points.empty()) return {};
  // Bounded calls: discard_after takes at most max_batch_events streams at once.
  const std::size_t step = std::max<std::size_t>(1, j_.options().max_batch_events);
  for (std::size_t i = 0; i < points.size(); i += step) {
    std::vector<discard_point> part(
      points.begin() + static_cast<std::ptrdiff_t>(i),
      points.begin() + static_cast<std::ptrdiff_t>(std::min(points.size(), i + step)));
    if (auto st = discard(part); !st.ok()) return st;
  }
  return {};
}

status reconciler::discard(const std::vector<discard_point>& points) {
  auto r = o_.discard ? o_.discard(points) : j_.discard_after(points);
  if (!r)
    return {r.error().code(),
            "kafka restore of shard " + std::to_string(o_.shard) +
              ": discarding the events Kafka does not hold (" + std::to_string(points.size()) +
              " streams, the first " + points.front().persistence_id + " after seq " +
              std::to_string(points.front().keep_seq) + "): " + r.error().message()};
  rep_.discarded += r->events;
  rep_.discarded_snapshots += r->snapshots;
  for (const auto& p : points)
    if (cut_streams_.insert(p.persistence_id).second) ++rep_.discarded_streams;
  return {};
}

} // namespace strata::kafka::detail
