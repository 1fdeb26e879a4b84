// Tests of the data directory rules of strata::persistence::environment
// (persistence/src/environment.cpp, persistence/src/data_dir.cpp): one writer per
// directory (DIR/strata.lock), read-only opens, the directory identity (DIR/strata.id and
// the `strata.identity` table) and what happens when data.mdb is missing, empty or
// replaced.
#include "strata/persistence/environment.hpp"

#include "test_util.hpp"

#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <set>
#include <string>
#include <thread>

using namespace strata::persistence;
using strata::persistence::test::open_env;
using strata::persistence::test::open_table;
using strata::persistence::test::put;
using strata::persistence::test::read_file;
using strata::persistence::test::read_value;
using strata::persistence::test::run_in_child;
using strata::persistence::test::temp_dir;
using strata::persistence::test::write_file;

namespace {

env_options writer_opts(const std::string& path) {
  env_options o;
  o.path = path;
  o.sync = sync_mode::nosync;
  o.map_size_bytes = 64u << 10;
  return o;
}

env_options reader_opts(const std::string& path) {
  auto o = writer_opts(path);
  o.read_only = true;
  return o;
}

std::set<std::string> entries(const std::string& dir) {
  std::set<std::string> out;
  std::error_code ec;
  for (auto& e : std::filesystem::directory_iterator(dir, ec))
    out.insert(e.path().filename().string());
  return out;
}

std::string host_name() {
  char buf[256] = {};
  ::gethostname(buf, sizeof buf - 1);
  return buf;
}

/// The id line of DIR/strata.id.
std::string id_in_file(const std::string& dir) {
  auto text = read_file(dir + "/strata.id");
  auto at = text.find("\nid=");
  REQUIRE(at != std::string::npos);
  return text.substr(at + 4, 32);
}

/// A directory holding one environment with a value, closed again.
void make_env(const std::string& dir, std::string_view value = "v") {
  auto env = open_env(writer_opts(dir));
  auto t = open_table(*env, "kv");
  STRATA_REQUIRE_OK(put(*env, t, "k", value));
}

} // namespace

TEST_CASE("data dir: a second writer fails with locked, naming the holder") {
  temp_dir dir;
  auto first = open_env(writer_opts(dir.path()));

  SUBCASE("in the same process") {
    auto second = environment::open(writer_opts(dir.path()));
    REQUIRE(!second.has_value());
    const status err = second.error();
    const std::string& msg = err.message();
    INFO("error: " << second.error().to_string());
    CHECK(second.error().code() == errc::locked);
    CHECK(std::string(to_string(errc::locked)) == "locked");
    CHECK(static_cast<int>(errc::locked) == 13);
    CHECK(msg.find("'" + dir.path() + "'") != std::string::npos);
    CHECK(msg.find("pid " + std::to_string(::getpid())) != std::string::npos);
    CHECK(msg.find("on host " + host_name()) != std::string::npos);
    CHECK(msg.find(" since 20") != std::string::npos);
    CHECK(msg.find("lock-wait-ms") != std::string::npos);
  }
  SUBCASE("in another process, after waiting lock_wait_ms") {
    int code = run_in_child([&] {
      auto o = writer_opts(dir.path());
      o.lock_wait_ms = 200;
      auto t0 = std::chrono::steady_clock::now();
      auto e = environment::open(o);
      auto waited = std::chrono::steady_clock::now() - t0;
      if (e) return 0;
      if (waited < std::chrono::milliseconds(200)) return 1;
      return static_cast<int>(e.error().code());
    });
    CHECK(code == static_cast<int>(errc::locked));
  }
  // The first writer is not disturbed.
  auto t = open_table(*first, "kv");
  STRATA_CHECK_OK(put(*first, t, "k", "v"));
}

