#include "strata/cluster/reachability.hpp"

#include <algorithm>
#include <functional>
#include <iterator>
#include <string>

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

std::uint64_t mix(std::uint64_t x) noexcept { // splitmix64's finaliser
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

std::uint64_t hash_of(const member_id& m) noexcept {
  std::uint64_t h = std::hash<std::string>{}(m.address.host);
  return mix(h ^ mix((std::uint64_t{m.address.port} << 48) ^ m.incarnation));
}

/// The row's share of the table's digest.
std::uint64_t hash_of(const member_id& observer, const reachability_row& row) noexcept {
  std::uint64_t h = mix(hash_of(observer) ^ mix(row.version));
  for (const auto& s : row.unreachable)
    h = mix(h ^ hash_of(s));
  return h;
}

/// Three-way member_id order (the order of operator<), one string comparison.
int compare(const member_id& a, const member_id& b) noexcept {
  if (int c = a.address.host.compare(b.address.host)) return c;
  if (a.address.port != b.address.port) return a.address.port < b.address.port ? -1 : 1;
  if (a.incarnation != b.incarnation) return a.incarnation < b.incarnation ? -1 : 1;
  return 0;
}

} // namespace

void reachability::replace_row(reachability_row& at, const member_id& observer,
                               reachability_row row) {
  digest_ -= hash_of(observer, at);
  at = std::move(row);
  digest_ += hash_of(observer, at);
}

const char* to_string(reachability_status s) noexcept {
  return s == reachability_status::reachable ? "reachable" : "unreachable";
}

bool precedes(const reachability_row& a, const reachability_row& b) noexcept {
  if (a.version != b.version) return a.version < b.version;
  // Same version: the same row but for forged input; == is the cheap common answer.
  return a.unreachable != b.unreachable && a.unreachable < b.unreachable;
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
    digest_ += hash_of(observer, it->second);
  }
  auto& row = it->second;
  if (s == reachability_status::unreachable && row.unreachable.size() >= max_members) return false;
  digest_ -= hash_of(observer, row);
  if (s == reachability_status::unreachable) {
    row.unreachable.insert(subject);
  } else {
    row.unreachable.erase(subject);
  }
  ++row.version;
  digest_ += hash_of(observer, row);
  return true;
}

bool reachability::absorb(const member_id& observer, const reachability_row& row) {
  auto [it, added] = rows_.emplace(observer, row);
  if (added) {
    digest_ += hash_of(observer, row);
    return true;
  }
  if (!precedes(it->second, row)) return false;
  replace_row(it->second, observer, row);
  return true;
}

bool reachability::merge_from(const reachability& other) {
  if (&other == this) return false;
  bool changed = false;
  // Both maps are ordered: walk them together, inserting with a hint.
  auto it = rows_.begin();
  for (const auto& [observer, row] : other.rows_) {
    int c = -1;
    while (it != rows_.end() && (c = compare(it->first, observer)) < 0)
      ++it;
    if (it != rows_.end() && c == 0) {
      if (precedes(it->second, row)) {
        replace_row(it->second, observer, row);
        changed = true;
      }
    } else {
      rows_.emplace_hint(it, observer, row);
      digest_ += hash_of(observer, row);
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
      digest_ -= hash_of(it->first, it->second);
      it = rows_.erase(it);
      changed = true;
      continue;
    }
    const auto& set = it->second.unreachable;
    if (std::none_of(set.begin(), set.end(), [&](const member_id& m) {
          return is_gone(view, m);
        })) {
      ++it;
      continue;
    }
    auto row = it->second;
    for (auto s = row.unreachable.begin(); s != row.unreachable.end();)
      s = is_gone(view, *s) ? row.unreachable.erase(s) : std::next(s);
    if (row.unreachable.size() != it->second.unreachable.size()) {
      replace_row(it->second, it->first, std::move(row));
      changed = true;
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
