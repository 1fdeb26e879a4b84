// File: bank/load.hpp
//
// `strata-bank load`: opens accounts acct-0 .. acct-(N-1) (those not open yet), then
// runs M random deposits/withdrawals from C concurrent clients through the runtime's
// async API (each client keeps one command in flight; replies come back on runtime
// threads and are handled on the calling thread). With an ack log, one line
// "ID SEQ OP AMOUNT" is appended (write(2), so it survives a SIGKILL of this process)
// for every acknowledged deposit/withdraw, after its reply arrived; SEQ is the seq of
// the event the command stored. Rejected commands are counted, not logged; so are
// commands answered `not_replicated` (`replicated` durability while Kafka is behind:
// stored locally, not acknowledged by Kafka), which the load counts and goes on.
//
// Stopping early: when `*opts.stop` becomes true (stop_on_signals(): SIGINT/SIGTERM),
// no new command is sent; the load waits up to `stop_wait_ms` for the replies still
// outstanding and returns what it counted (interrupted = true).
//
//   bank::load_options o;  o.accounts = 100;  o.ops = 10000;  o.clients = 16;
//   auto r = bank::run_load(accounts, o, std::cerr);   // progress lines on std::cerr
//   if (r) std::cout << bank::summary_line(*r) << "\n";
//
// Threads: run_load blocks the calling (plain, non-actor) thread until every command
// it sent has completed.
#pragma once

#include "bank/account.hpp"

#include <caf/expected.hpp>

#include <atomic>
#include <cstdint>
#include <optional>
#include <ostream>
#include <string>

namespace strata {
template <class A>
class entities;
}

namespace bank {

struct load_options {
  std::uint64_t accounts = 100;
  std::uint64_t ops = 10'000;
  std::uint64_t clients = 16;
  std::string ack_log;               ///< empty: none
  std::optional<std::uint64_t> seed; ///< nullopt: drawn from std::random_device
  std::uint64_t open_window = 512;   ///< opens in flight at once, at most
  /// When set and true: stop sending (checked at least every 250 ms).
  const std::atomic<bool>* stop = nullptr;
  /// After a stop, wait at most this long for the outstanding replies.
  std::uint64_t stop_wait_ms = 30'000;
  /// false (`--on-error stop`, the default): the first infrastructure error ends the
  /// load. true (`--on-error continue`, for failover tests): an infrastructure error
  /// (timeout, not_reachable, shard_moving, fenced, ...) is an op of unknown outcome —
  /// it may or may not have been stored, and it is not in the ack log — counted in
  /// `errors`, and its client goes on with its next op.
  bool continue_on_error = false;
};

struct load_result {
  std::uint64_t seed = 0;
  std::uint64_t accounts = 0;
  std::uint64_t opened = 0; ///< accounts this run opened (others were open)
  std::uint64_t clients = 0;
  std::uint64_t ops = 0; ///< deposits + withdrawals completed
  std::uint64_t acknowledged = 0;
  std::uint64_t rejected = 0;
  std::uint64_t not_replicated = 0; ///< stored locally, Kafka did not acknowledge in time
  std::uint64_t errors = 0;         ///< other infrastructure errors (outcome unknown)
  bool interrupted = false;         ///< stopped by *stop before its ops were done
  std::uint64_t unanswered = 0;     ///< sent, no reply within stop_wait_ms of the stop
  double seconds = 0;               ///< the deposit/withdraw phase
  std::int64_t p50_ns = 0;          ///< command latency, send → reply handled
  std::int64_t p99_ns = 0;
  std::int64_t max_ns = 0;
};

/// Runs the load (see the file comment). Errors: the first infrastructure error of a
/// command other than not_replicated unless opts.continue_on_error (then no new
/// commands are sent; those in flight complete and are logged; the summary goes to
/// `progress`), or io_error when the ack log cannot be opened or written.
caf::expected<load_result> run_load(const strata::entities<account>& accounts,
                                    const load_options& opts, std::ostream& progress);

/// "load: accounts=N opened=K clients=C ops=M acknowledged=A rejected=R
/// not_replicated=NR errors=E seconds=S ops/s=X p50_us=P p99_us=Q max_us=Z seed=SEED",
/// followed by " interrupted=1 unanswered=U" when stopped early.
std::string summary_line(const load_result& r);

/// From now on, the first SIGINT or SIGTERM sets stop_requested() instead of killing
/// the process (a second one kills it as usual). Call once, from the main thread.
void stop_on_signals();
/// True after a signal caught by stop_on_signals(). Async-signal-safe to set.
const std::atomic<bool>& stop_requested() noexcept;

} // namespace bank
