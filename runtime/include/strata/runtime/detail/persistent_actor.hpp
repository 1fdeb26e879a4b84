// File: strata/runtime/detail/persistent_actor.hpp (internal; heavy CAF include)
//
// persistent_actor<A>: one entity of aggregate A, a CAF stateful actor.
//
// Life cycle: waiting for a recovery permit → recover (snapshot + tail) → running →
// (idle timeout / shutdown) stopping: it handles what it already received (stash,
// commands in its mailbox, in-flight writes), then leaves; the directory buffers new
// commands meanwhile and routes them to the next incarnation. Commands that arrive
// before it runs are stashed (bounded: beyond `stash_max` → stash_full).
//
// Running, with pipelining: each command is decided on the *pending* state (the
// durable state plus every event decided but not yet durable). Its events join the
// entity's open write; at most `max_inflight_writes` writes are queued at the journal
// writer at once, the rest accumulate (batching). Every reply is held until all
// writes decided before it are durable, and replies leave in command order — also
// rejections and reply-only commands. A write failure fails the commands decided on
// top of it, then the entity waits for its other in-flight writes and recovers again
// from the journal, so its state is never ahead of the journal.
#pragma once

#include "strata/persistence/journal.hpp"
#include "strata/runtime/aggregate.hpp"
#include "strata/runtime/detail/envelope.hpp"
#include "strata/runtime/detail/journal_writer.hpp"
#include "strata/runtime/detail/messages.hpp"
#include "strata/runtime/detail/recovery.hpp"
#include "strata/runtime/detail/region.hpp"
#include "strata/runtime/errors.hpp"

#include <caf/actor_cast.hpp>
#include <caf/actor_system.hpp>
#include <caf/behavior.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/stateful_actor.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
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

template <class A>
struct entity_state {
  using state_t = typename A::state;
  using reply_t = typename A::reply;
  using env_t = command_envelope<A>;
  using env_ptr = caf::intrusive_ptr<env_t>;

  enum class phase : std::uint8_t { waiting_permit, running, failed, stopped };
  enum class permit : std::uint8_t { none, waiting, granted };

  struct inflight_write {
    std::uint64_t no = 0;
    std::uint64_t last_seq = 0;
    state_t after{};
  };
  struct pending_reply {
    std::uint64_t required = 0; ///< the write that must be durable first (0 = none)
    env_ptr env;
    std::optional<reply_t> value;
    caf::error err;
    std::uint64_t stored_seq = 0; ///< last seq of the command's own events (0 = none)
  };

  static inline const char* name = "strata_entity";

  explicit entity_state(caf::event_based_actor* self) : self_(self) {}
  entity_state() = default;

  ~entity_state() {
    // Normal stops go through finish_stop(); this is the abnormal path (an exception
    // killed the actor, or the system is torn down).
    replies.for_each([](pending_reply& r) {
      if (r.env && !r.env->completed())
        r.env->fail(make_runtime_error(runtime_errc::internal,
                                       "entity stopped abnormally; the command's outcome is "
                                       "unknown (check its history)"));
    });
    if (reg != nullptr && !finished) {
      if (perm == permit::waiting && !reg->gate().cancel(me))
        reg->gate().release();
      else if (perm == permit::granted)
        reg->gate().release();
      reg->passivated(id, me);
      reg->entity_finished();
    }
  }

  caf::event_based_actor* self_ = nullptr;
  region* reg = nullptr;
  std::string id;
  std::string pid;
  caf::actor_addr me;
  phase ph = phase::waiting_permit;
  permit perm = permit::none;
  bool stopping = false;
  bool finished = false;

  state_t durable{};
  state_t pending{};
  std::uint64_t durable_seq = 0;
  std::uint64_t pending_seq = 0;
  std::uint64_t snapshot_seq = 0;

  std::uint64_t last_write_no = 0;    ///< highest write number assigned (open or submitted)
  std::uint64_t durable_write_no = 0; ///< highest write number known durable

