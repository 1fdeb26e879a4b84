// strata-bank report, in real processes: the report from the journal equals the fold of
// every account's `history`, stays right when more events arrive, and the report from
// Kafka (an in-process mock cluster, `--kafka mock`) equals the report from the journal.
#include "bank_process.hpp"

#include <doctest/doctest.h>

#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

using namespace bank::test;

namespace {

struct totals {
  std::int64_t deposits = 0;
  std::int64_t withdrawals = 0;
  friend bool operator==(const totals& a, const totals& b) {
    return a.deposits == b.deposits && a.withdrawals == b.withdrawals;
  }
};

struct parsed_report {
  std::map<std::string, totals> accounts;
  totals total;
  bool has_total = false;
};

/// Parses `ID deposits=N withdrawals=M` lines then `total deposits=N withdrawals=M`.
/// Checks the lines are sorted by ID and the total comes last. Throws on anything else.
parsed_report parse_report(const std::string& text) {
  parsed_report r;
  std::istringstream in(text);
  std::string line, last_id;
  while (std::getline(in, line)) {
    if (r.has_total) throw std::runtime_error("a line after the total: " + line);
    std::istringstream ls(line);
    std::string id, dep, wd, extra;
    ls >> id >> dep >> wd;
    if (dep.rfind("deposits=", 0) != 0 || wd.rfind("withdrawals=", 0) != 0 || (ls >> extra))
      throw std::runtime_error("bad report line: " + line);
    totals t{std::stoll(dep.substr(9)), std::stoll(wd.substr(12))};
    if (id == "total") {
      r.total = t;
      r.has_total = true;
      continue;
    }
    if (!last_id.empty() && !(last_id < id))
      throw std::runtime_error("report not sorted by ID at " + line);
    last_id = id;
    r.accounts[id] = t;
  }
  if (!r.has_total) throw std::runtime_error("no total line in: " + text);
  return r;
}

struct fixture {
  temp_dir dir{"strata-bank-report"};
  std::string data = dir.sub("data");
  run_result bank(std::vector<std::string> args) {
    args.insert(args.begin(), {"--data", data, "--durability", "nosync"});
    return run(dir.path(), args);
  }

  /// The report a fold of every account's printed history gives.
  parsed_report fold_of_histories() {
    parsed_report want;
    want.has_total = true;
    auto b = bank({"balances"});
    REQUIRE(b.exit_code == 0);
    for (const auto& [id, balance] : parse_balances(b.out)) {
      auto h = bank({"history", id});
      REQUIRE(h.exit_code == 0);
      totals t;
      for (const auto& e : parse_history(h.out)) {
        if (e.type == "deposited") t.deposits += e.amount;
        if (e.type == "withdrawn") t.withdrawals += e.amount;
      }
      CHECK(t.deposits - t.withdrawals == balance);
      want.accounts[id] = t;
      want.total.deposits += t.deposits;
      want.total.withdrawals += t.withdrawals;
    }
    return want;
  }

  void check_equal(const parsed_report& got, const parsed_report& want) {
    CHECK(got.accounts.size() == want.accounts.size());
    for (const auto& [id, t] : want.accounts) {
      INFO("account " << id);
      REQUIRE(got.accounts.count(id) == 1);
      CHECK(got.accounts.at(id).deposits == t.deposits);
      CHECK(got.accounts.at(id).withdrawals == t.withdrawals);
    }
    CHECK(got.total.deposits == want.total.deposits);
    CHECK(got.total.withdrawals == want.total.withdrawals);
  }
};

} // namespace

TEST_CASE_FIXTURE(fixture, "report from the journal equals the fold of history, incrementally") {
  STRATA_TEST_SEED(seed);
  REQUIRE(bank({"open", "zed", "--owner", "Zed"}).exit_code == 0);
  REQUIRE(bank({"deposit", "zed", "1000"}).exit_code == 0);
  REQUIRE(bank({"withdraw", "zed", "1"}).exit_code == 0);
  REQUIRE(bank({"open", "empty"}).exit_code == 0);
  auto r = bank(
    {"load", "--accounts", "12", "--ops", "600", "--clients", "4", "--seed", std::to_string(seed)});
  INFO(r.err);
  REQUIRE(r.exit_code == 0);

  r = bank({"report"});
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  auto first = parse_report(r.out);
  check_equal(first, fold_of_histories());
  CHECK(first.accounts.count("empty") == 1);
  CHECK(first.accounts.at("empty") == totals{0, 0});
  CHECK(first.accounts.at("zed") == totals{1000, 1});

  // More events: the stored view catches up with them (and counts nothing twice).
  REQUIRE(bank({"deposit", "empty", "5"}).exit_code == 0);
  r = bank({"load", "--accounts", "12", "--ops", "200", "--clients", "3", "--seed",
            std::to_string(seed + 1)});
  REQUIRE(r.exit_code == 0);
  r = bank({"report", "--source", "journal"});
  REQUIRE(r.exit_code == 0);
  const std::string second_out = r.out;
  auto second = parse_report(second_out);
  check_equal(second, fold_of_histories());
  CHECK(second.accounts.at("empty") == totals{5, 0});
  CHECK(second.total.deposits > first.total.deposits);
  // Asking again changes nothing.
  r = bank({"report", "--source=journal"});
  REQUIRE(r.exit_code == 0);
  CHECK(r.out == second_out);
}

