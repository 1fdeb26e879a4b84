#include "strata/cluster/downing.hpp"

#include <algorithm>

namespace strata::cluster {

namespace {

bool contains(const std::vector<member_id>& sorted, const member_id& m) {
  return std::binary_search(sorted.begin(), sorted.end(), m);
}

/// Whether m and every member of `side` (ordered) still see each other: no row of a side
/// member lists m, and m's row lists no side member.
bool talks_to_all(const reachability& reach, const std::vector<member_id>& side,
                  const member_id& m) {
  for (const auto& e : reach.rows()) {
    if (e.observer == m) {
      for (const auto& s : e.row->unreachable)
        if (contains(side, s)) return false;
    } else if (e.row->unreachable.count(m) != 0 && contains(side, e.observer)) {
      return false;
    }
  }
  return true;
}

} // namespace

const char* to_string(downing_kind k) noexcept {
  switch (k) {
    case downing_kind::none: return "none";
    case downing_kind::down_members: return "down_members";
    case downing_kind::down_self: return "down_self";
  }
  return "unknown";
}

downing_sides downing_sides_of(const member_view& view, const reachability& reach) {
  downing_sides out;
  for (const auto& [m, rec] : view.members())
    if (is_observer_status(rec.status)) out.counted.push_back(m);
  auto u = reach.unreachable(view);
  out.unreachable.assign(u.begin(), u.end());
  for (const auto& m : out.counted)
    if (u.count(m) == 0) out.side.push_back(m);
  // Indirectly connected members, in member order, join the side they talk to both ways.
  for (const auto& m : out.counted) {
    if (u.count(m) == 0 || !talks_to_all(reach, out.side, m)) continue;
    out.side.insert(std::upper_bound(out.side.begin(), out.side.end(), m), m);
  }
  auto n = out.counted.size(), k = out.side.size();
  out.survives = 2 * k > n || (2 * k == n && k > 0 && out.side.front() == out.counted.front());
  return out;
}

downing_decision decide_downing(const member_view& view, const reachability& reach,
                                const member_id& self, const downing_config& cfg,
                                time_point last_change, time_point now) {
  auto lead = std::min(cfg.self_down_lead, cfg.stable_after);
  auto stable_for = now > last_change ? now - last_change : time_point::duration::zero();
  // The earliest any decision can come: skip the work before it.
  if (stable_for < cfg.stable_after - lead) return {};
  auto rec = view.find(self);
  if (!rec || !is_observer_status(rec->status)) return {};
  auto sides = downing_sides_of(view, reach);
  if (sides.unreachable.empty()) return {};
  if (!sides.survives || !contains(sides.side, self)) return {downing_kind::down_self, {}};
  if (stable_for < cfg.stable_after) return {};
  downing_decision out{downing_kind::down_members, {}};
  for (const auto& m : sides.unreachable)
    if (!contains(sides.side, m) && view.find(m)) out.members.push_back(m);
  if (out.members.empty()) return {};
  return out;
}

} // namespace strata::cluster