  std::uint64_t open_no = 0; ///< number of the open (unsubmitted) write; 0 = none
  std::uint64_t open_expected_seq = 0;
  std::vector<persistence::event_data> open_events;
  std::unique_ptr<persistence::snapshot_record> snapshot_due; // rides on the next write

  std::vector<inflight_write> inflight;
  small_fifo<pending_reply> replies;
  small_fifo<env_ptr> stash;
};

template <class A>
class entity_logic {
 public:
  using st_t = entity_state<A>;
  using self_ptr = caf::stateful_actor<st_t>*;
  using env_t = command_envelope<A>;
  using env_ptr = caf::intrusive_ptr<env_t>;
  using phase = typename st_t::phase;
  using permit = typename st_t::permit;

  static caf::behavior make(self_ptr self, region* reg, std::string id) {
    auto& s = self->state;
    s.self_ = self;
    s.reg = reg;
    s.pid = reg->persistence_id(id);
    s.id = std::move(id);
    s.me = self->address();
    request_permit(self);
    return {
      [self](cmd_atom, envelope_ptr& e) {
        env_ptr typed{static_cast<env_t*>(e.get())};
        e.reset();
        on_command(self, std::move(typed));
      },
      [self](written_atom, std::uint64_t no, write_outcome& out) {
        on_written(self, no, std::move(out));
      },
      [self](recover_atom) {
        on_recover(self);
      },
      [self](passivate_atom) {
        on_passivate(self);
      },
    };
  }

 private:
  static void request_permit(self_ptr self) {
    auto& s = self->state;
    s.ph = phase::waiting_permit;
    if (s.reg->gate().acquire(caf::actor_cast<caf::actor>(self))) {
      s.perm = permit::granted;
      self->send(self, recover_atom::value);
    } else {
      s.perm = permit::waiting;
    }
  }

  static void on_recover(self_ptr self) {
    auto& s = self->state;
    s.perm = permit::none; // the permit is ours until released below
    if (s.ph != phase::waiting_permit || (s.stopping && s.stash.empty())) {
      s.reg->gate().release();
      if (s.stopping) finish_stop(self);
      return;
    }
    if (s.reg->cfg().before_recover) s.reg->cfg().before_recover(s.pid);
    auto r = recover<A>(s.reg->journal(), s.pid, true, ~std::uint64_t{0});
    s.reg->gate().release();
    if (!r) {
      // The stream cannot be read: answer what waits, and stop, so that a later
      // command tries again (after an operator fixed the data, or a transient error).
      auto err = r.error();
      while (!s.stash.empty()) {
        s.stash.front()->fail(err);
        s.stash.pop_front();
      }
      finish_stop(self);
      return;
    }
    s.reg->count_recovery();
    s.durable = r->state;
    s.pending = std::move(r->state);
    s.durable_seq = s.pending_seq = r->seq;
    s.snapshot_seq = r->snapshot_seq;
    s.durable_write_no = s.last_write_no;
    s.ph = phase::running;
    process_stash(self);
    maybe_finish(self);
  }

  /// A stopping entity first finishes what it already received (stash, in-flight
  /// writes); only then does it leave (so passivation never bounces commands).
  static void maybe_finish(self_ptr self) {
    auto& s = self->state;
    if (s.stopping && s.ph == phase::running && s.inflight.empty() && s.open_no == 0 &&
        s.stash.empty())
      finish_stop(self);
  }

  static bool blocked(const st_t& s) {
    return s.open_no != 0 && s.open_events.size() >= s.reg->cfg().entity_batch_events_max &&
           s.inflight.size() >= s.reg->cfg().max_inflight_writes;
  }

  static void stash(self_ptr self, env_ptr e) {
    auto& s = self->state;
    if (s.stash.size() >= s.reg->cfg().stash_max) {
      e->fail(make_runtime_error(runtime_errc::stash_full,
                                 "entity '" + s.pid + "' has " + std::to_string(s.stash.size()) +
                                   " commands waiting (stash-max); retry later"));
      return;
    }
    s.stash.push_back(std::move(e));
  }

