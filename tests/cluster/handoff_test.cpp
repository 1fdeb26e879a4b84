// strata/cluster/handoff.hpp: the handoff state machine, alone and as a model driven by
// random interleavings of joins, leaves, crashes (then the leader's fail_over), commands
// and protocol messages (stale and duplicated ones included).
#include "strata/cluster/handoff.hpp"

#include "strata/cluster/allocation.hpp"
#include "strata/cluster/leader.hpp"

#include "cluster_test_util.hpp"

#include <doctest/doctest.h>

using namespace strata::cluster;
using namespace strata::cluster::test;

TEST_CASE("a planned move: serving, stopping, flushed, handed over, restoring, serving") {
  member_id b{{"h", 1}, 1}, c{{"h", 2}, 1};
  shard_state s;
  auto r = step(s, retarget{b});
  CHECK(r.state == shard_state{handoff_phase::handed_over, b, b, 1});
  CHECK_FALSE(step(r.state, restored{b, 1}).applied); // out of phase
  r = step(r.state, restore_begun{b, 1});
  r = step(r.state, restored{b, 1});
  CHECK(may_serve(r.state, b));
  r = step(r.state, retarget{c});
  CHECK(r.state.phase == handoff_phase::stopping);
  CHECK_FALSE(may_serve(r.state, b));
  CHECK(may_write(r.state, b));                        // in-flight writes finish
  CHECK_FALSE(step(r.state, hand_over{b, 1}).applied); // not flushed yet
  CHECK_FALSE(step(r.state, flushed{c, 1}).applied);   // not the holder
  CHECK_FALSE(step(r.state, flushed{b, 0}).applied);   // an older epoch
  r = step(r.state, flushed{b, 1});
  CHECK_FALSE(may_write(r.state, b));
  CHECK(holders({r.state}) == std::set<member_id>{b});
  r = step(r.state, hand_over{b, 1});
  CHECK(r.state == shard_state{handoff_phase::handed_over, c, c, 2});
  CHECK(holders({r.state}) == std::set<member_id>{c});
  CHECK_FALSE(step(r.state, hand_over{b, 1}).applied); // duplicate
}

TEST_CASE("a move called off serves again under a new epoch, so late messages are stale") {
  member_id b{{"h", 1}, 1}, c{{"h", 2}, 1};
  shard_state s{handoff_phase::serving, b, b, 4};
  auto r = step(s, retarget{c});
  r = step(r.state, retarget{b}); // called off while stopping: in-flight writes finish first
  CHECK(r.state.phase == handoff_phase::stopping);
  r = step(r.state, flushed{b, 4});
  CHECK(r.state == shard_state{handoff_phase::handed_over, b, b, 5});
  r = step(step(r.state, restore_begun{b, 5}).state, restored{b, 5});
  CHECK(r.state == shard_state{handoff_phase::serving, b, b, 5});
  // Called off once flushed: the same, from the retarget.
  r = step(step(r.state, retarget{c}).state, flushed{b, 5});
  r = step(r.state, retarget{b});
  CHECK(r.state == shard_state{handoff_phase::handed_over, b, b, 6});
  r = step(step(r.state, restore_begun{b, 6}).state, restored{b, 6});
  // The late `flushed` of an earlier round does not stop the shard now serving.
  r = step(step(r.state, retarget{c}).state, retarget{b});
  CHECK(r.state.phase == handoff_phase::stopping);
  CHECK_FALSE(step(r.state, flushed{b, 5}).applied);
  // With no member up, a flushed shard waits: a handover needs a target.
  r = step(step(r.state, retarget{std::nullopt}).state, flushed{b, 6});
  CHECK(r.state.phase == handoff_phase::flushed);
  CHECK_FALSE(step(r.state, hand_over{b, 6}).applied);
  // A target that moved during the restore makes the new holder stop right away.
  shard_state t{handoff_phase::restoring, c, c, 5};
  t = step(t, retarget{b}).state;
  t = step(t, restored{c, 5}).state;
  CHECK(t.phase == handoff_phase::stopping);
}

namespace {

constexpr std::uint32_t model_shards = 16;

/// The cluster as the model sees it: the view, each shard's handoff record, the
/// commands each holder accepted and has not written yet, and each shard's write log.
struct model {
  model(std::mt19937_64& r, std::vector<member_id> members) : rng(r), pool(std::move(members)) {}

  std::mt19937_64& rng;
  std::vector<member_id> pool;
  std::size_t next_member = 0;
  member_view view;
  std::vector<shard_state> shards = std::vector<shard_state>(model_shards);
  std::vector<std::vector<std::uint64_t>> in_flight =
    std::vector<std::vector<std::uint64_t>>(model_shards); // epochs of accepted commands
  std::vector<std::vector<std::pair<member_id, std::uint64_t>>> log =
    std::vector<std::vector<std::pair<member_id, std::uint64_t>>>(model_shards);

