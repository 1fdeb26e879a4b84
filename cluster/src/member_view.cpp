#include "strata/cluster/member_view.hpp"

#include <algorithm>

namespace strata::cluster {

std::optional<member_record> member_view::find(const member_id& m) const {
  auto it = members_.find(m);
  if (it == members_.end()) return std::nullopt;
  return it->second;
}

bool member_view::add_joining(const member_id& m) {
  if (members_.size() >= max_members || members_.count(m) != 0) return false;
  members_.emplace(m, member_record{member_status::joining, 1});
  return true;
}

bool member_view::set_status(const member_id& m, member_status s) {
  auto it = members_.find(m);
  if (it == members_.end() || !is_forward(it->second.status, s)) return false;
  it->second.status = s;
  ++it->second.version;
  return true;
}

std::vector<member_id> member_view::with_status(member_status s) const {
  std::vector<member_id> out;
  for (const auto& [id, rec] : members_)
    if (rec.status == s) out.push_back(id);
  return out;
}

bool member_view::absorb(const member_id& m, const member_record& r) {
  auto [it, added] = members_.emplace(m, r);
  if (added) return true;
  if (!precedes(it->second, r)) return false;
  it->second = r;
  return true;
}

std::uint64_t member_view::version() const noexcept {
  std::uint64_t sum = 0;
  // Each record counts as (status, version) packed in that order, so a record that
  // supersedes another (precedes) always counts more, whatever the two versions.
  for (const auto& kv : members_) {
    auto version = std::min<std::uint64_t>(kv.second.version, 0xffffffffu);
    sum += (std::uint64_t{static_cast<std::uint8_t>(kv.second.status)} << 32) + version;
  }
  return sum;
}

member_view merge(const member_view& a, const member_view& b) {
  member_view out = a;
  for (const auto& [id, rec] : b.members_) {
    auto [it, inserted] = out.members_.emplace(id, rec);
    if (!inserted && precedes(it->second, rec)) it->second = rec;
  }
  return out;
}

bool includes(const member_view& a, const member_view& b) {
  for (const auto& [id, rec] : b.members()) {
    auto mine = a.find(id);
    if (!mine || precedes(*mine, rec)) return false;
  }
  return true;
}

} // namespace strata::cluster