  static void on_command(self_ptr self, env_ptr e) {
    auto& s = self->state;
    if (s.ph != phase::running || !s.stash.empty() || blocked(s)) {
      stash(self, std::move(e));
      return;
    }
    decide(self, std::move(e));
    try_submit(self);
    flush_replies(self);
    maybe_finish(self);
  }

  static void process_stash(self_ptr self) {
    auto& s = self->state;
    while (s.ph == phase::running && !s.stash.empty() && !blocked(s)) {
      auto e = std::move(s.stash.front());
      s.stash.pop_front();
      decide(self, std::move(e));
      try_submit(self);
    }
    flush_replies(self);
  }

  static void push_reply(self_ptr self, std::uint64_t required, env_ptr e,
                         std::optional<typename A::reply> value, caf::error err,
                         std::uint64_t stored_seq = 0) {
    auto& s = self->state;
    if (required <= s.durable_write_no && s.replies.empty()) {
      if (value)
        e->deliver(std::move(*value));
      else
        e->fail(std::move(err));
      return;
    }
    s.replies.push_back({required, std::move(e), std::move(value), std::move(err), stored_seq});
  }

  static void decide(self_ptr self, env_ptr e) {
    auto& s = self->state;
    auto internal = [&](const char* what) {
      return make_runtime_error(runtime_errc::internal, std::string(what) + " for entity '" +
                                                          s.pid + "'; nothing was stored");
    };
    std::optional<effect_of<A>> eff;
    try {
      eff.emplace(A::handle(s.pending, e->cmd));
    } catch (...) {
      push_reply(self, s.last_write_no, std::move(e), std::nullopt,
                 internal("the command handler threw"));
      return;
    }
    switch (eff->kind()) {
      case effect_kind::reject:
        push_reply(self, s.last_write_no, std::move(e), std::nullopt,
                   make_rejection<A>(*eff->rejection()));
        return;
      case effect_kind::reply:
        reply_with(self, *eff, s.pending, s.last_write_no, std::move(e));
        return;
      case effect_kind::persist_then_reply:
      case effect_kind::persist_then_no_reply: break;
    }
    auto& evs = eff->events();
    if (evs.empty()) {
      if (eff->has_reply())
        reply_with(self, *eff, s.pending, s.last_write_no, std::move(e));
      else
        push_reply(self, s.last_write_no, std::move(e), std::nullopt,
                   make_runtime_error(runtime_errc::no_reply, "the command replies nothing"));
      return;
    }
    // Encode first: a failing mapping must leave the state untouched.
    std::vector<persistence::event_data> enc;
    enc.reserve(evs.size());
    try {
      for (const auto& ev : evs) {
        event_bytes b = A::encode(ev);
        persistence::event_data d;
        d.type = std::move(b.type);
        d.schema_version = b.schema_version;
        d.payload = std::move(b.payload);
        enc.push_back(std::move(d));
      }
    } catch (...) {
      push_reply(self, s.last_write_no, std::move(e), std::nullopt,
                 internal("encoding an event threw"));
      return;
    }
    if (s.open_no == 0) {
      s.open_no = ++s.last_write_no;
      s.open_expected_seq = s.pending_seq;
    }
    for (auto& d : enc)
      s.open_events.push_back(std::move(d));
    for (const auto& ev : evs)
      s.pending = A::apply(std::move(s.pending), ev);
    s.pending_seq += evs.size();
    if (eff->has_reply())
      reply_with(self, *eff, s.pending, s.open_no, std::move(e), s.pending_seq);
    else
      push_reply(
        self, s.open_no, std::move(e), std::nullopt,
        make_runtime_error(runtime_errc::no_reply, "the command was stored and replies nothing"),
        s.pending_seq);
  }