  void apply(shard_id s, const handoff_event& e) {
    auto before = shards[s];
    auto r = step(before, e);
    if (!std::holds_alternative<retarget>(e) && r.applied) {
      // Only the holder, under its epoch, advances the protocol.
      std::visit(
        [&](const auto& ev) {
          using ev_t = std::decay_t<decltype(ev)>;
          if constexpr (std::is_same_v<ev_t, fail_over>) {
            // The leader, only for a holder the view says is down, under its epoch.
            CHECK(before.holder == ev.failed);
            CHECK(before.epoch == ev.epoch);
            CHECK(dead.count(ev.failed) == 1);
          } else if constexpr (!std::is_same_v<ev_t, retarget>) {
            CHECK(before.holder == ev.by);
            CHECK(before.epoch == ev.epoch);
            CHECK(dead.count(ev.by) == 0); // a crashed holder sends nothing
          }
        },
        e);
    }
    if (r.state.holder != before.holder) CHECK(r.state.epoch == before.epoch + 1);
    CHECK(r.state.epoch >= before.epoch);
    if (before.phase == handoff_phase::stopping && r.state.phase != handoff_phase::stopping)
      CHECK(in_flight[s].empty()); // no stopping holder leaves a write unfinished
    if (r.state.phase == handoff_phase::serving && before.phase != handoff_phase::serving)
      CHECK(r.state.epoch > last_serving_epoch(s)); // every serving period: a new epoch
    if (r.state.phase == handoff_phase::serving) serving_epochs[s] = r.state.epoch;
    if (!r.applied) CHECK(r.state == before);
    shards[s] = r.state;
  }

  std::vector<std::uint64_t> serving_epochs = std::vector<std::uint64_t>(model_shards);
  std::vector<std::vector<handoff_event>> sent = std::vector<std::vector<handoff_event>>(
    model_shards); // protocol messages sent so far: late or duplicate deliveries

  std::uint64_t last_serving_epoch(shard_id s) const { return serving_epochs[s]; }

  void send(shard_id s, const handoff_event& e) {
    sent[s].push_back(e);
    apply(s, e);
  }

  std::set<member_id> dead;  ///< crashed members: they send and write nothing any more
  std::size_t failovers = 0; ///< fail_over events the leader wrote

  void leader_tick() {
    view = leader_actions(view, holders(shards));
    auto table = allocate(view, model_shards);
    for (shard_id s = 0; s < model_shards; ++s) {
      apply(s, retarget{table[s]});
      // The leader fails over every shard whose holder is down or removed.
      const auto& st = shards[s];
      if (st.phase == handoff_phase::unowned || !st.holder || !table[s]) continue;
      auto rec = view.find(*st.holder);
      if (!rec || rec->status < member_status::down || *table[s] == *st.holder) continue;
      send(s, fail_over{*st.holder, st.epoch, *table[s]});
      ++failovers;
    }
  }

  /// A live member dies without leaving; the (surviving side's) leader downs it. What
  /// it accepted and had not written dies with it.
  void crash() {
    std::vector<member_id> live;
    for (auto s : {member_status::up, member_status::leaving, member_status::exiting})
      for (auto& m : view.with_status(s))
        live.push_back(m);
    if (view.with_status(member_status::up).size() < 2 || live.empty()) return;
    auto victim = live[pick(rng, live.size())];
    dead.insert(victim);
    view.set_status(victim, member_status::down);
    for (shard_id s = 0; s < model_shards; ++s)
      if (shards[s].holder == victim) in_flight[s].clear();
  }

  void join() {
    if (next_member < pool.size()) view.add_joining(pool[next_member++]);
  }

  void leave() {
    auto up = view.with_status(member_status::up);
    if (up.size() > 1) view.set_status(up[pick(rng, up.size())], member_status::leaving);
  }

  void command(shard_id s) {
    auto& st = shards[s];
    if (st.holder && dead.count(*st.holder) != 0) return;
    for (const auto& m : pool)
      if (may_serve(st, m)) {
        CHECK(m == st.holder);
        in_flight[s].push_back(st.epoch);
      }
  }

  void finish_write(shard_id s) {
    if (in_flight[s].empty()) return;
    auto epoch = in_flight[s].front();
    in_flight[s].erase(in_flight[s].begin());
    REQUIRE(shards[s].holder.has_value());
    CHECK(may_write(shards[s], *shards[s].holder));
    CHECK(epoch == shards[s].epoch);
    if (!log[s].empty()) {
      CHECK(log[s].back().second <= epoch); // epochs never go back in the log
      if (log[s].back().second == epoch) CHECK(log[s].back().first == *shards[s].holder);
    }
    log[s].emplace_back(*shards[s].holder, epoch);
  }

  /// The holder's next protocol message (what the carrier would send), if any.
  std::optional<handoff_event> protocol(shard_id s) const {
    const auto& st = shards[s];
    if (!st.holder || dead.count(*st.holder) != 0) return std::nullopt;
    switch (st.phase) {
      case handoff_phase::stopping:
        if (in_flight[s].empty()) return handoff_event{flushed{*st.holder, st.epoch}};
        return std::nullopt;
      case handoff_phase::flushed: return handoff_event{hand_over{*st.holder, st.epoch}};
      case handoff_phase::handed_over: return handoff_event{restore_begun{*st.holder, st.epoch}};
      case handoff_phase::restoring: return handoff_event{restored{*st.holder, st.epoch}};
      default: return std::nullopt;
    }
  }

