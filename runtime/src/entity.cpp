#include "strata/runtime/detail/entity.hpp"

#include "strata/persistence/assert.hpp"
#include "strata/runtime/detail/messages.hpp"
#include "strata/runtime/errors.hpp"

#include <caf/actor_cast.hpp>
#include <caf/event_based_actor.hpp>

#include <chrono>
#include <utility>

namespace strata::detail {

namespace {

thread_local caf::event_based_actor* tl_current_entity = nullptr;

/// Marks `self` as the entity running on this thread for one handler (nests).
class current_scope {
 public:
  explicit current_scope(caf::event_based_actor* self) noexcept : prev_(tl_current_entity) {
    tl_current_entity = self;
  }
  ~current_scope() { tl_current_entity = prev_; }
  current_scope(const current_scope&) = delete;
  current_scope& operator=(const current_scope&) = delete;

 private:
  caf::event_based_actor* prev_;
};

} // namespace

caf::event_based_actor* current_entity() noexcept { return tl_current_entity; }

entity_core::~entity_core() {
  // Normal stops go through finish(); this is the abnormal path (an exception killed
  // the actor, or the system is torn down).
  replies_.for_each([](pending_reply& r) {
    if (r.env && !r.env->completed())
      r.env->fail(make_runtime_error(runtime_errc::internal,
                                     "entity stopped abnormally; the command's outcome is "
                                     "unknown (check its history)"));
  });
  if (ctx_ == nullptr || status_ == status::finished) return;
  release_permit();
  ctx_->home->passivated(id_, me_);
  ctx_->home->entity_finished();
}

caf::behavior entity_core::start(caf::event_based_actor* self, const entity_context* ctx,
                                 std::string id) {
  self_ = self;
  me_ = self->address();
  ctx_ = ctx;
  pid_ = make_persistence_id(ctx->type, id);
  id_ = std::move(id);
  request_permit();
  return {
    [this](cmd_atom, envelope_ptr& e) {
      current_scope in{self_};
      on_command(std::move(e));
    },
    [this](written_atom, std::uint64_t no, write_outcome& out) {
      current_scope in{self_};
      on_written(no, std::move(out));
    },
    [this](recover_atom) {
      on_recover();
    },
    [this](passivate_atom) {
      on_passivate();
    },
  };
}

void entity_core::release_permit() {
  if (status_ == status::permitted ||
      (status_ == status::queued && !ctx_->permits->cancel(me_))) // granted meanwhile
    ctx_->permits->release();
}

void entity_core::request_permit() {
  if (ctx_->permits->acquire(caf::actor_cast<caf::actor>(self_))) {
    status_ = status::permitted;
    self_->send(self_, recover_atom::value);
  } else {
    status_ = status::queued;
  }
}

void entity_core::on_recover() {
  if (status_ != status::queued && status_ != status::permitted) {
    ctx_->permits->release(); // stale: not waiting for one
    return;
  }
  status_ = status::running; // the permit is ours until released below
  if (stop_requested_ && stash_.empty()) {
    ctx_->permits->release();
    finish();
    return;
  }
  if (ctx_->before_recover) ctx_->before_recover(pid_);
  std::uint64_t seq = 0;
  std::uint64_t snapshot_seq = 0;
  auto err = recover_state(seq, snapshot_seq);
  ctx_->permits->release();
  if (err) {
    // The stream cannot be read: answer what waits, and stop, so that a later command
    // tries again (after an operator fixed the data, or a transient error).
    for (; !stash_.empty(); stash_.pop_front())
      stash_.front()->fail(err);
    finish();
    return;
  }
  ctx_->home->count_recovery();
  durable_seq_ = pending_seq_ = seq;
  snapshot_seq_ = snapshot_seq;
  durable_write_no_ = last_write_no_;
  process_stash();
  maybe_finish();
}

bool entity_core::blocked() const {
  return open_no_ != 0 && open_events() >= ctx_->batch_events_max &&
         inflight_.size() >= ctx_->max_inflight_writes;
}

void entity_core::stash(envelope_ptr e) {
  if (stash_.size() >= ctx_->stash_max) {
    e->fail(make_runtime_error(runtime_errc::stash_full,
                               "entity '" + pid_ + "' has " + std::to_string(stash_.size()) +
                                 " commands waiting (stash-max); retry later"));
    return;
  }
  stash_.push_back(std::move(e));
}

void entity_core::on_command(envelope_ptr e) {
  if (status_ != status::running || !stash_.empty() || blocked()) {
    stash(std::move(e));
    return;
  }
  decide(std::move(e));
  try_submit();
  flush_replies();
  maybe_finish();
}

void entity_core::process_stash() {
  while (status_ == status::running && !stash_.empty() && !blocked()) {
    auto e = std::move(stash_.front());
    stash_.pop_front();
    decide(std::move(e));
    try_submit();
  }
  flush_replies();
}

void entity_core::reply_after(std::uint64_t required, envelope_ptr e, caf::error err,
                              std::uint64_t stored_seq) {
  replies_.push_back({required, std::move(e), std::move(err), stored_seq});
}

std::vector<persistence::event_data>& entity_core::event_buffer() {
  if (!open_buf_) open_buf_ = take_buffer();
  return open_buf_->write.events;
}

std::uint64_t entity_core::add_events(std::size_t n) {
  STRATA_ASSERT(open_buf_ && open_buf_->write.events.size() >= n,
                "add_events: the events were not encoded into event_buffer()");
  if (open_no_ == 0) {
    open_no_ = ++last_write_no_;
    open_expected_seq_ = pending_seq_;
  }
  return open_no_;
}

write_buffer_ptr entity_core::take_buffer() {
  if (!spares_.empty()) {
    auto b = std::move(spares_.back());
    spares_.pop_back();
    return b;
  }
  auto b = caf::make_counted<write_buffer>();
  b->write.persistence_id = pid_;
  return b;
}

void entity_core::recycle(write_buffer_ptr b) {
  // Still lent (the group commit's thread has not let go yet: rare): let it go.
  if (!b || spares_.size() >= ctx_->max_inflight_writes || !b->unique()) return;
  b->write.events.clear();
  spares_.push_back(std::move(b));
}

caf::error entity_core::internal_error(const char* what) const {
  return make_runtime_error(runtime_errc::internal,
                            std::string(what) + " for entity '" + pid_ + "'; nothing was stored");
}

void entity_core::try_submit() {
  if (open_no_ == 0 || inflight_.size() >= ctx_->max_inflight_writes) return;
  write_request r;
  r.reply_to = caf::actor_cast<caf::actor>(self_);
  r.write_no = open_no_;
  r.replicated = ctx_->replicated;
  if (!open_buf_) open_buf_ = take_buffer(); // a write of no events (e.g. snapshot only)
  open_buf_->write.expected_seq = open_expected_seq_;
  r.buf = open_buf_;
  if (snapshot_due_) {
    r.snapshot = std::move(*snapshot_due_);
    snapshot_due_.reset();
  }
  inflight_write w{open_no_, pending_seq_, nullptr, std::move(open_buf_)};
  // A snapshot of the state after this write (the pending state now), stored once the
  // write is durable: encoded here rather than copying the state into every write.
  if (ctx_->snapshot_every > 0 && pending_seq_ >= snapshot_seq_ + ctx_->snapshot_every) {
    if (auto snap = encode_snapshot()) {
      snap->persistence_id = pid_;
      snap->seq = pending_seq_;
      snap->type = ctx_->type + ".state";
      snap->timestamp_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                             std::chrono::system_clock::now().time_since_epoch())
                             .count();
      w.snapshot = std::make_unique<persistence::snapshot_record>(std::move(*snap));
      snapshot_seq_ = pending_seq_;
    }
  }
  inflight_.push_back(std::move(w));
  open_no_ = 0;
  ctx_->writer->submit(std::move(r));
}

