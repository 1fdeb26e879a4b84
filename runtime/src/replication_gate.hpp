// Private: the replication gate (config `replication = replicated`), owned by
// strata::system. An actor that holds the outcomes of replicated writes (gate_batch
// messages from the group commit, in commit order = position order) until the Kafka
// bridge acknowledged their positions (acked_atom messages), then sends each to its
// entity. A held outcome waits at most `timeout_ms`; then it and everything held behind
// it is answered not_replicated (stored, not acknowledged), and while Kafka is behind
// those positions later replicated writes are answered so at once (a load keeps its
// pace during an outage). A failed write never overtakes the same entity's earlier
// writes still held: it leaves with the last of them. A write whose record the bridge
// fenced (fenced_atom: a newer shard owner's claim precedes it in Kafka) fails with
// `fenced`, in its place in position order. close_atom (shutdown) answers
// everything held, and every later write, not_replicated.
#pragma once

#include <caf/actor.hpp>
#include <caf/fwd.hpp>

#include <cstdint>

namespace strata::detail {

/// Spawns the gate (timeout_ms >= 1).
caf::actor spawn_replication_gate(caf::actor_system& sys, std::uint32_t timeout_ms);

} // namespace strata::detail
