// Scenarios `e2e`, `hot`, `recover`, `activate`: strata::runtime end to end (issue 3).
// A tiny account aggregate; commands come from closed-loop clients driven by the
// async API (each completion sends the client's next command).
#include "bench_account.hpp"
#include "scenario.hpp"

#include "strata/persistence/journal.hpp"
#include "strata/runtime/all.hpp"

#include <malloc.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <mutex>
#include <thread>

namespace strata::bench {
namespace {

// -- helpers --------------------------------------------------------------------------

using clock_type = std::chrono::steady_clock;

strata::config runtime_config(const std::filesystem::path& dir, const options& o) {
  strata::config c;
  c.data_dir = dir.string();
  c.durability = o.nosync ? persistence::sync_mode::nosync : persistence::sync_mode::sync;
  c.map_size_bytes = std::size_t{1} << 30;
  c.passivate_after_ms = 0;
  c.snapshot_every = 0;
  if (const char* l = std::getenv("STRATA_BENCH_LINGER_US")) // experiments
    c.writer_linger_us = std::strtoull(l, nullptr, 10);
  if (const char* l = std::getenv("STRATA_BENCH_LINGER_EVENTS"))
    c.writer_linger_events = std::strtoull(l, nullptr, 10);
  if (const char* p = std::getenv("STRATA_BENCH_POLICY")) c.scheduler_policy = p;
  if (const char* t = std::getenv("STRATA_BENCH_THREADS"))
    c.scheduler_threads = std::strtoull(t, nullptr, 10);
  if (const char* w = std::getenv("STRATA_BENCH_MAX_INFLIGHT"))
    c.max_inflight_writes = std::strtoull(w, nullptr, 10);
  return c;
}

std::unique_ptr<strata::system> open_system(const strata::config& c) {
  auto s = strata::system::open(c);
  if (!s) fail("system::open: " + strata::describe(s.error()));
  return std::move(*s);
}

std::uint64_t rss_bytes() {
  std::ifstream f("/proc/self/statm");
  std::uint64_t size = 0, resident = 0;
  f >> size >> resident;
  return resident * static_cast<std::uint64_t>(::sysconf(_SC_PAGESIZE));
}

std::string id_of(std::uint64_t k) { return "acct-" + std::to_string(k); }

/// Closed-loop load: `clients` concurrent command chains over `ids` entities until
/// `total` commands were sent; per-command latency in microseconds.

struct load_result {
  double cpu_s = 0; ///< process CPU time during the load
  std::uint64_t done = 0;
  std::uint64_t errors = 0;
  double seconds = 0;
  std::vector<std::uint32_t> latencies_us;
};

class load {
 public:
  load(strata::entities<account> h, std::vector<std::string> ids, std::uint64_t total,
       std::size_t clients)
    : h_(std::move(h)), ids_(std::move(ids)), total_(total), clients_(clients), lat_(clients) {}

  load_result run() {
    stopwatch sw;
    auto cpu0 = process_cpu_seconds();
    for (std::size_t c = 0; c < clients_; ++c) {
      lat_[c].reserve(total_ / clients_ + 16);
      next(c, 0x9e3779b97f4a7c15ull * (c + 1));
    }
    {
      std::unique_lock<std::mutex> g{mtx_};
      cv_.wait(g, [&] {
        return finished_ == clients_;
      });
    }
    load_result r;
    r.seconds = sw.seconds();
    r.cpu_s = process_cpu_seconds() - cpu0;
    r.done = done_.load();
    r.errors = errors_.load();
    for (auto& v : lat_)
      r.latencies_us.insert(r.latencies_us.end(), v.begin(), v.end());
    return r;
  }

