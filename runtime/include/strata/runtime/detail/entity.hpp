// File: strata/runtime/detail/entity.hpp (internal)
//
// entity_core: everything an entity does that does not depend on its aggregate type,
// compiled once (runtime/src/entity.cpp). persistent_actor.hpp derives entity<A> from
// it, which keeps only what needs A: the state, deciding a command, recovering the
// state, encoding a snapshot.
//
// Life cycle (one `status`): queued for a recovery permit → permitted → recover
// (snapshot + tail) → running → (idle timeout / shutdown: stop requested) it handles
// what it already received (stash, commands in its mailbox, in-flight writes), then
// finishes; the directory buffers new commands meanwhile and routes them to the next
// incarnation. Commands that arrive before it runs are stashed (bounded: beyond
// `stash_max` → stash_full).
//
// Running, with pipelining: each command is decided on the *pending* state (the
// durable state plus every event decided but not yet durable). Its events join the
// entity's open write; at most `max_inflight_writes` writes are at the group commit at
// once, the rest accumulate (batching). Every reply is held until all writes decided
// before it are durable, and replies leave in command order — also rejections and
// reply-only commands. A write failure fails the commands decided on top of it (the
// journal's status passed through unchanged), then the entity waits for its other
// in-flight writes and recovers again from the journal (status failed), so its state
// is never ahead of the journal.
//
// Threads: the entity's actor only.
#pragma once

#include "strata/persistence/event.hpp"
#include "strata/runtime/detail/envelope.hpp"
#include "strata/runtime/detail/group_commit.hpp"
#include "strata/runtime/detail/region.hpp"

#include <caf/actor_addr.hpp>
#include <caf/behavior.hpp>
#include <caf/error.hpp>
#include <caf/fwd.hpp>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace strata::detail {

/// A FIFO on a vector (std::deque allocates ~600 bytes even when empty: too much for
/// a million idle entities).
template <class T>
class small_fifo {
 public:
  bool empty() const noexcept { return head_ == items_.size(); }
  std::size_t size() const noexcept { return items_.size() - head_; }
  T& front() noexcept { return items_[head_]; }
  void push_back(T x) { items_.push_back(std::move(x)); }
  void pop_front() {
    items_[head_] = T{};
    if (++head_ == items_.size()) {
      items_.clear();
      head_ = 0;
    } else if (head_ >= 64 && head_ * 2 >= items_.size()) {
      items_.erase(items_.begin(), items_.begin() + static_cast<std::ptrdiff_t>(head_));
      head_ = 0;
    }
  }
  void clear() {
    items_.clear();
    items_.shrink_to_fit();
    head_ = 0;
  }
  template <class F>
  void for_each(F&& f) {
    for (auto i = head_; i < items_.size(); ++i)
      f(items_[i]);
  }

 private:
  std::vector<T> items_;
  std::size_t head_ = 0;
};

class entity_core {
 public:
  enum class status : std::uint8_t {
    queued,    ///< waiting for a recovery permit
    permitted, ///< a permit is granted; recover_atom is on its way
    running,   ///< recovered: decides commands
    failed,    ///< a write failed: waits for its other writes, then recovers again
    finished,  ///< stopped: its entry left the directory
  };

  entity_core() = default;
  virtual ~entity_core();
  entity_core(const entity_core&) = delete;
  entity_core& operator=(const entity_core&) = delete;

  /// Binds the core to its actor and asks for a recovery permit; returns the behavior.
  caf::behavior start(caf::event_based_actor* self, const entity_context* ctx, std::string id);

 protected:
  /// Decides one command on the pending state: replies through reply_now / reply_after
  /// and adds events through add_events.
  virtual void decide(envelope_ptr e) = 0;
  /// Rebuilds the state from the journal; sets the seq it includes and the snapshot it
  /// started from. Errors: those of recover<A> (corrupt, io_error).
  virtual caf::error recover_state(std::uint64_t& seq, std::uint64_t& snapshot_seq) = 0;
  /// The pending state as a snapshot record (payload and schema version), or nothing
  /// (no snapshots for this type, or encoding threw: recovery replays instead).
  virtual std::optional<persistence::snapshot_record> encode_snapshot() = 0;

