// File: strata/runtime/detail/group_commit.hpp (internal)
//
// The node's group-commit stage, one owner for one job: it gathers every write request
// queued since the last hand-over into ONE batch (one journal transaction), hands the
// batch to the journal's pipeline (journal::append_async: planned and encoded on this
// stage's thread, committed and fsynced on the journal's commit thread), and, when the
// journal reports the commit, routes the outcomes in one message per commit: to the
// reply router (an actor that sends each entity its outcome from a worker thread, so
// a commit wakes the scheduler once, not once per entity), or — for writes the region
// stamped `replicated` — to the replication gate (replication_gate.hpp), which holds
// them until Kafka acknowledged their events. After each commit it wakes the Kafka
// bridge. Data flows one way: entity → group commit → journal → router/gate → entity.
//
// Threads: submit() from any thread; one thread of its own gathers; the commit
// callback runs on the journal's commit thread.
#pragma once

#include "strata/persistence/event.hpp"
#include "strata/persistence/journal.hpp"
#include "strata/persistence/status.hpp"

#include <caf/actor.hpp>
#include <caf/fwd.hpp>
#include <caf/intrusive_ptr.hpp>
#include <caf/ref_counted.hpp>

#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace strata::kafka {
class bridge;
}

namespace strata::detail {

/// What the group commit reports for one request (in a written_atom message).
struct write_outcome {
  persistence::status st;          ///< the journal's status for this write, unchanged
  std::uint64_t first_seq = 0;     ///< when ok and events were written
  std::uint64_t last_seq = 0;      ///< the stream's new head (when ok)
  std::uint64_t last_position = 0; ///< global position of the last event (when ok)
  /// ok, stored locally, but Kafka did not acknowledge it in time (`replicated` only);
  /// `st.message()` (when not empty) then says what happens to the events next.
  bool not_replicated = false;

  bool ok() const noexcept { return st.ok(); }
};

/// The events of one write, owned by the entity that decided them and lent to the group
/// commit until the journal has encoded them (journal::append_async with write_refs
/// reads them during the call only); then the entity reuses the buffer, its persistence
/// id and its capacity for a later write. So the steady path allocates nothing per write
/// and frees nothing on another thread. Reference-counted: an entity that dies with
/// writes in flight leaves the buffer to the group commit.
class write_buffer : public caf::ref_counted {
 public:
  persistence::stream_write write;
};
using write_buffer_ptr = caf::intrusive_ptr<write_buffer>;

struct write_request {
  caf::actor reply_to;        ///< gets (written_atom, write_no, write_outcome); may be null
  std::uint64_t write_no = 0; ///< the requester's number for this write
  bool replicated = false;    ///< the reply waits for Kafka (stamped by the region's type)
  write_buffer_ptr buf;       ///< the write; null or no events: a snapshot-only request
  std::optional<persistence::snapshot_record> snapshot;

  std::size_t events() const noexcept { return buf ? buf->write.events.size() : 0; }
};

/// Commit times (hand-over to the journal → its commit callback) in buckets of
/// `commit_bucket_us`; the last bucket holds everything longer.
inline constexpr std::uint32_t commit_bucket_us = 50;
inline constexpr std::size_t commit_buckets = 2000;

class group_commit {
 public:
  /// journal::append_async (or a wrapper of it, e.g. testing.hpp's fault injection).
  /// The writes are read during the call only (see journal::append_async).
  using append_fn = std::function<void(const persistence::write_refs&,
                                       const std::vector<persistence::snapshot_record>&,
                                       persistence::append_callback)>;

  struct options {
    std::size_t batch_events_max = 8192;
    /// > 0: under load, when fewer than `linger_events` events are queued, wait up to
    /// this long for more before handing the batch over (bigger group commits).
    std::uint64_t linger_us = 0;
    std::size_t linger_events = 0;
  };

