// File: samples/bank/report_projection.hpp
//
// The bank sample's read side: per-account and total deposits and withdrawals, a
// projection (strata/persistence/projection.hpp) over the `account` streams. It
// needs no runtime: it folds persistence::event_record values whose persistence id is
// "account:<id>" and whose payload is a bank.capnp event (Opened, Deposited, Withdrawn,
// Closed, schema version 1), so it can be fed from the local journal or from Kafka.
//
//   auto rp = bank::report_projection::open(*journal);             // table "bank.report"
//   auto tail = journal_projection::open(*journal, (*rp)->projection(), {});
//   (*tail)->catch_up(10'000);                                      // or a Kafka consumer
//   auto rep = (*rp)->read();        // result<bank::report>: per account + total
//
// Threads: apply runs on the thread of the source that feeds it; read() from any thread.
#pragma once

#include "strata/persistence/event.hpp"
#include "strata/persistence/projection.hpp"
#include "strata/persistence/status.hpp"

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>

namespace strata::persistence {
class journal;
}

namespace bank {

/// Deposits and withdrawals of one account (or of all of them).
struct account_totals {
  std::int64_t deposited_cents = 0;
  std::int64_t withdrawn_cents = 0;
  std::uint64_t deposits = 0;
  std::uint64_t withdrawals = 0;
  bool opened = false;
  bool closed = false;
  std::uint64_t last_seq = 0; ///< seq of the last event folded in

  std::int64_t balance_cents() const noexcept { return deposited_cents - withdrawn_cents; }
  friend bool operator==(const account_totals& a, const account_totals& b) {
    return a.deposited_cents == b.deposited_cents && a.withdrawn_cents == b.withdrawn_cents &&
           a.deposits == b.deposits && a.withdrawals == b.withdrawals && a.opened == b.opened &&
           a.closed == b.closed && a.last_seq == b.last_seq;
  }
};

/// The report: per account id (the part after "account:") and the total over all.
struct report {
  std::map<std::string, account_totals> accounts;
  account_totals total; ///< opened/closed/last_seq unused
  friend bool operator==(const report& a, const report& b) {
    return a.accounts == b.accounts && a.total == b.total;
  }
};

/// The persistence id prefix of the account streams ("account:").
inline constexpr std::string_view account_stream_prefix = "account:";

/// Folds one event into `totals` (pure; the projection's step, also usable for a fold
/// of the journal in tests). Errors: corrupt (payload not a bank.capnp message of its
/// type), invalid_argument (unknown event type or schema version).
strata::persistence::status fold_event(account_totals& totals,
                                       const strata::persistence::event_record& e);

class report_projection {
 public:
  static constexpr const char* name = "bank.report";

  /// Opens (creates) the view table "bank.report" in the journal's environment.
  /// Errors: those of environment::open_table.
  static strata::persistence::result<std::unique_ptr<report_projection>>
  open(strata::persistence::journal& j);

  /// The projection to hand to journal_projection::open or
  /// kafka_projection_consumer::open. Events of other stream types are skipped.
  strata::persistence::projection projection() const;

  /// The current report. Errors: io_error, corrupt.
  strata::persistence::result<report> read() const;

 private:
  report_projection(strata::persistence::journal& j, strata::persistence::table t)
    : journal_(&j), table_(t) {}
  strata::persistence::journal* journal_;
  strata::persistence::table table_;
};

} // namespace bank
