// Scenarios `baseline-postgres`, `postgres-scan`, `postgres-e2e`: what users pick instead
// of strata, measured beside it in the same run (docs/performance.md). Each starts a
// throw-away PostgreSQL cluster in its scratch directory (bench/pg_cluster.hpp) with
// fsync and synchronous_commit on, and stores events as a table
//   events (stream text, seq bigint, payload bytea, PRIMARY KEY (stream, seq)).
// Without libpq at build time, or without the server at run time, they skip with a
// message (scripts/bench-deps installs both).
#include "scenario.hpp"

#ifdef STRATA_BENCH_HAVE_LIBPQ
#include "pg_cluster.hpp"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <memory>
#include <mutex>
#include <random>
#include <sys/resource.h>
#include <thread>
#endif

namespace strata::bench {
namespace {

#ifdef STRATA_BENCH_HAVE_LIBPQ

constexpr const char* create_table = "CREATE TABLE events (stream text NOT NULL, seq bigint NOT "
                                     "NULL, payload bytea NOT NULL, PRIMARY KEY (stream, seq))";

// -- baseline-postgres: the journal scenario's events, one binary COPY per batch ---------

/// Big-endian integers of PostgreSQL's binary COPY format.
void put_u16(std::string& out, std::uint16_t v) {
  out += static_cast<char>(v >> 8);
  out += static_cast<char>(v);
}
void put_u32(std::string& out, std::uint32_t v) {
  for (int k = 3; k >= 0; --k)
    out += static_cast<char>(v >> (8 * k));
}
void put_u64(std::string& out, std::uint64_t v) {
  for (int k = 7; k >= 0; --k)
    out += static_cast<char>(v >> (8 * k));
}

/// Sends `data` (a whole binary COPY stream) as one COPY statement: one transaction.
void copy_in(pg_connection& c, const std::string& data) {
  static const std::string sql = "COPY events (stream, seq, payload) FROM STDIN (FORMAT binary)";
  {
    pg_result r(PQexec(c.get(), sql.c_str()));
    if (r.status() != PGRES_COPY_IN) fail("PostgreSQL: " + sql + ": " + c.error_message());
  }
  if (PQputCopyData(c.get(), data.data(), static_cast<int>(data.size())) != 1 ||
      PQputCopyEnd(c.get(), nullptr) != 1)
    fail("PostgreSQL: sending COPY data: " + c.error_message());
  pg_result r(PQgetResult(c.get()));
  if (r.status() != PGRES_COMMAND_OK) fail("PostgreSQL: COPY events: " + c.error_message());
  while (PGresult* more = PQgetResult(c.get()))
    PQclear(more);
}

/// Writes the events of the journal scenario (bench/journal_bench.cpp: the same stream
/// names, stream order from mt19937_64(42), seqs from 1 and payloads) into `c`'s table
/// `events`, o.batch_events rows per COPY. Timed from the first batch to the last commit.
result load_events(pg_connection& c, const options& o) {
  std::mt19937_64 rng(42);
  std::uniform_int_distribution<std::uint64_t> pick(0, o.streams - 1);
  std::vector<std::uint64_t> heads(o.streams, 0);
  std::string data, payload, stream;
  double copy_s = 0;
  stopwatch sw;
  for (std::uint64_t i = 0; i < o.events;) {
    data.assign("PGCOPY\n\xff\r\n\0", 11);
    put_u32(data, 0); // flags
    put_u32(data, 0); // header extension length
    for (std::uint64_t end = std::min(o.events, i + o.batch_events); i < end; ++i) {
      std::uint64_t s = pick(rng);
      stream = "stream-" + std::to_string(s);
      fill_payload(payload, i, o.payload_bytes);
      put_u16(data, 3);
      put_u32(data, static_cast<std::uint32_t>(stream.size()));
      data += stream;
      put_u32(data, 8);
      put_u64(data, ++heads[s]);
      put_u32(data, static_cast<std::uint32_t>(payload.size()));
      data += payload;
    }
    put_u16(data, 0xffff); // trailer
    stopwatch copy_sw;
    copy_in(c, data);
    copy_s += copy_sw.seconds();
  }
  result r;
  r.seconds = sw.seconds();
  r.events = o.events;
  r.add("streams", o.streams)
    .add("batch", o.batch_events)
    .add("payload_bytes", static_cast<std::uint64_t>(o.payload_bytes))
    .add("copy_s", copy_s)
    .add("build_s", r.seconds - copy_s);
  return r;
}

/// Creates the table, loads it (timed: the returned result), then VACUUM ANALYZE (not
/// timed, as autovacuum would soon do) and the sizes.
result create_and_load(pg_connection& c, const options& o) {
  c.exec(create_table);
  std::string lsn0 = c.scalar("SELECT pg_current_wal_lsn()");
  result r = load_events(c, o);
  r.add("wal_bytes",
        std::stod(c.scalar("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '" + lsn0 + "')")));
  c.exec("VACUUM ANALYZE events");
  r.add("db_bytes", std::stod(c.scalar("SELECT pg_total_relation_size('events')")));
  return r;
}

result run_baseline_postgres(context& ctx) {
  const options& o = ctx.opts();
  auto dir = ctx.fresh_dir("postgres");
  progress("baseline-postgres: initdb and start in " + dir.string() + " (not timed)");
  pg_cluster pg(dir, !o.nosync);
  pg_connection c(pg.conninfo());
  result r = create_and_load(c, o);
  r.add("sync", o.nosync ? "nosync" : "fsync");
  ctx.put_artifact("postgres", dir);
  return r;
}

// -- postgres-scan ------------------------------------------------------------------------

/// The cluster directory holding baseline-postgres's table (loaded now, not timed, when
/// baseline-postgres did not run in this round).
std::filesystem::path postgres_data(context& ctx) {
  if (auto dir = ctx.artifact("postgres")) return *dir;
  auto dir = ctx.fresh_dir("postgres");
  progress("loading the baseline-postgres table first (not timed)");
  pg_cluster pg(dir, !ctx.opts().nosync);
  pg_connection c(pg.conninfo());
  create_and_load(c, ctx.opts());
  ctx.put_artifact("postgres", dir);
  return dir;
}

/// Reads stream `id` ordered by seq (binary results); adds its events and payload bytes.
void read_stream(pg_connection& c, const std::string& id, std::uint64_t& n, std::uint64_t& sum) {
  const char* vals[1] = {id.c_str()};
  pg_result r(PQexecPrepared(c.get(), "read", 1, vals, nullptr, nullptr, 1));
  if (r.status() != PGRES_TUPLES_OK) fail("PostgreSQL: reading " + id + ": " + c.error_message());
  int rows = PQntuples(r.get());
  for (int i = 0; i < rows; ++i) {
    std::uint64_t seq = get_be64(PQgetvalue(r.get(), i, 0));
    if (seq != static_cast<std::uint64_t>(i) + 1)
      fail(id + ": seq " + std::to_string(seq) + ", expected " + std::to_string(i + 1));
    const char* p = PQgetvalue(r.get(), i, 1);
    for (int k = 0, len = PQgetlength(r.get(), i, 1); k < len; ++k) // every byte, as scan
      sum += static_cast<unsigned char>(p[k]);
  }
  n += static_cast<std::uint64_t>(rows);
}

result run_postgres_scan(context& ctx) {
  const options& o = ctx.opts();
  auto dir = postgres_data(ctx);
  pg_cluster pg(dir, !o.nosync); // restarted: a cold server cache, as scan reopens the journal
  pg_connection c(pg.conninfo());
  c.prepare("read", "SELECT seq, payload FROM events WHERE stream = $1 ORDER BY seq", 1);

  stopwatch sw;
  std::vector<std::string> ids;
  {
    pg_result r(PQexec(c.get(), "SELECT DISTINCT stream FROM events"));
    if (r.status() != PGRES_TUPLES_OK) fail("PostgreSQL: listing streams: " + c.error_message());
    for (int i = 0, rows = PQntuples(r.get()); i < rows; ++i)
      ids.emplace_back(PQgetvalue(r.get(), i, 0));
  }
  double list_s = sw.seconds();
  std::uint64_t n = 0, sum = 0;
  for (const auto& id : ids)
    read_stream(c, id, n, sum);
  double secs = sw.seconds();
  if (n != o.events)
    fail("read " + std::to_string(n) + " events, expected " + std::to_string(o.events));
  result r;
  r.events = n;
  r.seconds = secs;
  r.add("streams", static_cast<std::uint64_t>(ids.size()))
    .add("streams_per_s", static_cast<double>(ids.size()) / secs)
    .add("list_s", list_s)
    .add("clients", 1)
    .add("checksum", sum % 1000003);
  return r;
}

// -- postgres-e2e ---------------------------------------------------------------------------

/// What the application keeps per account: the head it last saw (seq, balance).
struct cached_account {
  std::mutex m;
  std::int64_t seq = 0;
  std::int64_t balance = 0;
};

/// e2e's closed-loop deposits, done as an application on PostgreSQL would: each of
/// `connections` threads owns one connection of the pool and takes the next waiting
/// command; a command reads the account's cached head, INSERTs the event at head + 1
/// (one transaction, committed durably) and on a unique violation (another command
/// to the account won the race) reads the events after its head, folds them and
/// retries. Closed loop: a completed command sends its client's next one; open loop:
/// a pacer thread sends commands at a fixed rate.
class pg_e2e_load {
 public:
  pg_e2e_load(const std::string& conninfo, std::size_t accounts, std::size_t connections)
    : accounts_(accounts) {
    for (std::size_t k = 0; k < accounts; ++k)
      ids_.push_back("account:acct-" + std::to_string(k));
    for (std::size_t k = 0; k < connections; ++k) {
      auto& c = *pool_.emplace_back(std::make_unique<pg_connection>(conninfo));
      c.prepare("append", "INSERT INTO events (stream, seq, payload) VALUES ($1, $2, $3)", 3);
      c.prepare("after",
                "SELECT seq, payload FROM events WHERE stream = $1 AND seq > $2 ORDER "
                "BY seq",
                2);
    }
  }

