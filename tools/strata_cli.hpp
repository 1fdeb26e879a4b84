// File: tools/strata_cli.hpp — shared declarations of the `strata` CLI's commands.
#pragma once

#include "strata_cli_args.hpp"

#include <stdexcept>
#include <string>

namespace strata::cli {

/// Exit codes of every strata command (docs/tools.md).
enum exit_code : int {
  exit_ok = 0,
  exit_failed = 1, ///< the command ran and found a problem (verify: corrupt journal)
  exit_usage = 2,  ///< bad command line
  exit_infra = 4,  ///< infrastructure error: cannot open/read/write the data, I/O
};

/// A failure that ends the command with `code`, printing `what()` on stderr.
struct command_error : std::runtime_error {
  command_error(int c, const std::string& what) : std::runtime_error(what), code(c) {}
  int code;
};

/// `strata journal …`: argv[first] is the subcommand. Returns the exit code; throws
/// usage_error / command_error.
int journal_main(int argc, char** argv, int first);

/// Usage text of `strata journal`.
const char* journal_usage();

} // namespace strata::cli
