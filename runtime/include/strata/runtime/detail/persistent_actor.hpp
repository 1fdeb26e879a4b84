// File: strata/runtime/detail/persistent_actor.hpp (internal; heavy CAF include)
//
// entity<A>: one entity of aggregate A, the state of a CAF stateful actor. What does
// not depend on A — life cycle, stash, reply queue, write pipeline — is entity_core
// (entity.hpp, compiled once); this template keeps the state and the three steps that
// need A: deciding a command, recovering the state, encoding a snapshot.
#pragma once

#include "strata/persistence/journal.hpp"
#include "strata/runtime/aggregate.hpp"
#include "strata/runtime/detail/entity.hpp"
#include "strata/runtime/detail/envelope.hpp"
#include "strata/runtime/detail/recovery.hpp"
#include "strata/runtime/detail/region.hpp"
#include "strata/runtime/errors.hpp"

#include <caf/actor_system.hpp>
#include <caf/behavior.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/stateful_actor.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace strata::detail {

template <class A>
class entity : public entity_core {
 public:
  static inline const char* name = "strata_entity";

 private:
  using env_t = command_envelope<A>;

  void decide(envelope_ptr e) override {
    auto& env = static_cast<env_t&>(*e);
    std::optional<effect_of<A>> eff;
    try {
      eff.emplace(A::handle(pending_, env.cmd));
    } catch (...) {
      reply_after(last_write_no(), std::move(e), internal_error("the command handler threw"));
      return;
    }
    switch (eff->kind()) {
      case effect_kind::reject:
        reply_after(last_write_no(), std::move(e),
                    make_rejection<A>(*eff->rejection(), eff->rejection_detail()));
        return;
      case effect_kind::reply: reply_with(*eff, last_write_no(), std::move(e)); return;
      case effect_kind::persist_then_reply:
      case effect_kind::persist_then_no_reply: break;
    }
    const auto& evs = eff->events();
    if (evs.empty()) {
      if (eff->has_reply())
        reply_with(*eff, last_write_no(), std::move(e));
      else
        reply_after(last_write_no(), std::move(e),
                    make_runtime_error(runtime_errc::no_reply, "the command replies nothing"));
      return;
    }
    // Encode first, at the end of the open write's buffer: a failing mapping must leave
    // the state and the write untouched.
    auto& enc = event_buffer();
    auto before = enc.size();
    try {
      for (const auto& ev : evs) {
        event_bytes b = A::encode(ev);
        auto& d = enc.emplace_back();
        d.type = std::move(b.type);
        d.schema_version = b.schema_version;
        d.payload = std::move(b.payload);
      }
    } catch (...) {
      enc.resize(before);
      reply_after(last_write_no(), std::move(e), internal_error("encoding an event threw"));
      return;
    }
    auto write_no = add_events(evs.size());
    for (const auto& ev : evs)
      pending_ = A::apply(std::move(pending_), ev);
    pending_seq_ += evs.size();
    if (eff->has_reply())
      reply_with(*eff, write_no, std::move(e), pending_seq_);
    else
      reply_after(
        write_no, std::move(e),
        make_runtime_error(runtime_errc::no_reply, "the command was stored and replies nothing"),
        pending_seq_);
  }

  void reply_with(const effect_of<A>& eff, std::uint64_t required, envelope_ptr e,
                  std::uint64_t stored_seq = 0) {
    try {
      static_cast<env_t&>(*e).reply.emplace(eff.make_reply(pending_));
    } catch (...) {
      reply_after(required, std::move(e),
                  make_runtime_error(runtime_errc::internal, "the reply function threw"),
                  stored_seq);
      return;
    }
    reply_after(required, std::move(e), caf::error{}, stored_seq);
  }

  caf::error recover_state(std::uint64_t& seq, std::uint64_t& snapshot_seq) override {
    auto r = recover<A>(*ctx_->journal, pid_, true, ~std::uint64_t{0});
    if (!r) return std::move(r.error());
    pending_ = std::move(r->state);
    seq = r->seq;
    snapshot_seq = r->snapshot_seq;
    return {};
  }

  std::optional<persistence::snapshot_record> encode_snapshot() override {
    if constexpr (has_snapshots_v<A>) {
      try {
        state_bytes b = A::encode_state(pending_);
        persistence::snapshot_record rec;
        rec.schema_version = b.schema_version;
        rec.payload = std::move(b.payload);
        return rec;
      } catch (...) {
        return std::nullopt; // snapshots are an optimisation: recovery replays instead
      }
    } else {
      return std::nullopt;
    }
  }

  typename A::state pending_{};
};

template <class A>
caf::behavior persistent_actor(caf::stateful_actor<entity<A>>* self, const entity_context* ctx,
                               std::string id) {
  return self->state.start(self, ctx, std::move(id));
}

/// The spawn function a region uses for aggregate A.
template <class A>
caf::actor spawn_entity(region& reg, const std::string& entity_id) {
  return reg.actor_system().spawn(persistent_actor<A>, &reg.context(), entity_id);
}

} // namespace strata::detail
