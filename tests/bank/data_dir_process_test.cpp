// The data directory's safety as a user sees it through strata-bank, in real processes
// (issue 7): one writer at a time (others wait --lock-wait-ms, then fail with `locked`
// naming the holder), read-only commands beside a running load, an emptied data.mdb
// is `corrupt` rather than a new journal, and read-only commands change no byte.
#include "bank_process.hpp"

#include <doctest/doctest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

using namespace bank::test;

namespace {

using clock_type = std::chrono::steady_clock;

struct fixture {
  temp_dir dir{"strata-bank-dd"};
  std::string data = dir.sub("data");
  run_result bank(std::vector<std::string> args, const std::string& scratch = {}) {
    args.insert(args.begin(), {"--data", data, "--durability", "nosync"});
    return run(scratch.empty() ? dir.path() : scratch, args);
  }
  run_result verify() {
    const char* tool = std::getenv("STRATA_CLI_BINARY"); // as STRATA_BANK_BINARY
    return run_exe(dir.path(), tool && *tool ? tool : STRATA_CLI_PATH,
                   {"journal", "verify", "--data", data});
  }
  /// `history ID`, checked to be seqs 1..n exactly; returns n.
  std::size_t history_length(const std::string& id, const std::string& scratch = {}) {
    auto r = bank({"history", id}, scratch);
    INFO("history " << id << ": exit " << r.exit_code << " stderr: " << r.err);
    REQUIRE(r.exit_code == 0);
    auto h = parse_history(r.out);
    for (std::size_t k = 0; k < h.size(); ++k)
      REQUIRE_MESSAGE(h[k].seq == k + 1, id << ": seq " << h[k].seq << " at index " << k);
    return h.size();
  }
};

std::string file_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

bool contains(const std::string& hay, const std::string& needle) {
  return hay.find(needle) != std::string::npos;
}

} // namespace

TEST_CASE_FIXTURE(fixture, "four writers x 25 deposits on one account: the balance counts "
                           "exactly the successful ones, failures are `locked`, verify passes") {
  REQUIRE(bank({"open", "c-1"}).exit_code == 0);
  constexpr int writers = 4;
  constexpr int per_writer = 25;
  std::mutex mtx;
  int succeeded = 0;
  std::vector<std::string> failures;
  std::vector<std::thread> threads;
  for (int w = 0; w < writers; ++w) {
    auto scratch = dir.sub("w" + std::to_string(w));
    std::filesystem::create_directory(scratch);
    threads.emplace_back([&, scratch] {
      for (int i = 0; i < per_writer; ++i) {
        auto r = bank({"deposit", "c-1", "1"}, scratch);
        std::lock_guard<std::mutex> g{mtx};
        if (r.exit_code == 0)
          ++succeeded;
        else
          failures.push_back(std::to_string(r.exit_code) + ": " + r.err);
      }
    });
  }
  for (auto& t : threads)
    t.join();
  for (const auto& f : failures) { // each failure: a clear `locked`, exit 4
    INFO(f);
    CHECK(f.rfind("4: ", 0) == 0);
    CHECK(contains(f, "locked"));
  }
  MESSAGE(succeeded << " of " << writers * per_writer << " deposits succeeded");
  CHECK(succeeded > 0);
  auto v = verify();
  INFO("verify: " << v.out << v.err);
  CHECK(v.exit_code == 0);
  auto b = bank({"balance", "c-1"});
  INFO("balance: " << b.err);
  REQUIRE(b.exit_code == 0);
  CHECK(b.out == "c-1 balance=" + std::to_string(succeeded) + "\n");
  CHECK(history_length("c-1") == static_cast<std::size_t>(succeeded) + 1);
}