TEST_CASE("data dir: the lock dies with its process, a stale lock file never blocks") {
  temp_dir dir;
  make_env(dir.path());
  int ready[2], hold[2];
  REQUIRE(::pipe(ready) == 0);
  REQUIRE(::pipe(hold) == 0);
  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    auto e = environment::open(writer_opts(dir.path()));
    char c = e ? 'y' : 'n';
    [[maybe_unused]] auto n = ::write(ready[1], &c, 1);
    [[maybe_unused]] auto m = ::read(hold[0], &c, 1); // until SIGKILL
    ::_exit(0);
  }
  char c = 0;
  REQUIRE(::read(ready[0], &c, 1) == 1);
  REQUIRE(c == 'y');
  auto blocked = environment::open(writer_opts(dir.path()));
  REQUIRE(!blocked.has_value());
  CHECK(blocked.error().code() == errc::locked);
  CHECK(blocked.error().message().find("pid " + std::to_string(pid)) != std::string::npos);

  ::kill(pid, SIGKILL);
  int ws = 0;
  REQUIRE(::waitpid(pid, &ws, 0) == pid);
  for (int fd : {ready[0], ready[1], hold[0], hold[1]})
    ::close(fd);
  CHECK(std::filesystem::exists(dir.sub("strata.lock"))); // left behind, and harmless
  auto env = open_env(writer_opts(dir.path()));
  CHECK(read_value(*env, open_table(*env, "kv"), "k") == std::optional<std::string>("v"));
  CHECK(read_file(dir.sub("strata.lock")).find("pid=" + std::to_string(::getpid())) !=
        std::string::npos);
}

TEST_CASE("data dir: a waiting writer gets the lock when the holder closes") {
  temp_dir dir;
  auto first = open_env(writer_opts(dir.path()));
  result<std::unique_ptr<environment>> second = status{errc::internal, "not run"};
  std::thread waiter([&] {
    auto o = writer_opts(dir.path());
    o.lock_wait_ms = 30'000;
    second = environment::open(o);
  });
  first.reset();
  waiter.join();
  STRATA_REQUIRE_VALUE(second);
}

TEST_CASE("data dir: a read-only environment takes no lock, writes nothing and follows a writer") {
  temp_dir dir;
  make_env(dir.path(), "v1");
  std::filesystem::remove(dir.sub("strata.lock"));
  const auto before = entries(dir.path());
  {
    auto reader = open_env(reader_opts(dir.path()));
    auto t = open_table(*reader, "kv");
    CHECK(read_value(*reader, t, "k") == std::optional<std::string>("v1"));
    CHECK(entries(dir.path()) == before); // no strata.lock, no new file

    auto w = reader->write([](write_txn&) {
      return status{};
    });
    CHECK(w.code() == errc::invalid_argument);
    CHECK(w.message().find("opened read-only") != std::string::npos);
    auto missing = reader->open_table("never-created");
    REQUIRE(!missing.has_value());
    CHECK(missing.error().code() == errc::not_found);
    CHECK(missing.error().message().find("never-created") != std::string::npos);

    // A writer opens beside the reader (no lock conflict) and the reader sees its commits.
    auto writer = open_env(writer_opts(dir.path()));
    STRATA_REQUIRE_OK(put(*writer, open_table(*writer, "kv"), "k", "v2"));
    CHECK(read_value(*reader, t, "k") == std::optional<std::string>("v2"));
    auto two = open_env(reader_opts(dir.path())); // several readers at once
    CHECK(read_value(*two, open_table(*two, "kv"), "k") == std::optional<std::string>("v2"));
  }
  CHECK(std::filesystem::file_size(dir.sub("data.mdb")) > 0);
}

TEST_CASE("data dir: a read-only open of a directory without a journal is not_found") {
  temp_dir dir;
  SUBCASE("missing directory") {
    auto e = environment::open(reader_opts(dir.sub("nope")));
    REQUIRE(!e.has_value());
    CHECK(e.error().code() == errc::not_found);
    CHECK(e.error().message().find(dir.sub("nope")) != std::string::npos);
    CHECK(!std::filesystem::exists(dir.sub("nope")));
  }
  SUBCASE("empty directory") {
    auto e = environment::open(reader_opts(dir.path()));
    REQUIRE(!e.has_value());
    CHECK(e.error().code() == errc::not_found);
    CHECK(entries(dir.path()).empty());
  }
}

