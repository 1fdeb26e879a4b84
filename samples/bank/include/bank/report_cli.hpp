// File: bank/report_cli.hpp
//
// `strata-bank report [--source journal|kafka]`: the bank report projection
// (report_projection.hpp) fed from the node's journal or from Kafka, and its text form.
//
//   auto rep = bank::report_from_journal((*sys)->journal(), 60'000);
//   auto rep = bank::report_from_kafka(**sys, 60'000, std::cerr);   // needs --kafka
//   std::cout << bank::format_report(*rep);
//
// Threads: call from the CLI's main thread (not an actor); blocking.
#pragma once

#include "report_projection.hpp"

#include <strata/persistence/status.hpp>

#include <cstdint>
#include <ostream>
#include <string>

namespace strata {
class system;
}
namespace strata::persistence {
class journal;
}

namespace bank {

/// The Kafka topic of the account aggregate (the bridge's default `strata.<type>`).
inline constexpr const char* account_topic = "strata.account";

/// One line per account `ID deposits=N withdrawals=M` (sums of cents), sorted by ID
/// bytewise, then `total deposits=N withdrawals=M`. IDs are printed with
/// strata::escape_text (spaces escaped too), so each line is one account.
std::string format_report(const report& r);

/// Folds every account event the journal holds (up to its last position when the call
/// starts) into a report, in memory: reads only, so it runs on a journal opened with
/// journal::open_read_only while another process writes. Errors: unavailable (not done
/// within `timeout_ms`: says how far it got), corrupt, io_error, invalid_argument (an
/// account event the report does not know).
strata::persistence::result<report> report_from_journal(const strata::persistence::journal& j,
                                                        std::uint32_t timeout_ms);

/// Waits until the system's Kafka bridge acknowledged everything the journal holds,
/// then builds the report from scratch from every record of `strata.account` (in a
/// temporary LMDB environment under $TMPDIR, removed afterwards) until every account
/// stream of the journal is applied up to its head. Progress lines go to `log`.
/// Errors: invalid_argument (Kafka is off), unavailable (not published or not consumed
/// within `timeout_ms`; the message says how far it got), not_found (no such topic),
/// corrupt, io_error.
strata::persistence::result<report> report_from_kafka(strata::system& sys, std::uint32_t timeout_ms,
                                                      std::ostream& log);

} // namespace bank