TEST_CASE_FIXTURE(fixture, "a second writer during a load waits --lock-wait-ms, then fails with "
                           "`locked` naming the load's pid; readers are not blocked") {
  REQUIRE(bank({"open", "x"}).exit_code == 0);
  child load{dir.path(),
             {"--data", data, "--durability", "nosync", "load", "--accounts", "5", "--ops",
              "100000000", "--clients", "4", "--seed", "1"}};
  const auto holder = load.pid();
  // The load holds the lock once it has opened accounts: poll its history.
  const auto deadline = clock_type::now() + std::chrono::seconds(60);
  bool loading = false;
  while (!loading && clock_type::now() < deadline && !load.exited()) {
    auto r = bank({"history", "acct-0"});
    loading = r.exit_code == 0 && parse_history(r.out).size() > 1;
  }
  REQUIRE_MESSAGE(loading, "the load did not start: " << load.err());
  const auto t0 = clock_type::now();
  auto r = bank({"--lock-wait-ms", "300", "deposit", "x", "5"});
  const auto waited = clock_type::now() - t0;
  INFO("deposit during the load: exit " << r.exit_code << " stderr: " << r.err);
  CHECK(r.exit_code == 4);
  CHECK(contains(r.err, "locked"));
  CHECK(contains(r.err, std::to_string(holder)));
  CHECK(waited >= std::chrono::milliseconds(300));
  CHECK(r.out.empty());
  // A reader meanwhile answers (read-only: no lock).
  CHECK(bank({"balance", "x"}).out == "x balance=0\n");
  CHECK(load.kill9());
  // SIGKILL released the lock: the next writer gets in at once.
  r = bank({"--lock-wait-ms", "0", "deposit", "x", "5"});
  INFO("deposit after the kill: " << r.err);
  CHECK(r.exit_code == 0);
  CHECK(r.out == "x balance=5\n");
  CHECK(verify().exit_code == 0);
}

TEST_CASE_FIXTURE(fixture, "readers in a loop during a load: verify passes afterwards and "
                           "every history is seqs 1..n exactly") {
  constexpr int accounts = 10;
  child load{dir.path(),
             {"--data", data, "--durability", "nosync", "load", "--accounts",
              std::to_string(accounts), "--ops", "40000", "--clients", "8", "--seed", "7"}};
  auto scratch = dir.sub("readers");
  std::filesystem::create_directory(scratch);
  const auto deadline = clock_type::now() + std::chrono::seconds(300);
  // Readers start once the load has created the journal and opened its accounts (a
  // reader racing the very creation of a journal is not what this test is about).
  while (!load.exited() && clock_type::now() < deadline &&
         bank({"history", "acct-" + std::to_string(accounts - 1)}, scratch).exit_code != 0) {
  }
  int during_load = 0;
  for (int round = 0; !load.exited() && clock_type::now() < deadline; ++round) {
    const auto id = "acct-" + std::to_string(round % accounts);
    auto b = bank({"balances"}, scratch);
    INFO("balances: " << b.err);
    CHECK(b.exit_code == 0);
    CHECK_NOTHROW(parse_balances(b.out));
    auto h = bank({"history", id}, scratch);
    INFO("history " << id << ": " << h.err);
    CHECK((h.exit_code == 0 || (h.exit_code == 3 && contains(h.err, "not_open"))));
    if (h.exit_code == 0) {
      auto lines = parse_history(h.out);
      for (std::size_t k = 0; k < lines.size(); ++k)
        REQUIRE(lines[k].seq == k + 1);
      auto mid = lines.size() / 2 + 1;
      auto a = bank({"balance", id, "--as-of-seq", std::to_string(mid)}, scratch);
      INFO("as-of-seq " << mid << ": " << a.err);
      CHECK(a.exit_code == 0);
      CHECK(a.out == id + " balance=" + std::to_string(fold_balance(lines, mid)) + "\n");
    }
    auto rep = bank({"report"}, scratch);
    CHECK(rep.exit_code == 0);
    if (!load.exited()) ++during_load;
  }
  if (!load.exited()) {
    load.kill9();
    FAIL("the load did not finish within 300 s");
  }
  INFO("load stderr: " << load.err());
  REQUIRE(load.exit_code() == 0);
  MESSAGE(during_load << " reader rounds ran during the load");
  CHECK(during_load >= 1);
  auto v = verify();
  INFO("verify: " << v.out << v.err);
  CHECK(v.exit_code == 0);
  auto b = bank({"balances"});
  REQUIRE(b.exit_code == 0);
  auto balances = parse_balances(b.out);
  CHECK(balances.size() == static_cast<std::size_t>(accounts));
  for (int i = 0; i < accounts; ++i) {
    const auto id = "acct-" + std::to_string(i);
    auto r = bank({"history", id});
    REQUIRE(r.exit_code == 0);
    auto h = parse_history(r.out);
    for (std::size_t k = 0; k < h.size(); ++k)
      REQUIRE_MESSAGE(h[k].seq == k + 1, id << ": seq " << h[k].seq << " at index " << k);
    CHECK(balances[id] == fold_balance(h, h.size()));
  }
}

