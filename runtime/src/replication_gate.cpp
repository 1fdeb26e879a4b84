#include "replication_gate.hpp"

#include "strata/runtime/detail/messages.hpp"

#include <caf/actor_system.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/stateful_actor.hpp>

#include <chrono>
#include <deque>
#include <map>
#include <string>

namespace strata::detail {

namespace {

using steady = std::chrono::steady_clock;

struct gate_state {
  static inline const char* name = "strata_replication_gate";
  struct held {
    gate_waiter w;
    steady::time_point deadline; // ascending like positions: one timeout for all
  };
  std::chrono::milliseconds timeout{0};
  std::deque<held> queue;    // ascending positions (commit order)
  std::uint64_t acked = 0;   // highest position Kafka acknowledged
  std::uint64_t behind = 0;  // highest position whose reply timed out
  bool closed = false;       // shutdown: nothing waits any more
  std::string closed_why;    // what happens to the events (close_atom)
  bool tick_pending = false; // a tick_atom is on its way
  // Positions the bridge fenced whose write is not held (yet): the group commit's hold
  // may arrive after the bridge's fenced_atom. At most fenced_max, lowest dropped first
  // (those of writes that are not replicated are never claimed).
  std::map<std::uint64_t, std::string> fenced;
  static constexpr std::size_t fenced_max = 65'536;
};

using gate_actor = caf::stateful_actor<gate_state>;

void answer(gate_actor* self, gate_waiter& w) {
  self->send(w.reply_to, written_atom::value, w.write_no, std::move(w.out));
}

/// Answers `w` not_replicated (when it is ok) with `why`.
void answer_not_replicated(gate_actor* self, gate_waiter& w, const std::string& why) {
  if (w.out.ok()) {
    w.out.not_replicated = true;
    w.out.st = {persistence::errc::ok, why};
  }
  answer(self, w);
}

void arm_timer(gate_actor* self) {
  auto& s = self->state;
  if (s.tick_pending || s.queue.empty()) return;
  s.tick_pending = true;
  auto wait = s.queue.front().deadline - steady::now();
  if (wait < steady::duration::zero()) wait = steady::duration::zero();
  self->delayed_send(self, wait, tick_atom::value);
}

void release(gate_actor* self, std::uint64_t position) {
  auto& s = self->state;
  if (position > s.acked) s.acked = position;
  while (!s.queue.empty() && s.queue.front().w.position <= s.acked) {
    answer(self, s.queue.front().w);
    s.queue.pop_front();
  }
}

/// The write ending at a fenced position fails with `fenced` (its code unchanged to the
/// caller; the entity stops). It still leaves in position order, when the bridge's
/// acknowledged position (which moves over fenced records) passes it.
void mark_fenced(gate_waiter& w, const std::string& why) {
  if (w.out.ok()) w.out.st = {persistence::errc::fenced, why};
}

void on_fenced(gate_actor* self, std::uint64_t position, std::string& why) {
  auto& s = self->state;
  for (auto& h : s.queue)
    if (h.w.position == position) {
      mark_fenced(h.w, why);
      return;
    }
  s.fenced[position] = std::move(why);
  if (s.fenced.size() > gate_state::fenced_max) s.fenced.erase(s.fenced.begin());
}

void hold(gate_actor* self, gate_waiter w) {
  auto& s = self->state;
  if (!s.fenced.empty()) {
    auto f = s.fenced.find(w.position);
    if (f != s.fenced.end()) {
      mark_fenced(w, f->second);
      s.fenced.erase(f);
    }
  }
  if (s.closed) {
    answer_not_replicated(self, w, s.closed_why);
    return;
  }
  if (w.out.ok() && s.acked >= s.behind) {
    s.queue.push_back({std::move(w), steady::now() + s.timeout});
    return;
  }
  if (!w.out.ok() && !s.queue.empty()) {
    auto last = s.queue.back();
    s.queue.push_back({std::move(w), last.deadline});
    s.queue.back().w.position = last.w.position;
    return;
  }
  // Kafka is known to be behind (an earlier reply timed out): do not wait.
  answer_not_replicated(self, w, {});
}

/// The oldest held outcome passed its deadline: Kafka acknowledges a contiguous prefix
/// of positions, so nothing held behind it can be acknowledged before it; all of them
/// are answered now.
void on_tick(gate_actor* self) {
  auto& s = self->state;
  s.tick_pending = false;
  if (s.queue.empty()) return;
  if (s.queue.front().deadline > steady::now()) {
    arm_timer(self);
    return;
  }
  s.behind = s.queue.back().w.position;
  for (auto& h : s.queue)
    answer_not_replicated(self, h.w, {});
  s.queue.clear();
}

caf::behavior gate_behavior(gate_actor* self, std::uint32_t timeout_ms) {
  self->state.timeout = std::chrono::milliseconds(timeout_ms == 0 ? 1 : timeout_ms);
  return {
    [self](hold_atom, gate_batch& b) {
      for (auto& w : b)
        hold(self, std::move(w));
      release(self, self->state.acked); // Kafka may have been faster than the commit
      arm_timer(self);
    },
    [self](acked_atom, std::uint64_t position) {
      release(self, position);
    },
    [self](fenced_atom, std::uint64_t position, std::string& why) {
      on_fenced(self, position, why);
    },
    [self](tick_atom) {
      on_tick(self);
    },
    [self](close_atom, std::string& why) {
      auto& s = self->state;
      s.closed = true;
      s.closed_why = std::move(why);
      for (auto& h : s.queue)
        answer_not_replicated(self, h.w, s.closed_why);
      s.queue.clear();
    },
  };
}

} // namespace

caf::actor spawn_replication_gate(caf::actor_system& sys, std::uint32_t timeout_ms) {
  return sys.spawn(gate_behavior, timeout_ms);
}

} // namespace strata::detail
