#include "strata/cluster/allocation.hpp"

#include "strata/persistence/assert.hpp"

#include <numeric>
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

} // namespace

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
