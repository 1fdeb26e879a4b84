// Helpers shared by the persistence tests: temporary directories, journal set-up,
// batch builders, seeds, and assertions that print a status's message on failure.
#pragma once

#include "strata/persistence/codec.hpp"
#include "strata/persistence/environment.hpp"
#include "strata/persistence/event.hpp"
#include "strata/persistence/journal.hpp"
#include "strata/persistence/status.hpp"

#include <doctest/doctest.h>

#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <memory>
#include <optional>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace doctest {
template <>
struct StringMaker<strata::persistence::errc> {
  static String convert(strata::persistence::errc c) { return strata::persistence::to_string(c); }
};
} // namespace doctest

/// REQUIRE/CHECK that a status is ok, printing its message when it is not.
#define STRATA_REQUIRE_OK(expr)                                                                    \
  do {                                                                                             \
    const ::strata::persistence::status strata_st_ = (expr);                                       \
    INFO("status: " << strata_st_.to_string());                                                    \
    REQUIRE(strata_st_.ok());                                                                      \
  } while (false)
#define STRATA_CHECK_OK(expr)                                                                      \
  do {                                                                                             \
    const ::strata::persistence::status strata_st_ = (expr);                                       \
    INFO("status: " << strata_st_.to_string());                                                    \
    CHECK(strata_st_.ok());                                                                        \
  } while (false)
/// REQUIRE that a result holds a value, printing the error's message when it does not.
#define STRATA_REQUIRE_VALUE(res)                                                                  \
  do {                                                                                             \
    INFO("error: " << (res).error().to_string());                                                  \
    REQUIRE((res).has_value());                                                                    \
  } while (false)

/// Declares `const std::uint64_t name` = test_seed() and logs it with every failure of
/// the enclosing scope ("repeat with STRATA_SEED=…").
#define STRATA_TEST_SEED(name)                                                                     \
  const std::uint64_t name = ::strata::persistence::test::test_seed();                             \
  INFO("seed " << name << " (repeat with STRATA_SEED=" << name << ")")