TEST_CASE_FIXTURE(fixture, "report from Kafka (--kafka mock) equals the report from the journal") {
  STRATA_TEST_SEED(seed);
  // The load publishes to its own in-process mock cluster and exits only after Kafka
  // acknowledged everything it persisted.
  auto r = bank({"--kafka", "mock", "load", "--accounts", "15", "--ops", "800", "--clients", "6",
                 "--seed", std::to_string(seed)});
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(r.err.find("kafka: journal published up to position") != std::string::npos);
  CHECK(r.err.find("not yet published") == std::string::npos);
  REQUIRE(bank({"open", "other"}).exit_code == 0); // without Kafka
  REQUIRE(bank({"deposit", "other", "42"}).exit_code == 0);

  auto journal = bank({"report"});
  REQUIRE(journal.exit_code == 0);
  // A new process: a fresh mock cluster into which the bridge publishes the whole
  // journal; the report consumes strata.account from the beginning.
  auto kafka = bank({"--kafka", "mock", "report", "--source", "kafka"});
  INFO(kafka.err);
  REQUIRE(kafka.exit_code == 0);
  CHECK(kafka.out == journal.out);
  check_equal(parse_report(kafka.out), fold_of_histories());
  CHECK(kafka.err.find("report: consumed") != std::string::npos);
  // Again: still equal (nothing of the previous Kafka report is reused).
  auto again = bank({"--kafka", "mock", "report", "--source", "kafka"});
  REQUIRE(again.exit_code == 0);
  CHECK(again.out == journal.out);
}

TEST_CASE_FIXTURE(fixture, "report: usage errors") {
  auto r = bank({"report", "--source", "kafka"}); // no --kafka
  CHECK(r.exit_code == 2);
  CHECK(r.err.find("--kafka") != std::string::npos);
  CHECK(bank({"report", "--source", "tape"}).exit_code == 2);
  CHECK(bank({"report", "extra"}).exit_code == 2);
  CHECK(bank({"report", "--timeout-ms", "0"}).exit_code == 2);
  // An empty journal: only the total.
  r = bank({"report"});
  CHECK(r.exit_code == 0);
  CHECK(r.out == "total deposits=0 withdrawals=0\n");
}

TEST_CASE_FIXTURE(fixture, "--kafka and --replication pass through to the runtime") {
  // replicated: each reply waited for Kafka's acknowledgement (in-process mock).
  auto r = bank({"--kafka", "mock", "--replication", "replicated", "open", "r", "--owner", "R"});
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(r.out == "r balance=0\n");
  CHECK(r.err.find("kafka: journal published up to position 1 ") != std::string::npos);
  r = bank({"--kafka=mock", "--replication.account=replicated", "deposit", "r", "70"});
  REQUIRE(r.exit_code == 0);
  CHECK(r.out == "r balance=70\n");
  CHECK(r.err.find("kafka: journal published up to position 2 ") != std::string::npos);
  r = bank({"--kafka", "mock", "--replication", "local", "withdraw", "r", "20"});
  REQUIRE(r.exit_code == 0);
  CHECK(r.out == "r balance=50\n");
  // Without Kafka nothing is published and nothing says so.
  r = bank({"deposit", "r", "1"});
  REQUIRE(r.exit_code == 0);
  CHECK(r.err.find("kafka") == std::string::npos);
  auto k = bank({"--kafka", "mock", "report", "--source", "kafka"});
  REQUIRE(k.exit_code == 0);
  CHECK(k.out == "r deposits=71 withdrawals=20\ntotal deposits=71 withdrawals=20\n");
  // Usage errors.
  r = bank({"--replication", "replicated", "balances"}); // replicated needs Kafka
  CHECK(r.exit_code == 2);
  CHECK(r.err.find("--kafka") != std::string::npos);
  CHECK(bank({"--replication", "sometimes", "balances"}).exit_code == 2);
  CHECK(bank({"--kafka-partitions", "many", "balances"}).exit_code == 2);
}
