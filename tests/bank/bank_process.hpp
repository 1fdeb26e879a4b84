// Helpers for tests that run the strata-bank binary as real processes: run and
// capture, spawn in the background, parse its output. POSIX only. The generic parts
// (temporary directories, seeds, processes, polling) are tests/support's.
#pragma once

#include "strata/test/files.hpp"
#include "strata/test/poll.hpp"
#include "strata/test/process.hpp"
#include "strata/test/seed.hpp"
#include "strata/test/temp_dir.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace bank::test {

/// The strata-bank binary: $STRATA_BANK_BINARY when set (to run the tests against
/// another build, e.g. an older commit's), else the compile definition from
/// tests/bank/CMakeLists.txt.
inline const char* binary() {
  if (const char* b = std::getenv("STRATA_BANK_BINARY"); b && *b) return b;
  return STRATA_BANK_PATH;
}

// The helpers of every test folder (tests/support, strata::test_support).
using strata::test::eventually;
using strata::test::process;
using strata::test::run_result;
using strata::test::slurp;
using strata::test::temp_dir;
using strata::test::test_seed;

/// Runs strata-bank to completion; `scratch` is a directory for its output files.
inline run_result run(const std::string& scratch, const std::vector<std::string>& args) {
  return strata::test::run(scratch, binary(), args);
}

/// Runs another executable (e.g. the `strata` tool) to completion, like run().
inline run_result run_exe(const std::string& scratch, const std::string& exe,
                          const std::vector<std::string>& args) {
  return strata::test::run(scratch, exe, args);
}

/// A strata-bank process in the background (output in `<scratch>/child.out`,
/// `child.err`), SIGKILLed and reaped when destroyed if still running.
class child : public process {
 public:
  child(const std::string& scratch, const std::vector<std::string>& args)
    : process(binary(), args, scratch + "/child.out", scratch + "/child.err") {}
};

/// One line of `strata-bank history`.
struct history_line {
  std::uint64_t seq = 0;
  std::string time;
  std::string type;
  std::int64_t amount = 0; ///< deposited / withdrawn
  std::string owner;       ///< opened
};

/// Parses `seq=N time=T type=X [amount=M | owner=NAME]` lines. Throws on anything else.
inline std::vector<history_line> parse_history(const std::string& text) {
  std::vector<history_line> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    history_line h;
    std::istringstream ls(line);
    std::string seq, time, type;
    ls >> seq >> time >> type;
    if (seq.rfind("seq=", 0) != 0 || time.rfind("time=", 0) != 0 || type.rfind("type=", 0) != 0)
      throw std::runtime_error("bad history line: " + line);
    h.seq = std::stoull(seq.substr(4));
    h.time = time.substr(5);
    h.type = type.substr(5);
    std::string rest;
    std::getline(ls, rest);
    if (!rest.empty() && rest[0] == ' ') rest.erase(0, 1);
    if (h.type == "deposited" || h.type == "withdrawn") {
      if (rest.rfind("amount=", 0) != 0)
        throw std::runtime_error("bad history line (amount): " + line);
      h.amount = std::stoll(rest.substr(7));
    } else if (h.type == "opened") {
      if (rest.rfind("owner=", 0) != 0)
        throw std::runtime_error("bad history line (owner): " + line);
      h.owner = rest.substr(6);
    } else if (h.type != "closed" || !rest.empty()) {
      throw std::runtime_error("bad history line (type): " + line);
    }
    out.push_back(std::move(h));
  }
  return out;
}

/// Parses `ID balance=N` lines into id → balance. Throws on anything else.
inline std::map<std::string, std::int64_t> parse_balances(const std::string& text) {
  std::map<std::string, std::int64_t> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    auto sp = line.rfind(" balance=");
    if (sp == std::string::npos) throw std::runtime_error("bad balance line: " + line);
    out[line.substr(0, sp)] = std::stoll(line.substr(sp + 9));
  }
  return out;
}

/// One line of `strata-bank load --ack-log`: "ID SEQ OP AMOUNT".
struct ack {
  std::string id;
  std::uint64_t seq = 0;
  std::string op;
  std::int64_t amount = 0;
};

/// The complete lines of the ack log (a last line without '\n' is torn: ignored).
inline std::vector<ack> read_acks(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string text = ss.str();
  std::vector<ack> out;
  std::size_t pos = 0;
  while (true) {
    auto nl = text.find('\n', pos);
    if (nl == std::string::npos) break;
    std::istringstream ls(text.substr(pos, nl - pos));
    ack a;
    ls >> a.id >> a.seq >> a.op >> a.amount;
    if (!ls || a.id.empty())
      throw std::runtime_error("bad ack line: " + text.substr(pos, nl - pos));
    out.push_back(std::move(a));
    pos = nl + 1;
  }
  return out;
}

/// The balance a history folds to (deposits minus withdrawals).
inline std::int64_t fold_balance(const std::vector<history_line>& h, std::size_t upto) {
  std::int64_t b = 0;
  for (std::size_t i = 0; i < h.size() && i < upto; ++i) {
    if (h[i].type == "deposited")
      b += h[i].amount;
    else if (h[i].type == "withdrawn")
      b -= h[i].amount;
  }
  return b;
}

} // namespace bank::test
