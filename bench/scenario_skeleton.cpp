// Scenario `skeleton`: the ceiling of the runtime's command pipeline, measured beside
// `e2e` (ratio `e2e/skeleton`). The same shape on CAF with no storage and no strata
// code: 10k entity actors, e2e's 16384 closed-loop clients, and one writer thread that
// collects the write requests, sleeps one fsync per batch (measured on the scratch
// disk) and then notifies each entity once per batch. A client is not an actor: it is
// the command's data, and its next command is sent from inside the entity that
// completed the previous one (`self->send`), as a reply continuation.
#include "scenario.hpp"

#include <caf/all.hpp>

#include <fcntl.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <deque>
#include <mutex>
#include <thread>

namespace strata::bench {
namespace {

using clock_type = std::chrono::steady_clock;
using sk_cmd_atom = caf::atom_constant<caf::atom("sk_cmd")>;
using sk_done_atom = caf::atom_constant<caf::atom("sk_done")>;

std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(clock_type::now().time_since_epoch())
    .count();
}

/// Median time of a 4 KiB overwrite + fdatasync in `dir` (what one commit waits for).
std::chrono::nanoseconds measure_fsync(const std::filesystem::path& dir) {
  auto path = dir / "fsync-probe";
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) fail("cannot create " + path.string());
  std::string page(4096, 'x');
  std::vector<std::int64_t> ns;
  for (int k = 0; k < 64 && ::pwrite(fd, page.data(), page.size(), 4096 * k) > 0; ++k)
    ; // preallocate: the probe overwrites, as LMDB does within its map
  ::fdatasync(fd);
  for (int k = 0; k < 41; ++k) {
    auto t0 = clock_type::now();
    if (::pwrite(fd, page.data(), page.size(), 4096 * (k % 64)) < 0 || ::fdatasync(fd) != 0) {
      ::close(fd);
      fail("fsync probe in " + dir.string() + " failed");
    }
    ns.push_back(
      std::chrono::duration_cast<std::chrono::nanoseconds>(clock_type::now() - t0).count());
  }
  ::close(fd);
  std::filesystem::remove(path);
  std::nth_element(ns.begin(), ns.begin() + ns.size() / 2, ns.end());
  return std::chrono::nanoseconds(ns[ns.size() / 2]);
}

/// State shared by the entities, the writer thread and the driver.
class pipeline {
 public:
  pipeline(std::uint64_t total, std::size_t entities, std::chrono::nanoseconds fsync)
    : total_(total), fsync_(fsync), counts_(entities, 0), latencies_us_(total) {}

  std::vector<caf::actor> entities; ///< set before the load starts, then read-only

  /// An entity's write request (from a CAF worker).
  void submit(std::uint32_t entity) {
    bool wake;
    {
      std::lock_guard<std::mutex> g{mtx_};
      pending_.push_back(entity);
      wake = writer_waiting_;
      writer_waiting_ = false;
    }
    if (wake) writer_cv_.notify_one();
  }

  /// A command completed (from a CAF worker); true when its client sends another one.
  bool complete(std::int64_t t0_ns) {
    auto us = (now_ns() - t0_ns) / 1000;
    auto i = done_.fetch_add(1, std::memory_order_relaxed);
    latencies_us_[i] = static_cast<std::uint32_t>(us);
    if (i + 1 == total_) {
      std::lock_guard<std::mutex> g{mtx_};
      all_done_ = true;
      done_cv_.notify_all();
    }
    return sent_.fetch_add(1, std::memory_order_relaxed) < total_;
  }

  /// The writer thread: batch, "fsync", notify each entity once per batch.
  void write_loop() {
    ::prctl(PR_SET_TIMERSLACK, 1UL); // sleep the fsync time, not 50 µs more
    std::vector<std::uint32_t> batch, touched;
    for (;;) {
      {
        std::unique_lock<std::mutex> g{mtx_};
        while (pending_.empty() && !stop_) {
          writer_waiting_ = true;
          writer_cv_.wait(g);
        }
        writer_waiting_ = false;
        if (pending_.empty()) return;
        batch.swap(pending_);
      }
      if (fsync_.count() > 0) std::this_thread::sleep_for(fsync_);
      for (auto e : batch)
        if (counts_[e]++ == 0) touched.push_back(e);
      for (auto e : touched) {
        caf::anon_send(entities[e], sk_done_atom::value, counts_[e]);
        counts_[e] = 0;
      }
      ++commits_;
      max_batch_ = std::max<std::uint64_t>(max_batch_, batch.size());
      batch.clear();
      touched.clear();
    }
  }

  void start_clients(std::size_t clients) {
    sent_ = clients;
    std::uint64_t rng = 88172645463325252ull;
    for (std::uint32_t c = 0; c < clients; ++c) {
      rng = next_rng(rng ^ (0x9e3779b97f4a7c15ull * (c + 1)));
      caf::anon_send(entities[rng % entities.size()], sk_cmd_atom::value, c, rng, now_ns());
    }
  }

  void wait_done() {
    std::unique_lock<std::mutex> g{mtx_};
    done_cv_.wait(g, [&] {
      return all_done_;
    });
  }

  void stop_writer() {
    std::lock_guard<std::mutex> g{mtx_};
    stop_ = true;
    writer_cv_.notify_all();
  }

