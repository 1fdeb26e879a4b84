#include "strata/cluster/leader.hpp"

namespace strata::cluster {

namespace {

bool is_live(member_status s) noexcept {
  return s == member_status::joining || s == member_status::up || s == member_status::leaving ||
         s == member_status::exiting;
}

/// Whether another incarnation of m's address is live, and whether a newer one is known.
struct siblings {
  bool other_live = false;
  bool newer_known = false;
};

siblings siblings_of(const member_view& view, const member_id& m) {
  siblings out;
  // Members are ordered by address first: the incarnations of one address are adjacent.
  auto it = view.members().lower_bound(member_id{m.address, 0});
  for (; it != view.members().end() && it->first.address == m.address; ++it) {
    if (it->first.incarnation == m.incarnation) continue;
    out.other_live = out.other_live || is_live(it->second.status);
    out.newer_known = out.newer_known || it->first.incarnation > m.incarnation;
  }
  return out;
}

std::optional<member_status> decide(const member_view& view, const member_id& m, member_status s,
                                    const std::set<member_id>& holding) {
  auto sib = siblings_of(view, m);
  if (is_live(s) && sib.newer_known) return member_status::down;
  switch (s) {
    case member_status::joining:
      if (!sib.other_live) return member_status::up;
      break;
    case member_status::leaving: return member_status::exiting;
    case member_status::exiting:
    case member_status::down:
      if (holding.count(m) == 0) return member_status::removed;
      break;
    default: break;
  }
  return std::nullopt;
}

} // namespace

std::optional<member_id> leader_of(const member_view& view) {
  std::optional<member_id> joining;
  for (const auto& [id, rec] : view.members()) {
    if (rec.status == member_status::up || rec.status == member_status::leaving) return id;
    if (rec.status == member_status::joining && !joining) joining = id;
  }
  return joining;
}

member_view leader_actions(const member_view& view, const std::set<member_id>& holding_shards) {
  member_view next = view;
  for (const auto& [id, rec] : view.members())
    if (auto to = decide(view, id, rec.status, holding_shards)) next.set_status(id, *to);
  return next;
}

} // namespace strata::cluster
