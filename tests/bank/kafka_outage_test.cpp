// `replicated` durability while Kafka is gone (issue 7, finding 6), real processes:
// strata-bank against a strata-kafka-mock process that is SIGKILLed.
//   - a single deposit with Kafka down answers not_replicated after
//     --replication-timeout-ms (not a plain timeout after a minute), exit 4, and the
//     event is in the history;
//   - a replicated load whose brokers die mid-load ends by itself with a summary that
//     counts not_replicated, and every op of its ack log is in the history;
//   - SIGTERM during a replicated load: it stops sending, prints its summary, drains
//     the bridge and exits 0 (not by the signal).
// Waits poll a condition with a deadline; nothing sleeps to synchronise.
#include "bank_process.hpp"

#include <doctest/doctest.h>

#include <chrono>
#include <map>
#include <sstream>
#include <string>
#include <vector>

using namespace bank::test;
using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;

namespace {

/// strata-kafka-mock with 3 brokers and topic strata.account; its bootstrap list.
struct kafka_mock {
  explicit kafka_mock(const temp_dir& dir)
    : boot_file(dir.sub("kafka.bootstrap")),
      proc(STRATA_KAFKA_MOCK_PATH,
           {"--brokers", "3", "--partitions", "64", "--topics", "strata.account",
            "--bootstrap-file", boot_file},
           dir.sub("mock.out"), dir.sub("mock.err")) {
    eventually(
      [&] {
        bootstrap = slurp(boot_file);
        while (!bootstrap.empty() && (bootstrap.back() == '\n' || bootstrap.back() == ' '))
          bootstrap.pop_back();
        return !bootstrap.empty() || proc.exited();
      },
      20s);
    REQUIRE_MESSAGE(!bootstrap.empty(), "no bootstrap from strata-kafka-mock: " << proc.err());
  }
  std::string boot_file;
  process proc;
  std::string bootstrap;
};

std::size_t count_lines(const std::string& text) {
  std::size_t n = 0;
  for (char c : text)
    n += c == '\n';
  return n;
}

/// The value of ` key=` in a summary line (or -1).
long long field(const std::string& line, const std::string& key) {
  auto at = line.find(" " + key + "=");
  if (at == std::string::npos) return -1;
  return std::stoll(line.substr(at + key.size() + 2));
}

/// The `load: accounts=…` summary line of `out`, or "".
std::string summary_of(const std::string& out) {
  std::istringstream in(out);
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("load: accounts=", 0) == 0) return line;
  return {};
}

/// Every complete line `ID SEQ OP AMOUNT` of the ack log is an event of ID's history:
/// same seq, type and amount. Returns the number of lines checked.
std::size_t check_ack_log_in_history(const temp_dir& dir, const std::string& data,
                                     const std::string& ack_log) {
  std::map<std::string, std::vector<history_line>> histories;
  std::istringstream in(slurp(ack_log));
  std::string line;
  std::size_t n = 0;
  while (std::getline(in, line)) {
    if (in.eof()) break; // a torn last line (no newline) is ignored
    std::istringstream ls(line);
    std::string id, op;
    std::uint64_t seq = 0;
    std::int64_t amount = 0;
    ls >> id >> seq >> op >> amount;
    REQUIRE_MESSAGE(!ls.fail(), "bad ack log line: " << line);
    auto it = histories.find(id);
    if (it == histories.end()) {
      auto h = run(dir.path(), {"--data", data, "history", id});
      REQUIRE_MESSAGE(h.exit_code == 0, h.err);
      it = histories.emplace(id, parse_history(h.out)).first;
    }
    INFO("ack log line: " << line);
    REQUIRE(seq >= 1);
    REQUIRE(seq <= it->second.size());
    const auto& ev = it->second[seq - 1];
    CHECK(ev.seq == seq);
    CHECK(ev.type == (op == "deposit" ? "deposited" : "withdrawn"));
    CHECK(ev.amount == amount);
    ++n;
  }
  return n;
}

} // namespace

TEST_CASE("a replicated deposit with Kafka down answers not_replicated after "
          "--replication-timeout-ms, exit 4, and the event is stored") {
  temp_dir dir{"strata-bank-kdown"};
  const std::string data = dir.sub("data");
  kafka_mock mock{dir};
  auto opened = run(dir.path(), {"--data", data, "--kafka", mock.bootstrap, "--replication",
                                 "replicated", "open", "c-1", "--owner", "Ann"});
  REQUIRE_MESSAGE(opened.exit_code == 0, opened.err);
  REQUIRE(mock.proc.kill_and_wait(SIGKILL)); // every broker gone at once

  const auto t0 = steady::now();
  auto r = run(dir.path(), {"--data", data, "--kafka", mock.bootstrap, "--replication",
                            "replicated", "--replication-timeout-ms", "1500", "--kafka-drain-ms",
                            "200", "deposit", "c-1", "700"});
  const auto took = steady::now() - t0;
  INFO("stderr: " << r.err);
  CHECK(r.exit_code == 4);
  CHECK(r.out.empty());
  CHECK(r.err.find("error: not_replicated: stored locally at seq 2 of account:c-1, not yet "
                   "acknowledged by Kafka; the bridge keeps publishing it\n") != std::string::npos);
  CHECK(took >= 1500ms);
  CHECK(took < 15s); // the timeout plus start and stop, not the old minute
  CHECK(r.err.find("not yet published to Kafka") != std::string::npos);

  auto h = run(dir.path(), {"--data", data, "history", "c-1"});
  REQUIRE(h.exit_code == 0);
  auto lines = parse_history(h.out);
  REQUIRE(lines.size() == 2);
  CHECK(lines[1].type == "deposited");
  CHECK(lines[1].amount == 700);
}

