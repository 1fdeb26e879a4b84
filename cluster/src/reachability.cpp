#include "strata/cluster/reachability.hpp"

#include <iterator>

namespace strata::cluster {

namespace {

bool is_gone(const member_view& view, const member_id& m) {
  auto r = view.find(m);
  return r && (r->status == member_status::down || r->status == member_status::removed);
}

bool is_live_observer(const member_view& view, const member_id& m) {
  auto r = view.find(m);
  return r && is_observer_status(r->status);
}

} // namespace

const char* to_string(reachability_status s) noexcept {
  return s == reachability_status::reachable ? "reachable" : "unreachable";
}

bool precedes(const reachability_row& a, const reachability_row& b) noexcept {
  if (a.version != b.version) return a.version < b.version;
  return a.unreachable < b.unreachable;
}

reachability_status reachability::status(const member_id& observer,
                                         const member_id& subject) const {
  auto it = rows_.find(observer);
  if (it == rows_.end() || it->second.unreachable.count(subject) == 0)
    return reachability_status::reachable;
  return reachability_status::unreachable;
}

bool reachability::record(const member_id& observer, const member_id& subject,
                          reachability_status s) {
  if (status(observer, subject) == s) return false;
  auto it = rows_.find(observer);
  if (it == rows_.end()) {
    if (rows_.size() >= max_members) return false;
    it = rows_.emplace(observer, reachability_row{}).first;
  }
  auto& row = it->second;
  if (s == reachability_status::unreachable) {
    if (row.unreachable.size() >= max_members) return false;
    row.unreachable.insert(subject);
  } else {
    row.unreachable.erase(subject);
  }
  ++row.version;
  return true;
}

bool reachability::absorb(const member_id& observer, const reachability_row& row) {
  auto [it, added] = rows_.emplace(observer, row);
  if (added) return true;
  if (!precedes(it->second, row)) return false;
  it->second = row;
  return true;
}

bool reachability::merge_from(const reachability& other) {
  bool changed = false;
  // Both maps are ordered: walk them together, inserting with a hint.
  auto it = rows_.begin();
  for (const auto& [observer, row] : other.rows_) {
    while (it != rows_.end() && it->first < observer)
      ++it;
    if (it != rows_.end() && it->first == observer) {
      if (precedes(it->second, row)) {
        it->second = row;
        changed = true;
      }
    } else {
      rows_.emplace_hint(it, observer, row);
      changed = true;
    }
  }
  return changed;
}

bool reachability::is_unreachable(const member_id& subject, const member_view& view) const {
  for (const auto& [observer, row] : rows_)
    if (observer != subject && row.unreachable.count(subject) != 0 &&
        is_live_observer(view, observer))
      return true;
  return false;
}

std::set<member_id> reachability::unreachable(const member_view& view) const {
  // Rows and view are both ordered by member_id: walk them together.
  std::set<member_id> subjects;
  auto v = view.members().begin(), v_end = view.members().end();
  for (const auto& [observer, row] : rows_) {
    if (row.unreachable.empty()) continue;
    while (v != v_end && v->first < observer)
      ++v;
    if (v == v_end || v->first != observer || !is_observer_status(v->second.status)) continue;
    for (const auto& subject : row.unreachable)
      if (subject != observer) subjects.insert(subject);
  }
  for (auto it = subjects.begin(); it != subjects.end();)
    it = is_gone(view, *it) ? subjects.erase(it) : std::next(it);
  return subjects;
}

bool reachability::prune(const member_view& view) {
  bool changed = false;
  for (auto it = rows_.begin(); it != rows_.end();) {
    if (is_gone(view, it->first)) {
      it = rows_.erase(it);
      changed = true;
      continue;
    }
    auto& set = it->second.unreachable;
    for (auto s = set.begin(); s != set.end();) {
      if (is_gone(view, *s)) {
        s = set.erase(s);
        changed = true;
      } else {
        ++s;
      }
    }
    ++it;
  }
  return changed;
}

reachability merge(const reachability& a, const reachability& b) {
  reachability out = a;
  out.merge_from(b);
  return out;
}

bool includes(const reachability& a, const reachability& b) {
  for (const auto& [observer, row] : b.rows()) {
    auto it = a.rows().find(observer);
    if (it == a.rows().end() || precedes(it->second, row)) return false;
  }
  return true;
}

} // namespace strata::cluster
