// File: bank/cli_args.hpp
//
// Parsing of the strata-bank command line after strata::config::from_args has taken
// the runtime's own options (--data DIR, --durability sync|nosync, ...):
//
//   std::vector<std::string> rest;
//   auto cfg = strata::config::from_args(argc, argv, &rest);
//   auto cmd = bank::cli::parse(rest);          // {value} or {error}: exit code 2
//
// Threads: pure functions; any thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace bank::cli {

enum class verb : std::uint8_t {
  open,
  deposit,
  withdraw,
  close,
  balance,
  history,
  balances,
  load,
  report,
  node,    ///< run a cluster node (foreground, SIGTERM = graceful leave)
  members, ///< the cluster's members (--cluster)
  shards   ///< the owner and epoch of every shard (--cluster)
};

/// Where `report` reads the events from.
enum class report_source : std::uint8_t { journal, kafka };

/// One parsed sub-command with its arguments.
struct command_line {
  verb what = verb::balances;
  std::string id;                            ///< open/deposit/withdraw/close/balance/history
  std::string owner;                         ///< open --owner NAME (default: empty)
  std::int64_t amount = 0;                   ///< deposit/withdraw AMOUNT (cents, may be <= 0)
  std::optional<std::uint64_t> as_of_seq;    ///< balance --as-of-seq N
  std::optional<std::int64_t> as_of_time_ns; ///< balance --as-of-time ISO8601
  // load
  std::uint64_t accounts = 100;
  std::uint64_t ops = 10'000;
  std::uint64_t clients = 16;
  std::string ack_log;               ///< empty: no ack log
  bool continue_on_error = false;    ///< load --on-error continue
  std::optional<std::uint64_t> seed; ///< nullopt: drawn at random (and printed)
  // report
  report_source source = report_source::journal; ///< --source journal|kafka
  std::uint64_t timeout_ms = 60'000;             ///< --timeout-ms N (catch-up bound)
  // node
  std::uint16_t port = 0;         ///< node --port P (1..65535)
  std::string seeds;              ///< node --seeds host:port,… (default: itself)
  std::string host = "127.0.0.1"; ///< node --host H (what it binds and advertises)
};

struct parse_result {
  std::optional<command_line> value;
  std::string error; ///< set when value is empty: what is wrong, for the usage message
};

/// The longest `open --owner NAME`, in bytes.
inline constexpr std::size_t owner_max_bytes = 1024;

/// Parses the arguments that are not runtime options (sub-command first). An ID must
/// pass strata::validate_id for type "account", an owner strata::first_unprintable
/// (printable UTF-8) and owner_max_bytes; otherwise it is an error naming what is wrong.
parse_result parse(const std::vector<std::string>& args);

/// Whether the command only reads (balance, history, balances, report --source
/// journal): the CLI opens the data directory read-only for it.
bool is_read_only(const command_line& c) noexcept;

/// How long a writing command waits for another process's lock on the data directory
/// unless --lock-wait-ms says otherwise.
inline constexpr std::uint32_t default_lock_wait_ms = 5000;

/// True when argv names the data directory (--data / --data-dir, either form).
bool has_data_option(int argc, const char* const* argv);

/// Takes `--cluster HOST:PORT[,…]` (or `--cluster=…`) out of argv: its value, or
/// nullopt when absent; `error` set when it has no value.
std::optional<std::string> take_cluster_option(std::vector<std::string>& argv,
                                               std::string& error);

/// Whether the command works through `--cluster` (every one but node and report).
bool works_in_cluster(const command_line& c) noexcept;

/// The usage text (printed with exit code 2).
const char* usage() noexcept;

/// The aggregate type the ids name ("account", as bank.capnp declares it; main.cpp
/// checks the two agree). Kept here so the parser needs no generated code.
constexpr const char* account_type = "account";

} // namespace bank::cli
