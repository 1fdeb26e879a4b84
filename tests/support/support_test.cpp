// tests tests/support (strata::test_support): the helpers every test folder uses.
#include "strata/test/files.hpp"
#include "strata/test/poll.hpp"
#include "strata/test/process.hpp"
#include "strata/test/seed.hpp"
#include "strata/test/temp_dir.hpp"

#include <doctest/doctest.h>

#include <signal.h>
#include <stdlib.h>

#include <chrono>
#include <filesystem>
#include <stdexcept>
#include <string>

namespace st = strata::test;

TEST_CASE("temp_dir: a fresh directory per object, removed at scope exit unless kept") {
  std::string gone, kept;
  {
    st::temp_dir a{"strata-support"};
    st::temp_dir b{"strata-support"};
    CHECK(a.path() != b.path());
    CHECK(std::filesystem::is_directory(a.path()));
    CHECK(a.path().find("strata-support-") != std::string::npos);
    st::write_file(a.sub("f"), "x");
    gone = a.path();
    b.keep();
    kept = b.path();
  }
  CHECK_FALSE(std::filesystem::exists(gone));
  CHECK(std::filesystem::is_directory(kept));
  std::filesystem::remove_all(kept);
}

TEST_CASE("files: bytes round-trip; a missing file is an error for read_file, empty for slurp") {
  st::temp_dir dir;
  const std::string bytes("a\0b\nc", 5);
  st::write_file(dir.sub("f"), bytes);
  CHECK(st::read_file(dir.sub("f")) == bytes);
  CHECK(st::slurp(dir.sub("f")) == bytes);
  CHECK(st::slurp(dir.sub("missing")).empty());
  CHECK_THROWS_AS(st::read_file(dir.sub("missing")), std::runtime_error);
  CHECK_THROWS_AS(st::write_file(dir.sub("no/such/dir"), "x"), std::runtime_error);
}

TEST_CASE("seed: STRATA_SEED when set") {
  const char* before = std::getenv("STRATA_SEED");
  const std::string saved = before ? before : "";
  ::setenv("STRATA_SEED", "12345", 1);
  CHECK(st::test_seed() == 12345u);
  if (before)
    ::setenv("STRATA_SEED", saved.c_str(), 1);
  else
    ::unsetenv("STRATA_SEED");
}

TEST_CASE("eventually: true as soon as the condition holds, false after the deadline") {
  int calls = 0;
  CHECK(st::eventually([&] {
    return ++calls >= 3;
  }));
  CHECK(calls == 3);
  auto t0 = std::chrono::steady_clock::now();
  CHECK_FALSE(st::eventually(
    [] {
      return false;
    },
    30));
  CHECK(std::chrono::steady_clock::now() - t0 >= std::chrono::milliseconds(30));
}

TEST_CASE("process: run captures output and exit code; a background process can be signalled") {
  st::temp_dir dir;
  auto r = st::run(dir.path(), "/bin/sh", {"-c", "echo out; echo err >&2; exit 3"});
  CHECK(r.exit_code == 3);
  CHECK(r.out == "out\n");
  CHECK(r.err == "err\n");
  CHECK(st::run(dir.path(), dir.sub("no-such-program"), {}).exit_code == 127);

  st::process p{"/bin/sh", {"-c", "echo up; exec sleep 60"}, dir.sub("p.out"), dir.sub("p.err")};
  REQUIRE(st::eventually([&] {
    return p.out() == "up\n";
  }));
  CHECK_FALSE(p.exited());
  CHECK(p.pid() > 0);
  CHECK(p.kill_and_wait(SIGTERM));
  CHECK(p.exit_code() == -1); // ended by the signal
  CHECK(p.pid() == 0);
  CHECK_FALSE(p.kill9()); // already reaped

  st::process q{"/bin/sh", {"-c", "exit 5"}, dir.sub("q.out"), dir.sub("q.err")};
  REQUIRE(q.wait_exit(std::chrono::seconds(20)));
  CHECK(q.exit_code() == 5);
}

TEST_CASE("run_in_child: the child's code, 128 + a signal, 98 for an exception") {
  CHECK(st::run_in_child([] {
          return 7;
        }) == 7);
  CHECK(st::run_in_child([]() -> int {
          ::raise(SIGKILL);
          return 0;
        }) == 128 + SIGKILL);
  CHECK(st::run_in_child([]() -> int {
          throw std::runtime_error("x");
        }) == 98);
}