  struct outcome {
    double seconds = 0;
    std::uint64_t done = 0;
    std::uint64_t conflicts = 0;
    std::vector<std::uint32_t> latencies_us;
  };

  /// `total` commands from `clients` closed-loop clients.
  outcome closed_loop(std::uint64_t total, std::size_t clients) {
    reset(total, true);
    for (std::size_t c = 0; c < std::min<std::uint64_t>(clients, total); ++c)
      queue_.push_back(
        {static_cast<std::uint32_t>(c), 0x9e3779b97f4a7c15ull * (c + 1), clock_type::now()});
    sent_ = queue_.size();
    return run([] {});
  }

  /// `total` commands sent at `rate` per second, whatever the replies do.
  outcome open_loop(std::uint64_t total, double rate) {
    reset(total, false);
    return run([this, total, rate] {
      auto start = clock_type::now();
      std::uint64_t rng = 88172645463325252ull;
      for (std::uint64_t i = 0; i < total; ++i) {
        std::this_thread::sleep_until(
          start + std::chrono::nanoseconds(static_cast<std::int64_t>(double(i) * 1e9 / rate)));
        rng = 0x9e3779b97f4a7c15ull * (i + 1) ^ rng;
        std::lock_guard<std::mutex> g{mtx_};
        if (!error_.empty()) return;
        queue_.push_back({0, rng, clock_type::now()});
        ++sent_;
        cv_.notify_one();
      }
    });
  }