void entity_core::flush_replies() {
  while (!replies_.empty() && replies_.front().required <= durable_write_no_) {
    auto& r = replies_.front();
    if (r.err)
      r.env->fail(std::move(r.err));
    else
      r.env->complete();
    replies_.pop_front();
  }
}

void entity_core::store_snapshot(std::unique_ptr<persistence::snapshot_record> snap) {
  if (open_no_ != 0) {
    snapshot_due_ = std::move(snap); // rides on the next write
    return;
  }
  write_request r; // snapshot only: nobody waits for it
  r.snapshot = std::move(*snap);
  ctx_->writer->submit(std::move(r));
}

void entity_core::on_written(std::uint64_t no, write_outcome out) {
  if (inflight_.empty() || inflight_.front().no != no)
    return; // not ours (a stale answer after a restart of this incarnation's pipeline)
  auto w = std::move(inflight_.front());
  inflight_.erase(inflight_.begin());
  recycle(std::move(w.buf));
  if (status_ == status::failed) {
    // Draining after a failure: outcomes no longer matter, we re-read the journal.
    if (inflight_.empty()) after_failure_drained();
    return;
  }
  if (out.ok() && out.last_seq != w.last_seq)
    out.st = {persistence::errc::internal, "journal reported head " + std::to_string(out.last_seq) +
                                             ", entity expected " + std::to_string(w.last_seq)};
  if (!out.ok()) {
    on_write_failed(no, out);
    return;
  }
  durable_seq_ = w.last_seq;
  durable_write_no_ = no;
  if (out.not_replicated) fail_not_replicated(no, out.st.message());
  flush_replies();
  if (w.snapshot) store_snapshot(std::move(w.snapshot));
  try_submit();
  process_stash();
  maybe_finish();
}

