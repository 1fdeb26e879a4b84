// strata: command-line tools for a strata node's data (docs/tools.md).
#include "strata_cli.hpp"

#include "strata/persistence/environment.hpp"

#include <exception>
#include <iostream>
#include <string_view>

namespace {

using namespace strata::cli;

const char* main_usage() {
  return "usage: strata <command> [args]\n"
         "\n"
         "commands:\n"
         "  journal stats   --data DIR                 streams, events, last position, sizes\n"
         "  journal dump    --data DIR [--stream ID] [--from N] [--limit N]\n"
         "                                             one line per event\n"
         "  journal verify  --data DIR                 check every record and the index\n"
         "  journal demo    --data DIR                 append, reopen, read back, verify\n"
         "  help                                       this text\n"
         "\n"
         "Run the journal commands on the data directory of a stopped node.\n"
         "Exit codes: 0 ok, 1 problem found (e.g. corrupt journal), 2 usage error,\n"
         "4 infrastructure error (cannot open or read the data).\n";
}

} // namespace

int main(int argc, char** argv) {
  // A data.mdb damaged in a way that LMDB itself follows (a page header, a node offset)
  // ends the command with a corrupt message and exit 1 (a finding), never with a signal.
  strata::persistence::install_fault_guard(1);
  std::string_view cmd = argc > 1 ? argv[1] : "";
  try {
    if (cmd == "journal") return journal_main(argc, argv, 2);
    if (cmd == "help" || cmd == "--help" || cmd == "-h") {
      std::cout << main_usage();
      return exit_ok;
    }
    if (cmd.empty())
      std::cerr << "strata: missing command\n";
    else
      std::cerr << "strata: unknown command '" << cmd << "'\n";
    std::cerr << main_usage();
    return exit_usage;
  } catch (const usage_error& e) {
    std::cerr << "strata: " << e.what() << "\n\n"
              << (cmd == "journal" ? journal_usage() : main_usage());
    return exit_usage;
  } catch (const command_error& e) {
    std::cerr << "strata: " << e.what() << "\n";
    return e.code;
  } catch (const std::exception& e) {
    std::cerr << "strata: " << e.what() << "\n";
    return exit_infra;
  }
}