TEST_CASE_FIXTURE(fixture, "read-only commands change no byte of the data directory's files") {
  REQUIRE(bank({"open", "a", "--owner", "Ann"}).exit_code == 0);
  REQUIRE(bank({"deposit", "a", "40"}).exit_code == 0);
  REQUIRE(bank({"withdraw", "a", "15"}).exit_code == 0);
  const auto before = file_bytes(data + "/data.mdb");
  REQUIRE(!before.empty());
  CHECK(bank({"balances"}).out == "a balance=25\n");
  CHECK(bank({"balance", "a"}).out == "a balance=25\n");
  CHECK(bank({"balance", "a", "--as-of-seq", "2"}).out == "a balance=40\n");
  CHECK(bank({"history", "a"}).exit_code == 0);
  auto rep = bank({"report"});
  CHECK(rep.exit_code == 0);
  CHECK(rep.out == "a deposits=40 withdrawals=15\ntotal deposits=40 withdrawals=15\n");
  CHECK(bank({"balance", "nobody"}).exit_code == 3);
  CHECK(file_bytes(data + "/data.mdb") == before);
  // `--read-only` on a writing command: a clear error, nothing stored.
  auto r = bank({"--read-only", "deposit", "a", "5"});
  CHECK(r.exit_code == 4);
  CHECK(contains(r.err, "read_only"));
  CHECK(file_bytes(data + "/data.mdb") == before);
}

TEST_CASE_FIXTURE(fixture, "read-only commands on a directory without a journal create nothing") {
  auto r = bank({"balances"});
  CHECK(r.exit_code == 0);
  CHECK(r.out.empty());
  r = bank({"history", "a"});
  CHECK(r.exit_code == 3);
  CHECK(contains(r.err, "not_open"));
  CHECK(bank({"report"}).out == "total deposits=0 withdrawals=0\n");
  CHECK_FALSE(std::filesystem::exists(data));
}

TEST_CASE_FIXTURE(fixture, "an empty data.mdb in a directory that held a journal is corrupt, "
                           "for every command, and nothing is initialised") {
  REQUIRE(bank({"open", "a"}).exit_code == 0);
  REQUIRE(bank({"deposit", "a", "7"}).exit_code == 0);
  std::filesystem::resize_file(data + "/data.mdb", 0);
  for (auto args : {std::vector<std::string>{"balances"},
                    {"history", "a"},
                    {"balance", "a"},
                    {"deposit", "a", "1"},
                    {"open", "b"},
                    {"report"}}) {
    auto r = bank(args);
    INFO(args[0] << ": exit " << r.exit_code << " stderr: " << r.err);
    CHECK(r.exit_code == 4);
    CHECK(contains(r.err, "corrupt"));
    CHECK(r.out.empty());
    CHECK(std::filesystem::file_size(data + "/data.mdb") == 0);
  }
  CHECK(verify().exit_code != 0);
}

TEST_CASE_FIXTURE(fixture, "readers racing the creation of a journal answer, never fail") {
  // A load on a fresh directory creates the journal while `balances` runs right away:
  // the reader sees nothing yet or some accounts, but never an error.
  for (int round = 0; round < 5; ++round) {
    const std::string d = dir.sub("fresh-" + std::to_string(round));
    child load{dir.path(),
               {"--data", d, "--durability", "nosync", "load", "--accounts", "3", "--ops", "200",
                "--clients", "2", "--seed", "3"}};
    for (int k = 0; k < 3; ++k) {
      auto r = run(dir.path(), {"--data", d, "balances"});
      INFO("round " << round << " reader " << k << ": " << r.err);
      CHECK(r.exit_code == 0);
      CHECK_NOTHROW(parse_balances(r.out));
    }
    const auto deadline = clock_type::now() + std::chrono::seconds(120);
    while (!load.exited() && clock_type::now() < deadline) {
      auto r = run(dir.path(), {"--data", d, "balances"});
      CHECK(r.exit_code == 0);
    }
    REQUIRE(load.exited());
    CHECK(load.exit_code() == 0);
  }
}
