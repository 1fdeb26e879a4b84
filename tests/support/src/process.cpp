#include "strata/test/process.hpp"

#include "strata/test/files.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <stdexcept>
#include <thread>

namespace strata::test {

pid_t spawn(const std::string& exe, const std::vector<std::string>& args,
            const std::string& out_path, const std::string& err_path) {
  std::vector<std::string> all{exe};
  all.insert(all.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : all)
    argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = ::fork();
  if (pid < 0) throw std::runtime_error("fork failed to start " + exe);
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

int wait_exit(pid_t pid) {
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0)
    if (errno != EINTR) return -2;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

run_result run(const std::string& scratch, const std::string& exe,
               const std::vector<std::string>& args) {
  auto out = scratch + "/run.out";
  auto err = scratch + "/run.err";
  pid_t pid = spawn(exe, args, out, err);
  run_result r;
  r.exit_code = wait_exit(pid);
  r.out = slurp(out);
  r.err = slurp(err);
  return r;
}

process::process(const std::string& exe, const std::vector<std::string>& args, std::string out_path,
                 std::string err_path)
  : out_(std::move(out_path)), err_(std::move(err_path)) {
  pid_ = spawn(exe, args, out_, err_);
}

process::~process() { (void)kill9(); }

bool process::exited() {
  if (pid_ <= 0) return true;
  int status = 0;
  if (::waitpid(pid_, &status, WNOHANG) != pid_) return false;
  code_ = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  pid_ = 0;
  return true;
}

bool process::wait_exit(std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!exited()) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10)); // polling, not a sync
  }
  return true;
}

void process::signal(int sig) {
  if (!exited()) ::kill(pid_, sig);
}

bool process::kill_and_wait(int sig) {
  if (exited()) return false;
  ::kill(pid_, sig);
  code_ = test::wait_exit(pid_);
  pid_ = 0;
  return true;
}

bool process::kill9() { return kill_and_wait(SIGKILL); }

std::string process::out() const { return slurp(out_); }
std::string process::err() const { return slurp(err_); }

int run_in_child(const std::function<int()>& fn) {
  pid_t pid = ::fork();
  if (pid < 0) throw std::runtime_error("fork failed (run_in_child)");
  if (pid == 0) {
    int code = 99;
    try {
      code = fn();
    } catch (...) {
      code = 98;
    }
    ::_exit(code);
  }
  int ws = 0;
  while (::waitpid(pid, &ws, 0) < 0)
    if (errno != EINTR) throw std::runtime_error("waitpid failed (run_in_child)");
  if (WIFEXITED(ws)) return WEXITSTATUS(ws);
  return 128 + (WIFSIGNALED(ws) ? WTERMSIG(ws) : 0);
}

} // namespace strata::test