  static void reply_with(self_ptr self, const effect_of<A>& eff, const typename A::state& st,
                         std::uint64_t required, env_ptr e, std::uint64_t stored_seq = 0) {
    std::optional<typename A::reply> v;
    try {
      v.emplace(eff.make_reply(st));
    } catch (...) {
      push_reply(self, required, std::move(e), std::nullopt,
                 make_runtime_error(runtime_errc::internal, "the reply function threw"),
                 stored_seq);
      return;
    }
    push_reply(self, required, std::move(e), std::move(v), caf::error{}, stored_seq);
  }

  static void try_submit(self_ptr self) {
    auto& s = self->state;
    if (s.open_no == 0 || s.inflight.size() >= s.reg->cfg().max_inflight_writes) return;
    write_request r;
    r.reply_to = caf::actor_cast<caf::actor>(self);
    r.write_no = s.open_no;
    r.write.persistence_id = s.pid;
    r.write.expected_seq = s.open_expected_seq;
    r.write.events = std::move(s.open_events);
    s.open_events = {};
    if (s.snapshot_due) {
      r.snapshot = std::move(*s.snapshot_due);
      s.snapshot_due.reset();
    }
    s.inflight.push_back({s.open_no, s.pending_seq, s.pending});
    s.open_no = 0;
    s.reg->writer().submit(std::move(r));
  }

  static void flush_replies(self_ptr self) {
    auto& s = self->state;
    while (!s.replies.empty() && s.replies.front().required <= s.durable_write_no) {
      auto& r = s.replies.front();
      if (r.value)
        r.env->deliver(std::move(*r.value));
      else
        r.env->fail(std::move(r.err));
      s.replies.pop_front();
    }
  }

