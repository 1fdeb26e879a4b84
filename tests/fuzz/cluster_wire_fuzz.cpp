// libFuzzer target: what a cluster node decodes from the network before trusting it
// (cluster/src/wire.hpp): gossip (member view, shard table of 4 shards, reachability
// table), heartbeats and the sender's member id text.
//
// Properties: no crash, no sanitizer finding, no exception; whatever decodes encodes to
// bytes that decode to the same gossip and encode to themselves again (one canonical
// form; a heartbeat encodes back to its own bytes); merging a decoded table or reachability table
// with itself changes nothing; a parsed member id prints to text that parses back to it.
#include "fuzz_util.hpp"
#include "wire.hpp"

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

using namespace strata::cluster;

namespace {

/// The shard count the seeds' tables have (tests/fuzz/make_seeds.py).
constexpr std::uint32_t fuzz_shards = 4;

bool same(const wire::gossip& a, const wire::gossip& b) {
  if (a.kind != b.kind || a.view != b.view || a.reach != b.reach) return false;
  if (a.table.size() != b.table.size()) return false;
  for (std::size_t i = 0; i < a.table.size(); ++i)
    if (!(a.table[i] == b.table[i])) return false;
  return true;
}

void check_gossip(std::string_view bytes) {
  auto g = wire::decode_gossip(bytes, fuzz_shards);
  if (!g) return;
  auto once = wire::encode_gossip(*g);
  auto again = wire::decode_gossip(once, fuzz_shards);
  FUZZ_CHECK(again.has_value());
  FUZZ_CHECK(same(*g, *again));
  FUZZ_CHECK(wire::encode_gossip(*again) == once);
  auto table = wire::merge_tables(g->table, g->table);
  for (std::size_t i = 0; i < table.size(); ++i)
    FUZZ_CHECK(table[i] == g->table[i]);
  auto reach = g->reach;
  FUZZ_CHECK(!reach.merge_from(g->reach));
  FUZZ_CHECK(reach == g->reach);
}

void check_member_id(std::string_view text) {
  auto m = wire::parse_member_id(text);
  if (!m) return;
  auto back = wire::parse_member_id(to_string(*m));
  FUZZ_CHECK(back.has_value());
  FUZZ_CHECK(*back == *m);
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view bytes(reinterpret_cast<const char*>(data), size);
  check_gossip(bytes);
  if (auto hb = wire::decode_heartbeat(bytes)) // one canonical form
    FUZZ_CHECK(wire::encode_heartbeat(*hb) == bytes);
  check_member_id(bytes);
  return 0;
}
