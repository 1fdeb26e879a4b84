#include "strata/runtime/detail/journal_writer.hpp"

#include "strata/runtime/detail/messages.hpp"

#include <caf/send.hpp>

#include <chrono>

namespace strata::detail {

void notify_written(const caf::actor& to, std::uint64_t write_no, write_outcome out) {
  if (to) caf::anon_send(to, written_atom::value, write_no, std::move(out));
}

journal_writer::journal_writer(append_fn append, fault_fn fault, std::size_t batch_events_max,
                               std::uint64_t linger_us, std::size_t linger_events)
  : append_(std::move(append)), fault_(std::move(fault)),
    batch_events_max_(batch_events_max == 0 ? 1 : batch_events_max), linger_us_(linger_us),
    linger_events_(linger_events) {
  thread_ = std::thread([this] {
    run();
  });
}

journal_writer::~journal_writer() { stop(); }

void journal_writer::submit(write_request r) {
  {
    std::lock_guard<std::mutex> g{mtx_};
    if (!stopped_) {
      auto before = queued_events_;
      queued_events_ += r.write.events.size();
      queue_.push_back(std::move(r));
      // Wake the writer only if it may sleep: it drains the whole queue per round (or
      // lingers until linger_events are queued).
      if (queue_.size() == 1 || (before < linger_events_ && queued_events_ >= linger_events_))
        cv_.notify_one();
      return;
    }
  }
  notify_written(r.reply_to, r.write_no,
                 write_outcome{persistence::errc::closed,
                               "the journal writer has stopped (system shutting down)", 0, 0});
}

void journal_writer::stop() {
  {
    std::lock_guard<std::mutex> g{mtx_};
    if (stopped_) return;
    stopping_ = true;
    cv_.notify_one();
  }
  if (thread_.joinable()) thread_.join();
  // Batches handed to the journal are answered from its commit thread: wait for them.
  {
    std::unique_lock<std::mutex> lk{inflight_mtx_};
    inflight_cv_.wait(lk, [&] {
      return inflight_ == 0;
    });
  }
  stop_watchdog();
}

void journal_writer::run() {
  std::vector<write_request> batch;
  auto last_commit_end = std::chrono::steady_clock::time_point{};
  for (;;) {
    {
      std::unique_lock<std::mutex> lk{mtx_};
      cv_.wait(lk, [&] {
        return stopping_ || !queue_.empty();
      });
      if (queue_.empty()) { // stopping and drained
        stopped_ = true;
        return;
      }
      // Linger only under load (the previous commit ended moments ago): an idle system
      // commits at once, so low-load latency does not pay for it.
      if (linger_us_ > 0 && queued_events_ < linger_events_ && !stopping_ &&
          std::chrono::steady_clock::now() - last_commit_end <
            std::chrono::microseconds(linger_us_))
        cv_.wait_for(lk, std::chrono::microseconds(linger_us_), [&] {
          return stopping_ || queued_events_ >= linger_events_;
        });
      if (queued_events_ <= batch_events_max_) {
        batch.swap(queue_);
        queued_events_ = 0;
      } else {
        std::size_t n = 0;
        std::size_t events = 0;
        while (n < queue_.size() &&
               (n == 0 || events + queue_[n].write.events.size() <= batch_events_max_)) {
          events += queue_[n].write.events.size();
          ++n;
        }
        batch.assign(std::make_move_iterator(queue_.begin()),
                     std::make_move_iterator(queue_.begin() + static_cast<std::ptrdiff_t>(n)));
        queue_.erase(queue_.begin(), queue_.begin() + static_cast<std::ptrdiff_t>(n));
        queued_events_ -= events;
      }
    }
    commit(batch);
    batch.clear();
    last_commit_end = std::chrono::steady_clock::now();
  }
}

struct journal_writer::commit_ctx {
  std::vector<write_request> batch;
  std::vector<persistence::stream_write> writes;
  std::vector<std::ptrdiff_t> index; // request → its write in `writes` (-1: none)
  std::size_t events = 0;
  std::chrono::steady_clock::time_point start;
};

void journal_writer::commit(std::vector<write_request>& batch) {
  auto ctx = std::make_shared<commit_ctx>();
  std::vector<persistence::snapshot_record> snaps;
  ctx->index.assign(batch.size(), -1);
  ctx->writes.reserve(batch.size());
  for (std::size_t i = 0; i < batch.size(); ++i) {
    auto& r = batch[i];
    if (!r.write.events.empty()) {
      ctx->index[i] = static_cast<std::ptrdiff_t>(ctx->writes.size());
      ctx->events += r.write.events.size();
      ctx->writes.push_back(std::move(r.write));
    }
    if (r.snapshot) snaps.push_back(std::move(*r.snapshot));
  }
  ctx->batch = std::move(batch);
  persistence::status whole;
  if (fault_) whole = fault_(append_phase::before, ctx->writes);
  if (!whole.ok() || (ctx->writes.empty() && snaps.empty())) {
    finish(*ctx, std::move(whole), {});
    return;
  }
  {
    std::lock_guard<std::mutex> g{inflight_mtx_};
    ++inflight_;
  }
  ctx->start = std::chrono::steady_clock::now();
  append_(ctx->writes, snaps,
          [this, ctx](persistence::result<std::vector<persistence::write_result>> res) {
            append_ns_.fetch_add(
              static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                           std::chrono::steady_clock::now() - ctx->start)
                                           .count()),
              std::memory_order_relaxed);
            persistence::status whole;
            std::vector<persistence::write_result> results;
            if (!res)
              whole = res.error();
            else
              results = std::move(*res);
            if (whole.ok() && fault_) whole = fault_(append_phase::after, ctx->writes);
            finish(*ctx, std::move(whole), std::move(results));
            {
              std::lock_guard<std::mutex> g{inflight_mtx_};
              --inflight_;
            }
            inflight_cv_.notify_all();
          });
}

