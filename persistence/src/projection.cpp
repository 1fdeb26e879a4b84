#include "strata/persistence/projection.hpp"

#include "strata/persistence/journal.hpp"
#include "strata/persistence/offset_store.hpp"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <unordered_map>

namespace strata::persistence {

namespace {

std::string be64(std::uint64_t v) {
  std::string out(8, '\0');
  for (int i = 7; i >= 0; --i) {
    out[static_cast<std::size_t>(i)] = static_cast<char>(v & 0xff);
    v >>= 8;
  }
  return out;
}

std::uint64_t from_be64(std::string_view s) {
  std::uint64_t v = 0;
  for (char c : s)
    v = (v << 8) | static_cast<unsigned char>(c);
  return v;
}

} // namespace

// --- projection_writer -------------------------------------------------------------------

struct projection_writer::impl {
  journal* j = nullptr;
  projection proj;
  table seqs;
  std::unordered_map<std::string, std::uint64_t> cache; // committed highest seqs
  projection_stats stats;

  result<std::uint64_t> lookup(const read_txn& txn, std::string_view pid) const {
    auto it = cache.find(std::string{pid});
    if (it != cache.end()) return it->second;
    auto v = txn.get(seqs, pid);
    if (!v) return v.error();
    if (!*v) return std::uint64_t{0};
    if ((*v)->size() != 8)
      return status{errc::corrupt, "projection '" + proj.name + "': stored seq of stream '" +
                                     std::string{pid} + "' is damaged; rebuild the view"};
    return from_be64(**v);
  }
};

result<std::unique_ptr<projection_writer>> projection_writer::open(journal& j, projection p) {
  if (p.name.empty() || p.name.size() > 100 || !p.apply)
    return status{errc::invalid_argument,
                  "projection needs a name of 1..100 bytes and an apply function"};
  auto t = j.env().open_table(p.name + ".seqs");
  if (!t) return t.error();
  auto m = std::make_unique<impl>();
  m->j = &j;
  m->proj = std::move(p);
  m->seqs = *t;
  return std::unique_ptr<projection_writer>{new projection_writer(std::move(m))};
}

projection_writer::projection_writer(std::unique_ptr<impl> p) : impl_(std::move(p)) {}
projection_writer::~projection_writer() = default;

status
projection_writer::apply_batch(const std::vector<event_record>& events,
                               const std::vector<std::pair<std::string, std::uint64_t>>& offsets) {
  auto& m = *impl_;
  std::unordered_map<std::string, std::uint64_t> overlay;
  projection_stats delta;
  auto st = m.j->env().write([&](write_txn& txn) -> status {
    overlay.clear();
    delta = {};
    for (const auto& e : events) {
      std::uint64_t highest = 0;
      if (auto it = overlay.find(e.persistence_id); it != overlay.end()) {
        highest = it->second;
      } else {
        auto h = m.lookup(txn, e.persistence_id);
        if (!h) return h.error();
        highest = *h;
      }
      if (e.seq <= highest) {
        ++delta.duplicates;
        continue;
      }
      if (e.seq > highest + 1) ++delta.gaps;
      if (auto s = m.proj.apply(txn, e); !s.ok()) return s;
      ++delta.applied;
      overlay[e.persistence_id] = e.seq;
    }
    for (const auto& [pid, seq] : overlay)
      if (auto s = txn.put(m.seqs, pid, be64(seq)); !s.ok()) return s;
    for (const auto& [name, value] : offsets)
      if (auto s = m.j->offsets().put(txn, name, value); !s.ok()) return s;
    return {};
  });
  if (!st.ok()) return st;
  if (m.cache.size() > 1'000'000) m.cache.clear();
  for (auto& [pid, seq] : overlay)
    m.cache[pid] = seq;
  m.stats.applied += delta.applied;
  m.stats.duplicates += delta.duplicates;
  m.stats.gaps += delta.gaps;
  ++m.stats.batches;
  return {};
}

result<std::uint64_t> projection_writer::highest_seq(std::string_view persistence_id) const {
  result<std::uint64_t> out = std::uint64_t{0};
  auto st = impl_->j->env().read([&](read_txn& txn) {
    out = impl_->lookup(txn, persistence_id);
    return out ? status{} : out.error();
  });
  if (!st.ok()) return st;
  return out;
}

const projection& projection_writer::proj() const noexcept { return impl_->proj; }

projection_stats projection_writer::stats() const noexcept { return impl_->stats; }

journal& projection_writer::source_journal() noexcept { return *impl_->j; }

// --- journal_projection ------------------------------------------------------------------

struct journal_projection::impl {
  std::unique_ptr<projection_writer> writer;
  journal* j = nullptr;
  journal_projection_options opts;
  std::string offset_name;
  std::uint64_t next = 1;
  std::atomic<std::uint64_t> applied_position{0};

  std::thread thread;
  std::atomic<bool> running{false};
  std::atomic<bool> stopping{false};
  std::mutex mu;
  std::condition_variable cv;
  status error; // guarded by mu
  mutable std::mutex stats_mu;
  projection_stats stats_copy;

