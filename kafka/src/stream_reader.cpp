#include "strata/kafka/stream_reader.hpp"

#include "reader_util.hpp"
#include "record_util.hpp"

#include "strata/persistence/codec.hpp"

#include <chrono>

namespace strata::kafka {

using namespace strata::persistence;

namespace {

using clock_type = std::chrono::steady_clock;

/// One scan of one partition for one stream (read_stream_events).
class stream_scan {
 public:
  stream_scan(const stream_read_options& o, std::string_view pid, std::uint64_t from,
              std::uint64_t to)
    : o_(o), pid_(pid), from_(from), to_(to),
      what_("reading stream '" + std::string(pid) + "' from topic '" + o.topic + "' partition " +
            std::to_string(o.partition)),
      deadline_(clock_type::now() + std::chrono::milliseconds(o.timeout_ms)) {}

  status run();
  std::vector<event_record>& events() noexcept { return out_; }

 private:
  /// One polled message; `finished` once the end (or to_seq) is reached.
  status on_message(const rd_kafka_message_t* m, bool& finished);
  status take(const rd_kafka_message_t* m, bool& finished);

  const stream_read_options& o_;
  std::string_view pid_;
  std::uint64_t from_, to_;
  std::string what_;
  clock_type::time_point deadline_;
  detail::reader_ptr rk_;
  std::int64_t end_ = -1; // the partition's end offset as of the first answer
  std::vector<event_record> out_;
  claim_tracker tracker_; // the validity rule over the partition, read from its start
};

status stream_scan::take(const rd_kafka_message_t* m, bool& finished) {
  finished = m->offset + 1 >= end_;
  if (detail::is_claim(m)) {
    tracker_.on_claim(detail::claim_epoch(m));
    return {};
  }
  if (m->key_len != pid_.size() ||
      std::string_view{static_cast<const char*>(m->key), m->key_len} != pid_)
    return {};
  if (!tracker_.valid(detail::record_epoch(m))) return {}; // a fenced owner's record
  auto e = decode_envelope({static_cast<const char*>(m->payload), m->len});
  if (!e)
    return {errc::corrupt,
            what_ + ": offset " + std::to_string(m->offset) + ": " + e.error().message()};
  if (e->seq < from_ || e->seq > to_ || (!out_.empty() && e->seq <= out_.back().seq)) return {};
  out_.push_back(std::move(*e));
  if (out_.back().seq == to_) finished = true;
  return {};
}

status stream_scan::on_message(const rd_kafka_message_t* m, bool& finished) {
  if (m->err == RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC ||
      m->err == RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION ||
      m->err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART)
    return {errc::not_found, what_ + ": no such topic or partition on " + o_.bootstrap_servers};
  if (!m->rkt || m->partition != static_cast<std::int32_t>(o_.partition)) return {};
  if (m->err && m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) return {}; // transient
  if (end_ < 0) {
    std::int64_t lo = 0, hi = -1;
    if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF ||
        rd_kafka_get_watermark_offsets(rk_.get(), o_.topic.c_str(), m->partition, &lo, &hi) !=
          RD_KAFKA_RESP_ERR_NO_ERROR ||
        hi <= m->offset)
      hi = m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF ? m->offset : m->offset + 1;
    end_ = hi;
  }
  if (m->err) { // end of partition
    finished = m->offset >= end_;
    return {};
  }
  if (m->offset >= end_) {
    finished = true;
    return {};
  }
  return take(m, finished);
}

status stream_scan::run() {
  if (o_.bootstrap_servers.empty() || o_.topic.empty())
    return {errc::invalid_argument, what_ + ": bootstrap_servers and topic are required"};
  auto rk = detail::make_reader(what_, o_.bootstrap_servers, "strata-stream-reader", o_.log_level,
                                o_.consumer_config);
  if (!rk) return rk.error();
  rk_ = std::move(*rk);
  rd_kafka_topic_partition_list_t* l = rd_kafka_topic_partition_list_new(1);
  rd_kafka_topic_partition_list_add(l, o_.topic.c_str(), static_cast<std::int32_t>(o_.partition))
    ->offset = 0;
  auto err = rd_kafka_assign(rk_.get(), l);
  rd_kafka_topic_partition_list_destroy(l);
  if (err) return {errc::invalid_argument, what_ + ": assign failed: " + rd_kafka_err2str(err)};
  for (bool finished = false; !finished;) {
    if (clock_type::now() >= deadline_)
      return {errc::unavailable, what_ + ": not read to its end within " +
                                   std::to_string(o_.timeout_ms) + " ms; is Kafka reachable at " +
                                   o_.bootstrap_servers + "?"};
    rd_kafka_message_t* m = rd_kafka_consumer_poll(rk_.get(), 100);
    if (!m) continue;
    auto st = on_message(m, finished);
    rd_kafka_message_destroy(m);
    if (!st.ok()) return st;
  }
  return {};
}

} // namespace

result<std::vector<event_record>> read_stream_events(const stream_read_options& o,
                                                     std::string_view persistence_id,
                                                     std::uint64_t from_seq, std::uint64_t to_seq) {
  stream_scan scan{o, persistence_id, from_seq, to_seq};
  if (auto st = scan.run(); !st.ok()) return st;
  return std::move(scan.events());
}

} // namespace strata::kafka
