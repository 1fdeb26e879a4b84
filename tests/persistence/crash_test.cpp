// Crash test over real processes: a child (crash_child.cpp) appends in a loop in sync
// mode and prints each committed batch; this test kills it with SIGKILL at random
// moments, reopens the journal and checks that every acknowledged event is there and
// intact, every stream gap-free, the global log gap-free, and verify() ok.
//
// The normal run does 20 kills. The long variant (500 kills) is the doctest case marked
// skip; its ctest entry (label "long") runs it with --no-skip.
#include "crash_protocol.hpp"
#include "strata/persistence/journal.hpp"

#include "test_util.hpp"

#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#ifndef STRATA_CRASH_CHILD_PATH
#error "STRATA_CRASH_CHILD_PATH must name the persistence_crash_child executable"
#endif

extern char** environ;

using namespace strata::persistence;
using namespace strata::persistence::test;

namespace {

/// What the child acknowledged so far, over all its runs.
struct acknowledged {
  std::map<std::string, std::uint64_t> heads;
  std::uint64_t last_position = 0;
  std::size_t batches = 0;

  /// Parses one complete line; returns false (with `error` set) for an error line.
  bool take(const std::string& line, std::string& error) {
    if (line.rfind("E ", 0) == 0) {
      error = line.substr(2);
      return false;
    }
    std::istringstream in(line);
    std::string tag;
    std::uint64_t pos = 0;
    in >> tag >> pos;
    REQUIRE(tag == "B");
    last_position = std::max(last_position, pos);
    std::string pair;
    while (in >> pair) {
      auto eq = pair.find('=');
      REQUIRE(eq != std::string::npos);
      auto seq = std::stoull(pair.substr(eq + 1));
      auto& h = heads[pair.substr(0, eq)];
      REQUIRE(seq > h); // a child's acknowledgements only move forward
      h = seq;
    }
    ++batches;
    return true;
  }
};

/// A running child with the read end of its stdout pipe.
class child_process {
 public:
  child_process(const std::string& dir, std::uint64_t seed, std::size_t flush) {
    int fds[2];
    REQUIRE(::pipe(fds) == 0);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, fds[1], STDOUT_FILENO);
    posix_spawn_file_actions_addclose(&fa, fds[0]);
    posix_spawn_file_actions_addclose(&fa, fds[1]);
    std::vector<std::string> args = {STRATA_CRASH_CHILD_PATH, dir, std::to_string(seed),
                                     std::to_string(flush), "sync"};
    std::vector<char*> argv;
    for (auto& a : args)
      argv.push_back(a.data());
    argv.push_back(nullptr);
    int rc = ::posix_spawn(&pid_, argv[0], &fa, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&fa);
    ::close(fds[1]);
    fd_ = fds[0];
    INFO("spawning " << args[0] << ": " << std::strerror(rc));
    REQUIRE(rc == 0);
  }
  ~child_process() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
    if (fd_ >= 0) ::close(fd_);
  }
  child_process(const child_process&) = delete;
  child_process& operator=(const child_process&) = delete;

  /// Reads complete lines until `count` were read, EOF, or the deadline. Returns the
  /// number of lines read.
  std::size_t read_lines(std::size_t count, std::vector<std::string>& out,
                         std::chrono::steady_clock::time_point deadline) {
    std::size_t got = 0;
    while (got < count) {
      if (auto nl = buf_.find('\n'); nl != std::string::npos) {
        out.push_back(buf_.substr(0, nl));
        buf_.erase(0, nl + 1);
        ++got;
        continue;
      }
      if (eof_ || std::chrono::steady_clock::now() > deadline) break;
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 100) <= 0) continue;
      char chunk[4096];
      auto n = ::read(fd_, chunk, sizeof chunk);
      if (n <= 0)
        eof_ = true;
      else
        buf_.append(chunk, static_cast<std::size_t>(n));
    }
    return got;
  }

  /// SIGKILLs the child and waits for it. Returns true when the kill ended it (false
  /// when it had already exited by itself).
  bool kill_and_wait() {
    ::kill(pid_, SIGKILL);
    int ws = 0;
    REQUIRE(::waitpid(pid_, &ws, 0) == pid_);
    pid_ = -1;
    return WIFSIGNALED(ws) && WTERMSIG(ws) == SIGKILL;
  }

  /// After the child is gone: every remaining complete line (a torn last line is
  /// dropped: its batch may be unacknowledged).
  void drain(std::vector<std::string>& out) {
    read_lines(~std::size_t{0}, out, std::chrono::steady_clock::now() + std::chrono::seconds(30));
  }

 private:
  pid_t pid_ = -1;
  int fd_ = -1;
  std::string buf_;
  bool eof_ = false;
};

