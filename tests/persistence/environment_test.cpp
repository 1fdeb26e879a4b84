// Tests of strata::persistence::environment (persistence/src/environment.cpp): open and
// reopen, tables, commit/abort of write transactions, read snapshots, map growth and the
// map_full limit, clear errors for unusable paths.
#include "strata/persistence/environment.hpp"

#include "test_util.hpp"

#include <unistd.h>

#include <string>
#include <thread>

using namespace strata::persistence;
using strata::persistence::test::open_env;
using strata::persistence::test::open_table;
using strata::persistence::test::put;
using strata::persistence::test::read_value;
using strata::persistence::test::temp_dir;

namespace {

env_options opts_for(const std::string& path) {
  env_options o;
  o.path = path;
  o.sync = sync_mode::nosync;
  return o;
}

std::string key_of(int i) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "k%08d", i);
  return buf;
}

std::string value_of(int i, std::size_t size) {
  std::string v(size, static_cast<char>('a' + i % 26));
  auto tag = std::to_string(i);
  v.replace(0, std::min(tag.size(), size), tag.substr(0, size));
  return v;
}

} // namespace

TEST_CASE("environment: data survives close and reopen") {
  temp_dir dir;
  {
    auto env = open_env(opts_for(dir.path()));
    auto t = open_table(*env, "kv");
    STRATA_REQUIRE_OK(put(*env, t, "alpha", "1"));
    STRATA_REQUIRE_OK(put(*env, t, std::string("bin\0key", 7), std::string("v\0\xff", 3)));
  }
  auto env = open_env(opts_for(dir.path()));
  auto t = open_table(*env, "kv");
  CHECK(read_value(*env, t, "alpha") == std::optional<std::string>("1"));
  CHECK(read_value(*env, t, std::string("bin\0key", 7)) ==
        std::optional<std::string>({"v\0\xff", 3}));
  CHECK(read_value(*env, t, "missing") == std::nullopt);
  CHECK(env->options().path == dir.path());
}

TEST_CASE("environment: named tables are independent, reopened by name, scanned in key order") {
  temp_dir dir;
  auto env = open_env(opts_for(dir.path()));
  auto a = open_table(*env, "a");
  auto b = open_table(*env, "b");
  CHECK(a.dbi != b.dbi);
  CHECK(open_table(*env, "a").dbi == a.dbi);
  STRATA_REQUIRE_OK(put(*env, a, "k", "from-a"));
  STRATA_REQUIRE_OK(put(*env, b, "k", "from-b"));
  CHECK(read_value(*env, a, "k") == std::optional<std::string>("from-a"));
  CHECK(read_value(*env, b, "k") == std::optional<std::string>("from-b"));

  // Keys written out of order come back sorted; scan starts at `from` and stops on false.
  for (const char* k : {"m", "c", "x", "a"})
    STRATA_REQUIRE_OK(put(*env, a, k, std::string("v") + k));
  // Opened before the read: a table created after a read transaction began is not
  // visible to that transaction (LMDB).
  const table empty = open_table(*env, "empty");
  std::vector<std::string> seen;
  STRATA_REQUIRE_OK(env->read([&](read_txn& txn) {
    return txn.scan(a, "c", [&](std::string_view k, std::string_view v) {
      seen.emplace_back(k);
      CHECK(v == (k == "k" ? std::string("from-a") : "v" + std::string(k)));
      return k != "m";
    });
  }));
  CHECK(seen == std::vector<std::string>{"c", "k", "m"});
  STRATA_REQUIRE_OK(env->read([&](read_txn& txn) -> status {
    auto last = txn.last(a);
    if (!last) return last.error();
    REQUIRE(last->has_value());
    CHECK((*last)->first == "x");
    CHECK((*last)->second == "vx");
    auto none = txn.last(empty);
    if (!none) return none.error();
    CHECK(!none->has_value());
    return {};
  }));

  // Deleting works, deleting a missing key is ok.
  STRATA_REQUIRE_OK(env->write([&](write_txn& txn) -> status {
    if (auto s = txn.del(a, "m"); !s.ok()) return s;
    return txn.del(a, "never-there");
  }));
  CHECK(read_value(*env, a, "m") == std::nullopt);
}

