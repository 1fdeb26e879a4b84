// strata-bank end to end, in real processes: outputs, exit codes (0 ok, 2 usage,
// 3 rejected, 4 infrastructure), state surviving restarts, as-of reads.
#include "bank_process.hpp"

#include "strata/persistence/timestamp.hpp"

#include <doctest/doctest.h>

#include <string>
#include <vector>

using namespace bank::test;

namespace {
struct fixture {
  temp_dir dir{"strata-bank-cli"};
  std::string data = dir.sub("data");
  run_result bank(std::vector<std::string> args) {
    args.insert(args.begin(), {"--data", data});
    return run(dir.path(), args);
  }
};
} // namespace

TEST_CASE_FIXTURE(fixture, "open, deposit, withdraw, close: outputs and exit codes") {
  auto r = bank({"open", "acct-1", "--owner", "ann"});
  CHECK(r.exit_code == 0);
  CHECK(r.out == "acct-1 balance=0\n");
  r = bank({"deposit", "acct-1", "500"});
  CHECK(r.exit_code == 0);
  CHECK(r.out == "acct-1 balance=500\n");
  r = bank({"withdraw", "acct-1", "800"});
  CHECK(r.exit_code == 3);
  CHECK(r.out.empty());
  // The rejection says why (strata::describe of the handler's detail).
  CHECK(r.err == "rejected: insufficient_funds: balance 500 is less than 800\n");
  r = bank({"withdraw", "acct-1", "200"});
  CHECK(r.exit_code == 0);
  CHECK(r.out == "acct-1 balance=300\n");
  r = bank({"deposit", "acct-1", "0"});
  CHECK(r.exit_code == 3);
  CHECK(r.err.find("rejected: invalid_amount: amount 0 is not positive") != std::string::npos);
  r = bank({"open", "acct-1"});
  CHECK(r.exit_code == 3);
  CHECK(r.err.find("rejected: already_open") != std::string::npos);
  r = bank({"deposit", "nobody", "5"});
  CHECK(r.exit_code == 3);
  CHECK(r.err.find("rejected: not_open") != std::string::npos);
  r = bank({"close", "acct-1"});
  CHECK(r.exit_code == 3);
  CHECK(r.err.find("rejected: not_zero_balance") != std::string::npos);
  CHECK(bank({"withdraw", "acct-1", "300"}).out == "acct-1 balance=0\n");
  r = bank({"close", "acct-1"});
  CHECK(r.exit_code == 0);
  CHECK(r.out == "acct-1 closed\n");
  r = bank({"deposit", "acct-1", "5"});
  CHECK(r.exit_code == 3);
  CHECK(r.err.find("rejected: closed") != std::string::npos);
  r = bank({"balance", "acct-1"});
  CHECK(r.exit_code == 0);
  CHECK(r.out == "acct-1 balance=0\n");
}

