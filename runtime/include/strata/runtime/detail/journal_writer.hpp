// File: strata/runtime/detail/journal_writer.hpp (internal)
//
// The node's single journal writer: one OS thread that takes every write request
// queued since its last commit and appends them in ONE journal transaction (group
// commit), then answers each requester with a (written_atom, write_no, write_outcome)
// message. It is the only thread that calls journal::append.
//
// `replicated` types (set_kafka): a committed write's answer waits in a queue (commit
// order = position order, each with its deadline) until the bridge reports Kafka's
// acknowledgement (kafka_acknowledged). A watchdog thread sleeps until the oldest
// deadline (replication_timeout_ms) and then answers the queue with `not_replicated`
// (stored, not acknowledged); while Kafka is behind those positions, later replicated
// writes are answered so right after their commit.
#pragma once

#include "strata/persistence/event.hpp"
#include "strata/persistence/journal.hpp"
#include "strata/persistence/status.hpp"
#include "strata/runtime/config.hpp"

#include <caf/actor.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace strata::detail {

/// What the writer reports for one request.
struct write_outcome {
  persistence::errc code = persistence::errc::ok;
  std::string message;         ///< empty when ok
  std::uint64_t first_seq = 0; ///< when ok and events were written
  std::uint64_t last_seq = 0;
  std::uint64_t last_position = 0; ///< global position of the last event (when ok)
  /// ok, stored locally, but Kafka did not acknowledge it in time (`replicated` only):
  /// the replies of this write fail with not_replicated; `message` (when not empty) says
  /// what happens to the events next.
  bool not_replicated = false;

  bool ok() const noexcept { return code == persistence::errc::ok; }
};

struct write_request {
  caf::actor reply_to;             ///< gets (written_atom, write_no, write_outcome); may be null
  std::uint64_t write_no = 0;      ///< the requester's number for this write
  persistence::stream_write write; ///< events may be empty (snapshot-only request)
  std::optional<persistence::snapshot_record> snapshot;
};

class journal_writer {
 public:
  /// journal::append_async (or a test double): plans the batch on the writer thread and
  /// calls back (on the journal's commit thread) after the commit, so the writer
  /// gathers the next group commit while this one is being fsynced.
  using append_fn = std::function<void(const std::vector<persistence::stream_write>&,
                                       const std::vector<persistence::snapshot_record>&,
                                       persistence::append_callback)>;
  using fault_fn =
    std::function<persistence::status(append_phase, const std::vector<persistence::stream_write>&)>;

  /// Starts the thread. `append` is journal::append_async (or a test double).
  /// `linger_us` > 0: when fewer than `linger_events` events are queued, wait up to
  /// that long for more before committing (bigger group commits under load).
  journal_writer(append_fn append, fault_fn fault, std::size_t batch_events_max,
                 std::uint64_t linger_us = 0, std::size_t linger_events = 0);
  /// stop()s.
  ~journal_writer();

  /// Queues a request. Any thread. After stop(), answered at once with `closed`.
  void submit(write_request r);

  /// Commits everything queued, answers it, and joins the thread. Idempotent.
  void stop();

  std::uint64_t commits() const noexcept { return commits_.load(std::memory_order_relaxed); }
  std::uint64_t committed_events() const noexcept {
    return committed_events_.load(std::memory_order_relaxed);
  }
  std::uint64_t failed_commits() const noexcept {
    return failed_commits_.load(std::memory_order_relaxed);
  }
  /// Nanoseconds from handing a batch to the journal to its commit callback, summed.
  std::uint64_t append_ns() const noexcept { return append_ns_.load(std::memory_order_relaxed); }

 private:
  void run();
  void commit(std::vector<write_request>& batch);
  struct commit_ctx;
  /// Answers every request of a committed (or failed) batch.
  void finish(commit_ctx& ctx, persistence::status whole,
              std::vector<persistence::write_result> results);
  std::mutex inflight_mtx_;
  std::condition_variable inflight_cv_;
  std::size_t inflight_ = 0; // batches handed to the journal, not yet called back

 public:
  /// Kafka hooks, set once (system::open) before the first submit.
  struct kafka_hooks {
    std::function<void()> notify;                         ///< after each commit
    std::function<bool(std::string_view pid)> replicated; ///< reply waits for Kafka?
    std::function<std::uint64_t()> acknowledged;          ///< Kafka's acked position
    /// A reply waits at most this long for Kafka (then not_replicated); 0 = no limit.
    std::uint32_t replication_timeout_ms = 0;
  };
  /// Starts the replication watchdog thread when `h.replicated` is set and
  /// `h.replication_timeout_ms` > 0.
  void set_kafka(kafka_hooks h);
  /// Kafka acknowledged every event up to `position`: sends the replies that waited
  /// for it. Any thread (the bridge calls it).
  void kafka_acknowledged(std::uint64_t position);
  /// Answers every reply still waiting for Kafka with not_replicated (`why` says what
  /// happens to the events), and makes later replicated writes answer so at once
  /// (shutdown, after the bridge drained).
  void fail_kafka_waiters(const std::string& why);

 private:
  using steady = std::chrono::steady_clock;
  struct kafka_waiter {
    std::uint64_t position;
    steady::time_point deadline; // ascending like positions: one timeout for all
    caf::actor reply_to;
    std::uint64_t write_no;
    write_outcome out;
  };
  /// Answers a write of a replicated type: queued until Kafka acknowledges it (or its
  /// deadline), at once when Kafka is known to be behind; a failure queues behind the
  /// waiters before it. Any thread.
  void answer_replicated(const caf::actor& to, std::uint64_t write_no, write_outcome out);
  /// Sends the replies of waiters Kafka acknowledged. Caller holds kwait_mtx_ (replies
  /// of one entity must leave in write order, so they are sent under the lock).
  void release_acknowledged_locked(std::uint64_t position);
  /// The watchdog: answers not_replicated when the oldest waiter's deadline passed.
  void watch_replication();
  void stop_watchdog();

  kafka_hooks kafka_;
  std::mutex kwait_mtx_;
  std::condition_variable kwait_cv_;  // wakes the watchdog (first waiter, stop)
  std::deque<kafka_waiter> kwaiters_; // ascending positions (commit order)
  std::string kafka_failed_;          // non-empty after fail_kafka_waiters
  std::uint64_t kafka_acked_ = 0;     // highest position Kafka acknowledged (as told)
  // Highest position whose reply timed out. While kafka_acked_ < kafka_behind_, Kafka
  // is known to be behind and replicated writes are answered not_replicated at once
  // (no queue, so a load keeps its pace during an outage).
  std::uint64_t kafka_behind_ = 0;
  bool watchdog_stop_ = false;
  std::thread watchdog_;

  append_fn append_;
  fault_fn fault_;
  std::size_t batch_events_max_;
  std::uint64_t linger_us_;
  std::size_t linger_events_;
  std::mutex mtx_;
  std::condition_variable cv_;
  std::vector<write_request> queue_;
  std::size_t queued_events_ = 0;
  bool stopping_ = false;
  bool stopped_ = false;
  std::atomic<std::uint64_t> commits_{0};
  std::atomic<std::uint64_t> committed_events_{0};
  std::atomic<std::uint64_t> failed_commits_{0};
  std::atomic<std::uint64_t> append_ns_{0};
  std::thread thread_;
};

/// Sends the outcome to the requester (defined in journal_writer.cpp).
void notify_written(const caf::actor& to, std::uint64_t write_no, write_outcome out);

} // namespace strata::detail
