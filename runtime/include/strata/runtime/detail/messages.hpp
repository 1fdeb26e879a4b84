// File: strata/runtime/detail/messages.hpp (internal)
//
// The messages between the runtime's parts (local only: never sent over the network).
#pragma once

#include "strata/runtime/detail/envelope.hpp"
#include "strata/runtime/detail/journal_writer.hpp"

#include <caf/allowed_unsafe_message_type.hpp>
#include <caf/atom.hpp>

namespace strata::detail {

/// (cmd_atom, envelope_ptr): a command for an entity.
using cmd_atom = caf::atom_constant<caf::atom("strata_cmd")>;
/// (written_atom, write_no, write_outcome): the journal writer's answer.
using written_atom = caf::atom_constant<caf::atom("strata_wr")>;
/// (recover_atom): a recovery permit was granted.
using recover_atom = caf::atom_constant<caf::atom("strata_rec")>;
/// (passivate_atom): stop after the in-flight writes (idle timeout or shutdown).
using passivate_atom = caf::atom_constant<caf::atom("strata_pas")>;

} // namespace strata::detail

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(strata::detail::envelope_ptr)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(strata::detail::write_outcome)