TEST_CASE("data dir: a read-only environment keeps working while a writer process grows the map") {
  temp_dir dir;
  make_env(dir.path(), "start");
  auto reader = open_env(reader_opts(dir.path()));
  auto t = open_table(*reader, "kv");
  const std::size_t map_before = reader->map_size_bytes();
  const int count = 600;
  const std::string big(3000, 'x');
  int ready[2];
  REQUIRE(::pipe(ready) == 0);
  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    auto e = environment::open(writer_opts(dir.path()));
    if (!e) ::_exit(2);
    auto wt = (*e)->open_table("kv");
    if (!wt) ::_exit(3);
    for (int i = 0; i < count; ++i) {
      auto st = (*e)->write([&](write_txn& txn) {
        return txn.put(*wt, "big" + std::to_string(i), big + std::to_string(i));
      });
      if (!st.ok()) ::_exit(4);
    }
    ::_exit(0);
  }
  ::close(ready[1]);
  // Read in a loop while the child writes: every snapshot is a prefix of its writes.
  int ws = 0, seen = 0;
  for (;;) {
    pid_t done = ::waitpid(pid, &ws, WNOHANG);
    int n = 0;
    STRATA_REQUIRE_OK(reader->read([&](read_txn& txn) {
      return txn.scan(t, "big", [&](std::string_view k, std::string_view v) {
        if (k.substr(0, 3) != "big") return false;
        CHECK(v == big + std::string(k.substr(3)));
        ++n;
        return true;
      });
    }));
    CHECK(n >= seen);
    seen = n;
    if (done == pid) break;
  }
  ::close(ready[0]);
  REQUIRE(WIFEXITED(ws));
  REQUIRE(WEXITSTATUS(ws) == 0);
  int n = 0;
  STRATA_REQUIRE_OK(reader->read([&](read_txn& txn) {
    return txn.scan(t, "big", [&](std::string_view k, std::string_view) {
      n += k.substr(0, 3) == "big";
      return true;
    });
  }));
  CHECK(n == count);
  CHECK(reader->map_size_bytes() > map_before); // the reader adopted the grown map
  CHECK(read_value(*reader, t, "k") == std::optional<std::string>("start"));
}

TEST_CASE("data dir: creation writes an identity that later opens require") {
  temp_dir dir;
  make_env(dir.sub("env"));
  const auto id = id_in_file(dir.sub("env"));
  CHECK(id.size() == 32);
  CHECK(read_file(dir.sub("env/strata.id")).find("format=1") != std::string::npos);
  {
    auto env = open_env(reader_opts(dir.sub("env")));
    auto t = open_table(*env, "strata.identity");
    CHECK(read_value(*env, t, "id") == std::optional<std::string>(id));
  }
  // A second directory gets another id; reopening keeps the first.
  make_env(dir.sub("other"));
  CHECK(id_in_file(dir.sub("other")) != id);
  make_env(dir.sub("env"));
  CHECK(id_in_file(dir.sub("env")) == id);
}

TEST_CASE("data dir: data.mdb missing, empty or from another journal is corrupt, never new") {
  temp_dir dir;
  make_env(dir.path());
  std::string expect;
  SUBCASE("empty data.mdb") {
    std::filesystem::resize_file(dir.sub("data.mdb"), 0);
    expect = "is empty";
  }
  SUBCASE("missing data.mdb") {
    std::filesystem::remove(dir.sub("data.mdb"));
    expect = "is missing";
  }
  SUBCASE("data.mdb of another journal") {
    temp_dir other;
    make_env(other.path());
    std::filesystem::copy_file(other.sub("data.mdb"), dir.sub("data.mdb"),
                               std::filesystem::copy_options::overwrite_existing);
    expect = "belongs to journal";
  }
  for (bool ro : {false, true}) {
    auto e = environment::open(ro ? reader_opts(dir.path()) : writer_opts(dir.path()));
    REQUIRE(!e.has_value());
    INFO("read_only " << ro << ", error: " << e.error().to_string());
    CHECK(e.error().code() == errc::corrupt);
    CHECK(e.error().message().find(dir.sub("data.mdb")) != std::string::npos);
    CHECK(e.error().message().find(expect) != std::string::npos);
    CHECK(e.error().message().find("backup") != std::string::npos);
  }
  // Nothing was initialised over it.
  if (expect != "belongs to journal")
    CHECK((!std::filesystem::exists(dir.sub("data.mdb")) ||
           std::filesystem::file_size(dir.sub("data.mdb")) == 0));
}

