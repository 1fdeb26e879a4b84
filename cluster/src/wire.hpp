// File: cluster/src/wire.hpp (private to strata::cluster)
//
// The bytes of the node's own channels (gossip, handoff) and the text form of a member
// id on the wire. Plain C++: no CAF. Every decoder is defensive: bad bytes give nullopt,
// never a crash or an exception.
//
//   auto bytes = encode_gossip({gossip_kind::push, view, table});
//   if (auto g = decode_gossip(bytes, 64)) merge(...);     // nullopt: malformed, drop it
//
// Gossip layout (little endian): u8 format (2), u8 kind, u32 members, per member
// {u16 host length, host, u16 port, u64 incarnation, u8 status, u64 version}, u32
// shards, per shard {u8 phase, u8 has holder, [holder as above without status and
// version], u64 epoch}, then the reachability table: u32 rows, per row {observer as a
// holder, u64 version, u32 subjects, each subject as a holder}. Format 1 (no
// reachability) is refused: every node of a cluster runs one strata version.
//
// Heartbeat (channel heartbeat): u8 format (2), u8 kind (1 ping, 2 echo), i64 the
// pinging node's steady clock when it sent the ping (ns; an echo returns it unchanged).
#pragma once

#include "strata/cluster/handoff.hpp"
#include "strata/cluster/member_view.hpp"
#include "strata/cluster/reachability.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace strata::cluster::wire {

/// What a gossip message asks of its receiver.
enum class gossip_kind : std::uint8_t {
  push = 1,  ///< merge, then answer with your view (push-pull)
  reply = 2, ///< merge only
};

/// One gossip message: the sender's member view, shard table and reachability table.
struct gossip {
  gossip_kind kind = gossip_kind::push;
  member_view view;
  std::vector<shard_state> table;
  cluster::reachability reach;
};

std::string encode_gossip(const gossip& g);
/// nullopt when the bytes are malformed (truncated, trailing bytes, unknown format,
/// kind, status or phase, more than max_members members, rows or subjects per row, a
/// host longer than 255 bytes) or the table does not have `shards` entries.
std::optional<gossip> decode_gossip(std::string_view bytes, std::uint32_t shards);

/// One heartbeat: a ping, or the receiver's echo of one. The time is the pinging node's
/// own (steady clock, ns since its epoch) and means nothing to anyone else: an echo
/// tells the pinger that the peer was alive after that moment, which is what the write
/// lease counts (a ping that sat in a frozen node's socket buffer is echoed late, but
/// with its old time).
struct heartbeat {
  bool echo = false;
  std::int64_t sent_ns = 0;
};

/// The bytes of one heartbeat.
std::string encode_heartbeat(const heartbeat& h);
/// nullopt when the bytes are not a heartbeat this version understands (size, format,
/// kind).
std::optional<heartbeat> decode_heartbeat(std::string_view bytes);

/// Parses to_string(member_id): "host:port#incarnation", "[v6]:port#incarnation".
std::optional<member_id> parse_member_id(std::string_view text);

/// The merge of two shard tables of one size: per shard the state later in the
/// handoff's order (epoch, then phase handed_over < restoring < serving < stopping <
/// flushed), then, on a tie, the one with the lower holder (member order; no holder
/// first), so the result does not depend on the order of the arguments (only the
/// target, which each node computes itself and which is not sent, stays `a`'s). Each
/// (shard, epoch) has one writer, its holder, or the leader's fail_over
/// (node_actor.hpp), so the states of one shard form a chain and gossip of tables
/// converges like that of views; two would-be leaders that both fail a shard over
/// (handoff.hpp) end with the same holder everywhere through the tie-break.
std::vector<shard_state> merge_tables(const std::vector<shard_state>& a,
                                      const std::vector<shard_state>& b);

} // namespace strata::cluster::wire