  std::int64_t balance_sum() const {
    std::int64_t s = 0;
    for (auto& a : accounts_)
      s += a.balance;
    return s;
  }

 private:
  using clock_type = std::chrono::steady_clock;
  struct command {
    std::uint32_t client;
    std::uint64_t rng;
    clock_type::time_point t0;
  };

  void reset(std::uint64_t total, bool closed) {
    total_ = total;
    closed_loop_ = closed;
    queue_.clear();
    sent_ = completed_ = 0;
    conflicts_ = 0;
  }

  /// Runs the pool's threads (and `feed` on this one) until every command completed.
  template <class Feed>
  outcome run(Feed feed) {
    std::vector<std::vector<std::uint32_t>> lat(pool_.size());
    stopwatch sw;
    std::vector<std::thread> threads;
    for (std::size_t w = 0; w < pool_.size(); ++w)
      threads.emplace_back([this, w, &lat] {
        work(*pool_[w], lat[w]);
      });
    feed();
    for (auto& t : threads)
      t.join();
    outcome out;
    out.seconds = sw.seconds();
    if (!error_.empty()) fail(error_);
    out.done = completed_;
    out.conflicts = conflicts_.load();
    for (auto& v : lat)
      out.latencies_us.insert(out.latencies_us.end(), v.begin(), v.end());
    return out;
  }