  /// A late or duplicate message sent earlier, or one from a member that does not hold
  /// the shard: each must be ignored.
  handoff_event noise(shard_id s) {
    if (!sent[s].empty() && pick(rng, 2) == 0) return sent[s][pick(rng, sent[s].size())];
    auto by = pool[pick(rng, pool.size())];
    if (by == shards[s].holder) by = member_id{{"stranger", 1}, 1};
    auto epoch = shards[s].epoch;
    switch (pick(rng, 6)) {
      case 0: return flushed{by, epoch};
      case 1: return hand_over{by, epoch};
      case 2: return restore_begun{by, epoch};
      case 3: return fail_over{by, epoch, pool[pick(rng, pool.size())]}; // not the holder
      case 4:
        if (shards[s].holder) // the holder, but an older epoch (a duplicate fail_over)
          return fail_over{*shards[s].holder, epoch - 1, pool[pick(rng, pool.size())]};
        return restored{by, epoch};
      default: return restored{by, epoch};
    }
  }

  void random_action(bool membership) {
    shard_id s = static_cast<shard_id>(pick(rng, model_shards));
    switch (pick(rng, membership ? 9 : 6)) {
      case 0: leader_tick(); break;
      case 1: command(s); break;
      case 2: finish_write(s); break;
      case 3:
      case 4:
        if (auto e = protocol(s)) send(s, *e);
        break;
      case 5: {
        auto e = noise(s);
        CHECK_FALSE(step(shards[s], e).applied);
        apply(s, e);
        break;
      }
      case 6: join(); break;
      case 7: crash(); break;
      default: leave(); break;
    }
  }
};

} // namespace

TEST_CASE("a failed holder's shard fails over from any phase, once, under epoch + 1") {
  member_id b{{"h", 1}, 1}, c{{"h", 2}, 1}, d{{"h", 3}, 1};
  for (auto p : {handoff_phase::serving, handoff_phase::stopping, handoff_phase::flushed,
                 handoff_phase::handed_over, handoff_phase::restoring}) {
    CAPTURE(to_string(p));
    shard_state s{p, b, d, 7};
    auto r = step(s, fail_over{b, 7, c});
    CHECK(r.applied);
    CHECK(r.state == shard_state{handoff_phase::handed_over, c, c, 8});
    CHECK_FALSE(step(r.state, fail_over{b, 7, c}).applied); // a duplicate is stale
    CHECK_FALSE(step(r.state, fail_over{b, 7, d}).applied); // so is another leader's
    r = step(step(r.state, restore_begun{c, 8}).state, restored{c, 8});
    CHECK(may_serve(r.state, c));
  }
  CHECK_FALSE(step(shard_state{}, fail_over{b, 0, c}).applied); // unowned
  shard_state s{handoff_phase::serving, b, b, 3};
  CHECK_FALSE(step(s, fail_over{c, 3, d}).applied); // not the holder
  CHECK_FALSE(step(s, fail_over{b, 2, d}).applied); // an older epoch
  CHECK_FALSE(step(s, fail_over{b, 3, b}).applied); // to itself
}

TEST_CASE("random interleavings keep one writer per shard and epochs increasing") {
  STRATA_CLUSTER_RNG(rng);
  std::size_t failovers = 0, crashed = 0;
  for (int run = 0; run < 200; ++run) {
    CAPTURE(run);
    model m(rng, distinct_members(rng, 6));
    m.join(); // the first node
    for (int tick = 0; tick < 400; ++tick)
      m.random_action(true);
    // Then no membership changes: the protocol runs to its end and every shard serves
    // at the owner the allocation names.
    for (int tick = 0; tick < 4000; ++tick)
      m.random_action(false);
    for (int round = 0; round < 20; ++round) {
      m.leader_tick();
      for (shard_id s = 0; s < model_shards; ++s) {
        while (!m.in_flight[s].empty())
          m.finish_write(s);
        while (auto e = m.protocol(s))
          m.send(s, *e);
      }
    }
    auto table = allocate(m.view, model_shards);
    for (shard_id s = 0; s < model_shards; ++s) {
      CAPTURE(s);
      REQUIRE(table[s].has_value());
      CHECK(may_serve(m.shards[s], *table[s]));
    }
    CHECK(m.view.with_status(member_status::leaving).empty());
    CHECK(m.view.with_status(member_status::exiting).empty());
    CHECK(m.view.with_status(member_status::down).empty()); // removed once they hold none
    for (shard_id s = 0; s < model_shards; ++s)
      CHECK(m.dead.count(*m.shards[s].holder) == 0);
    failovers += m.failovers;
    crashed += m.dead.size();
  }
  MESSAGE(crashed << " members crashed, " << failovers << " shards failed over in 200 runs");
  CHECK(crashed > 0);
  CHECK(failovers > 0);
}