TEST_CASE("environment: a write commits when fn returns ok and stores nothing otherwise") {
  temp_dir dir;
  auto env = open_env(opts_for(dir.path()));
  auto t = open_table(*env, "kv");
  STRATA_REQUIRE_OK(put(*env, t, "keep", "old"));

  auto st = env->write([&](write_txn& txn) -> status {
    REQUIRE(txn.put(t, "keep", "new").ok());
    REQUIRE(txn.put(t, "other", "x").ok());
    // Inside the transaction the writes are visible...
    auto v = txn.get(t, "other");
    REQUIRE(v.has_value());
    CHECK(*v == std::optional<std::string_view>("x"));
    // ...but the function fails, so none of them may be committed.
    return {errc::invalid_argument, "the caller changed its mind"};
  });
  CHECK(st.code() == errc::invalid_argument);
  CHECK(st.message() == "the caller changed its mind");
  CHECK(read_value(*env, t, "keep") == std::optional<std::string>("old"));
  CHECK(read_value(*env, t, "other") == std::nullopt);

  // The environment remains usable after an aborted write.
  STRATA_REQUIRE_OK(put(*env, t, "other", "y"));
  CHECK(read_value(*env, t, "other") == std::optional<std::string>("y"));
}

TEST_CASE("environment: a read transaction sees a consistent snapshot") {
  temp_dir dir;
  auto env = open_env(opts_for(dir.path()));
  auto t = open_table(*env, "kv");
  STRATA_REQUIRE_OK(put(*env, t, "k", "v1"));

  STRATA_REQUIRE_OK(env->read([&](read_txn& txn) -> status {
    auto before = txn.get(t, "k");
    REQUIRE(before.has_value());
    CHECK(*before == std::optional<std::string_view>("v1"));
    // Another thread commits while this snapshot is open.
    status writer_st;
    std::thread w([&] {
      writer_st = env->write([&](write_txn& wt) -> status {
        if (auto s = wt.put(t, "k", "v2"); !s.ok()) return s;
        return wt.put(t, "new", "n");
      });
    });
    w.join();
    STRATA_REQUIRE_OK(writer_st);
    auto after = txn.get(t, "k");
    REQUIRE(after.has_value());
    CHECK(*after == std::optional<std::string_view>("v1"));
    auto fresh = txn.get(t, "new");
    REQUIRE(fresh.has_value());
    CHECK(!fresh->has_value());
    return {};
  }));
  // A new read sees the committed write.
  CHECK(read_value(*env, t, "k") == std::optional<std::string>("v2"));
  CHECK(read_value(*env, t, "new") == std::optional<std::string>("n"));
}

TEST_CASE("environment: the map grows from a tiny initial size and keeps the data") {
  temp_dir dir;
  auto o = opts_for(dir.path());
  o.map_size_bytes = 64u << 10;
  auto env = open_env(o);
  const std::size_t initial = env->map_size_bytes();
  CHECK(initial <= (256u << 10)); // a tiny map really was requested
  auto t = open_table(*env, "big");

  // Many small transactions, then one large transaction that alone exceeds the map
  // several times over (fn is re-run after each growth).
  const int small_txns = 64, per_small = 16, large_count = 512;
  const std::size_t value_size = 4096 + 100; // overflow pages
  int next = 0;
  for (int i = 0; i < small_txns; ++i) {
    STRATA_REQUIRE_OK(env->write([&](write_txn& txn) -> status {
      for (int k = 0; k < per_small; ++k)
        if (auto s = txn.put(t, key_of(next + k), value_of(next + k, value_size)); !s.ok())
          return s;
      return {};
    }));
    next += per_small;
  }
  int runs = 0;
  STRATA_REQUIRE_OK(env->write([&](write_txn& txn) -> status {
    ++runs;
    for (int k = 0; k < large_count; ++k)
      if (auto s = txn.put(t, key_of(next + k), value_of(next + k, value_size)); !s.ok()) return s;
    return {};
  }));
  next += large_count;
  MESSAGE("large write ran " << runs << " time(s); map " << initial << " -> "
                             << env->map_size_bytes() << " bytes");
  const std::size_t written = std::size_t(next) * value_size;
  CHECK(written > (6u << 20));
  CHECK(env->map_size_bytes() > initial);
  CHECK(env->map_size_bytes() >= written);

  auto check_all = [&](const environment& e) {
    int count = 0;
    STRATA_REQUIRE_OK(e.read([&](read_txn& txn) {
      return txn.scan(t, "", [&](std::string_view k, std::string_view v) {
        CHECK(k == key_of(count));
        CHECK(v == value_of(count, value_size));
        ++count;
        return true;
      });
    }));
    CHECK(count == next);
  };
  check_all(*env);

  // Reopening with the same tiny initial size still reads everything.
  env.reset();
  auto again = open_env(o);
  t = open_table(*again, "big");
  CHECK(again->map_size_bytes() >= written);
  check_all(*again);
}