  void work(pg_connection& c, std::vector<std::uint32_t>& lat) {
    try {
      lat.reserve(total_ / pool_.size() + 16);
      for (command cmd; next(cmd);) {
        cmd.rng ^= cmd.rng << 13;
        cmd.rng ^= cmd.rng >> 7;
        cmd.rng ^= cmd.rng << 17;
        deposit(c, static_cast<std::size_t>(cmd.rng % accounts_.size()));
        auto now = clock_type::now();
        lat.push_back(static_cast<std::uint32_t>(
          std::chrono::duration_cast<std::chrono::microseconds>(now - cmd.t0).count()));
        done(command{cmd.client, cmd.rng, now});
      }
    } catch (const std::exception& e) {
      std::lock_guard<std::mutex> g{mtx_};
      if (error_.empty()) error_ = e.what();
      cv_.notify_all();
    }
  }

  /// The next waiting command; false when all are done (or one failed).
  bool next(command& cmd) {
    std::unique_lock<std::mutex> g{mtx_};
    cv_.wait(g, [&] {
      return !queue_.empty() || completed_ == total_ || !error_.empty();
    });
    if (queue_.empty() || !error_.empty()) return false;
    cmd = queue_.front();
    queue_.pop_front();
    return true;
  }

  /// One command completed: its client sends the next one (closed loop).
  void done(command next_cmd) {
    std::lock_guard<std::mutex> g{mtx_};
    if (closed_loop_ && sent_ < total_) {
      ++sent_;
      queue_.push_back(next_cmd);
    }
    if (++completed_ == total_) cv_.notify_all();
  }

  /// Deposits 1 cent to account k; returns the new balance (the command's reply).
  std::int64_t deposit(pg_connection& c, std::size_t k) {
    auto& a = accounts_[k];
    for (int attempt = 0; attempt < 1000; ++attempt) {
      std::int64_t seq, balance;
      {
        std::lock_guard<std::mutex> g{a.m};
        seq = a.seq;
        balance = a.balance;
      }
      unsigned char seq_be[8];
      put_be64(seq_be, static_cast<std::uint64_t>(seq + 1));
      std::int64_t cents = 1; // the event, encoded as bench_account.hpp does
      const char* vals[3] = {ids_[k].c_str(), reinterpret_cast<const char*>(seq_be),
                             reinterpret_cast<const char*>(&cents)};
      int lens[3] = {static_cast<int>(ids_[k].size()), 8, 8};
      int formats[3] = {0, 1, 1};
      pg_result r(PQexecPrepared(c.get(), "append", 3, vals, lens, formats, 0));
      if (r.status() == PGRES_COMMAND_OK) {
        std::lock_guard<std::mutex> g{a.m};
        if (a.seq == seq) { // else a concurrent refresh already folded this event in
          a.seq = seq + 1;
          a.balance = balance + cents;
        }
        return balance + cents;
      }
      if (r.sqlstate() != "23505")
        fail("PostgreSQL: appending to " + ids_[k] + " at seq " + std::to_string(seq + 1) + ": " +
             c.error_message());
      conflicts_.fetch_add(1, std::memory_order_relaxed);
      refresh(c, k);
    }
    fail("postgres-e2e: " + ids_[k] + ": 1000 conflicts in a row");
  }

