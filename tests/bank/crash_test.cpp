// Process crash test: `strata-bank load --ack-log` is SIGKILLed at random moments.
// After every kill, in new processes: every acknowledged "ID SEQ OP AMOUNT" line (a
// torn last line is ignored) is in that account's `history` at that seq with the same
// type and amount; each history is gap-free from seq 1, starts with `opened` and never
// folds to a negative balance; `balances` equals the fold of the histories; and
// `balance --as-of-seq/--as-of-time` equal folds of the printed history.
// The kill moment: after K new ack lines (polled with a deadline), plus a random extra
// delay; sometimes K = 0 (a kill while the accounts are being opened or recovered).
// The normal suite runs 12 kills; the "long" variant (label long) 100.
#include "bank_process.hpp"

#include <doctest/doctest.h>

#include <chrono>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

using namespace bank::test;

namespace {

constexpr int n_accounts = 8;

/// Counts '\n' in the file (cheap enough for the few hundred KB these runs write).
std::size_t count_lines(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::size_t n = 0;
  char buf[65536];
  while (in.read(buf, sizeof buf) || in.gcount() > 0) {
    for (std::streamsize i = 0; i < in.gcount(); ++i)
      n += buf[i] == '\n';
    if (!in) break;
  }
  return n;
}

/// Checks everything after one kill. Returns the number of acknowledged ops checked.
std::size_t verify(const temp_dir& dir, const std::string& data, const std::string& log,
                   std::mt19937_64& rng) {
  const auto acks = read_acks(log);
  std::map<std::string, std::vector<history_line>> histories;
  for (int i = 0; i < n_accounts; ++i) {
    const std::string id = "acct-" + std::to_string(i);
    auto r = run(dir.path(), {"--data", data, "history", id});
    INFO("history " << id << " stderr: " << r.err);
    if (r.exit_code == 3) { // killed before this account was opened
      CHECK(r.err.find("rejected: not_open") != std::string::npos);
      continue;
    }
    REQUIRE(r.exit_code == 0);
    auto h = parse_history(r.out);
    REQUIRE(!h.empty());
    CHECK(h.front().type == "opened");
    std::int64_t balance = 0;
    for (std::size_t k = 0; k < h.size(); ++k) {
      REQUIRE_MESSAGE(h[k].seq == k + 1, id << ": history has a gap at index " << k);
      if (h[k].type == "deposited")
        balance += h[k].amount;
      else if (h[k].type == "withdrawn")
        balance -= h[k].amount;
      CHECK_MESSAGE(balance >= 0, id << " goes negative at seq " << h[k].seq);
    }
    histories[id] = std::move(h);
  }
  // Every acknowledged op is in the history, at its seq, with its type and amount.
  for (const auto& a : acks) {
    INFO("ack: " << a.id << " " << a.seq << " " << a.op << " " << a.amount);
    auto it = histories.find(a.id);
    REQUIRE_MESSAGE(it != histories.end(), "acknowledged op on an account without history");
    REQUIRE_MESSAGE(a.seq >= 1, "seq 0 in the ack log");
    REQUIRE_MESSAGE(a.seq <= it->second.size(),
                    "acknowledged seq is beyond the history (" << it->second.size() << " events)");
    const auto& h = it->second[a.seq - 1];
    CHECK(h.type == (a.op == "deposit" ? "deposited" : "withdrawn"));
    CHECK(h.amount == a.amount);
  }
  // `balances` (snapshot + tail in a new process) equals the fold of the histories.
  auto b = run(dir.path(), {"--data", data, "balances"});
  INFO("balances stderr: " << b.err);
  REQUIRE(b.exit_code == 0);
  auto balances = parse_balances(b.out);
  CHECK(balances.size() == histories.size());
  for (const auto& [id, h] : histories) {
    INFO("account " << id);
    REQUIRE(balances.count(id) == 1);
    CHECK(balances[id] == fold_balance(h, h.size()));
  }
  // as-of answers equal folds of the printed history (one random account and point).
  if (!histories.empty()) {
    auto it = histories.begin();
    std::advance(it, static_cast<std::ptrdiff_t>(rng() % histories.size()));
    const auto& [id, h] = *it;
    const std::size_t s = 1 + rng() % h.size();
    auto r = run(dir.path(), {"--data", data, "balance", id, "--as-of-seq", std::to_string(s)});
    INFO("balance --as-of-seq " << s << " stderr: " << r.err);
    REQUIRE(r.exit_code == 0);
    CHECK(parse_balances(r.out)[id] == fold_balance(h, s));
    // By time: every event stamped at or before that event's time (group commits share
    // a timestamp; the fixed-width format orders like the instants it names).
    const std::string t = h[s - 1].time;
    std::size_t upto = 0;
    while (upto < h.size() && h[upto].time <= t)
      ++upto;
    r = run(dir.path(), {"--data", data, "balance", id, "--as-of-time", t});
    INFO("balance --as-of-time " << t << " stderr: " << r.err);
    REQUIRE(r.exit_code == 0);
    CHECK(parse_balances(r.out)[id] == fold_balance(h, upto));
  }
  return acks.size();
}

void crash_loop(int kills) {
  STRATA_TEST_SEED(seed);
  std::mt19937_64 rng{seed};
  temp_dir dir{"strata-bank-crash"};
  const std::string data = dir.sub("data");
  const std::string log = dir.sub("acks.log");
  INFO("data in " << dir.path());
  std::size_t mid_run_kills = 0;
  for (int i = 0; i < kills; ++i) {
    const std::size_t before = count_lines(log);
    const std::size_t want = rng() % 10 == 0 ? 0 : 1 + rng() % 400;
    const auto clients = std::to_string(1 + rng() % 32);
    INFO("kill #" << i << " after " << want << " new acks, clients " << clients);
    child c(dir.path(), {"--data", data, "load", "--accounts", std::to_string(n_accounts), "--ops",
                         "1000000000", "--clients", clients, "--ack-log", log, "--seed",
                         std::to_string(rng())});
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds{120};
    while (want > 0 && count_lines(log) < before + want) {
      if (c.exited()) {
        dir.keep();
        FAIL("strata-bank load exited with " << c.exit_code() << " before the kill: " << c.err());
      }
      if (std::chrono::steady_clock::now() > deadline) {
        dir.keep();
        FAIL("no " << want << " new ack lines within 120 s; stderr: " << c.err());
      }
      std::this_thread::sleep_for(std::chrono::milliseconds{1}); // poll interval
    }
    // A random extra delay: the kill lands anywhere in the pipeline (not a sync point).
    std::this_thread::sleep_for(std::chrono::microseconds{rng() % 30'000});
    if (c.kill9())
      ++mid_run_kills;
    else
      FAIL("strata-bank load exited on its own (" << c.exit_code() << "): " << c.err());
    try {
      verify(dir, data, log, rng);
    } catch (const std::exception& e) {
      dir.keep();
      FAIL(e.what());
    }
  }
  CHECK(mid_run_kills == static_cast<std::size_t>(kills));
  const auto total = read_acks(log).size();
  MESSAGE(kills << " kills, " << total << " acknowledged ops verified (seed " << seed << ")");
  CHECK(total > 0);
}

} // namespace

TEST_CASE("crash: SIGKILL of strata-bank load loses no acknowledged op") { crash_loop(12); }

TEST_CASE("crash: long SIGKILL loop (label long)" * doctest::skip()) { crash_loop(100); }
