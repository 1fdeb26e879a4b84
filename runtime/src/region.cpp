#include "strata/runtime/detail/region.hpp"

#include "cluster_router.hpp"
#include "entity_table.hpp"
#include "strata/persistence/journal.hpp"
#include "strata/persistence/persistence_id.hpp"
#include "strata/persistence/shard.hpp"
#include "strata/runtime/detail/messages.hpp"
#include "strata/runtime/ids.hpp"
#include "system_core.hpp"

#include <caf/actor_system.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/send.hpp>

#include <algorithm>
#include <chrono>
#include <ctime>
#include <iostream>

namespace strata::detail {

std::uint64_t steady_now_ms() noexcept {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1000 +
         static_cast<std::uint64_t>(ts.tv_nsec) / 1'000'000;
}

void intrusive_ptr_release(envelope_base* p) noexcept {
  if (p->rc_.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
  if (p->completed_) {
    delete p;
    return;
  }
  if (p->home == nullptr) {
    try {
      p->fail(make_runtime_error(runtime_errc::undelivered, "the command was never routed"));
    } catch (...) {
    }
    delete p;
    return;
  }
  p->home->redeliver(p);
}

// -- recovery_gate --------------------------------------------------------------

bool recovery_gate::acquire(const caf::actor& who) {
  std::lock_guard<std::mutex> g{mtx_};
  if (in_use_ < permits_) {
    ++in_use_;
    return true;
  }
  queue_.push_back(who);
  return false;
}

bool recovery_gate::cancel(const caf::actor_addr& who) {
  std::lock_guard<std::mutex> g{mtx_};
  for (auto i = queue_.begin(); i != queue_.end(); ++i) {
    if (i->address() == who) {
      queue_.erase(i);
      return true;
    }
  }
  return false;
}

void recovery_gate::release() {
  caf::actor next;
  {
    std::lock_guard<std::mutex> g{mtx_};
    if (queue_.empty()) {
      if (in_use_ > 0) --in_use_;
      return;
    }
    next = std::move(queue_.front()); // the permit passes on
    queue_.pop_front();
  }
  caf::anon_send(next, recover_atom::value);
}

std::size_t recovery_gate::in_use() const {
  std::lock_guard<std::mutex> g{mtx_};
  return in_use_;
}

std::size_t recovery_gate::waiting() const {
  std::lock_guard<std::mutex> g{mtx_};
  return queue_.size();
}

// -- region ---------------------------------------------------------------------

namespace {

struct entry {
  caf::actor actor;
  std::uint64_t last_touch_ms = 0;
  bool passivating = false;
  bool stop_counted = false; // counted by a region::stop_shard in progress
  std::unique_ptr<std::vector<envelope_ptr>> buffered; // commands held while passivating
};

} // namespace

struct region::shard {
  std::mutex mtx;
  entity_table<entry> entries;
};

region::region(system_core& core, std::string type, spawn_fn spawn, std::uint64_t snapshot_every,
               const wire_codec* codec, snapshot_fn snapshot)
  : core_(core), spawn_(spawn), codec_(codec), snapshot_(snapshot) {
  ctx_.home = this;
  ctx_.writer = core.writer.get();
  ctx_.permits = core.permits.get();
  ctx_.journal = core.journal.get();
  ctx_.replicated = core.gate && core.cfg.replicated_for(type);
  ctx_.type = std::move(type);
  ctx_.snapshot_every = snapshot_every;
  ctx_.stash_max = core.cfg.stash_max;
  ctx_.max_inflight_writes = std::max<std::size_t>(core.cfg.max_inflight_writes, 1);
  ctx_.batch_events_max = std::max<std::size_t>(core.cfg.entity_batch_events_max, 1);
  ctx_.before_recover = core.before_recover;
  type_status_ = validate_type_name(ctx_.type);
  auto n = core.cfg.directory_shards == 0 ? 1 : core.cfg.directory_shards;
  shards_.reserve(n);
  for (std::size_t i = 0; i < n; ++i)
    shards_.push_back(std::make_unique<shard>());
}

region::~region() = default;

region::shard& region::shard_of(std::uint64_t h) noexcept {
  // The high half picks the shard; the table uses the low bits for its slots.
  return *shards_[(h >> 32) % shards_.size()];
}

caf::actor_system& region::actor_system() noexcept { return *core_.actors; }
bool region::stopping() const noexcept { return core_.stopping.load(std::memory_order_acquire); }

void region::dispatch(const std::string& id_in, envelope_ptr e) {
  e->home = this;
  if (&e->entity_id != &id_in) e->entity_id = id_in;
  const std::string& id = e->entity_id;
  if (!type_status_.ok()) {
    e->fail(to_error(type_status_));
    return;
  }
  if (auto st = validate_entity_id(type(), id); !st.ok()) {
    e->fail(to_error(st));
    return;
  }
  if (core_.cfg.read_only) {
    e->fail(make_runtime_error(runtime_errc::read_only,
                               "the system was opened read-only (config read-only); '" +
                                 persistence_id(id) +
                                 "' cannot handle commands: open it without read-only"));
    return;
  }
  // Cluster: commands for another member's shard leave here (cluster_router.hpp).
  auto cluster_shard = cluster_router::no_shard;
  if (auto* cr = cluster()) {
    cluster_shard = cr->route_command(*this, id, e);
    if (!e) return;
  }
  auto h = entity_table<entry>::hash(id);
  auto& sh = shard_of(h);
  caf::actor target;
  {
    std::unique_lock<std::mutex> g{sh.mtx};
    // Checked under the shard lock: stop_all() marks entries under the same lock, so
    // no entity can be spawned behind its back.
    if (stopping()) {
      g.unlock();
      e->fail(make_runtime_error(runtime_errc::shutting_down, "the system is shutting down; '" +
                                                                persistence_id(id) +
                                                                "' did not handle the command"));
      return;
    }
    // Under the lock: stop_shard marks the shard's entries under the same lock.
    if (cluster_shard != cluster_router::no_shard && cluster()->shard_stopped(cluster_shard)) {
      g.unlock();
      cluster()->hold(*this, std::move(e), cluster_shard);
      return;
    }
    auto* en = sh.entries.find(h, id);
    if (en == nullptr) {
      auto a = spawn_(*this, id);
      live_.fetch_add(1, std::memory_order_acq_rel);
      en = &sh.entries.insert(h, id);
      en->actor = std::move(a);
    } else if (en->passivating) {
      if (!en->buffered) en->buffered = std::make_unique<std::vector<envelope_ptr>>();
      en->buffered->push_back(std::move(e));
      return;
    }
    en->last_touch_ms = steady_now_ms();
    target = en->actor;
  }
  if (auto* self = current_entity())
    self->send(target, cmd_atom::value, std::move(e));
  else
    caf::anon_send(target, cmd_atom::value, std::move(e));
}

void region::redeliver(envelope_base* raw) noexcept {
  envelope_ptr e{raw}; // back to one reference: completes or routes again
  try {
    if (stopping()) {
      e->fail(make_runtime_error(runtime_errc::shutting_down, "the system is shutting down; '" +
                                                                persistence_id(e->entity_id) +
                                                                "' did not handle the command"));
      return;
    }
    if (++e->attempts > 32) {
      e->fail(make_runtime_error(runtime_errc::undelivered, "could not deliver the command to '" +
                                                              persistence_id(e->entity_id) +
                                                              "' after 32 attempts"));
      return;
    }
    auto id = e->entity_id;
    dispatch(id, std::move(e));
  } catch (...) {
    if (e && !e->completed()) {
      try {
        e->fail(make_runtime_error(runtime_errc::internal, "redelivery failed"));
      } catch (...) {
      }
    }
  }
}

void region::passivated(const std::string& id, const caf::actor_addr& me) {
  std::vector<envelope_ptr> buffered;
  bool stop_counted = false;
  {
    auto h = entity_table<entry>::hash(id);
    auto& sh = shard_of(h);
    std::lock_guard<std::mutex> g{sh.mtx};
    auto* en = sh.entries.find(h, id);
    if (en == nullptr || en->actor.address() != me) return;
    if (en->buffered) buffered = std::move(*en->buffered);
    stop_counted = en->stop_counted;
    sh.entries.erase(h, id);
  }
  if (stop_counted) finish_stop(persistence::shard_of(persistence_id(id), cluster_shards_.load()));
  for (auto& e : buffered)
    dispatch(id, std::move(e));
}

void region::entity_finished() {
  if (live_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
    std::lock_guard<std::mutex> g{live_mtx_};
    live_cv_.notify_all();
  }
}

void region::send_passivate(const caf::actor& a) { caf::anon_send(a, passivate_atom::value); }

std::size_t region::passivate_idle(std::uint64_t now_ms, std::uint64_t idle_ms) {
  std::vector<caf::actor> to_stop;
  for (auto& sh : shards_) {
    std::lock_guard<std::mutex> g{sh->mtx};
    sh->entries.for_each([&](const std::string&, entry& en) {
      if (!en.passivating && now_ms >= en.last_touch_ms + idle_ms) {
        en.passivating = true;
        to_stop.push_back(en.actor);
      }
    });
  }
  for (auto& a : to_stop)
    send_passivate(a);
  passivations_.fetch_add(to_stop.size(), std::memory_order_relaxed);
  return to_stop.size();
}

void region::stop_all() {
  std::vector<caf::actor> to_stop;
  for (auto& sh : shards_) {
    std::lock_guard<std::mutex> g{sh->mtx};
    sh->entries.for_each([&](const std::string&, entry& en) {
      if (!en.passivating) {
        en.passivating = true;
        to_stop.push_back(en.actor);
      }
    });
  }
  for (auto& a : to_stop)
    send_passivate(a);
}

void region::await_all_finished() {
  std::unique_lock<std::mutex> g{live_mtx_};
  auto ok = live_cv_.wait_for(g, std::chrono::seconds(60), [&] {
    return live_.load(std::memory_order_acquire) == 0;
  });
  if (!ok)
    std::cerr << "strata: " << live_.load() << " entities of type '" << type()
              << "' did not stop within 60 s (a journal write never completed?)\n";
}

// -- cluster ---------------------------------------------------------------------

cluster_router* region::cluster() const noexcept { return core_.cluster.get(); }

struct region::shard_stop {
  std::atomic<std::size_t> left{1}; // 1: stop_shard's own guard until it has scanned
  std::vector<std::function<void()>> done;
};

void region::stop_shard(std::uint32_t cluster_shard, std::uint32_t shards,
                        std::function<void()> done) {
  cluster_shards_.store(shards);
  std::shared_ptr<shard_stop> rec;
  {
    std::lock_guard<std::mutex> g{stops_mtx_};
    for (auto& [s, r] : stops_)
      if (s == cluster_shard) rec = r;
    if (!rec)
      stops_.emplace_back(cluster_shard, rec = std::make_shared<shard_stop>());
    else
      rec->left.fetch_add(1);
    rec->done.push_back(std::move(done));
  }
  std::vector<caf::actor> to_stop;
  for (auto& sh : shards_) {
    std::lock_guard<std::mutex> g{sh->mtx};
    sh->entries.for_each([&](const std::string& id, entry& en) {
      if (en.stop_counted || persistence::shard_of(persistence_id(id), shards) != cluster_shard)
        return;
      en.stop_counted = true;
      rec->left.fetch_add(1);
      if (!en.passivating) {
        en.passivating = true;
        to_stop.push_back(en.actor);
      }
    });
  }
  for (auto& a : to_stop)
    send_passivate(a);
  finish_stop(cluster_shard);
}

void region::finish_stop(std::uint32_t cluster_shard) {
  std::vector<std::function<void()>> done;
  {
    std::lock_guard<std::mutex> g{stops_mtx_};
    for (auto i = stops_.begin(); i != stops_.end(); ++i) {
      if (i->first != cluster_shard) continue;
      if (i->second->left.fetch_sub(1) == 1) {
        done = std::move(i->second->done);
        stops_.erase(i);
      }
      break;
    }
  }
  for (auto& f : done)
    if (f) f();
}

caf::expected<std::vector<std::string>> region::ids() const {
  if (auto* router = cluster()) return cluster_ids(*router, core_, type());
  auto all = core_.journal->list_streams();
  if (!all) return to_error(all.error());
  std::vector<std::string> out;
  for (auto& pid : *all)
    if (persistence::is_persistence_id_of(pid, type()))
      out.emplace_back(persistence::id_of_persistence_id(pid));
  return out;
}

} // namespace strata::detail