 private:
  void next(std::size_t c, std::uint64_t rng) {
    if (sent_.fetch_add(1, std::memory_order_relaxed) >= total_ || stop_) {
      std::lock_guard<std::mutex> g{mtx_};
      if (++finished_ == clients_) cv_.notify_all();
      return;
    }
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    const auto& id = ids_[rng % ids_.size()];
    auto t0 = clock_type::now();
    h_.ask_async(id, deposit{1}, [this, c, rng, t0](caf::expected<std::int64_t> r) {
      auto us = std::chrono::duration_cast<std::chrono::microseconds>(clock_type::now() - t0);
      lat_[c].push_back(static_cast<std::uint32_t>(us.count()));
      done_.fetch_add(1, std::memory_order_relaxed);
      if (!r) {
        if (errors_.fetch_add(1) == 0)
          progress("load: first error: " + strata::describe(r.error()));
        stop_ = true;
      }
      next(c, rng);
    });
  }

  strata::entities<account> h_;
  std::vector<std::string> ids_;
  std::uint64_t total_;
  std::size_t clients_;
  std::vector<std::vector<std::uint32_t>> lat_;
  std::atomic<std::uint64_t> sent_{0};
  std::atomic<std::uint64_t> done_{0};
  std::atomic<std::uint64_t> errors_{0};
  std::atomic<bool> stop_{false};
  std::mutex mtx_;
  std::condition_variable cv_;
  std::size_t finished_ = 0;
};


/// Open-loop load at `rate` commands/s for `seconds`: latency at a given load.
load_result paced(strata::entities<account>& h, const std::vector<std::string>& ids, double rate,
                  double seconds) {
  std::mutex m;
  std::vector<std::uint32_t> lat;
  std::atomic<std::uint64_t> done{0}, errors{0};
  auto total = static_cast<std::uint64_t>(rate * seconds);
  lat.reserve(total);
  auto start = clock_type::now();
  std::uint64_t sent = 0, rng = 88172645463325252ull;
  stopwatch sw;
  while (sent < total) {
    auto due = static_cast<std::uint64_t>(
      std::chrono::duration<double>(clock_type::now() - start).count() * rate);
    for (; sent < std::min(due, total); ++sent) {
      rng ^= rng << 13;
      rng ^= rng >> 7;
      rng ^= rng << 17;
      auto t0 = clock_type::now();
      h.ask_async(ids[rng % ids.size()], deposit{1}, [&, t0](caf::expected<std::int64_t> r) {
        auto us = std::chrono::duration_cast<std::chrono::microseconds>(clock_type::now() - t0);
        {
          std::lock_guard<std::mutex> g{m};
          lat.push_back(static_cast<std::uint32_t>(us.count()));
        }
        if (!r) errors.fetch_add(1);
        done.fetch_add(1);
      });
    }
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
  while (done.load() < total)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  load_result r;
  r.seconds = sw.seconds();
  r.done = done.load();
  r.errors = errors.load();
  std::lock_guard<std::mutex> g{m};
  r.latencies_us = std::move(lat);
  return r;
}

void warm_up(strata::entities<account>& h, const std::vector<std::string>& ids) {
  std::atomic<std::size_t> left{ids.size()};
  std::atomic<std::uint64_t> errors{0};
  // A window of outstanding activations (each one recovers an entity).
  std::size_t window = 2048, next = 0;
  while (next < ids.size() || left.load() > 0) {
    while (next < ids.size() && (next - (ids.size() - left.load())) < window) {
      h.ask_async(ids[next++], get_balance{}, [&](caf::expected<std::int64_t> r) {
        if (!r) errors.fetch_add(1);
        left.fetch_sub(1);
      });
    }
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
  if (errors.load() > 0) fail("warm-up: " + std::to_string(errors.load()) + " errors");
}

/// Percentile `p` (ms) of the commits counted in `after` but not in `before` (the
/// system's commit-time histogram, buckets of 50 µs; the upper edge of the bucket).
double commit_percentile(const strata::system_stats& before, const strata::system_stats& after,
                         double p) {
  const auto& a = after.commit_us_histogram;
  std::vector<std::uint64_t> d(a.size());
  std::uint64_t total = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    d[i] = a[i] - (i < before.commit_us_histogram.size() ? before.commit_us_histogram[i] : 0);
    total += d[i];
  }
  if (total == 0 || d.empty()) return 0;
  auto rank = static_cast<std::uint64_t>(p * static_cast<double>(total - 1));
  std::uint64_t seen = 0;
  std::size_t i = 0;
  for (; i < d.size(); ++i) {
    seen += d[i];
    if (seen > rank) break;
  }
  return static_cast<double>(i + 1) * 50.0 / 1000.0;
}

result report(const load_result& lr, const strata::system_stats& before, strata::system& sys) {
  result r;
  auto lat = lr.latencies_us;
  r.events = lr.done;
  r.seconds = lr.seconds;
  auto st = sys.stats();
  r.add("p50_ms", percentile_ms(lat, 0.50)).add("p99_ms", percentile_ms(lat, 0.99));
  r.add("errors", lr.errors);
  r.add("load_cpu_us_per_cmd", lr.done ? lr.cpu_s * 1e6 / static_cast<double>(lr.done) : 0.0);
  r.add("commits", st.commits - before.commits);
  r.add("append_s", static_cast<double>(st.append_ns - before.append_ns) / 1e9);
  r.add("commit_p50_ms", commit_percentile(before, st, 0.50))
    .add("commit_p99_ms", commit_percentile(before, st, 0.99));
  return r;
}

// -- e2e --------------------------------------------------------------------------------

result run_e2e(context& ctx) {
  const auto& o = ctx.opts();
  auto cfg = runtime_config(ctx.fresh_dir("e2e"), o);
  auto sys = open_system(cfg);
  auto h = sys->entities<account>();
  std::size_t n_ids = 10'000;
  std::vector<std::string> ids;
  for (std::size_t k = 0; k < n_ids; ++k)
    ids.push_back(id_of(k));
  progress("e2e: activating " + std::to_string(n_ids) + " aggregates (not timed)");
  warm_up(h, ids);
  std::uint64_t total = o.quick ? 200'000 : std::max<std::uint64_t>(o.events, 100'000);
  std::size_t clients = 16384;
  auto c0 = sys->stats();
  progress("e2e: " + std::to_string(total) + " deposits from " + std::to_string(clients) +
           " closed-loop clients");
  load l{h, ids, total, clients};
  auto lr = l.run();
  auto r = report(lr, c0, *sys);
  r.add("aggregates", static_cast<std::uint64_t>(n_ids))
    .add("clients", static_cast<std::uint64_t>(clients))
    .add("durability", o.nosync ? "nosync" : "sync");
  // Latency at half of the measured maximum, open loop.
  double half = r.events_per_s() / 2;
  double secs = o.quick ? 1.0 : 3.0;
  progress("e2e: latency at half load (" + std::to_string(static_cast<long>(half)) + "/s)");
  auto h0 = sys->stats();
  auto pl = paced(h, ids, half, secs);
  auto h1 = sys->stats();
  auto lat = pl.latencies_us;
  auto commits = h1.commits - h0.commits;
  // The command latency beside the commit-time distribution (hand-over to the journal →
  // commit callback, fsync included) and the mean interval between commits.
  r.add("half_load_per_s", half)
    .add("half_load_p50_ms", percentile_ms(lat, 0.5))
    .add("half_load_p99_ms", percentile_ms(lat, 0.99))
    .add("half_load_commit_p50_ms", commit_percentile(h0, h1, 0.50))
    .add("half_load_commit_p99_ms", commit_percentile(h0, h1, 0.99))
    .add("half_load_commit_interval_ms",
         commits ? pl.seconds * 1000.0 / static_cast<double>(commits) : 0.0)
    .add("half_load_errors", pl.errors);
  if (lr.errors || pl.errors) fail("e2e: commands failed");
  return r;
}

// -- hot ----------------------------------------------------------------------------------

result run_hot(context& ctx) {
  const auto& o = ctx.opts();
  auto cfg = runtime_config(ctx.fresh_dir("hot"), o);
  auto sys = open_system(cfg);
  auto h = sys->entities<account>();
  std::vector<std::string> ids{"hot-1"};
  warm_up(h, ids);
  std::uint64_t total = o.quick ? 100'000 : std::max<std::uint64_t>(o.events / 2, 100'000);
  std::size_t clients = 2048; // one aggregate: the pipeline batches what waits
  auto c0 = sys->stats();
  progress("hot: " + std::to_string(total) + " deposits to one aggregate from " +
           std::to_string(clients) + " clients");
  load l{h, ids, total, clients};
  auto lr = l.run();
  auto r = report(lr, c0, *sys);
  r.add("clients", static_cast<std::uint64_t>(clients))
    .add("durability", o.nosync ? "nosync" : "sync");
  auto bal = h.ask("hot-1", get_balance{});
  if (!bal || static_cast<std::uint64_t>(*bal) != lr.done)
    fail("hot: balance does not match the acknowledged deposits");
  if (lr.errors) fail("hot: commands failed");
  return r;
}

// -- recover --------------------------------------------------------------------------------

void write_streams(const std::filesystem::path& dir, const options& o, std::uint64_t streams,
                   std::uint64_t per_stream) {
  persistence::journal_options jo;
  jo.env.path = dir.string();
  jo.env.sync = persistence::sync_mode::nosync;
  jo.env.map_size_bytes = std::size_t{1} << 30;
  auto j = persistence::journal::open(jo);
  if (!j) fail("journal::open: " + j.error().to_string());
  std::vector<persistence::stream_write> batch;
  std::uint64_t in_batch = 0;
  auto flush = [&] {
    if (batch.empty()) return;
    auto res = (*j)->append(batch);
    if (!res) fail("append: " + res.error().to_string());
    batch.clear();
    in_batch = 0;
  };
  for (std::uint64_t s = 0; s < streams; ++s) {
    for (std::uint64_t done = 0; done < per_stream;) {
      persistence::stream_write w;
      w.persistence_id = strata::make_persistence_id("account", id_of(s));
      w.expected_seq = done;
      auto n = std::min<std::uint64_t>(per_stream - done, 10'000);
      for (std::uint64_t k = 0; k < n; ++k) {
        auto b = account::encode(deposited{1});
        persistence::event_data d;
        d.type = std::move(b.type);
        d.schema_version = b.schema_version;
        d.payload = std::move(b.payload);
        w.events.push_back(std::move(d));
      }
      done += n;
      in_batch += n;
      batch.push_back(std::move(w));
      if (in_batch >= 10'000) flush();
    }
  }
  flush();
  auto st = (*j)->close();
  if (!st.ok()) fail("close: " + st.to_string());
  (void)o;
}

result run_recover(context& ctx) {
  const auto& o = ctx.opts();
  std::uint64_t big = o.quick ? 200'000 : o.events;
  std::uint64_t many = o.quick ? 10'000 : 100'000;
  auto dir1 = ctx.fresh_dir("recover-one");
  auto dir2 = ctx.fresh_dir("recover-many");
  progress("recover: writing " + std::to_string(big) + " events in one stream and " +
           std::to_string(many) + " streams x 10 (not timed)");
  write_streams(dir1, o, 1, big);
  write_streams(dir2, o, many, 10);

  double one_s = 0, many_s = 0, journal_s = 0;
  {
    auto sys = open_system(runtime_config(dir1, o));
    auto h = sys->entities<account>();
    stopwatch sw;
    auto r = h.ask(id_of(0), get_balance{}, std::chrono::minutes(10));
    one_s = sw.seconds();
    if (!r || static_cast<std::uint64_t>(*r) != big) fail("recover: one stream: wrong balance");
    // The journal alone on the same stream (copy-free reads, no decoding, no apply):
    // what the runtime adds on top of it.
    sw.restart();
    std::uint64_t n = 0;
    auto st = sys->journal().read_stream_view(strata::make_persistence_id("account", id_of(0)), 1,
                                              persistence::journal::max_seq,
                                              [&](const persistence::event_view& e) {
                                                n += e.payload.size() > 0 ? 1 : 0;
                                                return true;
                                              });
    journal_s = sw.seconds();
    if (!st.ok() || n != big) fail("recover: journal read of the stream failed");
  }
  {
    auto sys = open_system(runtime_config(dir2, o));
    auto h = sys->entities<account>();
    std::vector<std::string> ids;
    for (std::uint64_t k = 0; k < many; ++k)
      ids.push_back(id_of(k));
    stopwatch sw;
    warm_up(h, ids);
    many_s = sw.seconds();
    auto r = h.ask(id_of(many - 1), get_balance{});
    if (!r || *r != 10) fail("recover: many streams: wrong balance");
  }
  result r;
  r.events = big + many * 10;
  r.seconds = one_s + many_s;
  r.add("one_stream_events", big)
    .add("one_stream_per_s", static_cast<double>(big) / one_s)
    .add("one_stream_journal_read_per_s", static_cast<double>(big) / journal_s)
    .add("many_streams", many)
    .add("many_streams_events_per_s", static_cast<double>(many * 10) / many_s)
    .add("many_streams_per_s", static_cast<double>(many) / many_s);
  return r;
}

// -- activate --------------------------------------------------------------------------------

result run_activate(context& ctx) {
  const auto& o = ctx.opts();
  std::uint64_t n = o.quick ? 100'000 : 1'000'000;
  auto cfg = runtime_config(ctx.fresh_dir("activate"), o);
  cfg.max_recovering = 2;
  auto sys = open_system(cfg);
  auto h = sys->entities<account>();
  std::vector<std::string> ids;
  ids.reserve(n);
  for (std::uint64_t k = 0; k < n; ++k)
    ids.push_back(id_of(k));
  malloc_trim(0);
  auto rss0 = rss_bytes();
  progress("activate: touching " + std::to_string(n) + " aggregates");
  stopwatch sw;
  warm_up(h, ids);
  double touch_s = sw.seconds();
  auto rss1 = rss_bytes();
  progress("activate: passivating them");
  sw.restart();
  sys->passivate_idle(0);
  auto deadline = clock_type::now() + std::chrono::minutes(5);
  while (h.live() > 0 && clock_type::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  double passivate_s = sw.seconds();
  if (h.live() > 0) fail("activate: entities still live after passivation");
  malloc_trim(0);
  auto rss2 = rss_bytes();
  result r;
  r.events = n;
  r.seconds = touch_s;
  auto per = [&](std::uint64_t a, std::uint64_t b) {
    return b > a ? static_cast<double>(b - a) / static_cast<double>(n) : 0.0;
  };
  r.add("rss_per_live_entity_bytes", per(rss0, rss1))
    .add("rss_per_passivated_entity_bytes", per(rss0, rss2))
    .add("state_bytes", static_cast<std::uint64_t>(sizeof(account::state)))
    .add("passivate_s", passivate_s)
    .add("rss_before_mb", static_cast<double>(rss0) / 1048576.0)
    .add("rss_live_mb", static_cast<double>(rss1) / 1048576.0)
    .add("rss_after_passivation_mb", static_cast<double>(rss2) / 1048576.0);
  return r;
}

const registrar reg_e2e{{"e2e",
                         "runtime end to end: 10k account aggregates, 16384 closed-loop "
                         "clients (async API), durable group commit; p50/p99 latency, and "
                         "latency at half the measured rate",
                         200, "", true, run_e2e}};
const registrar reg_hot{
  {"hot", "runtime: one aggregate, 512 concurrent commands (pipelining)", 210, "", true, run_hot}};
const registrar reg_recover{{"recover",
                             "runtime recovery: one stream of N events, then 100k streams x "
                             "10 events (spawn + replay, no snapshots)",
                             220, "baseline-scan", true, run_recover}};
const registrar reg_activate{{"activate",
                              "runtime: touch 1M aggregates once, RSS per live idle entity, "
                              "then passivate them all",
                              230, "", true, run_activate}};

} // namespace
} // namespace strata::bench
