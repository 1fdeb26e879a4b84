// File: bench/pg_cluster.hpp
//
// A throw-away PostgreSQL cluster for the postgres scenarios (bench/scenario_postgres.cpp),
// and a libpq connection that throws bench::failure on errors:
//
//   strata::bench::pg_cluster pg(ctx.fresh_dir("postgres"), /*sync=*/true); // initdb, start
//   strata::bench::pg_connection c(pg.conninfo());
//   c.exec("CREATE TABLE t (k bigint PRIMARY KEY)");
//   …                                                       // ~pg_cluster stops the server
//
// The cluster lives in `dir`/data, listens only on a Unix socket in `dir`/sock (no TCP
// port), runs with fsync=on and synchronous_commit=on (both off when `sync` is false:
// strata-bench --nosync) and is stopped (fast shutdown) by the destructor. PostgreSQL refuses to
// run as root: under root the server binaries run as an unprivileged user through runuser(1):
// $STRATA_BENCH_PG_USER, else `strata-bench` (created by scripts/bench-deps), else `postgres`
// (created by Debian's server package). The binaries come from $STRATA_BENCH_PG_BINDIR, else the
// newest /usr/lib/postgresql/<version>/bin, else PATH.
//
// Errors: the constructor throws bench::skipped when the server binaries or a user to
// run them as are missing (run scripts/bench-deps), and bench::failure when initdb or
// the start fails (the message ends with the tail of the server log).
//
// Threads: a pg_cluster is used from one thread; a pg_connection from one thread at a
// time (libpq's rule).
#pragma once

#include <libpq-fe.h>

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

namespace strata::bench {

class pg_cluster {
 public:
  /// Starts the cluster in `dir` (creating it with initdb when `dir`/data does not exist).
  pg_cluster(const std::filesystem::path& dir, bool sync);
  ~pg_cluster();
  pg_cluster(const pg_cluster&) = delete;
  pg_cluster& operator=(const pg_cluster&) = delete;

  /// libpq connection string of the cluster's superuser to database `postgres`.
  std::string conninfo() const;

  /// CPU seconds (user + system) used so far by the running server's processes (the
  /// postmaster and its children: backends, WAL writer, checkpointer …), -1 if unknown.
  double server_cpu_seconds() const;

  /// The directory of the server binaries used (initdb, pg_ctl).
  const std::string& bindir() const noexcept { return bindir_; }

 private:
  void init_db();
  void start();
  void stop() noexcept;
  /// Runs argv (as user_ when we are root); the output goes to log_. Returns the exit code.
  int run(const std::vector<std::string>& argv) const;
  std::string log_tail() const;

  std::filesystem::path dir_;
  std::filesystem::path sock_;
  std::filesystem::path log_;
  std::string bindir_;
  std::string user_; // empty: run the binaries as ourselves (not root)
  bool sync_;
  bool running_ = false;
  bool sock_in_tmp_ = false;
};

/// One libpq connection; every failure throws bench::failure naming the statement.
class pg_connection {
 public:
  explicit pg_connection(const std::string& conninfo);
  ~pg_connection();
  pg_connection(const pg_connection&) = delete;
  pg_connection& operator=(const pg_connection&) = delete;

  PGconn* get() const noexcept { return conn_; }

  /// Runs `sql` (no parameters) and expects a command or tuples result.
  void exec(const std::string& sql);

  /// The single value of a one-row, one-column query, as text.
  std::string scalar(const std::string& sql);

  /// Prepares `sql` as statement `name`.
  void prepare(const std::string& name, const std::string& sql, int n_params);

  /// The connection's last error message, trimmed.
  std::string error_message() const;

 private:
  PGconn* conn_ = nullptr;
};

/// Owns a PGresult.
class pg_result {
 public:
  explicit pg_result(PGresult* r) noexcept : r_(r) {}
  ~pg_result() { PQclear(r_); }
  pg_result(const pg_result&) = delete;
  pg_result& operator=(const pg_result&) = delete;
  PGresult* get() const noexcept { return r_; }
  ExecStatusType status() const noexcept { return PQresultStatus(r_); }
  /// The SQLSTATE ("23505" = unique_violation), "" when there is none.
  std::string_view sqlstate() const noexcept;

 private:
  PGresult* r_;
};

/// u64 from 8 big-endian bytes (libpq's binary int8).
inline std::uint64_t get_be64(const char* p) {
  std::uint64_t v = 0;
  for (int k = 0; k < 8; ++k)
    v = (v << 8) | static_cast<unsigned char>(p[k]);
  return v;
}

} // namespace strata::bench