  static void maybe_snapshot(self_ptr self) {
    if constexpr (has_snapshots_v<A>) {
      auto& s = self->state;
      auto every = s.reg->snapshot_every();
      if (every == 0 || s.durable_seq < s.snapshot_seq + every) return;
      persistence::snapshot_record rec;
      try {
        state_bytes b = A::encode_state(s.durable);
        rec.schema_version = b.schema_version;
        rec.payload = std::move(b.payload);
      } catch (...) {
        return; // snapshots are an optimisation: recovery replays instead
      }
      rec.persistence_id = s.pid;
      rec.seq = s.durable_seq;
      rec.type = s.reg->type() + ".state";
      rec.timestamp_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                           std::chrono::system_clock::now().time_since_epoch())
                           .count();
      s.snapshot_seq = s.durable_seq;
      if (s.open_no != 0) {
        s.snapshot_due = std::make_unique<persistence::snapshot_record>(std::move(rec));
      } else {
        write_request r; // snapshot only: nobody waits for it
        r.write.persistence_id = s.pid;
        r.snapshot = std::move(rec);
        s.reg->writer().submit(std::move(r));
      }
    } else {
      (void)self;
    }
  }

  static void on_written(self_ptr self, std::uint64_t no, write_outcome out) {
    auto& s = self->state;
    if (s.inflight.empty() || s.inflight.front().no != no)
      return; // not ours (a stale answer after a restart of this incarnation's pipeline)
    auto w = std::move(s.inflight.front());
    s.inflight.erase(s.inflight.begin());
    if (s.ph == phase::failed) {
      // Draining after a failure: outcomes no longer matter, we re-read the journal.
      if (s.inflight.empty()) after_failure_drained(self);
      return;
    }
    if (out.ok() && out.last_seq != w.last_seq)
      out = write_outcome{persistence::errc::internal,
                          "journal reported head " + std::to_string(out.last_seq) +
                            ", entity expected " + std::to_string(w.last_seq),
                          0, 0};
    if (!out.ok()) {
      on_write_failed(self, no, out);
      return;
    }
    s.durable = std::move(w.after);
    s.durable_seq = w.last_seq;
    s.durable_write_no = no;
    if (out.not_replicated) fail_not_replicated(self, no, out.message);
    flush_replies(self);
    maybe_snapshot(self);
    try_submit(self);
    process_stash(self);
    maybe_finish(self);
  }

  /// Write `no` is stored but Kafka did not acknowledge it in time: the commands whose
  /// events it holds answer not_replicated (the others — rejections, reads — decided on
  /// the stored state, answer as usual). The entity goes on from the stored state.
  static void fail_not_replicated(self_ptr self, std::uint64_t no, const std::string& next) {
    auto& s = self->state;
    s.replies.for_each([&](typename st_t::pending_reply& r) {
      if (r.required != no || r.stored_seq == 0) return;
      r.value.reset();
      r.err =
        make_runtime_error(runtime_errc::not_replicated,
                           "stored locally at seq " + std::to_string(r.stored_seq) + " of " +
                             s.pid + ", not yet acknowledged by Kafka; " +
                             (next.empty() ? std::string("the bridge keeps publishing it") : next));
    });
  }

  static void on_write_failed(self_ptr self, std::uint64_t no, const write_outcome& out) {
    auto& s = self->state;
    caf::error err;
    if (out.code == persistence::errc::conflict)
      err = make_runtime_error(runtime_errc::conflict, "entity '" + s.pid + "': " + out.message +
                                                         "; nothing of this command was stored");
    else
      err = to_error(persistence::status{out.code, "entity '" + s.pid + "': " + out.message +
                                                     " (the command may not be stored: "
                                                     "check its history)"});
    while (!s.replies.empty()) {
      auto& r = s.replies.front();
      if (r.required == no)
        r.env->fail(err);
      else
        r.env->fail(
          make_runtime_error(runtime_errc::write_failed,
                             "entity '" + s.pid + "': an earlier write failed (" + describe(err) +
                               "); this command was decided on top of it and was not stored"));
      s.replies.pop_front();
    }
    s.open_no = 0;
    s.open_events.clear();
    s.snapshot_due.reset();
    s.ph = phase::failed;
    if (s.inflight.empty()) after_failure_drained(self);
  }

  static void after_failure_drained(self_ptr self) {
    auto& s = self->state;
    if (s.stopping && s.stash.empty()) {
      finish_stop(self);
      return;
    }
    request_permit(self); // recover again from the journal (then handle the stash)
  }

  static void on_passivate(self_ptr self) {
    auto& s = self->state;
    if (s.finished) return;
    s.stopping = true;
    switch (s.ph) {
      case phase::waiting_permit:
        // With stashed commands: keep the place in the queue, recover, handle them.
        if (s.perm == permit::waiting && s.stash.empty()) {
          if (s.reg->gate().cancel(s.me)) {
            s.perm = permit::none;
            finish_stop(self);
          } else {
            s.perm = permit::granted; // recover_atom is on its way: on_recover stops
          }
        }
        return;
      case phase::running: maybe_finish(self); return; // else on_written finishes
      case phase::failed: return;                      // after_failure_drained finishes
      case phase::stopped: return;
    }
  }

  static void finish_stop(self_ptr self) {
    auto& s = self->state;
    if (s.finished) return;
    s.finished = true;
    s.ph = phase::stopped;
    s.reg->passivated(s.id, s.me);
    // Normally empty; after a failed recovery already answered. Anything left goes back
    // to the region (next incarnation, or shutting_down).
    s.stash.clear();
    s.reg->entity_finished();
    self->quit();
  }
};

template <class A>
caf::behavior persistent_actor(caf::stateful_actor<entity_state<A>>* self, region* reg,
                               std::string id) {
  return entity_logic<A>::make(self, reg, std::move(id));
}

/// The spawn function a region uses for aggregate A.
template <class A>
caf::actor spawn_entity(region& reg, const std::string& entity_id) {
  return reg.actor_system().spawn(persistent_actor<A>, &reg, entity_id);
}

} // namespace strata::detail