namespace strata::persistence::test {

/// A fresh directory under $TMPDIR (or /tmp), removed with everything in it at the end.
class temp_dir {
 public:
  explicit temp_dir(const std::string& tag = "strata-test") {
    const char* base = std::getenv("TMPDIR");
    std::string tmpl = std::string(base && *base ? base : "/tmp") + "/" + tag + "-XXXXXX";
    if (::mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp failed for " + tmpl);
    path_ = tmpl;
  }
  ~temp_dir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;

  const std::string& path() const noexcept { return path_; }
  /// A path inside the directory (not created).
  std::string sub(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

/// The seed of a randomised test: $STRATA_SEED when set, otherwise fresh. Use through
/// STRATA_TEST_SEED, which prints it when an assertion of the test fails.
inline std::uint64_t test_seed() {
  if (const char* s = std::getenv("STRATA_SEED"); s && *s) return std::strtoull(s, nullptr, 10);
  return (std::uint64_t{std::random_device{}()} << 32) ^ std::random_device{}();
}

/// Journal options for tests: nosync (durability is not the point), tiny initial map so
/// growth is exercised as a side effect.
/// The value under `key` in table `t`, copied out of a read transaction, or nullopt.
inline std::optional<std::string> read_value(const environment& env, table t,
                                             std::string_view key) {
  std::optional<std::string> out;
  STRATA_REQUIRE_OK(env.read([&](read_txn& txn) -> status {
    auto v = txn.get(t, key);
    if (!v) return v.error();
    if (*v) out = std::string(**v);
    return {};
  }));
  return out;
}

/// Opens an environment; fails the test on error.
inline std::unique_ptr<environment> open_env(const env_options& o) {
  auto e = environment::open(o);
  STRATA_REQUIRE_VALUE(e);
  return std::move(*e);
}

/// Opens (or creates) a named table; fails the test on error.
inline table open_table(environment& env, std::string_view name) {
  auto t = env.open_table(name);
  STRATA_REQUIRE_VALUE(t);
  return *t;
}

/// One put in its own write transaction.
inline status put(environment& env, table t, std::string_view key, std::string_view value) {
  return env.write([&](write_txn& txn) {
    return txn.put(t, key, value);
  });
}

inline journal_options journal_opts(const std::string& path,
                                    std::size_t index_flush_events = 100'000) {
  journal_options o;
  o.env.path = path;
  o.env.sync = sync_mode::nosync;
  o.env.map_size_bytes = std::size_t{1} << 20;
  o.writer_node = "node-test";
  o.index_flush_events = index_flush_events;
  return o;
}

inline std::unique_ptr<journal> open_journal(const journal_options& o) {
  auto j = journal::open(o);
  STRATA_REQUIRE_VALUE(j);
  return std::move(*j);
}

inline event_data make_event(std::string type, std::string payload) {
  event_data e;
  e.type = std::move(type);
  e.payload = std::move(payload);
  return e;
}

/// A write of `payloads` (one event each, type "t") to `pid`, expecting head `expected`.
inline stream_write make_write(std::string pid, std::uint64_t expected,
                               const std::vector<std::string>& payloads) {
  stream_write w;
  w.persistence_id = std::move(pid);
  w.expected_seq = expected;
  for (auto& p : payloads)
    w.events.push_back(make_event("t", p));
  return w;
}

/// Appends and REQUIREs that the batch and every write in it succeeded.
inline std::vector<write_result> append_ok(journal& j, const std::vector<stream_write>& batch,
                                           const std::vector<snapshot_record>& snaps = {}) {
  auto r = j.append(batch, snaps);
  STRATA_REQUIRE_VALUE(r);
  REQUIRE(r->size() == batch.size());
  for (auto& w : *r) {
    INFO("write status: " << w.st.to_string());
    REQUIRE(w.st.ok());
  }
  return std::move(*r);
}

inline std::vector<event_record> load_all(const journal& j, std::string_view pid) {
  auto r = j.load_stream(pid);
  STRATA_REQUIRE_VALUE(r);
  return std::move(*r);
}

/// The whole global log from position 1.
inline std::vector<event_record> read_global_all(const journal& j, std::uint64_t from = 1) {
  std::vector<event_record> out;
  STRATA_REQUIRE_OK(j.read_global(from, ~std::size_t{0}, [&](const event_record& e) {
    out.push_back(e);
    return true;
  }));
  return out;
}

/// read_stream_view's events copied out (to compare with read_stream), or its error.
inline result<std::vector<event_record>> load_views(const journal& j, std::string_view pid,
                                                    std::uint64_t from = 1,
                                                    std::uint64_t to = journal::max_seq) {
  std::vector<event_record> out;
  auto st = j.read_stream_view(pid, from, to, [&](const event_view& v) {
    out.push_back(v.to_record());
    return true;
  });
  if (!st.ok()) return st;
  return out;
}

/// Payloads of a list of records.
inline std::vector<std::string> payloads_of(const std::vector<event_record>& v) {
  std::vector<std::string> out;
  for (auto& e : v)
    out.push_back(e.payload);
  return out;
}

/// Runs `fn` in a forked child process and returns its exit code (or 128 + signal).
/// Lets a test leave a journal open without close(), as a crashed process would.
inline int run_in_child(const std::function<int()>& fn) {
  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
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
  REQUIRE(::waitpid(pid, &ws, 0) == pid);
  if (WIFEXITED(ws)) return WEXITSTATUS(ws);
  return 128 + (WIFSIGNALED(ws) ? WTERMSIG(ws) : 0);
}

inline std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  REQUIRE(in.good());
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

inline void write_file(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  REQUIRE(out.good());
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  out.close();
  REQUIRE(out.good());
}

/// Random bytes of length n (binary, including NULs).
template <class Rng>
std::string random_bytes(Rng& rng, std::size_t n) {
  std::uniform_int_distribution<int> byte(0, 255);
  std::string s(n, '\0');
  for (auto& c : s)
    c = static_cast<char>(byte(rng));
  return s;
}

/// A fully populated event record (for codec tests).
inline event_record sample_record(std::string payload) {
  event_record e;
  e.persistence_id = "account-42";
  e.seq = 7;
  e.position = 1234567890123ull;
  e.timestamp_ns = 1'700'000'000'123'456'789ll;
  e.type = "deposited";
  e.schema_version = 3;
  e.payload = std::move(payload);
  e.tags = {"bank", "", "eu-west"};
  e.correlation_id = "corr-1";
  e.causation_id = "cause-9";
  e.writer_node = "node-a";
  e.shard_epoch = 17;
  e.checksum = crc32c(e.payload);
  return e;
}

} // namespace strata::persistence::test
