#include "strata/runtime/system.hpp"

#include "strata/persistence/journal.hpp"
#include "strata/runtime/detail/journal_writer.hpp"
#include "strata/runtime/detail/region.hpp"
#include "system_core.hpp"

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/atom.hpp>
#include <caf/message.hpp>

#include <algorithm>
#include <iostream>
#include <thread>

namespace strata {

namespace {

std::string ctx_string(const caf::message& ctx, std::size_t i) {
  if (ctx.size() > i && ctx.match_element<std::string>(i))
    return ctx.get_as<std::string>(i);
  return {};
}

class strata_actor_config : public caf::actor_system_config {
public:
  explicit strata_actor_config(const config& cfg) {
    auto threads = cfg.scheduler_threads;
    if (threads == 0) {
      auto hw = std::thread::hardware_concurrency();
      threads = hw > 1 ? hw - 1 : 1;
    }
    set("scheduler.max-threads", threads);
    set("scheduler.policy", caf::atom_from_string(cfg.scheduler_policy));
    if (cfg.max_throughput > 0)
      set("scheduler.max-throughput", cfg.max_throughput);
    // 0.17.6: the renderer overload (the templated convenience one does not compile).
    add_error_category(rejected_category, [](uint8_t code, caf::atom_value, const caf::message& ctx) {
      auto name = ctx_string(ctx, 1);
      return "rejected(" + ctx_string(ctx, 0) + ", "
             + (name.empty() ? std::to_string(code) : name) + ")";
    });
    add_error_category(runtime_category, [](uint8_t code, caf::atom_value, const caf::message& ctx) {
      auto msg = ctx_string(ctx, 0);
      return std::string("strata_error(") + to_string(static_cast<runtime_errc>(code))
             + (msg.empty() ? std::string{} : ", " + msg) + ")";
    });
  }
};

} // namespace

caf::expected<std::unique_ptr<system>> system::open(config cfg) {
  auto core = std::make_unique<detail::system_core>();
  core->cfg = std::move(cfg);
  auto& c = core->cfg;
  if (c.max_inflight_writes == 0)
    c.max_inflight_writes = 1;
  if (c.entity_batch_events_max == 0)
    c.entity_batch_events_max = 1;
  persistence::journal_options jo;
  jo.env.path = c.data_dir;
  jo.env.sync = c.durability;
  jo.env.map_size_bytes = c.map_size_bytes;
  jo.env.map_size_max_bytes = c.map_size_max_bytes;
  jo.writer_node = c.node_name;
  jo.index_flush_events = c.index_flush_events;
  jo.max_batch_events = std::max<std::size_t>(
    jo.max_batch_events, c.writer_batch_events_max + c.entity_batch_events_max);
  auto j = persistence::journal::open(jo);
  if (!j)
    return to_error(persistence::status{j.error().code(), "cannot open the journal in '"
                                                            + c.data_dir
                                                            + "': " + j.error().message()});
  core->journal = std::move(*j);
  core->gate = std::make_unique<detail::recovery_gate>(c.max_recovering);
  auto* jp = core->journal.get();
  core->writer = std::make_unique<detail::journal_writer>(
    [jp](const std::vector<persistence::stream_write>& w,
         const std::vector<persistence::snapshot_record>& s) { return jp->append(w, s); },
    c.append_fault, c.writer_batch_events_max, c.writer_linger_us, c.writer_linger_events);
  core->actor_cfg = std::make_unique<strata_actor_config>(c);
  core->actors = std::make_unique<caf::actor_system>(*core->actor_cfg);
  if (c.passivate_after_ms > 0) {
    auto* cp = core.get();
    auto period_ms = std::clamp<std::uint64_t>(c.passivate_after_ms / 4, 5, 1000);
    core->sweeper = std::thread([cp, period_ms] {
      std::unique_lock<std::mutex> lk{cp->sweep_mtx};
      while (!cp->sweep_stop) {
        cp->sweep_cv.wait_for(lk, std::chrono::milliseconds(period_ms));
        if (cp->sweep_stop)
          break;
        lk.unlock();
        auto now = detail::steady_now_ms();
        for (auto& r : cp->all_regions())
          r->passivate_idle(now, cp->cfg.passivate_after_ms);
        lk.lock();
      }
    });
  }
  return std::unique_ptr<system>(new system(std::move(core)));
}

system::system(std::unique_ptr<detail::system_core> core) : core_(std::move(core)) {}

system::~system() { shutdown(); }

void system::shutdown() {
  if (!core_ || core_->shut_down)
    return;
  core_->shut_down = true;
  core_->stopping.store(true, std::memory_order_release);
  {
    std::lock_guard<std::mutex> g{core_->sweep_mtx};
    core_->sweep_stop = true;
    core_->sweep_cv.notify_all();
  }
  if (core_->sweeper.joinable())
    core_->sweeper.join();
  auto regions = core_->all_regions();
  for (auto& r : regions)
    r->stop_all();
  for (auto& r : regions)
    r->await_all_finished();
  core_->writer->stop();
  auto st = core_->journal->close();
  if (!st.ok())
    std::cerr << "strata: closing the journal failed: " << st.to_string() << "\n";
  core_->actors.reset(); // awaits every actor
}

std::size_t system::passivate_idle(std::uint64_t idle_ms) {
  std::size_t n = 0;
  auto now = detail::steady_now_ms();
  for (auto& r : core_->all_regions())
    n += r->passivate_idle(now, idle_ms);
  return n;
}

system_stats system::stats() const {
  system_stats s;
  for (auto& r : core_->all_regions()) {
    s.live_entities += r->live();
    s.recoveries += r->recoveries();
    s.passivations += r->passivations();
  }
  s.recovering = core_->gate->in_use();
  s.waiting_for_recovery = core_->gate->waiting();
  s.commits = core_->writer->commits();
  s.committed_events = core_->writer->committed_events();
  s.failed_commits = core_->writer->failed_commits();
  s.append_ns = core_->writer->append_ns();
  return s;
}

const config& system::cfg() const noexcept { return core_->cfg; }
persistence::journal& system::journal() noexcept { return *core_->journal; }
caf::actor_system& system::actor_system() noexcept { return *core_->actors; }

std::shared_ptr<detail::region> system::region_for(const std::string& type,
                                                   const std::type_info& agg,
                                                   detail::spawn_fn spawn,
                                                   std::uint64_t snapshot_every) {
  std::lock_guard<std::mutex> g{core_->regions_mtx};
  auto it = core_->regions.find(type);
  if (it != core_->regions.end()) {
    if (*it->second.first != agg) {
      std::cerr << "strata: aggregate type '" << type
                << "' was registered with two different C++ types\n";
      std::abort();
    }
    return it->second.second;
  }
  auto r = std::make_shared<detail::region>(*core_, type, spawn, snapshot_every);
  core_->regions.emplace(type, std::make_pair(&agg, r));
  return r;
}

} // namespace strata