TEST_CASE("a replicated load whose brokers are SIGKILLed mid-load ends by itself, counts "
          "not_replicated, and its ack log is in the history") {
  STRATA_TEST_SEED(seed);
  temp_dir dir{"strata-bank-kload"};
  const std::string data = dir.sub("data");
  const std::string ack_log = dir.sub("acks.log");
  kafka_mock mock{dir};
  const long long ops = 6000;
  process load(binary(),
               {"--data",
                data,
                "--durability",
                "nosync",
                "--kafka",
                mock.bootstrap,
                "--replication",
                "replicated",
                "--replication-timeout-ms",
                "1000",
                "--kafka-drain-ms",
                "500",
                "load",
                "--accounts",
                "20",
                "--ops",
                std::to_string(ops),
                "--clients",
                "8",
                "--ack-log",
                ack_log,
                "--seed",
                std::to_string(seed)},
               dir.sub("load.out"), dir.sub("load.err"));
  // Mid-load: some replicated ops acknowledged, then every broker dies.
  REQUIRE_MESSAGE(eventually(
                    [&] {
                      return count_lines(slurp(ack_log)) >= 100 || load.exited();
                    },
                    60s),
                  load.err());
  REQUIRE_MESSAGE(!load.exited(), "the load ended before the brokers died: " << load.out());
  REQUIRE(mock.proc.kill_and_wait(SIGKILL));

  REQUIRE_MESSAGE(load.wait_exit(120s), "the load stalled: " << load.err());
  INFO("load stderr: " << load.err());
  CHECK(load.exit_code() == 4); // some ops are stored but not acknowledged by Kafka
  auto summary = summary_of(load.out());
  INFO("summary: " << summary);
  REQUIRE(!summary.empty());
  CHECK(field(summary, "ops") == ops);
  CHECK(field(summary, "not_replicated") > 0);
  CHECK(field(summary, "errors") == 0);
  CHECK(field(summary, "acknowledged") + field(summary, "rejected") +
          field(summary, "not_replicated") ==
        ops);
  CHECK(summary.find("interrupted") == std::string::npos);

  // Acknowledged = replied ok = in the ack log, and each of those is in the history.
  auto checked = check_ack_log_in_history(dir, data, ack_log);
  CHECK(static_cast<long long>(checked) == field(summary, "acknowledged"));
  // The not_replicated ops are stored too: every account folds to its balance.
  auto b = run(dir.path(), {"--data", data, "balances"});
  REQUIRE(b.exit_code == 0);
  auto balances = parse_balances(b.out);
  CHECK(balances.size() == 20);
  for (const auto& [id, balance] : balances) {
    auto h = run(dir.path(), {"--data", data, "history", id});
    REQUIRE(h.exit_code == 0);
    auto lines = parse_history(h.out);
    CHECK(fold_balance(lines, lines.size()) == balance);
  }
}

TEST_CASE("SIGTERM during a replicated load stops it cleanly: summary, drain, exit 0") {
  STRATA_TEST_SEED(seed);
  temp_dir dir{"strata-bank-kterm"};
  const std::string data = dir.sub("data");
  const std::string ack_log = dir.sub("acks.log");
  kafka_mock mock{dir};
  const long long ops = 10'000'000; // far more than it runs before the signal
  process load(binary(),
               {"--data", data, "--durability", "nosync", "--kafka", mock.bootstrap,
                "--replication", "replicated", "load", "--accounts", "20", "--ops",
                std::to_string(ops), "--clients", "8", "--ack-log", ack_log, "--seed",
                std::to_string(seed)},
               dir.sub("load.out"), dir.sub("load.err"));
  REQUIRE_MESSAGE(eventually(
                    [&] {
                      return count_lines(slurp(ack_log)) >= 200 || load.exited();
                    },
                    60s),
                  load.err());
  REQUIRE_MESSAGE(!load.exited(), load.err());
  load.signal(SIGTERM);
  REQUIRE_MESSAGE(load.wait_exit(60s), "no exit after SIGTERM: " << load.err());
  INFO("load stderr: " << load.err());
  CHECK(load.exit_code() == 0); // exited, not killed by the signal; nothing failed
  auto summary = summary_of(load.out());
  INFO("summary: " << summary);
  REQUIRE(!summary.empty());
  CHECK(field(summary, "interrupted") == 1);
  CHECK(field(summary, "unanswered") == 0);
  CHECK(field(summary, "ops") < ops);
  CHECK(field(summary, "not_replicated") == 0);
  CHECK(load.err().find("load: stopped by a signal") != std::string::npos);
  CHECK(load.err().find("kafka: journal published up to position") != std::string::npos);
  auto checked = check_ack_log_in_history(dir, data, ack_log);
  CHECK(static_cast<long long>(checked) == field(summary, "acknowledged"));
  auto v = run(dir.path(), {"--data", data, "balances"});
  CHECK(v.exit_code == 0);
}