  /// The write a reply must wait for: the last write assigned so far.
  std::uint64_t last_write_no() const noexcept { return last_write_no_; }
  /// Queues the outcome of a command: `err` (or the reply set in the envelope when
  /// `err` is empty), sent once write `required` is durable; `stored_seq` = the last
  /// seq of the command's own events (0 = none).
  void reply_after(std::uint64_t required, envelope_ptr e, caf::error err,
                   std::uint64_t stored_seq = 0);
  /// Where decide() encodes a command's events: the end of the open write's buffer
  /// (reused from earlier writes, so encoding allocates nothing on the steady path). On
  /// failure decide() truncates it back to its size before; on success it calls
  /// add_events.
  std::vector<persistence::event_data>& event_buffer();
  /// The last `n` events of event_buffer() join the open write (opening one); returns
  /// its number. The caller then applies them to its pending state.
  std::uint64_t add_events(std::size_t n);
  /// An internal error naming the entity: "<what> for entity '<pid>'; nothing was stored".
  caf::error internal_error(const char* what) const;

  const entity_context* ctx_ = nullptr;
  std::string id_;
  std::string pid_;
  std::uint64_t pending_seq_ = 0;

 private:
  struct inflight_write {
    std::uint64_t no = 0;
    std::uint64_t last_seq = 0;
    std::unique_ptr<persistence::snapshot_record> snapshot; ///< of the state after it
    write_buffer_ptr buf; ///< lent to the group commit; reused once it came back
  };
  struct pending_reply {
    std::uint64_t required = 0; ///< the write that must be durable first (0 = none)
    envelope_ptr env;
    caf::error err;               ///< empty: the reply is in the envelope
    std::uint64_t stored_seq = 0; ///< last seq of the command's own events (0 = none)
  };

  caf::behavior make_behavior();
  void request_permit();
  void on_recover();
  void on_command(envelope_ptr e);
  void on_written(std::uint64_t no, write_outcome out);
  void on_passivate();
  bool blocked() const;
  void stash(envelope_ptr e);
  void process_stash();
  void try_submit();
  void flush_replies();
  void store_snapshot(std::unique_ptr<persistence::snapshot_record> snap);
  void fail_not_replicated(std::uint64_t no, const std::string& next);
  void on_write_failed(std::uint64_t no, const write_outcome& out);
  void after_failure_drained();
  void maybe_finish();
  void finish();
  void release_permit();
  /// The buffer for a new write: a spare one when the group commit gave one back.
  write_buffer_ptr take_buffer();
  /// Keeps `b` as a spare buffer when nobody else holds it any more.
  void recycle(write_buffer_ptr b);
  std::size_t open_events() const noexcept {
    return open_buf_ ? open_buf_->write.events.size() : 0;
  }

  caf::event_based_actor* self_ = nullptr;
  caf::actor_addr me_;
  status status_ = status::queued;
  bool stop_requested_ = false; ///< passivation: finish once nothing is left to do

  std::uint64_t durable_seq_ = 0;
  std::uint64_t snapshot_seq_ = 0;
  std::uint64_t last_write_no_ = 0;    ///< highest write number assigned (open or submitted)
  std::uint64_t durable_write_no_ = 0; ///< highest write number known durable

  std::uint64_t open_no_ = 0; ///< number of the open (unsubmitted) write; 0 = none
  std::uint64_t open_expected_seq_ = 0;
  write_buffer_ptr open_buf_; ///< the open write's events (null: none yet)
  /// Buffers back from the group commit, for the next writes (at most
  /// max_inflight_writes: one write can be open while that many are in flight).
  std::vector<write_buffer_ptr> spares_;
  std::unique_ptr<persistence::snapshot_record> snapshot_due_; // rides on the next write

  std::vector<inflight_write> inflight_;
  small_fifo<pending_reply> replies_;
  small_fifo<envelope_ptr> stash_;
};

} // namespace strata::detail