  result<std::size_t> poll_once() {
    std::vector<event_record> batch;
    batch.reserve(std::min<std::size_t>(opts.batch_max_events, 1024));
    auto st = j->read_global(next, opts.batch_max_events, [&](const event_record& e) {
      batch.push_back(e);
      return true;
    });
    if (!st.ok()) return st;
    if (batch.empty()) return std::size_t{0};
    auto last = batch.back().position;
    if (auto s = writer->apply_batch(batch, {{offset_name, last}}); !s.ok()) return s;
    next = last + 1;
    applied_position.store(last, std::memory_order_release);
    {
      std::lock_guard<std::mutex> g{stats_mu};
      stats_copy = writer->stats();
    }
    return batch.size();
  }

  std::uint64_t first_position_at(std::int64_t ts_ns) const {
    std::uint64_t lo = 1, hi = j->last_position() + 1;
    while (lo < hi) {
      std::uint64_t mid = lo + (hi - lo) / 2;
      std::optional<std::pair<std::uint64_t, std::int64_t>> found;
      (void)j->read_global(mid, 1, [&](const event_record& e) {
        found = std::make_pair(e.position, e.timestamp_ns);
        return false;
      });
      if (!found || found->second >= ts_ns)
        hi = mid;
      else
        lo = found->first + 1;
    }
    return lo;
  }
};

result<std::unique_ptr<journal_projection>> journal_projection::open(journal& j, projection p,
                                                                     journal_projection_options o) {
  if (o.batch_max_events == 0)
    return status{errc::invalid_argument, "journal_projection: batch_max_events must be > 0"};
  auto name = p.name;
  auto w = projection_writer::open(j, std::move(p));
  if (!w) return w.error();
  auto m = std::make_unique<impl>();
  m->writer = std::move(*w);
  m->j = &j;
  m->opts = o;
  m->offset_name = name + "/journal";
  auto stored = j.offsets().get(m->offset_name);
  if (!stored) return stored.error();
  if (*stored) {
    m->next = **stored + 1;
  } else {
    switch (o.start) {
      case start_from::beginning: m->next = 1; break;
      case start_from::end: m->next = j.last_position() + 1; break;
      case start_from::position: m->next = o.position == 0 ? 1 : o.position; break;
      case start_from::timestamp: m->next = m->first_position_at(o.timestamp_ns); break;
    }
    if (m->next > 1) // remember the start, so a restart resumes there
      if (auto st = j.offsets().put(m->offset_name, m->next - 1); !st.ok()) return st;
  }
  m->applied_position.store(m->next - 1);
  return std::unique_ptr<journal_projection>{new journal_projection(std::move(m))};
}

journal_projection::journal_projection(std::unique_ptr<impl> p) : impl_(std::move(p)) {}

journal_projection::~journal_projection() { stop(); }

result<std::size_t> journal_projection::poll() {
  if (impl_->running.load())
    return status{errc::invalid_argument,
                  "journal_projection: poll() while the background thread runs"};
  return impl_->poll_once();
}

status journal_projection::catch_up(std::uint32_t timeout_ms) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  auto target = impl_->j->last_position();
  while (impl_->next <= target) {
    auto n = poll();
    if (!n) return n.error();
    if (*n == 0) break; // the rest up to target was deleted or not yet visible
    if (std::chrono::steady_clock::now() > deadline)
      return {errc::unavailable, "journal_projection '" + impl_->writer->proj().name +
                                   "': catch-up did not reach position " + std::to_string(target) +
                                   " in " + std::to_string(timeout_ms) + " ms"};
  }
  return {};
}

status journal_projection::start() {
  if (impl_->running.exchange(true))
    return {errc::invalid_argument, "journal_projection: already started"};
  impl_->stopping.store(false);
  auto* m = impl_.get();
  m->thread = std::thread([m] {
    while (!m->stopping.load()) {
      auto n = m->poll_once();
      if (!n) {
        std::lock_guard<std::mutex> g{m->mu};
        m->error = n.error();
        break;
      }
      if (*n == 0) {
        std::unique_lock<std::mutex> lk{m->mu};
        m->cv.wait_for(lk, std::chrono::milliseconds(m->opts.idle_poll_ms), [&] {
          return m->stopping.load();
        });
      }
    }
  });
  return {};
}

void journal_projection::stop() {
  if (!impl_->running.load()) return;
  {
    std::lock_guard<std::mutex> g{impl_->mu};
    impl_->stopping.store(true);
  }
  impl_->cv.notify_all();
  if (impl_->thread.joinable()) impl_->thread.join();
  impl_->running.store(false);
}

status journal_projection::health() const {
  std::lock_guard<std::mutex> g{impl_->mu};
  return impl_->error;
}

std::uint64_t journal_projection::position() const noexcept {
  return impl_->applied_position.load(std::memory_order_acquire);
}

projection_stats journal_projection::stats() const noexcept {
  std::lock_guard<std::mutex> g{impl_->stats_mu};
  return impl_->stats_copy;
}

} // namespace strata::persistence
