// File: strata/runtime/detail/messages.hpp (internal)
//
// The messages between the runtime's parts (local only: never sent over the network).
#pragma once

#include "strata/runtime/detail/envelope.hpp"
#include "strata/runtime/detail/group_commit.hpp"

#include <caf/allowed_unsafe_message_type.hpp>
#include <caf/atom.hpp>

#include <cstdint>
#include <vector>

namespace strata::detail {

/// (cmd_atom, envelope_ptr): a command for an entity.
using cmd_atom = caf::atom_constant<caf::atom("strata_cmd")>;
/// (written_atom, write_no, write_outcome): the outcome of a write, to its entity.
using written_atom = caf::atom_constant<caf::atom("strata_wr")>;
/// (recover_atom): a recovery permit was granted.
using recover_atom = caf::atom_constant<caf::atom("strata_rec")>;
/// (passivate_atom): stop after the in-flight writes (idle timeout or shutdown).
using passivate_atom = caf::atom_constant<caf::atom("strata_pas")>;

/// The outcome of a replicated write, held by the replication gate until Kafka
/// acknowledged `position`.
struct gate_waiter {
  std::uint64_t position = 0; ///< last global position of the write (0: failed)
  caf::actor reply_to;
  std::uint64_t write_no = 0;
  write_outcome out;
};
using gate_batch = std::vector<gate_waiter>;

/// (hold_atom, gate_batch): the replicated writes of one commit, in commit order.
using hold_atom = caf::atom_constant<caf::atom("strata_hld")>;
/// (route_atom, gate_batch): the outcomes of one commit, for the reply router.
using route_atom = caf::atom_constant<caf::atom("strata_rte")>;
/// (acked_atom, position): Kafka acknowledged every event up to `position`.
using acked_atom = caf::atom_constant<caf::atom("strata_ack")>;
/// (fenced_atom, position, why): the bridge will not acknowledge the record at
/// `position`: its shard was fenced (a newer owner's claim precedes it in Kafka); the
/// write ending there fails with `fenced` and the message `why`.
using fenced_atom = caf::atom_constant<caf::atom("strata_fnc")>;
/// (close_atom, why): shutdown; answer every held write not_replicated, saying `why`.
using close_atom = caf::atom_constant<caf::atom("strata_cls")>;
/// (tick_atom): the gate's own deadline timer.
using tick_atom = caf::atom_constant<caf::atom("strata_tik")>;

} // namespace strata::detail

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(strata::detail::envelope_ptr)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(strata::detail::write_outcome)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(strata::detail::gate_batch)