TEST_CASE_FIXTURE(fixture, "history, balances and as-of reads agree across restarts") {
  REQUIRE(bank({"open", "b", "--owner", "Bob Smith"}).exit_code == 0);
  REQUIRE(bank({"open", "a"}).exit_code == 0);
  REQUIRE(bank({"deposit", "b", "100"}).exit_code == 0);
  REQUIRE(bank({"deposit", "b", "50"}).exit_code == 0);
  REQUIRE(bank({"withdraw", "b", "30"}).exit_code == 0);
  REQUIRE(bank({"deposit", "a", "7"}).exit_code == 0);

  auto r = bank({"history", "b"});
  REQUIRE(r.exit_code == 0);
  auto h = parse_history(r.out);
  REQUIRE(h.size() == 4);
  CHECK(h[0].type == "opened");
  CHECK(h[0].owner == "Bob Smith");
  CHECK(h[1].type == "deposited");
  CHECK(h[1].amount == 100);
  CHECK(h[3].type == "withdrawn");
  CHECK(h[3].amount == 30);
  for (std::size_t i = 0; i < h.size(); ++i) {
    CHECK(h[i].seq == i + 1);
    CHECK(strata::parse_iso8601(h[i].time).has_value());
    CHECK(h[i].time.size() == 30); // 2026-11-22T06:40:00.123456789Z
  }

  r = bank({"balances"});
  REQUIRE(r.exit_code == 0);
  CHECK(r.out == "a balance=7\nb balance=120\n");

  for (std::uint64_t s = 0; s <= 5; ++s) {
    r = bank({"balance", "b", "--as-of-seq", std::to_string(s)});
    INFO("as-of-seq " << s);
    if (s == 0) {
      CHECK(r.exit_code == 3);
    } else {
      CHECK(r.exit_code == 0);
      CHECK(parse_balances(r.out)["b"] == fold_balance(h, s));
    }
  }
  // --as-of-time accepts what history prints, and whole seconds.
  r = bank({"balance", "b", "--as-of-time", h[2].time});
  CHECK(r.exit_code == 0);
  std::size_t upto = 0;
  while (upto < h.size() && h[upto].time <= h[2].time)
    ++upto;
  CHECK(parse_balances(r.out)["b"] == fold_balance(h, upto));
  r = bank({"balance", "b", "--as-of-time", "2000-01-01T00:00:00Z"});
  CHECK(r.exit_code == 3);
  r = bank({"balance", "b", "--as-of-time", "2200-01-01T00:00:00Z"});
  CHECK(r.exit_code == 0);
  CHECK(r.out == "b balance=120\n");

  r = bank({"history", "nobody"});
  CHECK(r.exit_code == 3);
}

TEST_CASE_FIXTURE(fixture, "load: ack log lines match the histories; a rerun opens nothing") {
  const std::string log = dir.sub("acks.log");
  auto r = bank(
    {"load", "--accounts", "3", "--ops", "300", "--clients", "4", "--ack-log", log, "--seed", "7"});
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(r.out.find("load: accounts=3 opened=3 clients=4 ops=300") == 0);
  CHECK(r.err.find("seed=7") != std::string::npos);
  r = bank({"load", "--accounts", "3", "--ops", "10", "--clients", "2", "--seed", "8"});
  REQUIRE(r.exit_code == 0);
  CHECK(r.out.find("opened=0") != std::string::npos);

  std::ifstream in(log);
  std::string id, op;
  std::uint64_t seq = 0;
  std::int64_t amount = 0;
  std::size_t n = 0;
  std::map<std::string, std::vector<history_line>> hist;
  while (in >> id >> seq >> op >> amount) {
    ++n;
    if (!hist.count(id)) hist[id] = parse_history(bank({"history", id}).out);
    REQUIRE(seq >= 2);
    REQUIRE(seq <= hist[id].size());
    CHECK(hist[id][seq - 1].type == (op == "deposit" ? "deposited" : "withdrawn"));
    CHECK(hist[id][seq - 1].amount == amount);
  }
  CHECK(n > 0);
  CHECK(n <= 300);
}

TEST_CASE_FIXTURE(fixture, "usage errors exit 2, infrastructure errors exit 4") {
  CHECK(run(dir.path(), {"balances"}).exit_code == 2); // no --data
  auto help = run(dir.path(), {"--help"});
  CHECK(help.exit_code == 0);
  CHECK(help.out.find("usage: strata-bank") == 0);
  CHECK(bank({}).exit_code == 2);
  CHECK(bank({"frobnicate"}).exit_code == 2);
  CHECK(bank({"deposit", "a", "ten"}).exit_code == 2);
  auto bad_option = bank({"--durability", "sometimes", "balances"});
  CHECK(bad_option.exit_code == 2);
  // A config error prints like every other error (strata::describe).
  CHECK(bad_option.err.rfind("strata-bank: invalid_argument: ", 0) == 0);
  CHECK(bad_option.err.find("durability") != std::string::npos);
  auto r = bank({"balance", "a", "--as-of-time", "yesterday"});
  CHECK(r.exit_code == 2);
  CHECK(r.err.find("usage:") != std::string::npos);
  // A data directory that cannot be created: infrastructure.
  const std::string file = dir.sub("plain-file");
  std::ofstream(file) << "x";
  r = run(dir.path(), {"--data", file + "/sub", "balances"});
  CHECK(r.exit_code == 4);
  CHECK(r.err.find("error:") != std::string::npos);
}