void journal_writer::finish(commit_ctx& ctx, persistence::status whole,
                            std::vector<persistence::write_result> results) {
  auto& batch = ctx.batch;
  auto& writes = ctx.writes;
  auto& index = ctx.index;
  commits_.fetch_add(1, std::memory_order_relaxed);
  if (whole.ok())
    committed_events_.fetch_add(ctx.events, std::memory_order_relaxed);
  else
    failed_commits_.fetch_add(1, std::memory_order_relaxed);
  for (std::size_t i = 0; i < batch.size(); ++i) {
    auto& r = batch[i];
    if (!r.reply_to) continue;
    write_outcome out;
    if (!whole.ok()) {
      out.code = whole.code();
      out.message = whole.message();
    } else if (index[i] >= 0) {
      auto k = static_cast<std::size_t>(index[i]);
      if (k >= results.size()) {
        out.code = persistence::errc::internal;
        out.message = "journal returned fewer results than writes";
      } else if (!results[k].st.ok()) {
        out.code = results[k].st.code();
        out.message = results[k].st.message();
      } else {
        out.first_seq = results[k].first_seq;
        out.last_seq = results[k].last_seq;
        out.last_position = results[k].last_position;
      }
    }
    if (index[i] >= 0 && kafka_.replicated &&
        kafka_.replicated(writes[static_cast<std::size_t>(index[i])].persistence_id))
      answer_replicated(r.reply_to, r.write_no, std::move(out));
    else
      notify_written(r.reply_to, r.write_no, std::move(out));
  }
  if (kafka_.notify) kafka_.notify();
  if (kafka_.acknowledged)
    kafka_acknowledged(kafka_.acknowledged()); // in case Kafka was faster than us
}

void journal_writer::set_kafka(kafka_hooks h) {
  kafka_ = std::move(h);
  if (kafka_.replicated && kafka_.replication_timeout_ms > 0)
    watchdog_ = std::thread([this] {
      watch_replication();
    });
}

void journal_writer::answer_replicated(const caf::actor& to, std::uint64_t write_no,
                                       write_outcome out) {
  std::lock_guard<std::mutex> g{kwait_mtx_};
  if (out.ok() && kafka_failed_.empty() && kafka_acked_ >= kafka_behind_) {
    // The reply waits until Kafka acknowledged the events, or its deadline.
    if (kwaiters_.empty()) kwait_cv_.notify_one();
    auto deadline = steady::now() + std::chrono::milliseconds(kafka_.replication_timeout_ms);
    kwaiters_.push_back({out.last_position, deadline, to, write_no, std::move(out)});
    return;
  }
  if (!out.ok() && !kwaiters_.empty()) {
    // A failure may not overtake the same entity's earlier writes still waiting: it
    // leaves with the last of them.
    auto& last = kwaiters_.back();
    kwaiters_.push_back({last.position, last.deadline, to, write_no, std::move(out)});
    return;
  }
  if (out.ok()) { // Kafka is known to be behind, or gone (shutdown): do not wait
    out.not_replicated = true;
    out.message = kafka_failed_;
  }
  notify_written(to, write_no, std::move(out)); // under the lock: write order kept
}

void journal_writer::kafka_acknowledged(std::uint64_t position) {
  std::lock_guard<std::mutex> g{kwait_mtx_};
  release_acknowledged_locked(position);
}

void journal_writer::release_acknowledged_locked(std::uint64_t position) {
  if (position > kafka_acked_) kafka_acked_ = position;
  while (!kwaiters_.empty() && kwaiters_.front().position <= position) {
    auto& w = kwaiters_.front();
    notify_written(w.reply_to, w.write_no, std::move(w.out));
    kwaiters_.pop_front();
  }
}

void journal_writer::watch_replication() {
  std::unique_lock<std::mutex> lk{kwait_mtx_};
  while (!watchdog_stop_) {
    if (kwaiters_.empty()) {
      kwait_cv_.wait(lk);
      continue;
    }
    auto deadline = kwaiters_.front().deadline;
    if (steady::now() < deadline) {
      kwait_cv_.wait_until(lk, deadline);
      continue;
    }
    // The bridge may have acknowledged more than it told us so far.
    if (kafka_.acknowledged) release_acknowledged_locked(kafka_.acknowledged());
    if (kwaiters_.empty() || kwaiters_.front().deadline > steady::now()) continue;
    // Kafka acknowledges a contiguous prefix of positions: nothing queued behind the
    // expired waiter can be acknowledged before it, so all of them are answered now,
    // and later writes do not wait until Kafka has caught up with the last of them.
    kafka_behind_ = kwaiters_.back().position;
    for (auto& w : kwaiters_) {
      w.out.not_replicated = w.out.ok();
      notify_written(w.reply_to, w.write_no, std::move(w.out));
    }
    kwaiters_.clear();
  }
}

void journal_writer::stop_watchdog() {
  {
    std::lock_guard<std::mutex> g{kwait_mtx_};
    watchdog_stop_ = true;
  }
  kwait_cv_.notify_all();
  if (watchdog_.joinable()) watchdog_.join();
}

void journal_writer::fail_kafka_waiters(const std::string& why) {
  std::lock_guard<std::mutex> g{kwait_mtx_};
  kafka_failed_ = why;
  for (auto& w : kwaiters_) {
    if (w.out.ok()) {
      w.out.not_replicated = true;
      w.out.message = why;
    }
    notify_written(w.reply_to, w.write_no, std::move(w.out));
  }
  kwaiters_.clear();
}

} // namespace strata::detail
