// Helpers of the torture test: processes with a deadline, directory copies, and the
// mutations (bit flip, truncation, removal) applied to a copy of a data directory.
// POSIX only.
#pragma once

#include "strata/test/files.hpp"
#include "strata/test/seed.hpp"
#include "strata/test/temp_dir.hpp"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <random>
#include <signal.h>
#include <sstream>
#include <stdexcept>
#include <string>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>
#include <vector>

namespace strata::torture {

namespace fs = std::filesystem;

inline std::string env_or(const char* name, const char* fallback) {
  const char* v = std::getenv(name);
  return v && *v ? v : fallback;
}

inline int env_int(const char* name, int fallback) {
  const char* v = std::getenv(name);
  return v && *v ? std::atoi(v) : fallback;
}

// The run's seed ($STRATA_SEED or fresh), temporary directories and file reading are
// every test folder's (tests/support, strata::test_support).
using strata::test::slurp;
using strata::test::temp_dir;
using strata::test::test_seed;

/// The first `n` lines of `text`, joined by " | ".
inline std::string first_lines(const std::string& text, int n) {
  std::istringstream in(text);
  std::string line, out;
  for (int i = 0; i < n && std::getline(in, line); ++i)
    out += (i ? " | " : "") + line;
  return out;
}

struct process_result {
  int exit_code = -1; ///< when it exited
  int signal = 0;     ///< when a signal ended it
  bool timed_out = false;
  std::string out;
  std::string err;

  std::string describe() const {
    std::string s = timed_out     ? "killed after its deadline"
                    : signal != 0 ? "signal " + std::to_string(signal)
                                  : "exit " + std::to_string(exit_code);
    return s + "; stdout: " + first_lines(out, 3) + "; stderr: " + first_lines(err, 2);
  }
};

/// Runs `exe args...` (stdin /dev/null, output to files in `scratch`); SIGKILL after
/// `deadline_ms`. Polls for the exit: the deadline bounds the wait.
inline process_result run_process(const std::string& exe, std::vector<std::string> args,
                                  const std::string& scratch, int deadline_ms) {
  const std::string out_path = scratch + "/proc.out", err_path = scratch + "/proc.err";
  args.insert(args.begin(), exe);
  std::vector<char*> argv;
  for (auto& a : args)
    argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = ::fork();
  if (pid < 0) throw std::runtime_error("fork failed");
  if (pid == 0) {
    int in = ::open("/dev/null", O_RDONLY);
    int out = ::open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int err = ::open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (in < 0 || out < 0 || err < 0) ::_exit(127);
    ::dup2(in, 0);
    ::dup2(out, 1);
    ::dup2(err, 2);
    // Under AddressSanitizer (scripts/test --sanitize) a fault would become exit 1:
    // let SIGSEGV, SIGBUS and SIGABRT end the process as they do in a normal build.
    std::string asan = env_or("ASAN_OPTIONS", "");
    asan += std::string(asan.empty() ? "" : ":") + "handle_segv=0:handle_sigbus=0:handle_abort=0";
    ::setenv("ASAN_OPTIONS", asan.c_str(), 1);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  process_result r;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(deadline_ms);
  int status = 0;
  auto pause = std::chrono::microseconds(200);
  while (true) {
    pid_t w = ::waitpid(pid, &status, WNOHANG);
    if (w == pid) break;
    if (w < 0 && errno != EINTR) throw std::runtime_error("waitpid failed");
    if (std::chrono::steady_clock::now() >= deadline) {
      ::kill(pid, SIGKILL);
      while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
      }
      r.timed_out = true;
      break;
    }
    std::this_thread::sleep_for(pause);
    pause = std::min(pause * 2, std::chrono::microseconds(5000));
  }
  if (WIFEXITED(status)) r.exit_code = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) r.signal = WTERMSIG(status);
  r.out = slurp(out_path);
  r.err = slurp(err_path);
  return r;
}

/// Replaces `to` by a copy of the regular files of `from` (no subdirectories).
inline void copy_dir(const std::string& from, const std::string& to) {
  fs::remove_all(to);
  fs::create_directories(to);
  for (const auto& e : fs::directory_iterator(from))
    if (e.is_regular_file()) fs::copy_file(e.path(), fs::path(to) / e.path().filename());
}

/// Names of the regular files of `dir`, sorted (so a seed picks the same file).
inline std::vector<std::string> list_files(const std::string& dir) {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.is_regular_file()) out.push_back(e.path().filename().string());
  std::sort(out.begin(), out.end());
  return out;
}

struct mutation {
  enum kind_t { flip, truncate, remove } kind = flip;
  std::string file;
  std::uint64_t offset = 0; ///< flip: the byte; truncate: the new size
  int bit = 0;

  std::string describe() const {
    switch (kind) {
      case flip:
        return "flip bit " + std::to_string(bit) + " of byte " + std::to_string(offset) + " of " +
               file;
      case truncate: return "truncate " + file + " to " + std::to_string(offset) + " bytes";
      case remove: return "remove " + file;
    }
    return {};
  }
};

/// A mutation of one of `files` in `dir`: 85% a bit flip (data.mdb 3 times out of 4;
/// a third of them in LMDB's meta pages or page headers),
/// 13% a truncation of data.mdb (random length, page boundary, two pages off, zero),
/// 2% a removed file.
inline mutation random_mutation(std::mt19937_64& rng, const std::string& dir,
                                const std::vector<std::string>& files) {
  auto pick = [&](std::uint64_t n) {
    return n == 0 ? 0 : rng() % n;
  };
  mutation m;
  auto roll = pick(100);
  bool has_data = std::find(files.begin(), files.end(), "data.mdb") != files.end();
  m.file = has_data && (roll >= 85 || pick(4) != 0) ? "data.mdb" : files[pick(files.size())];
  std::uint64_t size = fs::file_size(fs::path(dir) / m.file);
  if (roll < 85 && size > 0) {
    // Uniform flips mostly hit payload bytes; one in three aims at LMDB's structure
    // instead: the meta pages, or the header and node offsets at the start of a page.
    constexpr std::uint64_t page = 4096;
    m.kind = mutation::flip;
    switch (pick(6)) {
      case 0: m.offset = pick(std::min(size, 2 * page)); break;
      case 1: m.offset = pick(size / page + 1) * page + pick(64); break;
      default: m.offset = pick(size); break;
    }
    if (m.offset >= size) m.offset = pick(size);
    m.bit = static_cast<int>(pick(8));
  } else if (roll < 98) {
    m.kind = mutation::truncate;
    constexpr std::uint64_t page = 4096;
    switch (pick(4)) {
      case 0: m.offset = pick(size); break;
      case 1: m.offset = pick(size / page + 1) * page; break;
      case 2: m.offset = size > 2 * page ? size - 2 * page : 0; break;
      default: m.offset = 0; break;
    }
  } else {
    m.kind = mutation::remove;
  }
  return m;
}

inline void apply_mutation(const mutation& m, const std::string& dir) {
  auto path = fs::path(dir) / m.file;
  switch (m.kind) {
    case mutation::flip: {
      std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
      f.seekg(static_cast<std::streamoff>(m.offset));
      char c = 0;
      f.get(c);
      c = static_cast<char>(c ^ (1 << m.bit));
      f.seekp(static_cast<std::streamoff>(m.offset));
      f.put(c);
      if (!f) throw std::runtime_error("cannot flip a bit of " + path.string());
      break;
    }
    case mutation::truncate: fs::resize_file(path, m.offset); break;
    case mutation::remove: fs::remove(path); break;
  }
}

} // namespace strata::torture
