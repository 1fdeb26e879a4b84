#include "bank/load.hpp"

#include <strata/runtime/all.hpp>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <limits>
#include <memory>
#include <mutex>
#include <random>
#include <signal.h>
#include <unistd.h>
#include <vector>

namespace bank {

namespace {

using clock_type = std::chrono::steady_clock;

/// Replies handed from runtime threads to the load thread.
struct completion {
  std::uint32_t client = 0;
  caf::expected<balance_reply> result{balance_reply{}};
};

class inbox {
 public:
  void push(completion c) {
    bool wake = false;
    {
      std::lock_guard<std::mutex> g{mtx_};
      items_.push_back(std::move(c));
      wake = waiting_;
    }
    if (wake) cv_.notify_one();
  }

  /// Moves everything queued into `out` (cleared first), waiting up to `timeout` for
  /// the first item.
  void drain(std::vector<completion>& out, std::chrono::milliseconds timeout) {
    out.clear();
    std::unique_lock<std::mutex> lk{mtx_};
    if (items_.empty()) {
      waiting_ = true;
      cv_.wait_for(lk, timeout, [this] {
        return !items_.empty();
      });
      waiting_ = false;
    }
    out.swap(items_);
  }

 private:
  std::mutex mtx_;
  std::condition_variable cv_;
  bool waiting_ = false;
  std::vector<completion> items_;
};

/// Latencies in 1 µs buckets up to 100 ms, exact values above.
class latency_histogram {
 public:
  latency_histogram() : buckets_(100'000, 0) {}
  void add(std::int64_t ns) {
    ++count_;
    if (ns < 0) ns = 0;
    max_ = std::max(max_, ns);
    auto us = static_cast<std::uint64_t>(ns / 1000);
    if (us < buckets_.size())
      ++buckets_[us];
    else
      slow_.push_back(ns);
  }
  /// The q-quantile (0 < q <= 1) in ns (bucket resolution: 1 µs, upper bound).
  std::int64_t quantile(double q) {
    if (count_ == 0) return 0;
    auto rank = static_cast<std::uint64_t>(q * static_cast<double>(count_));
    if (rank == 0) rank = 1;
    std::uint64_t seen = 0;
    for (std::size_t i = 0; i < buckets_.size(); ++i) {
      seen += buckets_[i];
      if (seen >= rank) return static_cast<std::int64_t>(i + 1) * 1000;
    }
    std::sort(slow_.begin(), slow_.end());
    return slow_[std::min<std::size_t>(rank - seen - 1, slow_.size() - 1)];
  }
  std::int64_t max() const noexcept { return max_; }

 private:
  std::vector<std::uint64_t> buckets_;
  std::vector<std::int64_t> slow_;
  std::uint64_t count_ = 0;
  std::int64_t max_ = 0;
};

/// The ack log: appended with write(2), so a line is in the kernel once written.
class ack_log {
 public:
  ~ack_log() {
    if (fd_ >= 0) ::close(fd_);
  }
  caf::error open(const std::string& path) {
    fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd_ < 0)
      return strata::make_runtime_error(strata::runtime_errc::io_error,
                                        "cannot open the ack log '" + path +
                                          "': " + std::strerror(errno));
    path_ = path;
    return caf::none;
  }
  bool enabled() const noexcept { return fd_ >= 0; }
  void add(const std::string& id, std::uint64_t seq, const char* op, std::int64_t amount) {
    buf_ += id;
    buf_ += ' ';
    buf_ += std::to_string(seq);
    buf_ += ' ';
    buf_ += op;
    buf_ += ' ';
    buf_ += std::to_string(amount);
    buf_ += '\n';
  }
  /// Writes what was added (whole lines). Errors: io_error.
  caf::error flush() {
    std::size_t off = 0;
    while (off < buf_.size()) {
      auto n = ::write(fd_, buf_.data() + off, buf_.size() - off);
      if (n < 0) {
        if (errno == EINTR) continue;
        return strata::make_runtime_error(strata::runtime_errc::io_error,
                                          "cannot write the ack log '" + path_ +
                                            "': " + std::strerror(errno));
      }
      off += static_cast<std::size_t>(n);
    }
    buf_.clear();
    return caf::none;
  }