/// Reopens the journal and checks it against what was acknowledged.
void check_journal(const std::string& dir, const acknowledged& ack) {
  auto o = journal_opts(dir);
  o.env.sync = sync_mode::sync;
  auto j = open_journal(o);
  STRATA_REQUIRE_OK(j->verify());
  REQUIRE(j->last_position() >= ack.last_position);

  std::uint64_t events = 0;
  auto streams = j->list_streams();
  STRATA_REQUIRE_VALUE(streams);
  for (auto& pid : *streams) {
    auto h = j->highest_seq(pid);
    STRATA_REQUIRE_VALUE(h);
    if (auto a = ack.heads.find(pid); a != ack.heads.end()) {
      INFO("stream " << pid << ": acknowledged up to " << a->second << ", journal head " << *h);
      REQUIRE(*h >= a->second);
    }
    std::uint64_t expect = 1;
    std::string wrong; // the first bad event, if any
    STRATA_REQUIRE_OK(j->read_stream(pid, 1, journal::max_seq, [&](const event_record& e) {
      if (e.seq != expect || e.payload != crash::payload_for(pid, e.seq)) {
        wrong = "stream " + pid + ": expected seq " + std::to_string(expect) + ", got seq " +
                std::to_string(e.seq) + " at position " + std::to_string(e.position) +
                (e.seq == expect ? " with a wrong payload" : "");
        return false;
      }
      ++expect;
      return true;
    }));
    INFO(wrong);
    REQUIRE(wrong.empty());
    REQUIRE(expect - 1 == *h);
    events += *h;
  }
  for (auto& [pid, seq] : ack.heads) {
    INFO("acknowledged stream " << pid << " must exist");
    REQUIRE(std::find(streams->begin(), streams->end(), pid) != streams->end());
  }
  // The global log is gap-free and holds exactly the streams' events.
  std::uint64_t next = 1;
  STRATA_REQUIRE_OK(j->read_global(1, ~std::size_t{0}, [&](const event_record& e) {
    return e.position == next++;
  }));
  INFO("global log: expected position " << next - 1);
  REQUIRE(next - 1 == j->last_position());
  REQUIRE(events == j->last_position());
  STRATA_REQUIRE_OK(j->close());
}

/// `kills` SIGKILLs, on a fresh directory every `kills_per_dir` (checking reads the
/// whole journal after every kill, so this bounds the work of the long run).
void run_crash_loop(int kills, int kills_per_dir) {
  STRATA_TEST_SEED(seed);
  std::mt19937_64 rng(seed);
  std::unique_ptr<temp_dir> dir;
  acknowledged ack;
  std::size_t total_batches = 0;
  std::uniform_int_distribution<int> lines_before_kill(0, 40), delay_us(0, 3000), flush(1, 40);
  int killed_by_us = 0;
  for (int i = 0; i < kills; ++i) {
    INFO("seed " << seed << ", kill " << i + 1 << " of " << kills);
    if (i % kills_per_dir == 0) {
      dir.reset();
      dir = std::make_unique<temp_dir>("strata-crash");
      total_batches += ack.batches;
      ack = {};
    }
    std::vector<std::string> lines;
    {
      // Small thresholds flush the index during the run; one run in four keeps the
      // whole run pending (the default), so the next open re-indexes all of it.
      const std::size_t threshold = rng() % 4 == 0 ? journal_options{}.index_flush_events
                                                   : static_cast<std::size_t>(flush(rng));
      child_process child(dir->path(), rng(), threshold);
      // One run in five is killed before it acknowledges anything (while it opens and
      // re-indexes); the others after a random number of batches.
      int want = lines_before_kill(rng);
      if (want < 8) want = 0;
      auto got = child.read_lines(static_cast<std::size_t>(want), lines,
                                  std::chrono::steady_clock::now() + std::chrono::seconds(60));
      INFO("waited for " << want << " lines, got " << got
                         << (lines.empty() ? std::string() : "; last: " + lines.back()));
      REQUIRE(got == static_cast<std::size_t>(want));
      // Not synchronisation: moves the kill to a random point of the next batch.
      std::this_thread::sleep_for(std::chrono::microseconds(delay_us(rng)));
      if (child.kill_and_wait()) ++killed_by_us;
      child.drain(lines);
    }
    for (auto& l : lines) {
      std::string error;
      INFO("child line: " << l);
      REQUIRE(ack.take(l, error));
    }
    check_journal(dir->path(), ack);
  }
  total_batches += ack.batches;
  MESSAGE(killed_by_us << " SIGKILLs, " << total_batches << " acknowledged batches");
  CHECK(killed_by_us == kills);
  CHECK(total_batches > 0);
}

} // namespace

TEST_CASE("crash: SIGKILL of an appending process loses no acknowledged event") {
  run_crash_loop(20, 20);
}

TEST_CASE("crash: long SIGKILL loop (label long)" * doctest::skip()) { run_crash_loop(500, 50); }
