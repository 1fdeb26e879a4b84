// `strata journal stats|dump|verify|repair` as processes: the inspection commands run
// while a writer process appends and leave the journal intact; verify lists every
// problem and exits 1; repair fixes damaged derived data; dump output is one line per
// record whatever the ids hold (issue 7, findings 2, 3 and 7).
#include "strata/persistence/journal.hpp"

#include "test_util.hpp"

#include <sys/wait.h>

#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

using namespace strata::persistence;
using namespace strata::persistence::test;

namespace {

struct run_result {
  int code = -1;
  std::string out;
};

/// Runs `strata ARGS` (stderr to stdout) and returns its exit code and output.
run_result run_strata(const std::string& args) {
  run_result r;
  std::string cmd = std::string(STRATA_CLI_PATH) + " " + args + " 2>&1";
  FILE* p = ::popen(cmd.c_str(), "r");
  REQUIRE(p != nullptr);
  char buf[4096];
  std::size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0)
    r.out.append(buf, n);
  int ws = ::pclose(p);
  r.code = WIFEXITED(ws) ? WEXITSTATUS(ws) : 128 + WTERMSIG(ws);
  return r;
}

std::size_t count_lines(const std::string& s, const std::string& prefix = {}) {
  std::size_t n = 0, at = 0;
  while (at < s.size()) {
    auto end = s.find('\n', at);
    if (end == std::string::npos) end = s.size();
    if (s.compare(at, prefix.size(), prefix) == 0) ++n;
    at = end + 1;
  }
  return n;
}

/// Seqs printed by `strata journal dump --stream` (column 3), in order.
std::vector<std::uint64_t> dumped_seqs(const std::string& out) {
  std::vector<std::uint64_t> seqs;
  std::size_t at = 0;
  while (at < out.size()) {
    auto end = out.find('\n', at);
    auto line = out.substr(at, end - at);
    at = end == std::string::npos ? out.size() : end + 1;
    if (line.empty() || line[0] == '#') continue;
    auto t1 = line.find('\t'), t2 = line.find('\t', t1 + 1), t3 = line.find('\t', t2 + 1);
    REQUIRE(t3 != std::string::npos);
    seqs.push_back(std::stoull(line.substr(t2 + 1, t3 - t2 - 1)));
  }
  return seqs;
}

int append_rounds(const std::string& dir, int rounds) {
  auto j = journal::open(journal_opts(dir, 200));
  if (!j) return 10;
  for (int r = 0; r < rounds; ++r) {
    std::vector<stream_write> batch;
    for (int s = 0; s < 4; ++s)
      batch.push_back(make_write("acct-" + std::to_string(s), stream_write::any_seq, {"x"}));
    auto res = (*j)->append(batch);
    if (!res) return 11;
  }
  return (*j)->close().ok() ? 0 : 12;
}

} // namespace

TEST_CASE("cli: stats, dump and verify run while a writer process appends; the journal "
          "stays intact") {
  temp_dir dir;
  REQUIRE(append_rounds(dir.path(), 1) == 0);
  pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) ::_exit(append_rounds(dir.path(), 3000));
  int ws = 0, runs = 0;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  for (;;) {
    bool done = ::waitpid(child, &ws, WNOHANG) == child;
    for (auto sub : {"stats", "verify", "dump --stream acct-1"}) {
      auto r = run_strata(std::string("journal ") + sub + " --data " + dir.path());
      INFO(sub << ": " << r.out);
      CHECK(r.code == 0);
      if (std::string(sub).rfind("dump", 0) == 0) {
        auto seqs = dumped_seqs(r.out);
        for (std::size_t i = 0; i < seqs.size(); ++i)
          REQUIRE(seqs[i] == i + 1);
      }
    }
    ++runs;
    if (done) break;
    REQUIRE(std::chrono::steady_clock::now() < deadline);
  }
  REQUIRE(WIFEXITED(ws));
  REQUIRE(WEXITSTATUS(ws) == 0);
  CHECK(runs >= 2);
  auto v = run_strata("journal verify --data " + dir.path());
  INFO(v.out);
  CHECK(v.code == 0);
  auto d = dumped_seqs(run_strata("journal dump --stream acct-2 --data " + dir.path()).out);
  CHECK(d.size() == 3001);
  for (std::size_t i = 0; i < d.size(); ++i)
    REQUIRE(d[i] == i + 1);
}

TEST_CASE("cli: verify prints every problem and exits 1; repair rebuilds and verify passes") {
  temp_dir dir;
  REQUIRE(append_rounds(dir.path(), 300) == 0);
  {
    env_options o;
    o.path = dir.path();
    auto env = environment::open(o);
    STRATA_REQUIRE_VALUE(env);
    auto index = (*env)->open_table("index");
    auto names = (*env)->open_table("stream_names");
    STRATA_REQUIRE_VALUE(index);
    STRATA_REQUIRE_VALUE(names);
    STRATA_REQUIRE_OK((*env)->write([&](write_txn& txn) -> status {
      std::vector<std::string> keys;
      auto st = txn.scan(*index, {}, [&](std::string_view k, std::string_view) {
        keys.emplace_back(k);
        return true;
      });
      if (!st.ok()) return st;
      REQUIRE(keys.size() > 2);
      if (st = txn.del(*index, keys[1]); !st.ok()) return st;
      return txn.del(*names, std::string("\0\0\0\0\0\0\0\x04", 8));
    }));
  }
  auto v = run_strata("journal verify --data " + dir.path());
  INFO(v.out);
  CHECK(v.code == 1);
  CHECK(count_lines(v.out, "problem: table ") >= 2);
  CHECK(v.out.find("table index") != std::string::npos);
  CHECK(v.out.find("table stream_names") != std::string::npos);
  auto r = run_strata("journal repair --data " + dir.path());
  INFO(r.out);
  CHECK(r.code == 0);
  CHECK(r.out.find("after: 0 problem(s)") != std::string::npos);
  auto again = run_strata("journal verify --data " + dir.path());
  INFO(again.out);
  CHECK(again.code == 0);
  CHECK(dumped_seqs(run_strata("journal dump --stream acct-3 --data " + dir.path()).out).size() ==
        300);
}

TEST_CASE("cli: dump prints one line per event whatever ids and types hold") {
  temp_dir dir;
  {
    auto j = open_journal(journal_opts(dir.path()));
    stream_write w = make_write("evil\nseq=99\tforged", 0, {"p"});
    w.events[0].type = "t\r\nx\\y";
    append_ok(*j, {w, make_write("plain", 0, {"q"})});
    STRATA_REQUIRE_OK(j->close());
  }
  auto r = run_strata("journal dump --data " + dir.path());
  INFO(r.out);
  CHECK(r.code == 0);
  CHECK(count_lines(r.out) == 3); // header + 2 events
  CHECK(r.out.find("evil\\x0Aseq=99\\x09forged") != std::string::npos);
  CHECK(r.out.find("t\\x0D\\x0Ax\\x5Cy") != std::string::npos);
}
