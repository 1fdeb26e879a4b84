#include "strata/cluster/allocation.hpp"

#include "strata/persistence/assert.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <optional>
#include <utility>

namespace strata::cluster {

namespace {

/// splitmix64: a fixed, portable stream of 64-bit values from one seed.
struct splitmix64 {
  std::uint64_t state;
  std::uint64_t next() noexcept {
    std::uint64_t z = (state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
};

std::uint64_t address_hash(const address& a) { return persistence::fnv1a_64(to_string(a)); }

std::uint64_t tiebreak(std::uint64_t member_hash, shard_id s) noexcept {
  return splitmix64{member_hash ^ (std::uint64_t{s} << 32 | s)}.next();
}

/// One up member's weights, computed once per allocation.
struct candidate {
  const member_id* id;
  std::uint64_t hash;
  std::vector<std::uint32_t> ranks;
};

bool beats(const candidate& a, const candidate& b, shard_id s) {
  if (a.ranks[s] != b.ranks[s]) return a.ranks[s] > b.ranks[s];
  auto ta = tiebreak(a.hash, s), tb = tiebreak(b.hash, s);
  if (ta != tb) return ta > tb;
  return *a.id < *b.id;
}

/// The candidate that wins shard `s` among those `eligible` accepts, or nullptr.
template <class Eligible>
const candidate* best_for(const std::vector<candidate>& up, shard_id s, Eligible eligible) {
  const candidate* best = nullptr;
  for (const auto& c : up)
    if (eligible(c) && (best == nullptr || beats(c, *best, s))) best = &c;
  return best;
}

/// Moves shards until every member owns lo..hi of them (allocation.hpp, "Bounds"): a
/// member above hi gives the shard that its best taker (a member below hi) weighs
/// highest; a member below lo takes, from members above lo, the shard it weighs
/// highest. Each step removes one unit of excess or deficit and creates none, so it
/// ends. Deterministic: the same table on every node.
void enforce_bounds(const std::vector<candidate>& up, shard_table& table, std::uint32_t lo,
                    std::uint32_t hi) {
  std::vector<std::uint32_t> count(up.size(), 0);
  std::vector<std::size_t> owner(table.size());
  for (shard_id s = 0; s < table.size(); ++s)
    for (std::size_t i = 0; i < up.size(); ++i)
      if (*up[i].id == *table[s]) {
        owner[s] = i;
        ++count[i];
      }
  auto index = [&](const candidate& c) {
    return static_cast<std::size_t>(&c - up.data());
  };
  for (;;) {
    std::optional<std::pair<shard_id, std::size_t>> move; // shard, new owner
    auto better = [&](shard_id s, std::size_t to) {       // than `move`, by the taker's rank
      return !move || up[to].ranks[s] > up[move->second].ranks[move->first];
    };
    for (std::size_t i = 0; i < up.size() && !move; ++i) {
      if (count[i] <= hi) continue;
      for (shard_id s = 0; s < table.size(); ++s) {
        if (owner[s] != i) continue;
        auto* c = best_for(up, s, [&](const candidate& x) {
          return count[index(x)] < hi;
        });
        if (c != nullptr && better(s, index(*c))) move = std::make_pair(s, index(*c));
      }
    }
    for (std::size_t i = 0; i < up.size() && !move; ++i) {
      if (count[i] >= lo) continue;
      for (shard_id s = 0; s < table.size(); ++s)
        if (count[owner[s]] > lo && better(s, i)) move = std::make_pair(s, i);
    }
    if (!move) return;
    auto [s, to] = *move;
    --count[owner[s]];
    ++count[to];
    owner[s] = to;
    table[s] = *up[to].id;
  }
}

} // namespace

std::pair<std::uint32_t, std::uint32_t> share_bounds(std::uint32_t shards, std::uint32_t members) {
  if (members == 0) return {0, shards};
  const double mean = static_cast<double>(shards) / members;
  const double slack = 1.4 * std::sqrt(mean); // wider, relative to the mean, for few shards
  auto lo = static_cast<std::uint32_t>(std::max(0.0, std::ceil(mean - slack)));
  auto hi = static_cast<std::uint32_t>(std::floor(mean + slack));
  lo = std::min(lo, shards / members);                 // lo * members <= shards
  hi = std::max(hi, (shards + members - 1) / members); // hi * members >= shards
  return {lo, hi};
}

std::vector<std::uint32_t> member_ranks(const address& a, std::uint32_t shards) {
  std::vector<std::uint32_t> ranks(shards);
  std::iota(ranks.begin(), ranks.end(), 0u);
  splitmix64 rng{address_hash(a)};
  for (std::uint32_t i = shards; i > 1; --i) {
    auto j = static_cast<std::uint32_t>(rng.next() % i);
    std::swap(ranks[i - 1], ranks[j]);
  }
  return ranks;
}

shard_table allocate(const member_view& view, std::uint32_t shards) {
  std::vector<candidate> up;
  for (const auto& [id, rec] : view.members())
    if (rec.status == member_status::up)
      up.push_back(candidate{&id, address_hash(id.address), member_ranks(id.address, shards)});
  shard_table table(shards);
  if (up.empty()) return table;
  for (shard_id s = 0; s < shards; ++s) {
    const candidate* best = &up.front();
    for (const auto& c : up)
      if (beats(c, *best, s)) best = &c;
    table[s] = *best->id;
  }
  auto [lo, hi] = share_bounds(shards, static_cast<std::uint32_t>(up.size()));
  enforce_bounds(up, table, lo, hi);
  return table;
}

std::optional<member_id> owner_of(shard_id shard, const member_view& view, std::uint32_t shards) {
  if (shard >= shards) return std::nullopt;
  return allocate(view, shards)[shard];
}

std::vector<shard_move> moves(const shard_table& before, const shard_table& after) {
  STRATA_ASSERT(before.size() == after.size(), "shard tables of different shard counts");
  std::vector<shard_move> out;
  for (shard_id s = 0; s < before.size(); ++s)
    if (before[s] != after[s]) out.push_back(shard_move{s, before[s], after[s]});
  return out;
}

} // namespace strata::cluster
