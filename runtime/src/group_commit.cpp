#include "strata/runtime/detail/group_commit.hpp"

#include "strata/kafka/bridge.hpp"
#include "strata/runtime/detail/messages.hpp"

#include <caf/actor_system.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/send.hpp>

#include <algorithm>
#include <iterator>
#include <memory>

namespace strata::detail {

namespace {

using steady = std::chrono::steady_clock;

void send_outcome(const caf::actor& to, std::uint64_t write_no, write_outcome out) {
  if (to) caf::anon_send(to, written_atom::value, write_no, std::move(out));
}

} // namespace

/// One batch handed to the journal: the requests (their write buffers already given
/// back), the snapshots and, per request, the index of its write in the journal's
/// order (-1: snapshot only).
struct group_commit::batch {
  std::vector<write_request> requests;
  std::vector<persistence::snapshot_record> snapshots;
  std::vector<std::ptrdiff_t> index;
  std::size_t events = 0;
  steady::time_point start;
};

group_commit::group_commit(append_fn append, options opts, caf::actor router, caf::actor gate,
                           kafka::bridge* bridge)
  : append_(std::move(append)), opts_(opts), router_(std::move(router)), gate_(std::move(gate)),
    bridge_(bridge) {
  if (opts_.batch_events_max == 0) opts_.batch_events_max = 1;
  thread_ = std::thread([this] {
    run();
  });
}

group_commit::~group_commit() { stop(); }

void group_commit::submit(write_request r) {
  {
    std::lock_guard<std::mutex> g{mtx_};
    if (!stopped_) {
      auto before = queued_events_;
      queued_events_ += r.events();
      queue_.push_back(std::move(r));
      // Wake the thread only if it may sleep: it takes the whole queue per round (or
      // lingers until linger_events are queued).
      if (queue_.size() == 1 ||
          (before < opts_.linger_events && queued_events_ >= opts_.linger_events))
        cv_.notify_one();
      return;
    }
  }
  send_outcome(r.reply_to, r.write_no,
               write_outcome{{persistence::errc::closed,
                              "the group commit has stopped (system shutting down)"}});
}

void group_commit::set_write_permit(write_permit p) {
  auto shared = p ? std::make_shared<const write_permit>(std::move(p)) : nullptr;
  std::lock_guard<std::mutex> g{mtx_};
  permit_ = std::move(shared);
}

void group_commit::stop() {
  {
    std::lock_guard<std::mutex> g{mtx_};
    if (stopped_ && !thread_.joinable()) return;
    stopping_ = true;
    cv_.notify_one();
  }
  if (thread_.joinable()) thread_.join();
  // Batches handed to the journal are reported on its commit thread: wait for them.
  std::unique_lock<std::mutex> lk{inflight_mtx_};
  inflight_cv_.wait(lk, [&] {
    return inflight_ == 0;
  });
}

void group_commit::run() {
  std::vector<write_request> requests;
  auto last_end = steady::time_point{};
  while (take(requests, last_end)) {
    hand_over(requests);
    requests.clear();
    last_end = steady::now();
  }
}

/// Waits for requests and takes a batch of at most batch_events_max events. False when
/// stopping and drained.
bool group_commit::take(std::vector<write_request>& out, steady::time_point last_end) {
  std::unique_lock<std::mutex> lk{mtx_};
  cv_.wait(lk, [&] {
    return stopping_ || !queue_.empty();
  });
  taken_permit_ = permit_;
  if (queue_.empty()) { // stopping and drained
    stopped_ = true;
    return false;
  }
  // Linger only under load (the previous hand-over ended moments ago): an idle system
  // commits at once, so low-load latency does not pay for it.
  auto linger = std::chrono::microseconds(opts_.linger_us);
  if (opts_.linger_us > 0 && queued_events_ < opts_.linger_events && !stopping_ &&
      steady::now() - last_end < linger)
    cv_.wait_for(lk, linger, [&] {
      return stopping_ || queued_events_ >= opts_.linger_events;
    });
  if (queued_events_ <= opts_.batch_events_max) {
    out.swap(queue_);
    queued_events_ = 0;
    return true;
  }
  std::size_t n = 0;
  std::size_t events = 0;
  while (n < queue_.size() && (n == 0 || events + queue_[n].events() <= opts_.batch_events_max)) {
    events += queue_[n].events();
    ++n;
  }
  auto end = queue_.begin() + static_cast<std::ptrdiff_t>(n);
  out.assign(std::make_move_iterator(queue_.begin()), std::make_move_iterator(end));
  queue_.erase(queue_.begin(), end);
  queued_events_ -= events;
  return true;
}

void group_commit::hand_over(std::vector<write_request>& requests) {
  auto b = std::make_shared<batch>();
  b->index.assign(requests.size(), -1);
  refs_.clear();
  for (std::size_t i = 0; i < requests.size(); ++i) {
    auto& r = requests[i];
    if (r.events() > 0) {
      b->index[i] = static_cast<std::ptrdiff_t>(refs_.size());
      b->events += r.events();
      refs_.push_back(&r.buf->write);
      lent_.push_back(std::move(r.buf)); // kept alive until the journal has encoded it
    }
    r.buf.reset();
    if (r.snapshot) b->snapshots.push_back(std::move(*r.snapshot));
  }
  // Moved element by element: `requests` keeps its capacity and becomes the next
  // round's queue (take() swaps), so the queue does not regrow from empty each round.
  b->requests.reserve(requests.size());
  std::move(requests.begin(), requests.end(), std::back_inserter(b->requests));
  if (refs_.empty() && b->snapshots.empty()) {
    route(*b, {}, {});
    return;
  }
  if (!refs_.empty() && taken_permit_) {
    if (auto st = (*taken_permit_)(); !st.ok()) {
      lent_.clear();
      failed_commits_.fetch_add(1, std::memory_order_relaxed);
      route(*b, st, {});
      return;
    }
  }
  {
    std::lock_guard<std::mutex> g{inflight_mtx_};
    ++inflight_;
  }
  b->start = steady::now();
  std::lock_guard<std::mutex> writer{writer_mtx_}; // exclusive(): an import in between
  append_(refs_, b->snapshots,
          [this, b](persistence::result<std::vector<persistence::write_result>> res) {
            count(*b, static_cast<bool>(res));
            if (res)
              route(*b, {}, *res);
            else
              route(*b, res.error(), {});
            if (bridge_ != nullptr) {
              bridge_->notify();
              // Kafka gets each saved snapshot after the events it covers (the bridge
              // waits for them): a new shard owner restores from it.
              if (res)
                for (const auto& s : b->snapshots)
                  bridge_->snapshot_saved(s.persistence_id);
            }
            {
              std::lock_guard<std::mutex> g{inflight_mtx_};
              --inflight_;
            }
            inflight_cv_.notify_all();
          });
  // The journal has encoded the writes: their buffers go back to the entities (one
  // atomic decrement each; an entity reuses its buffer when the outcome arrives).
  lent_.clear();
}

void group_commit::count(const batch& b, bool ok) {
  auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(steady::now() - b.start).count();
  append_ns_.fetch_add(static_cast<std::uint64_t>(ns), std::memory_order_relaxed);
  auto bucket = std::min<std::size_t>(static_cast<std::size_t>(ns / 1000 / commit_bucket_us),
                                      commit_buckets - 1);
  commit_hist_[bucket].fetch_add(1, std::memory_order_relaxed);
  commits_.fetch_add(1, std::memory_order_relaxed);
  if (ok)
    committed_events_.fetch_add(b.events, std::memory_order_relaxed);
  else
    failed_commits_.fetch_add(1, std::memory_order_relaxed);
}

/// Sends each request its outcome: to the entity, or (replicated writes) to the gate,
/// as one message for the whole batch.
void group_commit::route(batch& b, const persistence::status& whole,
                         const std::vector<persistence::write_result>& results) {
  gate_batch direct;
  gate_batch held;
  for (std::size_t i = 0; i < b.requests.size(); ++i) {
    auto& r = b.requests[i];
    if (!r.reply_to) continue;
    write_outcome out;
    auto k = b.index[i];
    if (!whole.ok()) {
      out.st = whole;
    } else if (k >= 0) {
      auto uk = static_cast<std::size_t>(k);
      if (uk >= results.size()) {
        out.st = {persistence::errc::internal, "journal returned fewer results than writes"};
      } else {
        const auto& res = results[uk];
        out.st = res.st;
        out.first_seq = res.first_seq;
        out.last_seq = res.last_seq;
        out.last_position = res.last_position;
      }
    }
    if (k >= 0 && r.replicated && gate_)
      held.push_back({out.last_position, std::move(r.reply_to), r.write_no, std::move(out)});
    else if (router_)
      direct.push_back({0, std::move(r.reply_to), r.write_no, std::move(out)});
    else
      send_outcome(r.reply_to, r.write_no, std::move(out));
  }
  if (!direct.empty()) caf::anon_send(router_, route_atom::value, std::move(direct));
  if (!held.empty()) caf::anon_send(gate_, hold_atom::value, std::move(held));
}

namespace {
/// Fans a commit's outcomes out to their entities from a worker. A class, not a spawned
/// function: CAF 0.17 spawns a function without arguments through a null shared_ptr of
/// an empty tuple (undefined behaviour UBSan reports).
class reply_router : public caf::event_based_actor {
 public:
  using caf::event_based_actor::event_based_actor;

  caf::behavior make_behavior() override {
    return {
      [this](route_atom, gate_batch& b) {
        for (auto& w : b)
          send(w.reply_to, written_atom::value, w.write_no, std::move(w.out));
      },
    };
  }
};
} // namespace

caf::actor spawn_reply_router(caf::actor_system& sys) { return sys.spawn<reply_router>(); }

std::vector<std::uint64_t> group_commit::commit_histogram() const {
  std::vector<std::uint64_t> out(commit_buckets);
  for (std::size_t i = 0; i < commit_buckets; ++i)
    out[i] = commit_hist_[i].load(std::memory_order_relaxed);
  return out;
}

} // namespace strata::detail
