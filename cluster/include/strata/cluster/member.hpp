// File: strata/cluster/member.hpp
//
// Who a cluster member is and what state it is in. Plain values: copyable, comparable,
// no I/O.
//
//   strata::cluster::member_id a{{"10.0.0.1", 4500}, 7};   // address + incarnation
//   to_string(a);                                          // "10.0.0.1:4500#7"
//   to_string(strata::cluster::member_status::up);         // "up"
//
// Identity is the address plus an incarnation id chosen by the process when it starts
// (e.g. random or its start time): a restarted process is a new member, so the cluster
// can tell "the node came back" from "the node never left".
#pragma once

#include "strata/cluster/fwd.hpp"

#include <cstdint>
#include <string>
#include <tuple>

namespace strata::cluster {

/// Where a node listens: host (name or literal IP, compared as text) and port.
struct address {
  std::string host;
  std::uint16_t port = 0;
};

/// Orders by host, then port. Pure, any thread.
inline bool operator<(const address& a, const address& b) noexcept {
  return std::tie(a.host, a.port) < std::tie(b.host, b.port);
}
inline bool operator==(const address& a, const address& b) noexcept {
  return a.host == b.host && a.port == b.port;
}
inline bool operator!=(const address& a, const address& b) noexcept { return !(a == b); }

/// "host:port" (IPv6 literals in brackets: "[::1]:4500"). This text is also the input
/// of the member's shard weights (allocation.hpp): it must stay stable.
std::string to_string(const address& a);

/// One life of one node: its address and the incarnation id of the process.
struct member_id {
  cluster::address address;
  std::uint64_t incarnation = 0;
};

/// Orders by address, then incarnation (the leader is the lowest, leader.hpp).
inline bool operator<(const member_id& a, const member_id& b) noexcept {
  if (a.address != b.address) return a.address < b.address;
  return a.incarnation < b.incarnation;
}
inline bool operator==(const member_id& a, const member_id& b) noexcept {
  return a.address == b.address && a.incarnation == b.incarnation;
}
inline bool operator!=(const member_id& a, const member_id& b) noexcept { return !(a == b); }

/// "host:port#incarnation".
std::string to_string(const member_id& m);

/// A member's place in its life cycle. The order of the values is the order of life:
/// a status only ever moves to a later one, which is what makes the view's merge a
/// lattice join (member_view.hpp). Reachability (a member that stops answering and may
/// answer again) is NOT a status, because it can go back; the reachability table
/// (reachability.hpp) travels beside the view, and downing (downing.hpp) turns a
/// lasting unreachable into `down`.
enum class member_status : std::uint8_t {
  joining = 0, ///< asked to join; owns no shard yet
  up = 1,      ///< full member: owns shards
  leaving = 2, ///< asked to leave (system::leave(), SIGTERM); owns no new shards
  exiting = 3, ///< the leader saw the leave; its shards move away, then it is removed
  down = 4,    ///< declared dead (a newer incarnation joined, or downed: downing.hpp)
  removed = 5, ///< gone for good; kept as a tombstone so stale gossip cannot revive it
};

/// "joining", "up", "leaving", "exiting", "down" or "removed".
const char* to_string(member_status s) noexcept;

/// Whether `to` may follow `from` (strictly later in life). Pure, any thread.
constexpr bool is_forward(member_status from, member_status to) noexcept {
  return static_cast<std::uint8_t>(to) > static_cast<std::uint8_t>(from);
}

} // namespace strata::cluster