  /// Starts the gathering thread. `router`: the reply router (null: outcomes go to the
  /// entities straight from the commit thread); `gate`: the replication gate (null: no
  /// replicated writes); `bridge`: woken after each commit (may be null). All outlive
  /// this.
  group_commit(append_fn append, options opts, caf::actor router, caf::actor gate,
               kafka::bridge* bridge);
  /// stop()s.
  ~group_commit();

  /// Queues a request. Any thread. After stop(), answered at once with `closed`.
  void submit(write_request r);

  /// A check made before each batch with events is handed to the journal: ok, or the
  /// status every write of the batch then fails with, none of it committed (a cluster
  /// node's write lease, docs/cluster.md "The write lease"). Called on the gathering
  /// thread once per batch, so it must be cheap and must not block.
  using write_permit = std::function<persistence::status()>;
  /// Installs the permit for the batches gathered from now on. Any thread.
  void set_write_permit(write_permit p);

  /// Hands over everything queued, waits until the journal reported every batch, and
  /// joins the thread. Idempotent.
  void stop();

  /// Runs `f` (a journal writer call, e.g. journal::import of a restored shard) between
  /// two hand-overs, so it never overlaps an append_async of this stage. Returns what
  /// `f` returns. Any thread but the commit callback's; blocks while a hand-over runs.
  template <class F>
  auto exclusive(F&& f) {
    std::lock_guard<std::mutex> g{writer_mtx_};
    return f();
  }

  std::uint64_t commits() const noexcept { return commits_.load(std::memory_order_relaxed); }
  std::uint64_t committed_events() const noexcept {
    return committed_events_.load(std::memory_order_relaxed);
  }
  std::uint64_t failed_commits() const noexcept {
    return failed_commits_.load(std::memory_order_relaxed);
  }
  /// Nanoseconds from handing a batch to the journal to its commit callback, summed.
  std::uint64_t append_ns() const noexcept { return append_ns_.load(std::memory_order_relaxed); }
  /// The commit-time histogram (see commit_bucket_us), a snapshot.
  std::vector<std::uint64_t> commit_histogram() const;

 private:
  struct batch;
  void run();
  bool take(std::vector<write_request>& out, std::chrono::steady_clock::time_point last_end);
  void hand_over(std::vector<write_request>& requests);
  void route(batch& b, const persistence::status& whole,
             const std::vector<persistence::write_result>& results);
  void count(const batch& b, bool ok);

  append_fn append_;
  options opts_;
  caf::actor router_;
  caf::actor gate_;
  kafka::bridge* bridge_;

  std::mutex mtx_;
  std::condition_variable cv_;
  std::shared_ptr<const write_permit> permit_;       // under mtx_; take() copies it out
  std::shared_ptr<const write_permit> taken_permit_; // the gathering thread's
  std::vector<write_request> queue_;
  std::size_t queued_events_ = 0;
  // The gathering thread's, reused per batch: the writes handed to the journal and the
  // buffers that hold them, kept until append returned.
  persistence::write_refs refs_;
  std::vector<write_buffer_ptr> lent_;
  bool stopping_ = false;
  bool stopped_ = false;

  std::mutex writer_mtx_; // held around each append_ call and by exclusive()

  std::mutex inflight_mtx_;
  std::condition_variable inflight_cv_;
  std::size_t inflight_ = 0; // batches handed to the journal, not yet reported

  std::atomic<std::uint64_t> commits_{0};
  std::atomic<std::uint64_t> committed_events_{0};
  std::atomic<std::uint64_t> failed_commits_{0};
  std::atomic<std::uint64_t> append_ns_{0};
  std::array<std::atomic<std::uint64_t>, commit_buckets> commit_hist_{};
  std::thread thread_;
};

/// Spawns the reply router: it gets one (route_atom, gate_batch) message per commit and
/// sends each entity its outcome from a worker thread, so a commit wakes the scheduler
/// once instead of once per entity.
caf::actor spawn_reply_router(caf::actor_system& sys);

} // namespace strata::detail
