// strata/cluster/reachability.hpp: observations per observer, the merge is a lattice
// join over random tables, and the queries ignore observers that no longer count.
#include "strata/cluster/reachability.hpp"

#include "cluster_test_util.hpp"

#include <doctest/doctest.h>

#include <map>

using namespace strata::cluster;
using namespace strata::cluster::test;

namespace {

constexpr auto unreachable = reachability_status::unreachable;
constexpr auto reachable = reachability_status::reachable;

/// A table built from random record() steps of observers and subjects drawn from `pool`,
/// with the occasional forged row (same version, other content) to exercise the tie-break.
reachability random_table(std::mt19937_64& rng, const std::vector<member_id>& pool,
                          std::size_t steps) {
  reachability r;
  for (std::size_t i = 0; i < steps; ++i) {
    const auto& o = pool[pick(rng, pool.size())];
    const auto& s = pool[pick(rng, pool.size())];
    if (pick(rng, 20) == 0) {
      reachability_row forged{pick(rng, 4), {s}};
      r.absorb(o, forged);
    } else {
      r.record(o, s, pick(rng, 2) == 0 ? unreachable : reachable);
    }
  }
  return r;
}

} // namespace

TEST_CASE("an observer's row records verdicts and bumps its version only on change") {
  member_id a{{"h", 1}, 1}, b{{"h", 2}, 1}, c{{"h", 3}, 1};
  reachability r;
  CHECK(r.status(a, b) == reachable);
  CHECK_FALSE(r.record(a, b, reachable)); // already so: nothing to gossip
  CHECK(r.record(a, b, unreachable));
  CHECK_FALSE(r.record(a, b, unreachable));
  CHECK(r.record(a, c, unreachable));
  CHECK(*r.row(a) == reachability_row{2, {b, c}});
  CHECK(r.status(a, b) == unreachable);
  CHECK(r.status(b, a) == reachable);
  // b answers again: the observer records reachable under a higher version, and a
  // stale copy of the row cannot undo it.
  auto stale = r;
  CHECK(r.record(a, b, reachable));
  CHECK(*r.row(a) == reachability_row{3, {c}});
  CHECK_FALSE(r.merge_from(stale));
  CHECK(merge(stale, r) == r);
  CHECK(r.status(a, b) == reachable);
  CHECK(to_string(unreachable) == std::string{"unreachable"});
}

TEST_CASE("queries count only live observers and skip down subjects") {
  member_id a{{"h", 1}, 1}, b{{"h", 2}, 1}, c{{"h", 3}, 1}, d{{"h", 4}, 1};
  auto view = all_up({a, b, c, d});
  reachability r;
  r.record(a, c, unreachable);
  r.record(b, d, unreachable);
  CHECK(r.is_unreachable(c, view));
  CHECK_FALSE(r.is_unreachable(a, view));
  CHECK(r.unreachable(view) == std::set<member_id>{c, d});
  // b is downed: its complaint about d no longer counts.
  view.set_status(b, member_status::down);
  CHECK_FALSE(r.is_unreachable(d, view));
  CHECK(r.unreachable(view) == std::set<member_id>{c});
  // c is downed: it is no longer listed as unreachable (it is gone), and prune drops
  // b's row and the entry about c.
  view.set_status(c, member_status::down);
  CHECK(r.unreachable(view).empty());
  CHECK(r.prune(view));
  CHECK_FALSE(r.prune(view));
  reachability rebuilt;
  for (const auto& e : r.rows())
    rebuilt.absorb(e.observer, *e.row);
  CHECK(rebuilt.digest() == r.digest());
  CHECK(r.row(b) == nullptr);
  CHECK(r.row(a)->unreachable.empty());
  // A joining observer does not count yet; a joining subject does.
  member_id e{{"h", 5}, 1};
  view.add_joining(e);
  r.record(e, a, unreachable);
  r.record(a, e, unreachable);
  CHECK_FALSE(r.is_unreachable(a, view));
  CHECK(r.is_unreachable(e, view));
}

TEST_CASE("merge laws hold over random tables") {
  STRATA_CLUSTER_RNG(rng);
  for (int round = 0; round < 2000; ++round) {
    CAPTURE(round);
    std::vector<member_id> pool;
    auto n = 1 + pick(rng, 6);
    for (std::uint64_t i = 0; i < n; ++i)
      pool.push_back(random_member(rng));
    auto a = random_table(rng, pool, pick(rng, 25));
    auto b = random_table(rng, pool, pick(rng, 25));
    auto c = random_table(rng, pool, pick(rng, 25));
    auto ab = merge(a, b);
    CHECK(ab == merge(b, a));                     // commutative
    CHECK(merge(ab, c) == merge(a, merge(b, c))); // associative
    CHECK(merge(a, a) == a);                      // idempotent
    CHECK(includes(ab, a));                       // monotone: loses nothing
    CHECK(includes(ab, b));
    // merge_from agrees with merge and reports a change exactly when there is one.
    auto in_place = a;
    CHECK(in_place.merge_from(b) == (ab != a));
    CHECK(in_place == ab);
    // absorb row by row gives the same join as merge.
    auto rows = a;
    for (const auto& e : b.rows())
      rows.absorb(e.observer, *e.row);
    CHECK(rows == ab);
    // The digest is kept up to date by every change: the same as a table rebuilt from
    // the rows, equal for equal tables.
    reachability rebuilt;
    for (const auto& e : ab.rows())
      rebuilt.absorb(e.observer, *e.row);
    CHECK(rebuilt.digest() == ab.digest());
    CHECK(merge(b, a).digest() == ab.digest());
    CHECK(in_place.digest() == ab.digest());
    if (ab != a) CHECK(ab.digest() != a.digest());
    // A later row of a merges to a later result.
    auto later = a;
    later.record(pool[pick(rng, pool.size())], pool[pick(rng, pool.size())],
                 pick(rng, 2) == 0 ? unreachable : reachable);
    CHECK(includes(merge(later, b), ab));
  }
}

TEST_CASE("random gossip of observations converges to one table") {
  STRATA_CLUSTER_RNG(rng);
  for (std::size_t n : {3u, 10u, 50u}) {
    CAPTURE(n);
    auto members = distinct_members(rng, n);
    std::vector<reachability> tables(n);
    std::map<member_id, reachability_row> written; // each node's row as it last wrote it
    for (std::size_t tick = 0; tick < 40 * n; ++tick) {
      auto from = pick(rng, n), to = pick(rng, n);
      if (pick(rng, 5) == 0 && // a node's own detector changes its mind about a peer
          tables[from].record(members[from], members[pick(rng, n)],
                              pick(rng, 2) == 0 ? unreachable : reachable))
        written[members[from]] = *tables[from].row(members[from]);
      tables[to].merge_from(tables[from]);
    }
    reachability join;
    for (const auto& t : tables)
      join.merge_from(t);
    std::size_t exchanges = 0;
    auto converged = [&] {
      for (const auto& t : tables)
        if (t != join) return false;
      return true;
    };
    for (; !converged() && exchanges < 100 * n; ++exchanges) {
      auto x = pick(rng, n), y = pick(rng, n);
      tables[x].merge_from(tables[y]);
      tables[y] = tables[x];
    }
    INFO("exchanges " << exchanges);
    CHECK(converged());
    // Every node's row everywhere is the one it wrote last: no verdict is lost or undone.
    std::map<member_id, reachability_row> rows;
    for (const auto& e : join.rows())
      rows.emplace(e.observer, *e.row);
    CHECK(rows == written);
  }
}
