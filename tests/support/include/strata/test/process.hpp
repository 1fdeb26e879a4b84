// File: strata/test/process.hpp — real processes in tests: run to completion, run in
// the background, or fork a function as a child that may "crash". POSIX only.
//
//   auto r = strata::test::run(dir.path(), "/usr/bin/strata", {"verify", "--data", d});
//   CHECK(r.exit_code == 0);                       // r.out, r.err: what it printed
//
//   strata::test::process mock{exe, {"--brokers", "3"}, dir.sub("mock.out"), dir.sub("mock.err")};
//   REQUIRE(strata::test::eventually([&] { return !slurp(boot).empty() || mock.exited(); }));
//   mock.kill_and_wait(SIGTERM);                  // or SIGKILLed and reaped when destroyed
//
//   int code = strata::test::run_in_child([&] { j->append(...); return 0; });  // fork, no exec
//
// Threads: a process object has one owner; run_in_child forks the calling thread only
// (call it before starting threads that hold locks the child needs).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <string>
#include <vector>

namespace strata::test {

/// fork + exec `exe args...` with stdout and stderr written to the given files (stdin
/// inherited). Returns the child's pid. Throws std::runtime_error when fork fails; a
/// failed exec ends the child with exit code 127.
pid_t spawn(const std::string& exe, const std::vector<std::string>& args,
            const std::string& out_path, const std::string& err_path);

/// Waits for `pid` to end and reaps it: its exit code, -1 when a signal ended it, -2
/// when waitpid failed.
int wait_exit(pid_t pid);

/// What a process printed and how it ended.
struct run_result {
  int exit_code = -1; ///< -1: killed by a signal
  std::string out;
  std::string err;
};

/// Runs `exe args...` to completion; `scratch` is a directory for its output files
/// (`<scratch>/run.out`, `run.err`, overwritten by the next run).
run_result run(const std::string& scratch, const std::string& exe,
               const std::vector<std::string>& args);

/// A process in the background, SIGKILLed and reaped when destroyed if still running.
class process {
 public:
  /// Starts `exe args...` (see spawn). Throws std::runtime_error when fork fails.
  process(const std::string& exe, const std::vector<std::string>& args, std::string out_path,
          std::string err_path);
  ~process();
  process(const process&) = delete;
  process& operator=(const process&) = delete;

  /// True when it has exited (then exit_code() is set: -1 = ended by a signal).
  bool exited();
  /// Polls until it exited or `timeout` passed. Returns whether it exited.
  bool wait_exit(std::chrono::milliseconds timeout);
  /// Sends `sig` if it still runs.
  void signal(int sig);
  /// Sends `sig` and reaps it. Returns false when it had exited already.
  bool kill_and_wait(int sig);
  /// kill_and_wait(SIGKILL).
  bool kill9();

  int exit_code() const noexcept { return code_; }
  /// The process id while it runs (0 once reaped).
  pid_t pid() const noexcept { return pid_; }
  /// What it has written to stdout / stderr so far.
  std::string out() const;
  std::string err() const;

 private:
  pid_t pid_ = 0;
  int code_ = -1;
  std::string out_;
  std::string err_;
};

/// Runs `fn` in a forked child (no exec) and returns its exit code, 128 + the signal
/// that ended it, 98 when `fn` threw and 99 if it never returned a code. Lets a test
/// leave files open without closing them, as a crashed process would. Throws
/// std::runtime_error when fork or waitpid fails.
int run_in_child(const std::function<int()>& fn);

} // namespace strata::test