/// Write `no` is stored but Kafka did not acknowledge it in time: the commands whose
/// events it holds answer not_replicated (the others — rejections, reads — decided on
/// the stored state, answer as usual). The entity goes on from the stored state.
void entity_core::fail_not_replicated(std::uint64_t no, const std::string& next) {
  replies_.for_each([&](pending_reply& r) {
    if (r.required != no || r.stored_seq == 0) return;
    r.err =
      make_runtime_error(runtime_errc::not_replicated,
                         "stored locally at seq " + std::to_string(r.stored_seq) + " of " + pid_ +
                           ", not yet acknowledged by Kafka; " +
                           (next.empty() ? std::string("the bridge keeps publishing it") : next));
  });
}

void entity_core::on_write_failed(std::uint64_t no, const write_outcome& out) {
  // The journal's status, its code unchanged, naming the entity.
  auto err =
    to_error(persistence::status{out.st.code(), "entity '" + pid_ + "': " + out.st.message()});
  for (; !replies_.empty(); replies_.pop_front()) {
    auto& r = replies_.front();
    if (r.required == no)
      r.env->fail(err);
    else
      r.env->fail(
        make_runtime_error(runtime_errc::write_failed,
                           "entity '" + pid_ + "': an earlier write failed (" + describe(err) +
                             "); this command was decided on top of it and was not stored"));
  }
  open_no_ = 0;
  recycle(std::move(open_buf_));
  open_buf_.reset();
  snapshot_due_.reset();
  status_ = status::failed;
  // Fenced: another node owns the shard now (its claim precedes this write in Kafka);
  // this incarnation stops instead of recovering (commands it still holds are handled
  // by a new one, whose writes the bridge fences too until the shard is taken again).
  if (out.st.code() == persistence::errc::fenced) stop_requested_ = true;
  if (inflight_.empty()) after_failure_drained();
}

void entity_core::after_failure_drained() {
  if (stop_requested_ && stash_.empty()) {
    finish();
    return;
  }
  request_permit(); // recover again from the journal (then handle the stash)
}

void entity_core::on_passivate() {
  if (status_ == status::finished) return;
  stop_requested_ = true;
  switch (status_) {
    case status::queued:
      // With stashed commands: keep the place in the queue, recover, handle them.
      if (stash_.empty()) {
        if (ctx_->permits->cancel(me_))
          finish();
        else
          status_ = status::permitted; // recover_atom is on its way: on_recover finishes
      }
      return;
    case status::running: maybe_finish(); return; // else on_written finishes
    case status::permitted:                       // on_recover finishes
    case status::failed:                          // after_failure_drained finishes
    case status::finished: return;
  }
}

/// A stopping entity first finishes what it already received (stash, in-flight
/// writes); only then does it leave (so passivation never bounces commands).
void entity_core::maybe_finish() {
  if (stop_requested_ && status_ == status::running && inflight_.empty() && open_no_ == 0 &&
      stash_.empty())
    finish();
}

void entity_core::finish() {
  if (status_ == status::finished) return;
  status_ = status::finished;
  ctx_->home->passivated(id_, me_);
  // Normally empty; after a failed recovery already answered. Anything left goes back
  // to the region (next incarnation, or shutting_down).
  stash_.clear();
  ctx_->home->entity_finished();
  self_->quit();
}

} // namespace strata::detail