TEST_CASE("data dir: a journal opened on an empty data.mdb is corrupt (finding 5)") {
  temp_dir dir;
  {
    auto j =
      strata::persistence::test::open_journal(strata::persistence::test::journal_opts(dir.path()));
    strata::persistence::test::append_ok(
      *j, {strata::persistence::test::make_write("acct-1", 0, {"a", "b"})});
  }
  std::filesystem::resize_file(dir.sub("data.mdb"), 0);
  auto j = journal::open(strata::persistence::test::journal_opts(dir.path()));
  REQUIRE(!j.has_value());
  CHECK(j.error().code() == errc::corrupt);
  CHECK(j.error().message().find("data.mdb") != std::string::npos);
}

TEST_CASE(
  "data dir: only an empty directory is initialised; older strata directories are adopted") {
  temp_dir dir;
  SUBCASE("a directory with other files is refused and left alone") {
    write_file(dir.sub("notes.txt"), "mine");
    for (bool ro : {false, true}) {
      auto e = environment::open(ro ? reader_opts(dir.path()) : writer_opts(dir.path()));
      REQUIRE(!e.has_value());
      INFO("error: " << e.error().to_string());
      CHECK(e.error().code() == (ro ? errc::not_found : errc::incompatible));
      CHECK(e.error().message().find(dir.path()) != std::string::npos);
    }
    CHECK(!std::filesystem::exists(dir.sub("data.mdb")));
    CHECK(!std::filesystem::exists(dir.sub("strata.id")));
  }
  SUBCASE("the identity file lost after creation is written again from LMDB") {
    make_env(dir.path());
    const auto id = id_in_file(dir.path());
    std::filesystem::remove(dir.sub("strata.id"));
    make_env(dir.path());
    CHECK(id_in_file(dir.path()) == id);
  }
  // Directories written before identities existed: simulated by removing the identity.
  auto strip_identity = [&](bool journal_marker) {
    auto env = open_env(writer_opts(dir.path()));
    auto ident = open_table(*env, "strata.identity");
    STRATA_REQUIRE_OK(env->write([&](write_txn& txn) -> status {
      for (auto key : {"id", "format", "created"})
        if (auto s = txn.del(ident, key); !s.ok()) return s;
      return {};
    }));
    if (journal_marker) STRATA_REQUIRE_OK(put(*env, open_table(*env, "meta"), "format", "x"));
    env.reset();
    std::filesystem::remove(dir.sub("strata.id"));
  };
  SUBCASE("a journal without identity is adopted by a writer") {
    make_env(dir.path());
    const auto old_id = id_in_file(dir.path());
    strip_identity(true);
    auto ro = open_env(reader_opts(dir.path())); // readable, but not changed
    CHECK(!std::filesystem::exists(dir.sub("strata.id")));
    ro.reset();
    make_env(dir.path(), "again");
    CHECK(id_in_file(dir.path()) != old_id);
    auto env = open_env(reader_opts(dir.path()));
    CHECK(read_value(*env, open_table(*env, "strata.identity"), "id") ==
          std::optional<std::string>(id_in_file(dir.path())));
  }
  SUBCASE("an LMDB environment that is not strata's is refused") {
    make_env(dir.path());
    strip_identity(false);
    for (bool ro : {false, true}) {
      auto e = environment::open(ro ? reader_opts(dir.path()) : writer_opts(dir.path()));
      REQUIRE(!e.has_value());
      INFO("error: " << e.error().to_string());
      CHECK(e.error().code() == errc::incompatible);
      CHECK(e.error().message().find("not a strata data directory") != std::string::npos);
    }
    CHECK(!std::filesystem::exists(dir.sub("strata.id")));
  }
}