  static std::uint64_t next_rng(std::uint64_t x) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return x;
  }

  std::uint64_t commits() const { return commits_; }
  std::uint64_t max_batch() const { return max_batch_; }
  std::vector<std::uint32_t>& latencies_us() { return latencies_us_; }

 private:
  const std::uint64_t total_;
  const std::chrono::nanoseconds fsync_;
  std::mutex mtx_; // guards pending_ and the flags
  std::condition_variable writer_cv_;
  std::condition_variable done_cv_; // the driver waits for all_done_
  std::vector<std::uint32_t> pending_;
  bool writer_waiting_ = false;
  bool stop_ = false;
  bool all_done_ = false;
  std::vector<std::uint32_t> counts_; // writer thread only
  std::uint64_t commits_ = 0;         // writer thread only (read after join)
  std::uint64_t max_batch_ = 0;
  std::atomic<std::uint64_t> sent_{0};
  std::atomic<std::uint64_t> done_{0};
  std::vector<std::uint32_t> latencies_us_;
};

struct entity_state {
  struct waiting {
    std::uint32_t client;
    std::uint64_t rng;
    std::int64_t t0_ns;
  };
  std::int64_t balance = 0;
  std::deque<waiting> in_flight; ///< clients whose writes are not yet "durable"
  static inline const char* name = "skeleton_entity";
};

caf::behavior skeleton_entity(caf::stateful_actor<entity_state>* self, pipeline* p,
                              std::uint32_t index) {
  return {
    [=](sk_cmd_atom, std::uint32_t client, std::uint64_t rng, std::int64_t t0) {
      self->state.balance += 1; // decide and apply a deposit
      self->state.in_flight.push_back({client, rng, t0});
      p->submit(index);
    },
    [=](sk_done_atom, std::uint32_t n) {
      for (std::uint32_t k = 0; k < n; ++k) {
        auto w = self->state.in_flight.front();
        self->state.in_flight.pop_front();
        if (!p->complete(w.t0_ns)) continue; // the reply; this client is done
        auto rng = pipeline::next_rng(w.rng);
        self->send(p->entities[rng % p->entities.size()], sk_cmd_atom::value, w.client, rng,
                   now_ns());
      }
    },
  };
}



/// Knobs for experiments: STRATA_BENCH_SKELETON_{FSYNC_US,THREADS,POLICY}.
struct skeleton_knobs {
  std::chrono::nanoseconds fsync{0};
  bool fsync_measured = true;
  std::size_t threads = 2;
  std::string policy = "sharing";
};

skeleton_knobs knobs(const options& o, const std::filesystem::path& dir) {
  skeleton_knobs k;
  if (const char* v = std::getenv("STRATA_BENCH_SKELETON_THREADS"))
    k.threads = std::max<std::size_t>(1, std::strtoull(v, nullptr, 10));
  if (const char* v = std::getenv("STRATA_BENCH_SKELETON_POLICY")) k.policy = v;
  if (const char* v = std::getenv("STRATA_BENCH_SKELETON_FSYNC_US")) {
    k.fsync = std::chrono::microseconds(std::strtoull(v, nullptr, 10));
    k.fsync_measured = false;
  } else if (!o.nosync) {
    k.fsync = measure_fsync(dir);
  }
  return k;
}

result run_skeleton(context& ctx) {
  const options& o = ctx.opts();
  const std::size_t n_entities = 10'000, clients = 16384; // as e2e
  const std::uint64_t total = o.quick ? 200'000 : std::max<std::uint64_t>(o.events, 100'000);
  auto k = knobs(o, ctx.fresh_dir("skeleton"));
  caf::actor_system_config cfg;
  cfg.set("scheduler.max-threads", k.threads);
  cfg.set("scheduler.policy", caf::atom_from_string(k.policy));
  cfg.set("scheduler.max-throughput", 300); // as strata::config's default
  caf::actor_system sys{cfg};
  pipeline p(total, n_entities, k.fsync);
  for (std::uint32_t e = 0; e < n_entities; ++e)
    p.entities.push_back(sys.spawn(skeleton_entity, &p, e));
  progress("skeleton: " + std::to_string(total) + " commands from " + std::to_string(clients) +
           " closed-loop clients, " + std::to_string(k.fsync.count() / 1000) + " us per commit, " +
           std::to_string(k.threads) + " " + k.policy + " workers");
  std::thread writer([&] {
    p.write_loop();
  });
  double cpu0 = process_cpu_seconds();
  stopwatch sw;
  p.start_clients(std::min<std::uint64_t>(clients, total));
  p.wait_done();
  double secs = sw.seconds();
  double cpu_s = process_cpu_seconds() - cpu0;
  p.stop_writer();
  writer.join();
  for (auto& e : p.entities)
    caf::anon_send_exit(e, caf::exit_reason::user_shutdown);
  p.entities.clear();

  result r;
  r.events = total;
  r.seconds = secs;
  auto& lat = p.latencies_us();
  r.add("p50_ms", percentile_ms(lat, 0.50))
    .add("p99_ms", percentile_ms(lat, 0.99))
    .add("load_cpu_us_per_cmd", cpu_s * 1e6 / static_cast<double>(total))
    .add("commits", p.commits())
    .add("events_per_commit", static_cast<double>(total) / static_cast<double>(p.commits()))
    .add("max_batch", p.max_batch())
    .add("commit_sleep_us", static_cast<double>(k.fsync.count()) / 1000.0)
    .add("commit_sleep", k.fsync_measured ? "measured (4 KiB fdatasync)" : "set")
    .add("aggregates", static_cast<std::uint64_t>(n_entities))
    .add("clients", static_cast<std::uint64_t>(clients))
    .add("workers", static_cast<std::uint64_t>(k.threads))
    .add("scheduler", k.policy);
  return r;
}

const registrar reg{{"skeleton",
                     "the runtime's pipeline on CAF without storage (the ceiling of e2e): 10k "
                     "entity actors, 16384 closed-loop clients, one writer thread sleeping one "
                     "measured fsync per batch, then one message per entity per batch",
                     195, "", true, run_skeleton}};

// e2e against its ceiling, in e2e's line.
const comparison_registrar cmp{{"e2e", "skeleton"}};

} // namespace
} // namespace strata::bench