  /// Folds the account's events after its cached head into the cache.
  void refresh(pg_connection& c, std::size_t k) {
    auto& a = accounts_[k];
    unsigned char seq_be[8];
    {
      std::lock_guard<std::mutex> g{a.m};
      put_be64(seq_be, static_cast<std::uint64_t>(a.seq));
    }
    const char* vals[2] = {ids_[k].c_str(), reinterpret_cast<const char*>(seq_be)};
    int lens[2] = {static_cast<int>(ids_[k].size()), 8};
    int formats[2] = {0, 1};
    pg_result r(PQexecPrepared(c.get(), "after", 2, vals, lens, formats, 1));
    if (r.status() != PGRES_TUPLES_OK)
      fail("PostgreSQL: reading " + ids_[k] + ": " + c.error_message());
    std::lock_guard<std::mutex> g{a.m};
    for (int i = 0, rows = PQntuples(r.get()); i < rows; ++i) {
      auto seq = static_cast<std::int64_t>(get_be64(PQgetvalue(r.get(), i, 0)));
      if (seq != a.seq + 1 || PQgetlength(r.get(), i, 1) != 8) continue;
      std::int64_t cents;
      std::memcpy(&cents, PQgetvalue(r.get(), i, 1), 8);
      a.seq = seq;
      a.balance += cents;
    }
  }

