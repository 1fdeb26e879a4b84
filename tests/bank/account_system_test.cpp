// The bank account on a real strata::system (in process): the reply's seq is the seq
// of the event the command stored — also for many concurrent commands to one hot
// account (pipelined writes) — which is what `strata-bank load --ack-log` relies on;
// recovery after a restart, with and without snapshots, equals the full fold; rejected
// commands leave no trace in the journal.
#include "bank/account.hpp"
#include "strata/test/seed.hpp"
#include "strata/test/temp_dir.hpp"

#include <strata/runtime/all.hpp>

#include <doctest/doctest.h>

#include <algorithm>
#include <future>
#include <map>
#include <random>
#include <string>
#include <vector>

using namespace bank;

namespace {

strata::config test_config(const std::string& dir, std::uint64_t snapshot_every) {
  strata::config c;
  c.data_dir = dir;
  c.durability = strata::persistence::sync_mode::nosync; // replies still wait for commit
  c.snapshot_every = snapshot_every;
  c.passivate_after_ms = 0;
  c.map_size_bytes = std::size_t{64} << 20;
  return c;
}

std::unique_ptr<strata::system> open_system(const strata::config& c) {
  auto s = strata::system::open(c);
  if (!s) FAIL("cannot open the system: " << strata::describe(s.error()));
  return std::move(*s);
}

} // namespace

TEST_CASE("concurrent commands to one account: each reply names its own event's seq") {
  STRATA_TEST_SEED(seed);
  std::mt19937_64 rng{seed};
  strata::test::temp_dir dir{"strata-bank-sys"};
  auto sys = open_system(test_config(dir.path(), 50));
  auto accounts = sys->entities<account>();
  REQUIRE(static_cast<bool>(accounts.ask("hot", open_account{"h"})));
  REQUIRE(static_cast<bool>(accounts.ask("hot", deposit{1'000'000})));

  // Distinct amounts, so a reply paired with the wrong event would show.
  constexpr int n = 2000;
  std::vector<account::command> cmds;
  std::vector<std::future<caf::expected<balance_reply>>> futures;
  for (int i = 0; i < n; ++i) {
    const std::int64_t amount = 1 + i;
    if (rng() % 2 == 0)
      cmds.push_back(deposit{amount});
    else if (rng() % 10 == 0)
      cmds.push_back(withdraw{100'000'000}); // always rejected
    else
      cmds.push_back(withdraw{amount});
  }
  for (const auto& c : cmds)
    futures.push_back(accounts.ask_future("hot", c));

  std::map<std::uint64_t, std::size_t> seq_to_cmd;
  std::size_t rejected = 0;
  for (std::size_t i = 0; i < futures.size(); ++i) {
    auto r = futures[i].get();
    if (!r) {
      REQUIRE(strata::rejection_of<account>(r.error()) == account::rejection::insufficient_funds);
      ++rejected;
      continue;
    }
    CHECK_MESSAGE(seq_to_cmd.emplace(r->seq, i).second, "two replies name seq " << r->seq);
  }
  CHECK(rejected > 0);

  auto h = accounts.history("hot");
  REQUIRE(static_cast<bool>(h));
  REQUIRE(h->size() == 2 + seq_to_cmd.size()); // rejected commands stored nothing
  for (const auto& [seq, i] : seq_to_cmd) {
    INFO("seq " << seq << " command #" << i);
    REQUIRE(seq >= 3);
    REQUIRE(seq <= h->size());
    const auto& e = (*h)[seq - 1];
    CHECK(e.seq == seq);
    if (auto* d = std::get_if<deposit>(&cmds[i])) {
      REQUIRE(std::holds_alternative<deposited>(e.event));
      CHECK(std::get<deposited>(e.event).cents == d->cents);
    } else {
      REQUIRE(std::holds_alternative<withdrawn>(e.event));
      CHECK(std::get<withdrawn>(e.event).cents == std::get<withdraw>(cmds[i]).cents);
    }
  }
  // Replies come in command order, so the seqs of the acknowledged ones increase.
  std::uint64_t last = 0;
  std::vector<std::pair<std::size_t, std::uint64_t>> by_cmd;
  for (const auto& [seq, i] : seq_to_cmd)
    by_cmd.emplace_back(i, seq);
  std::sort(by_cmd.begin(), by_cmd.end());
  for (const auto& [i, seq] : by_cmd) {
    CHECK_MESSAGE(seq > last, "command #" << i << " got seq " << seq << " after " << last);
    last = seq;
  }
}

namespace {
void restart_case(std::uint64_t every) {
  strata::test::temp_dir dir{"strata-bank-sys"};
  CAPTURE(every);
  std::map<std::string, std::int64_t> expected;
  {
    auto sys = open_system(test_config(dir.path(), every));
    auto accounts = sys->entities<account>();
    for (int a = 0; a < 5; ++a) {
      const std::string id = "a" + std::to_string(a);
      REQUIRE(static_cast<bool>(accounts.ask(id, open_account{id})));
      for (int k = 1; k <= 20 + a; ++k) {
        auto r = accounts.ask(id, k % 3 == 0 ? account::command{withdraw{k * 2}}
                                             : account::command{deposit{k * 5}});
        if (r) expected[id] = r->balance;
      }
    }
    REQUIRE(static_cast<bool>(accounts.ask("a0", withdraw{expected["a0"]})));
    REQUIRE(static_cast<bool>(accounts.ask("a0", close_account{})));
    expected["a0"] = 0;
  }
  auto sys = open_system(test_config(dir.path(), every));
  auto accounts = sys->entities<account>();
  auto ids = accounts.ids();
  REQUIRE(static_cast<bool>(ids));
  CHECK(ids->size() == expected.size());
  for (const auto& [id, balance] : expected) {
    INFO("account " << id);
    auto h = accounts.history(id);
    REQUIRE(static_cast<bool>(h));
    std::vector<account::event> events;
    for (const auto& e : *h)
      events.push_back(e.event);
    const auto folded = strata::fold<account>(account::state{}, events);
    auto cur = accounts.current(id);
    REQUIRE(static_cast<bool>(cur));
    CHECK(cur->state == folded);
    CHECK(cur->seq == h->size());
    CHECK(folded.balance == balance);
    // And the recovered actor answers the same.
    auto r = accounts.ask(id, get_balance{});
    REQUIRE(static_cast<bool>(r));
    CHECK(r->balance == balance);
    CHECK(r->seq == h->size());
  }
  auto r = accounts.ask("a0", deposit{1});
  REQUIRE_FALSE(static_cast<bool>(r));
  CHECK(strata::rejection_of<account>(r.error()) == account::rejection::closed);
}
} // namespace

TEST_CASE("restart: full replay equals the fold of history") { restart_case(0); }

TEST_CASE("restart: snapshot + tail equals the fold of history") { restart_case(7); }