 private:
  int fd_ = -1;
  std::string path_;
  std::string buf_;
};

struct client_op {
  std::string id;
  bool is_deposit = true;
  std::int64_t amount = 0;
  clock_type::time_point sent;
};

std::string account_id(std::uint64_t i) { return "acct-" + std::to_string(i); }

bool is_not_replicated(const caf::error& err) {
  return strata::runtime_error_of(err) == strata::runtime_errc::not_replicated;
}

/// Stop requests of a load: `*o.stop`, then a bounded wait for what is in flight.
class stopper {
 public:
  explicit stopper(const load_options& o) : o_(o) {}
  /// True once a stop was requested (remembers when, for deadline_passed).
  bool requested() {
    if (!requested_ && o_.stop != nullptr && o_.stop->load()) {
      requested_ = true;
      since_ = clock_type::now();
    }
    return requested_;
  }
  /// True when the replies still outstanding after a stop waited long enough.
  bool deadline_passed() {
    return requested() && clock_type::now() - since_ >= std::chrono::milliseconds(o_.stop_wait_ms);
  }

 private:
  const load_options& o_;
  bool requested_ = false;
  clock_type::time_point since_{};
};

std::atomic<bool> stop_flag{false};

extern "C" void on_stop_signal(int) { stop_flag.store(true); }

} // namespace

void stop_on_signals() {
  static_assert(std::atomic<bool>::is_always_lock_free, "a signal handler sets it");
  struct sigaction sa {};
  sa.sa_handler = on_stop_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESETHAND | SA_RESTART; // a second signal kills as usual
  ::sigaction(SIGINT, &sa, nullptr);
  ::sigaction(SIGTERM, &sa, nullptr);
}

const std::atomic<bool>& stop_requested() noexcept { return stop_flag; }

caf::expected<load_result> run_load(const strata::entities<account>& accounts,
                                    const load_options& o, std::ostream& progress) {
  load_result res;
  res.seed =
    o.seed ? *o.seed : (std::uint64_t{std::random_device{}()} << 32) ^ std::random_device{}();
  res.accounts = o.accounts;
  res.clients = o.clients;
  progress << "load: seed=" << res.seed << " accounts=" << o.accounts << " ops=" << o.ops
           << " clients=" << o.clients << std::endl;

  ack_log log;
  if (!o.ack_log.empty())
    if (auto err = log.open(o.ack_log)) return err;

  auto box = std::make_shared<inbox>();
  std::vector<completion> batch;
  caf::error first_error;
  stopper stop{o};

  // Phase 1: open the accounts that are not open yet (already_open is fine; an open
  // answered not_replicated is stored: it counts as opened).
  {
    std::uint64_t sent = 0, done = 0;
    while (done < o.accounts) {
      while (sent < o.accounts && sent - done < o.open_window && !first_error &&
             !stop.requested()) {
        accounts.ask_async(account_id(sent), open_account{"load"},
                           [box](caf::expected<balance_reply> r) {
                             box->push(completion{0, std::move(r)});
                           });
        ++sent;
      }
      if (done == sent || stop.deadline_passed()) break; // stopped sending
      box->drain(batch, std::chrono::milliseconds{250});
      for (auto& c : batch) {
        ++done;
        if (c.result || is_not_replicated(c.result.error())) {
          ++res.opened;
        } else if (!strata::rejection_of<account>(c.result.error())) {
          if (!o.continue_on_error && !first_error) first_error = c.result.error();
        }
      }
    }
    if (first_error) return first_error;
    if (stop.requested()) {
      res.interrupted = true;
      res.unanswered = sent - done;
      progress << "load: stopped by a signal while opening accounts" << std::endl;
      return res;
    }
    progress << "load: opened " << res.opened << " of " << o.accounts
             << " accounts (the others were open already)" << std::endl;
  }

  // Phase 2: C clients, each with one command in flight.
  std::mt19937_64 rng{res.seed};
  latency_histogram lat;
  std::vector<client_op> clients(static_cast<std::size_t>(o.clients));
  std::uint64_t sent = 0;
  auto send_next = [&](std::uint32_t client) {
    auto& op = clients[client];
    op.id = account_id(rng() % o.accounts);
    op.is_deposit = rng() % 100 < 55;
    op.amount = static_cast<std::int64_t>(1 + rng() % 10'000);
    op.sent = clock_type::now();
    account::command cmd =
      op.is_deposit ? account::command{deposit{op.amount}} : account::command{withdraw{op.amount}};
    ++sent;
    accounts.ask_async(op.id, std::move(cmd), [box, client](caf::expected<balance_reply> r) {
      box->push(completion{client, std::move(r)});
    });
  };

  const auto start = clock_type::now();
  auto last_progress = start;
  std::uint64_t last_progress_ops = 0;
  for (std::uint32_t c = 0; c < clients.size() && sent < o.ops; ++c)
    send_next(c);
  while (res.ops < sent) {
    if (stop.deadline_passed()) break;
    box->drain(batch, std::chrono::milliseconds{250});
    const auto now = clock_type::now();
    const bool stopping = stop.requested();
    for (auto& c : batch) {
      auto& op = clients[c.client];
      ++res.ops;
      lat.add(std::chrono::duration_cast<std::chrono::nanoseconds>(now - op.sent).count());
      if (c.result) {
        ++res.acknowledged;
        if (log.enabled())
          log.add(op.id, c.result->seq, op.is_deposit ? "deposit" : "withdraw", op.amount);
      } else if (strata::rejection_of<account>(c.result.error())) {
        ++res.rejected;
      } else if (is_not_replicated(c.result.error())) {
        ++res.not_replicated; // stored, not acknowledged: not in the ack log
      } else {
        ++res.errors;
        if (o.continue_on_error) {
          if (res.errors <= 10 || res.errors % 1000 == 0)
            progress << "load: error " << res.errors
                     << " (outcome unknown, going on): " << strata::describe(c.result.error())
                     << std::endl;
        } else if (!first_error) {
          first_error = c.result.error();
        }
      }
      if (sent < o.ops && !first_error && !stopping) send_next(c.client);
    }
    if (log.enabled())
      if (auto err = log.flush(); err && !first_error)
        first_error = std::move(err); // stop sending; drain what is in flight
    if (now - last_progress >= std::chrono::seconds{1}) {
      const double dt = std::chrono::duration<double>(now - last_progress).count();
      progress << "load: " << res.ops << "/" << o.ops << " ops, acknowledged " << res.acknowledged
               << ", rejected " << res.rejected << ", not_replicated " << res.not_replicated
               << ", errors " << res.errors << ", "
               << static_cast<std::uint64_t>(static_cast<double>(res.ops - last_progress_ops) / dt)
               << " ops/s" << std::endl;
      last_progress = now;
      last_progress_ops = res.ops;
    }
  }
  if (stop.requested() && res.ops < o.ops) {
    res.interrupted = true;
    res.unanswered = sent - res.ops;
    progress << "load: stopped by a signal after " << sent << " of " << o.ops << " ops"
             << std::endl;
  }
  res.seconds = std::chrono::duration<double>(clock_type::now() - start).count();
  res.p50_ns = lat.quantile(0.50);
  res.p99_ns = lat.quantile(0.99);
  res.max_ns = lat.max();
  if (first_error) {
    progress << summary_line(res) << std::endl;
    return first_error;
  }
  return res;
}

std::string summary_line(const load_result& r) {
  char rate[64];
  std::snprintf(rate, sizeof rate, "%.0f",
                r.seconds > 0 ? static_cast<double>(r.ops) / r.seconds : 0.0);
  char secs[64];
  std::snprintf(secs, sizeof secs, "%.3f", r.seconds);
  return "load: accounts=" + std::to_string(r.accounts) + " opened=" + std::to_string(r.opened) +
         " clients=" + std::to_string(r.clients) + " ops=" + std::to_string(r.ops) +
         " acknowledged=" + std::to_string(r.acknowledged) +
         " rejected=" + std::to_string(r.rejected) +
         " not_replicated=" + std::to_string(r.not_replicated) +
         " errors=" + std::to_string(r.errors) + " seconds=" + secs + " ops/s=" + rate +
         " p50_us=" + std::to_string(r.p50_ns / 1000) +
         " p99_us=" + std::to_string(r.p99_ns / 1000) +
         " max_us=" + std::to_string(r.max_ns / 1000) + " seed=" + std::to_string(r.seed) +
         (r.interrupted ? " interrupted=1 unanswered=" + std::to_string(r.unanswered) : "");
}

} // namespace bank