  std::vector<cached_account> accounts_;
  std::vector<std::string> ids_;
  std::vector<std::unique_ptr<pg_connection>> pool_;
  std::uint64_t total_ = 0;
  bool closed_loop_ = true;
  std::mutex mtx_; // guards the queue, the counters and error_
  std::condition_variable cv_;
  std::deque<command> queue_;
  std::uint64_t sent_ = 0;
  std::uint64_t completed_ = 0;
  std::string error_;
  std::atomic<std::uint64_t> conflicts_{0};
};



std::size_t env_size(const char* name, std::size_t fallback) {
  const char* v = std::getenv(name);
  std::size_t n = v ? std::strtoull(v, nullptr, 10) : 0;
  return n > 0 ? n : fallback;
}

/// Fails unless the table holds `acked` rows and the cached balances sum to it.
void check_stored(pg_connection& admin, const pg_e2e_load& l, std::uint64_t acked) {
  auto rows = std::stoull(admin.scalar("SELECT count(*) FROM events"));
  if (rows != acked || l.balance_sum() != static_cast<std::int64_t>(acked))
    fail("postgres-e2e: " + std::to_string(acked) + " deposits acknowledged, but " +
         std::to_string(rows) + " rows stored and balances summing to " +
         std::to_string(l.balance_sum()));
}

result run_postgres_e2e(context& ctx) {
  const options& o = ctx.opts();
  // e2e's accounts and clients; fewer commands than e2e (PostgreSQL is slower: the
  // rate is steady well before), unless --events asks for fewer still.
  const std::size_t accounts = 10'000, clients = 16384;
  const std::uint64_t total = std::min<std::uint64_t>(o.events, o.quick ? 20'000 : 100'000);
  const std::size_t connections = env_size("STRATA_BENCH_PG_CONNECTIONS", 32);
  auto dir = ctx.fresh_dir("postgres-e2e");
  progress("postgres-e2e: initdb and start in " + dir.string() + " (not timed)");
  pg_cluster pg(dir, !o.nosync);
  pg_connection admin(pg.conninfo());
  admin.exec(create_table);
  pg_e2e_load l(pg.conninfo(), accounts, connections);
  progress("postgres-e2e: " + std::to_string(total) + " deposits from " + std::to_string(clients) +
           " closed-loop clients over " + std::to_string(connections) + " connections");
  double cpu0 = process_cpu_seconds(), server0 = pg.server_cpu_seconds();
  auto out = l.closed_loop(total, clients);
  double cpu_s = process_cpu_seconds() - cpu0, server_s = pg.server_cpu_seconds() - server0;
  result r;
  r.events = out.done;
  r.seconds = out.seconds;
  auto per_cmd = [&](double s) {
    return out.done ? s * 1e6 / static_cast<double>(out.done) : 0.0;
  };
  r.add("p50_ms", percentile_ms(out.latencies_us, 0.50))
    .add("p99_ms", percentile_ms(out.latencies_us, 0.99))
    .add("conflicts", out.conflicts)
    .add("aggregates", static_cast<std::uint64_t>(accounts))
    .add("clients", static_cast<std::uint64_t>(clients))
    .add("connections", static_cast<std::uint64_t>(connections))
    .add("load_cpu_us_per_cmd", per_cmd(cpu_s))
    .add("server_cpu_us_per_cmd", per_cmd(server_s))
    .add("durability", o.nosync ? "nosync" : "sync");
  // Latency at half of the measured maximum, open loop (as e2e).
  double half = r.events_per_s() / 2;
  auto n = static_cast<std::uint64_t>(half * (o.quick ? 1.0 : 3.0));
  progress("postgres-e2e: latency at half load (" + std::to_string(static_cast<long>(half)) +
           "/s)");
  auto hl = l.open_loop(n, half);
  r.add("half_load_per_s", half)
    .add("half_load_p50_ms", percentile_ms(hl.latencies_us, 0.50))
    .add("half_load_p99_ms", percentile_ms(hl.latencies_us, 0.99));
  check_stored(admin, l, out.done + hl.done);
  return r;
}

#else // built without libpq

result not_built(context&) {
  skip("strata-bench was built without libpq: run scripts/bench-deps, then configure and "
       "build again");
}
const auto run_baseline_postgres = not_built;
const auto run_postgres_scan = not_built;
const auto run_postgres_e2e = not_built;

#endif

const registrar reg_baseline{
  {"baseline-postgres",
   "PostgreSQL (throw-away cluster, fsync and synchronous_commit "
   "on unless --nosync): the journal scenario's N 100-byte events over 10k streams "
   "into (stream, seq, payload) with primary key (stream, seq), one "
   "binary COPY of 1000 rows per transaction",
   15, "", true, run_baseline_postgres}};
const registrar reg_scan{{"postgres-scan",
                          "PostgreSQL: every stream of baseline-postgres's table read back "
                          "ordered by seq (one client, prepared statement, binary results)",
                          35, "", true, run_postgres_scan}};
const registrar reg_e2e{{"postgres-e2e",
                         "PostgreSQL as an application would use it for e2e's commands: 10k "
                         "accounts, 16384 closed-loop clients, a pool of 32 connections, one "
                         "INSERT per command with optimistic concurrency on (stream, seq)",
                         190, "", true, run_postgres_e2e}};

// strata against PostgreSQL, in the lines of strata's scenarios.
const comparison_registrar cmp_journal{{"journal", "baseline-postgres"}};
const comparison_registrar cmp_scan{{"scan", "postgres-scan"}};
const comparison_registrar cmp_e2e{{"e2e", "postgres-e2e"}};

} // namespace
} // namespace strata::bench
