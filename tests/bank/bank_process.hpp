// Helpers for tests that run the strata-bank binary as real processes: run and
// capture, spawn in the background, parse its output. POSIX only.
#pragma once

#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <signal.h>
#include <sstream>
#include <stdexcept>
#include <string>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>

namespace bank::test {

/// The strata-bank binary: $STRATA_BANK_BINARY when set (to run the tests against
/// another build, e.g. an older commit's), else the compile definition from
/// tests/bank/CMakeLists.txt.
inline const char* binary() {
  if (const char* b = std::getenv("STRATA_BANK_BINARY"); b && *b) return b;
  return STRATA_BANK_PATH;
}

/// The seed of a randomised test: $STRATA_SEED when set, otherwise fresh.
inline std::uint64_t test_seed() {
  if (const char* s = std::getenv("STRATA_SEED"); s && *s) return std::strtoull(s, nullptr, 10);
  return (std::uint64_t{std::random_device{}()} << 32) ^ std::random_device{}();
}

/// A fresh directory under $TMPDIR (or /tmp), removed at the end unless keep() was
/// called (e.g. to look at a failure).
class temp_dir {
 public:
  explicit temp_dir(const std::string& tag) {
    const char* base = std::getenv("TMPDIR");
    std::string tmpl = std::string(base && *base ? base : "/tmp") + "/" + tag + "-XXXXXX";
    if (::mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp failed for " + tmpl);
    path_ = tmpl;
  }
  ~temp_dir() {
    if (!keep_) {
      std::error_code ec;
      std::filesystem::remove_all(path_, ec);
    }
  }
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;
  const std::string& path() const noexcept { return path_; }
  std::string sub(const std::string& name) const { return path_ + "/" + name; }
  void keep() noexcept { keep_ = true; }

 private:
  std::string path_;
  bool keep_ = false;
};

struct run_result {
  int exit_code = -1; ///< -1: killed by a signal
  std::string out;
  std::string err;
};

namespace detail {
inline std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

/// fork + exec `exe args...` with stdout/stderr redirected to files.
inline pid_t spawn_exe(const std::string& exe, const std::vector<std::string>& args,
                       const std::string& out_path, const std::string& err_path) {
  std::vector<std::string> all{exe};
  all.insert(all.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : all)
    argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = ::fork();
  if (pid < 0) throw std::runtime_error("fork failed");
  if (pid == 0) {
    int out = ::open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int err = ::open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (out < 0 || err < 0) ::_exit(127);
    ::dup2(out, 1);
    ::dup2(err, 2);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  return pid;
}

/// fork + exec `binary() args...` with stdout/stderr redirected to files.
inline pid_t spawn(const std::vector<std::string>& args, const std::string& out_path,
                   const std::string& err_path) {
  return spawn_exe(binary(), args, out_path, err_path);
}

inline int wait_exit(pid_t pid) {
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0)
    if (errno != EINTR) return -2;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}
} // namespace detail

/// Runs strata-bank to completion; `scratch` is a directory for its output files.
inline run_result run(const std::string& scratch, const std::vector<std::string>& args) {
  auto out = scratch + "/run.out";
  auto err = scratch + "/run.err";
  pid_t pid = detail::spawn(args, out, err);
  run_result r;
  r.exit_code = detail::wait_exit(pid);
  r.out = detail::slurp(out);
  r.err = detail::slurp(err);
  return r;
}

/// Runs another executable (e.g. the `strata` tool) to completion, like run().
inline run_result run_exe(const std::string& scratch, const std::string& exe,
                          const std::vector<std::string>& args) {
  auto out = scratch + "/run-exe.out";
  auto err = scratch + "/run-exe.err";
  pid_t pid = detail::spawn_exe(exe, args, out, err);
  run_result r;
  r.exit_code = detail::wait_exit(pid);
  r.out = detail::slurp(out);
  r.err = detail::slurp(err);
  return r;
}

/// A strata-bank process in the background.
class child {
 public:
  child(const std::string& scratch, const std::vector<std::string>& args)
    : out_(scratch + "/child.out"), err_(scratch + "/child.err") {
    pid_ = detail::spawn(args, out_, err_);
  }
  ~child() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      detail::wait_exit(pid_);
    }
  }
  child(const child&) = delete;
  child& operator=(const child&) = delete;

  /// True when the process has exited on its own (then exit_code() is set).
  bool exited() {
    if (pid_ <= 0) return true;
    int status = 0;
    pid_t r = ::waitpid(pid_, &status, WNOHANG);
    if (r == pid_) {
      code_ = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
      pid_ = 0;
      return true;
    }
    return false;
  }
  /// SIGKILL, then reap. Returns false when it had already exited.
  bool kill9() {
    if (exited()) return false;
    ::kill(pid_, SIGKILL);
    code_ = detail::wait_exit(pid_);
    pid_ = 0;
    return true;
  }
  int exit_code() const noexcept { return code_; }
  /// The process id while it runs (0 once reaped).
  pid_t pid() const noexcept { return pid_; }
  std::string err() const { return detail::slurp(err_); }
  std::string out() const { return detail::slurp(out_); }

 private:
  pid_t pid_ = 0;
  int code_ = -1;
  std::string out_;
  std::string err_;
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
