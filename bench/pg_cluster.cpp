// A throw-away PostgreSQL cluster and libpq connection (see pg_cluster.hpp).
#include "pg_cluster.hpp"

#include "scenario.hpp"

#include <fcntl.h>
#include <pwd.h>
#include <spawn.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <sstream>

extern char** environ;

namespace fs = std::filesystem;

namespace strata::bench {
namespace {

constexpr const char* superuser = "strata";
constexpr const char* install_hint = "run scripts/bench-deps (as root) to install it";

bool is_exe(const fs::path& p) { return ::access(p.c_str(), X_OK) == 0; }

/// The directory of initdb and pg_ctl, or "" when there is none.
std::string find_bindir() {
  if (const char* d = std::getenv("STRATA_BENCH_PG_BINDIR")) return d;
  std::error_code ec;
  std::string best;
  int best_version = -1;
  for (const auto& e : fs::directory_iterator("/usr/lib/postgresql", ec)) {
    auto bin = e.path() / "bin";
    int v = std::atoi(e.path().filename().c_str());
    if (v > best_version && is_exe(bin / "initdb") && is_exe(bin / "pg_ctl")) {
      best_version = v;
      best = bin.string();
    }
  }
  if (!best.empty()) return best;
  if (const char* path = std::getenv("PATH")) {
    std::stringstream ss(path);
    for (std::string d; std::getline(ss, d, ':');)
      if (!d.empty() && is_exe(fs::path(d) / "initdb") && is_exe(fs::path(d) / "pg_ctl")) return d;
  }
  return {};
}

/// The unprivileged user to run the server as (we are root), or skip().
std::string find_user() {
  if (const char* u = std::getenv("STRATA_BENCH_PG_USER")) {
    if (!::getpwnam(u)) fail(std::string("STRATA_BENCH_PG_USER=") + u + ": no such user");
    return u;
  }
  for (const char* u : {"strata-bench", "postgres"})
    if (::getpwnam(u)) return u;
  skip(std::string("PostgreSQL refuses to run as root and there is no user strata-bench or "
                   "postgres to run it as: ") +
       install_hint);
}

/// Fails unless `user` can enter every directory on the way to `dir`.
void check_traversable(const fs::path& dir, const passwd& pw) {
  for (fs::path p = fs::absolute(dir); !p.empty(); p = p.parent_path()) {
    struct stat st {};
    if (::stat(p.c_str(), &st) == 0 && !(st.st_mode & S_IXOTH) && st.st_uid != pw.pw_uid)
      fail("PostgreSQL runs as user " + std::string(pw.pw_name) + ", who cannot enter " +
           p.string() + ": use --dir on a path every user can traverse");
    if (p == p.root_path()) break;
  }
}

void chown_to(const fs::path& p, const passwd& pw) {
  if (::chown(p.c_str(), pw.pw_uid, pw.pw_gid) != 0)
    fail("chown " + p.string() + " to " + pw.pw_name + " failed");
}

} // namespace

// -- pg_cluster ---------------------------------------------------------------------------

pg_cluster::pg_cluster(const fs::path& dir, bool sync)
  : dir_(fs::absolute(dir)), log_(dir_ / "setup.log"), sync_(sync) {
  bindir_ = find_bindir();
  if (bindir_.empty())
    skip(std::string("the PostgreSQL server is not installed (no initdb in "
                     "/usr/lib/postgresql/*/bin or PATH): ") +
         install_hint);
  if (::geteuid() == 0) user_ = find_user();
  fs::create_directories(dir_);
  sock_ = dir_ / "sock";
  // A Unix socket path has at most 107 bytes: a deep scratch dir gets one under /tmp.
  if ((sock_ / ".s.PGSQL.5432").string().size() > 100) {
    std::string tmpl = (fs::temp_directory_path() / "strata-bench-pg-XXXXXX").string();
    if (!::mkdtemp(tmpl.data())) fail("mkdtemp " + tmpl + " failed");
    sock_ = tmpl;
    sock_in_tmp_ = true;
  }
  fs::create_directories(sock_);
  if (!user_.empty()) {
    const passwd* pw = ::getpwnam(user_.c_str());
    if (!pw) fail("user " + user_ + " vanished");
    check_traversable(dir_, *pw);
    chown_to(dir_, *pw);
    chown_to(sock_, *pw);
  }
  if (!fs::exists(dir_ / "data" / "PG_VERSION")) init_db();
  start();
}

pg_cluster::~pg_cluster() {
  stop();
  if (sock_in_tmp_) {
    std::error_code ec;
    fs::remove_all(sock_, ec);
  }
}

std::string pg_cluster::conninfo() const {
  return "host=" + sock_.string() + " port=5432 user=" + superuser + " dbname=postgres";
}

void pg_cluster::init_db() {
  // --no-sync: only initdb's own files are not fsynced; the server then runs with fsync.
  int rc = run({bindir_ + "/initdb", "-D", (dir_ / "data").string(), "-U", superuser, "-A", "trust",
                "-E", "UTF8", "--locale=C", "--no-sync"});
  if (rc != 0)
    fail("initdb in " + dir_.string() + " failed (exit " + std::to_string(rc) + ")" + log_tail());
  std::ofstream conf(dir_ / "data" / "postgresql.conf", std::ios::app);
  const char* on = sync_ ? "on" : "off";
  conf << "\n# strata-bench: a Unix socket only; durable commits unless --nosync\n"
       << "listen_addresses = ''\n"
       << "unix_socket_directories = '" << sock_.string() << "'\n"
       << "port = 5432\n"
       << "fsync = " << on << "\n"
       << "synchronous_commit = " << on << "\n";
  if (!conf) fail("cannot append to " + (dir_ / "data" / "postgresql.conf").string());
}

void pg_cluster::start() {
  int rc = run({bindir_ + "/pg_ctl", "start", "-w", "-t", "120", "-D", (dir_ / "data").string(),
                "-l", (dir_ / "server.log").string()});
  if (rc != 0) fail("pg_ctl start in " + dir_.string() + " failed" + log_tail());
  running_ = true;
}

void pg_cluster::stop() noexcept {
  if (!running_) return;
  running_ = false;
  try {
    if (run({bindir_ + "/pg_ctl", "stop", "-w", "-m", "fast", "-D", (dir_ / "data").string()}) != 0)
      progress("pg_ctl stop in " + dir_.string() + " failed; see " + log_.string());
  } catch (const std::exception& e) {
    progress(std::string("pg_ctl stop: ") + e.what());
  }
}

int pg_cluster::run(const std::vector<std::string>& argv) const {
  std::vector<std::string> args;
  if (!user_.empty()) args = {"runuser", "-u", user_, "--"};
  args.insert(args.end(), argv.begin(), argv.end());
  std::vector<char*> cargs;
  for (auto& a : args)
    cargs.push_back(a.data());
  cargs.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 1, log_.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  posix_spawn_file_actions_adddup2(&fa, 1, 2);
  pid_t pid = 0;
  int err = ::posix_spawnp(&pid, cargs[0], &fa, nullptr, cargs.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  if (err != 0) fail("cannot start " + args[0] + ": " + std::strerror(err));
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0)
    if (errno != EINTR) fail("waitpid " + args[0] + ": " + std::strerror(errno));
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

double pg_cluster::server_cpu_seconds() const {
  std::ifstream pidfile(dir_ / "data" / "postmaster.pid");
  long postmaster = 0;
  if (!(pidfile >> postmaster)) return -1;
  double ticks = 0;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator("/proc", ec)) {
    std::ifstream f(e.path() / "stat");
    std::string line;
    if (!std::getline(f, line)) continue;
    // pid (comm) state ppid … utime(14) stime(15): comm may hold spaces, skip past ')'.
    auto close = line.rfind(')');
    if (close == std::string::npos) continue;
    std::istringstream rest(line.substr(close + 2));
    std::string state;
    long ppid = 0;
    rest >> state >> ppid;
    long pid = std::atol(e.path().filename().c_str());
    if (pid != postmaster && ppid != postmaster) continue;
    std::string skip_field;
    for (int k = 5; k < 14; ++k)
      rest >> skip_field;
    unsigned long long ut = 0, st = 0;
    rest >> ut >> st;
    ticks += static_cast<double>(ut + st);
  }
  return ticks / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

std::string pg_cluster::log_tail() const {
  std::string out;
  for (const auto& p : {log_, dir_ / "server.log"}) {
    std::ifstream f(p);
    std::string text((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    if (text.size() > 1500) text = "…" + text.substr(text.size() - 1500);
    if (!text.empty()) out += "\n--- " + p.string() + ":\n" + text;
  }
  return out;
}

// -- pg_connection --------------------------------------------------------------------------

pg_connection::pg_connection(const std::string& conninfo) : conn_(PQconnectdb(conninfo.c_str())) {
  if (!conn_ || PQstatus(conn_) != CONNECTION_OK) {
    std::string msg = error_message();
    PQfinish(conn_);
    conn_ = nullptr;
    fail("cannot connect to the bench's PostgreSQL (" + conninfo + "): " + msg);
  }
}

pg_connection::~pg_connection() { PQfinish(conn_); }

std::string pg_connection::error_message() const {
  std::string m = conn_ ? PQerrorMessage(conn_) : "out of memory";
  while (!m.empty() && (m.back() == '\n' || m.back() == ' '))
    m.pop_back();
  return m;
}

void pg_connection::exec(const std::string& sql) {
  pg_result r(PQexec(conn_, sql.c_str()));
  if (r.status() != PGRES_COMMAND_OK && r.status() != PGRES_TUPLES_OK)
    fail("PostgreSQL: " + sql + ": " + error_message());
}

std::string pg_connection::scalar(const std::string& sql) {
  pg_result r(PQexec(conn_, sql.c_str()));
  if (r.status() != PGRES_TUPLES_OK || PQntuples(r.get()) != 1 || PQnfields(r.get()) != 1)
    fail("PostgreSQL: " + sql + ": expected one value: " + error_message());
  return PQgetvalue(r.get(), 0, 0);
}

void pg_connection::prepare(const std::string& name, const std::string& sql, int n_params) {
  pg_result r(PQprepare(conn_, name.c_str(), sql.c_str(), n_params, nullptr));
  if (r.status() != PGRES_COMMAND_OK) fail("PostgreSQL: prepare " + sql + ": " + error_message());
}

std::string_view pg_result::sqlstate() const noexcept {
  const char* s = PQresultErrorField(r_, PG_DIAG_SQLSTATE);
  return s ? std::string_view(s) : std::string_view();
}

} // namespace strata::bench
