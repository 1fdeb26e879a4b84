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

void reachability::replace_row(entry& at, std::shared_ptr<const reachability_row> row) {
  digest_ -= hash_of(at.observer, *at.row);
  at.row = std::move(row);
  digest_ += hash_of(at.observer, *at.row);
}

namespace {

template <class Rows>
auto lower_bound_of(Rows& rows, const member_id& observer) {
  return std::lower_bound(rows.begin(), rows.end(), observer,
                          [](const reachability::entry& e, const member_id& m) {
                            return e.observer < m;
                          });
}

} // namespace

reachability::rows_type::iterator reachability::find(const member_id& observer) {
  auto it = lower_bound_of(rows_, observer);
  return it != rows_.end() && it->observer == observer ? it : rows_.end();
}

const reachability_row* reachability::row(const member_id& observer) const {
  auto it = lower_bound_of(rows_, observer);
  return it != rows_.end() && it->observer == observer ? it->row.get() : nullptr;
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
  auto r = row(observer);
  if (r == nullptr || r->unreachable.count(subject) == 0) return reachability_status::reachable;
  return reachability_status::unreachable;
}

bool reachability::record(const member_id& observer, const member_id& subject,
                          reachability_status s) {
  if (status(observer, subject) == s) return false;
  auto it = find(observer);
  if (it == rows_.end() && rows_.size() >= max_members) return false;
  auto next = it == rows_.end() ? reachability_row{} : *it->row;
  if (s == reachability_status::unreachable) {
    if (next.unreachable.size() >= max_members) return false;
    next.unreachable.insert(subject);
  } else {
    next.unreachable.erase(subject);
  }
  ++next.version;
  absorb(observer, next);
  return true;
}

bool reachability::absorb(const member_id& observer, const reachability_row& row) {
  auto it = lower_bound_of(rows_, observer);
  if (it == rows_.end() || it->observer != observer) {
    it = rows_.insert(it, entry{observer, std::make_shared<const reachability_row>(row)});
    digest_ += hash_of(observer, row);
    return true;
  }
  if (!precedes(*it->row, row)) return false;
  replace_row(*it, std::make_shared<const reachability_row>(row));
  return true;
}

bool reachability::merge_from(const reachability& other) {
  if (&other == this) return false;
  // Pass 1 over both ordered vectors: how many observers are new, and is any row to
  // replace? "Nothing new" (the common gossip) then costs no write at all.
  std::size_t added = 0;
  bool replace = false;
  auto a = rows_.begin();
  for (const auto& b : other.rows_) {
    int c = -1;
    while (a != rows_.end() && (c = compare(a->observer, b.observer)) < 0)
      ++a;
    if (a != rows_.end() && c == 0) {
      replace = replace || (a->row != b.row && precedes(*a->row, *b.row));
      ++a;
    } else {
      ++added;
    }
  }
  if (added == 0 && !replace) return false;
  // Pass 2, from the back, in place: the vector grows by `added` entries and each
  // entry moves at most once. Rows are shared, never copied.
  auto i = rows_.size(), j = other.rows_.size();
  rows_.resize(rows_.size() + added);
  auto w = rows_.size();
  auto keep = [&] { // moves rows_[i - 1] to rows_[w - 1]; in place once no insert is left
    --w, --i;
    if (w != i) rows_[w] = std::move(rows_[i]);
  };
  while (j > 0) {
    const auto& b = other.rows_[j - 1];
    int c = i > 0 ? compare(rows_[i - 1].observer, b.observer) : -1;
    if (c > 0) {
      keep();
    } else if (c == 0) {
      auto& mine = rows_[i - 1];
      if (mine.row != b.row && precedes(*mine.row, *b.row)) replace_row(mine, b.row);
      keep();
      --j;
    } else {
      digest_ += hash_of(b.observer, *b.row);
      rows_[--w] = b;
      --j;
    }
  }
  return true;
}

bool reachability::is_unreachable(const member_id& subject, const member_view& view) const {
  for (const auto& e : rows_)
    if (e.observer != subject && e.row->unreachable.count(subject) != 0 &&
        is_live_observer(view, e.observer))
      return true;
  return false;
}

std::set<member_id> reachability::unreachable(const member_view& view) const {
  // Rows and view are both ordered by member_id: walk them together.
  std::set<member_id> subjects;
  auto v = view.members().begin(), v_end = view.members().end();
  for (const auto& e : rows_) {
    if (e.row->unreachable.empty()) continue;
    while (v != v_end && v->first < e.observer)
      ++v;
    if (v == v_end || v->first != e.observer || !is_observer_status(v->second.status)) continue;
    for (const auto& subject : e.row->unreachable)
      if (subject != e.observer) subjects.insert(subject);
  }
  for (auto it = subjects.begin(); it != subjects.end();)
    it = is_gone(view, *it) ? subjects.erase(it) : std::next(it);
  return subjects;
}

bool reachability::prune(const member_view& view) {
  bool changed = false;
  rows_type out;
  out.reserve(rows_.size());
  for (auto& e : rows_) {
    if (is_gone(view, e.observer)) {
      digest_ -= hash_of(e.observer, *e.row);
      changed = true;
      continue;
    }
    const auto& set = e.row->unreachable;
    if (std::any_of(set.begin(), set.end(), [&](const member_id& m) {
          return is_gone(view, m);
        })) {
      auto next = *e.row;
      for (auto s = next.unreachable.begin(); s != next.unreachable.end();)
        s = is_gone(view, *s) ? next.unreachable.erase(s) : std::next(s);
      replace_row(e, std::make_shared<const reachability_row>(std::move(next)));
      changed = true;
    }
    out.push_back(std::move(e));
  }
  rows_ = std::move(out);
  return changed;
}

bool operator==(const reachability& a, const reachability& b) noexcept {
  if (a.rows_.size() != b.rows_.size()) return false;
  for (std::size_t i = 0; i < a.rows_.size(); ++i) {
    const auto &x = a.rows_[i], &y = b.rows_[i];
    if (x.observer != y.observer || (x.row != y.row && *x.row != *y.row)) return false;
  }
  return true;
}

reachability merge(const reachability& a, const reachability& b) {
  reachability out = a;
  out.merge_from(b);
  return out;
}

bool includes(const reachability& a, const reachability& b) {
  for (const auto& e : b.rows()) {
    auto mine = a.row(e.observer);
    if (mine == nullptr || precedes(*mine, *e.row)) return false;
  }
  return true;
}

} // namespace strata::cluster
