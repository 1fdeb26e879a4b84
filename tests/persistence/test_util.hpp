// Helpers shared by the persistence tests: journal set-up, batch builders, and
// assertions that print a status's message on failure. Temporary directories, seeds,
// files and child processes come from tests/support (strata/test/*.hpp).
#pragma once

#include "strata/persistence/codec.hpp"
#include "strata/persistence/environment.hpp"
#include "strata/persistence/event.hpp"
#include "strata/persistence/journal.hpp"
#include "strata/persistence/status.hpp"
#include "strata/test/files.hpp"
#include "strata/test/poll.hpp"
#include "strata/test/process.hpp"
#include "strata/test/seed.hpp"
#include "strata/test/temp_dir.hpp"

#include <doctest/doctest.h>
#include <lmdb.h>

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

namespace strata::persistence::test {

// The helpers of every test folder (tests/support, strata::test_support).
using strata::test::eventually;
using strata::test::read_file;
using strata::test::run_in_child;
using strata::test::temp_dir;
using strata::test::test_seed;
using strata::test::write_file;

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

/// Journal options for tests: nosync (durability is not the point), tiny initial map so
/// growth is exercised as a side effect.
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

/// Random bytes of length n (binary, including NULs).
template <class Rng>
std::string random_bytes(Rng& rng, std::size_t n) {
  std::uniform_int_distribution<int> byte(0, 255);
  std::string s(n, '\0');
  for (auto& c : s)
    c = static_cast<char>(byte(rng));
  return s;
}

/// Checks that verify_all finds nothing wrong with `j` (each problem in the message).
inline void check_clean(const journal& j) {
  auto rep = j.verify_all();
  STRATA_REQUIRE_VALUE(rep);
  for (auto& p : rep->problems)
    INFO(p.to_string());
  CHECK(rep->problem_count == 0);
  if (rep->problem_count != 0) FAIL_CHECK(rep->problems.front().to_string());
}

/// The id of the last committed write transaction of `j` (LMDB's, as a read sees it):
/// unchanged across a call that must not write.
inline std::uint64_t last_txn(journal& j) {
  std::uint64_t id = 0;
  STRATA_REQUIRE_OK(j.env().read([&](read_txn& txn) {
    id = mdb_txn_id(txn.native());
    return status{};
  }));
  return id;
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
