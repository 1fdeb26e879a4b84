#include "strata/cluster/handoff.hpp"

namespace strata::cluster {

namespace {

using phase = handoff_phase;

/// Whether a protocol event comes from the holder under the current epoch, in phase p.
template <class Event>
bool valid(const shard_state& s, const Event& e, phase p) noexcept {
  return s.phase == p && s.holder == e.by && s.epoch == e.epoch;
}

/// The holder of a flushed shard gives it to `to` (possibly itself) under a new epoch.
shard_state hand_to(shard_state s, const member_id& to) {
  s.phase = phase::handed_over;
  s.holder = to;
  ++s.epoch;
  return s;
}

step_result on(shard_state s, const retarget& e) {
  s.target = e.owner;
  if (s.phase == phase::serving && s.target != s.holder) {
    s.phase = phase::stopping;
  } else if (s.phase == phase::flushed && s.target == s.holder) {
    s = hand_to(s, *s.holder); // called off: the holder claims the shard again
  } else if (s.phase == phase::unowned && s.target) {
    s = hand_to(s, *s.target);
  }
  return {s, true};
}

step_result on(shard_state s, const flushed& e) {
  if (!valid(s, e, phase::stopping)) return {s, false};
  s.phase = phase::flushed;
  if (s.target == s.holder) s = hand_to(s, *s.holder);
  return {s, true};
}

step_result on(shard_state s, const hand_over& e) {
  if (!valid(s, e, phase::flushed) || !s.target || s.target == s.holder) return {s, false};
  return {hand_to(s, *s.target), true};
}

step_result on(shard_state s, const restore_begun& e) {
  if (!valid(s, e, phase::handed_over)) return {s, false};
  s.phase = phase::restoring;
  return {s, true};
}

step_result on(shard_state s, const restored& e) {
  if (!valid(s, e, phase::restoring)) return {s, false};
  s.phase = s.target == s.holder ? phase::serving : phase::stopping;
  return {s, true};
}

step_result on(shard_state s, const fail_over& e) {
  if (s.phase == phase::unowned || s.holder != e.failed || s.epoch != e.epoch ||
      e.owner == e.failed)
    return {s, false};
  s.target = e.owner;
  return {hand_to(s, e.owner), true};
}

} // namespace

const char* to_string(handoff_phase p) noexcept {
  switch (p) {
    case phase::unowned: return "unowned";
    case phase::serving: return "serving";
    case phase::stopping: return "stopping";
    case phase::flushed: return "flushed";
    case phase::handed_over: return "handed_over";
    case phase::restoring: return "restoring";
  }
  return "unknown";
}

step_result step(const shard_state& s, const handoff_event& e) {
  return std::visit(
    [&](const auto& ev) {
      return on(s, ev);
    },
    e);
}

bool may_serve(const shard_state& s, const member_id& m) noexcept {
  return s.phase == phase::serving && s.holder == m;
}

bool may_write(const shard_state& s, const member_id& m) noexcept {
  return (s.phase == phase::serving || s.phase == phase::stopping) && s.holder == m;
}

std::set<member_id> holders(const std::vector<shard_state>& shards) {
  std::set<member_id> out;
  for (const auto& s : shards)
    if (s.phase != phase::unowned && s.holder) out.insert(*s.holder);
  return out;
}

} // namespace strata::cluster
