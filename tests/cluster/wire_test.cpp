// The node's own wire formats (cluster/src/wire.hpp): round trips, and defensive
// decoding of every truncation and of random bytes.
#include "cluster_test_util.hpp"
#include "wire.hpp"

using namespace strata::cluster;
using namespace strata::cluster::test;

namespace {

wire::gossip sample_gossip(std::mt19937_64& rng, std::uint32_t shards) {
  wire::gossip g;
  auto members = distinct_members(rng, 5);
  for (auto& m : members)
    g.view.absorb(m, member_record{static_cast<member_status>(pick(rng, 6)), pick(rng, 9)});
  g.table.resize(shards);
  for (auto& s : g.table) {
    s.phase = static_cast<handoff_phase>(pick(rng, 6));
    if (s.phase != handoff_phase::unowned) s.holder = members[pick(rng, members.size())];
    s.epoch = pick(rng, 100);
  }
  for (auto& observer : members)
    for (auto& subject : members)
      if (observer != subject && pick(rng, 3) == 0)
        g.reach.record(observer, subject, reachability_status::unreachable);
  return g;
}

} // namespace

TEST_CASE("gossip round-trips; every truncation and random bytes are refused") {
  STRATA_CLUSTER_RNG(rng);
  auto g = sample_gossip(rng, 16);
  auto bytes = wire::encode_gossip(g);
  auto back = wire::decode_gossip(bytes, 16);
  REQUIRE(back);
  CHECK(back->view == g.view);
  CHECK(back->kind == g.kind);
  for (std::size_t i = 0; i < g.table.size(); ++i)
    CHECK(back->table[i] == g.table[i]);
  CHECK(back->reach == g.reach);
  CHECK_FALSE(g.reach.rows().empty());
  CHECK_FALSE(wire::decode_gossip(bytes, 17)); // another shard count
  auto old_format = bytes;
  old_format[0] = 1; // Cluster I's format, without reachability
  CHECK_FALSE(wire::decode_gossip(old_format, 16));
  for (std::size_t n = 0; n < bytes.size(); ++n)
    CHECK_FALSE(wire::decode_gossip(bytes.substr(0, n), 16));
  CHECK_FALSE(wire::decode_gossip(bytes + "x", 16));

  // Random bytes and random single-byte corruptions: never a crash.
  for (int i = 0; i < 2000; ++i) {
    std::string junk(pick(rng, 64), '\0');
    for (auto& c : junk)
      c = static_cast<char>(pick(rng, 256));
    static_cast<void>(wire::decode_gossip(junk, 16));
    auto flipped = bytes;
    flipped[pick(rng, flipped.size())] = static_cast<char>(pick(rng, 256));
    static_cast<void>(wire::decode_gossip(flipped, 16));
  }
}

TEST_CASE("a gossiped table claiming too many rows or subjects is refused, not allocated") {
  wire::gossip g;
  member_id a{{"h", 1}, 1};
  g.view.add_joining(a);
  auto bytes = wire::encode_gossip(g); // ends with u32 rows = 0
  REQUIRE(bytes.size() >= 4);
  auto rows = bytes.substr(0, bytes.size() - 4);
  CHECK(wire::decode_gossip(rows + std::string("\0\0\0\0", 4), 0));
  CHECK_FALSE(wire::decode_gossip(rows + std::string("\xff\xff\xff\xff", 4), 0));
  CHECK_FALSE(wire::decode_gossip(rows + std::string("\x11\x27\0\0", 4), 0)); // 10001 rows
  for (bool echo : {false, true}) {
    auto hb = wire::decode_heartbeat(wire::encode_heartbeat({echo, 1234567890123}));
    REQUIRE(hb);
    CHECK(hb->echo == echo);
    CHECK(hb->sent_ns == 1234567890123);
  }
  auto ping = wire::encode_heartbeat({false, 7});
  CHECK_FALSE(wire::decode_heartbeat(""));
  CHECK_FALSE(wire::decode_heartbeat(ping + "x"));             // trailing bytes
  CHECK_FALSE(wire::decode_heartbeat(ping.substr(0, 9)));      // truncated
  CHECK_FALSE(wire::decode_heartbeat(std::string(1, '\x01'))); // format 1: one byte
  auto bad_kind = ping;
  bad_kind[1] = 3;
  CHECK_FALSE(wire::decode_heartbeat(bad_kind));
}

TEST_CASE("member ids parse back from their text; bad text is refused") {
  member_id a{{"127.0.0.1", 4500}, 99};
  member_id b{{"::1", 1}, 18446744073709551615ull};
  CHECK(wire::parse_member_id(to_string(a)) == a);
  CHECK(wire::parse_member_id(to_string(b)) == b);
  for (auto bad : {"", "#1", "h:1", "h#1", ":1#1", "h:x#1", "h:1#", "h:70000#1", "h:1#1x"})
    CHECK_FALSE(wire::parse_member_id(bad));
}

TEST_CASE("tables merge per shard by (epoch, phase)") {
  member_id a{{"h", 1}, 1}, b{{"h", 2}, 1};
  std::vector<shard_state> x(2), y(2);
  x[0] = {handoff_phase::serving, a, a, 1};
  y[0] = {handoff_phase::stopping, a, b, 1};
  x[1] = {handoff_phase::handed_over, b, b, 2};
  y[1] = {handoff_phase::flushed, a, b, 1};
  auto m = wire::merge_tables(x, y);
  CHECK(m[0].phase == handoff_phase::stopping);
  CHECK(m[1].phase == handoff_phase::handed_over);
  auto m2 = wire::merge_tables(y, x);
  CHECK(m2[0].phase == m[0].phase);
  CHECK(m2[1].holder == m[1].holder);

  // Two would-be leaders failed the same shard over to different members: every node
  // keeps the lower holder, whatever the order it merges in.
  member_id c{{"h", 3}, 1};
  std::vector<shard_state> p(1), q(1);
  p[0] = {handoff_phase::handed_over, c, c, 5};
  q[0] = {handoff_phase::handed_over, b, b, 5};
  CHECK(wire::merge_tables(p, q)[0].holder == b);
  CHECK(wire::merge_tables(q, p)[0].holder == b);
  CHECK(wire::merge_tables(p, q)[0].target == c); // the target stays each node's own
}