TEST_CASE("environment: map_full at map_size_max_bytes, nothing of that write stored") {
  temp_dir dir;
  auto o = opts_for(dir.path());
  o.map_size_bytes = 64u << 10;
  o.map_size_max_bytes = 512u << 10;
  auto env = open_env(o);
  auto t = open_table(*env, "kv");
  STRATA_REQUIRE_OK(put(*env, t, "first", "survives"));

  auto st = env->write([&](write_txn& txn) -> status {
    for (int k = 0; k < 400; ++k) // ~1.6 MiB > the 512 KiB maximum
      if (auto s = txn.put(t, key_of(k), value_of(k, 4000)); !s.ok()) return s;
    return {};
  });
  INFO("status: " << st.to_string());
  CHECK(st.code() == errc::map_full);
  // The message says what to change.
  CHECK(st.message().find("map_size_max") != std::string::npos);
  CHECK(env->map_size_bytes() <= o.map_size_max_bytes);

  CHECK(read_value(*env, t, key_of(0)) == std::nullopt);
  CHECK(read_value(*env, t, "first") == std::optional<std::string>("survives"));
  // Small writes still fit afterwards.
  STRATA_REQUIRE_OK(put(*env, t, "after", "ok"));
  CHECK(read_value(*env, t, "after") == std::optional<std::string>("ok"));
}

TEST_CASE("environment: unusable paths give clear errors") {
  temp_dir dir;
  SUBCASE("empty path") {
    auto e = environment::open(opts_for(""));
    REQUIRE(!e.has_value());
    CHECK(e.error().code() == errc::invalid_argument);
    CHECK(!e.error().message().empty());
  }
  SUBCASE("path is a regular file") {
    auto file = dir.sub("plain-file");
    strata::persistence::test::write_file(file, "not a directory");
    auto e = environment::open(opts_for(file));
    REQUIRE(!e.has_value());
    INFO("error: " << e.error().to_string());
    CHECK((e.error().code() == errc::io_error || e.error().code() == errc::invalid_argument));
    CHECK(e.error().message().find(file) != std::string::npos);
  }
  SUBCASE("path below a regular file") {
    auto file = dir.sub("plain-file");
    strata::persistence::test::write_file(file, "not a directory");
    auto path = file + "/data";
    auto e = environment::open(opts_for(path));
    REQUIRE(!e.has_value());
    INFO("error: " << e.error().to_string());
    CHECK((e.error().code() == errc::io_error || e.error().code() == errc::invalid_argument));
    CHECK(e.error().message().find(path) != std::string::npos);
  }
  SUBCASE("directory that is not writable") {
    if (::geteuid() == 0) {
      MESSAGE("running as root: permissions are not enforced, case skipped");
      return;
    }
    auto ro = dir.sub("read-only");
    std::filesystem::create_directory(ro);
    std::filesystem::permissions(ro, std::filesystem::perms::owner_read |
                                       std::filesystem::perms::owner_exec);
    auto e = environment::open(opts_for(ro));
    std::filesystem::permissions(ro, std::filesystem::perms::owner_all);
    REQUIRE(!e.has_value());
    INFO("error: " << e.error().to_string());
    CHECK(e.error().code() == errc::io_error);
    CHECK(e.error().message().find(ro) != std::string::npos);
  }
  SUBCASE("maximum below the initial map size") {
    auto o = opts_for(dir.sub("env"));
    o.map_size_bytes = 1u << 20;
    o.map_size_max_bytes = 1u << 16;
    auto e = environment::open(o);
    REQUIRE(!e.has_value());
    CHECK(e.error().code() == errc::invalid_argument);
  }
}

TEST_CASE("environment: sync modes parse and print") {
  CHECK(parse_sync_mode("sync") == sync_mode::sync);
  CHECK(parse_sync_mode("nosync") == sync_mode::nosync);
  CHECK(parse_sync_mode("SYNC") == std::nullopt);
  CHECK(parse_sync_mode("") == std::nullopt);
  CHECK(std::string(to_string(sync_mode::sync)) == "sync");
  CHECK(std::string(to_string(sync_mode::nosync)) == "nosync");
  CHECK(env_options{}.sync == sync_mode::sync); // durable by default
}

TEST_CASE("environment: sync() flushes a nosync environment") {
  temp_dir dir;
  auto env = open_env(opts_for(dir.path()));
  auto t = open_table(*env, "kv");
  STRATA_REQUIRE_OK(put(*env, t, "k", "v"));
  STRATA_CHECK_OK(env->sync());
}
