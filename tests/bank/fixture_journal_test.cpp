// The bank journal written before the codegen move (tests/fixtures/bank-journal-v1:
// hand-written mapping, schema version 1 events and snapshots) recovers with the code
// capnpc-strata generates from bank.capnp: same events, same states, same balances,
// and the generated encode writes the stored payloads byte for byte.
#include "bank/account.hpp"
#include "strata/test/temp_dir.hpp"

#include <strata/persistence/journal.hpp>
#include <strata/runtime/all.hpp>

#include <doctest/doctest.h>

#include <filesystem>
#include <string>
#include <vector>

using namespace bank;

namespace {

/// A copy of the fixture (LMDB writes its lock file next to data.mdb).
void copy_fixture(const std::string& dir) {
  std::filesystem::copy_file(STRATA_FIXTURE_DIR "/bank-journal-v1/data.mdb", dir + "/data.mdb",
                             std::filesystem::copy_options::overwrite_existing);
}

std::unique_ptr<strata::system> open_fixture(const std::string& dir) {
  strata::config c;
  c.data_dir = dir;
  c.snapshot_every = 3; // as when it was written
  c.map_size_bytes = std::size_t{64} << 20;
  auto s = strata::system::open(c);
  if (!s) FAIL("cannot open the fixture journal: " << strata::describe(s.error()));
  return std::move(*s);
}

account_state state_of(bool open, bool closed, std::string owner, std::int64_t balance,
                       std::uint64_t seq) {
  account_state s;
  s.open = open;
  s.closed = closed;
  s.owner = std::move(owner);
  s.balance = balance;
  s.seq = seq;
  return s;
}

void check_history(strata::entities<account>& accounts, const std::string& id,
                   const std::vector<account::event>& expected) {
  INFO("account " << id);
  auto h = accounts.history(id);
  REQUIRE_MESSAGE(static_cast<bool>(h), strata::describe(h.error()));
  REQUIRE(h->size() == expected.size());
  for (std::size_t i = 0; i < expected.size(); ++i) {
    CHECK((*h)[i].seq == i + 1);
    CHECK((*h)[i].type == event_type_name(expected[i]));
    CHECK((*h)[i].event == expected[i]);
  }
}

} // namespace

TEST_CASE("the v1 fixture journal: every event decodes to what was recorded") {
  strata::test::temp_dir dir{"strata-bank-fixture"};
  copy_fixture(dir.path());
  auto sys = open_fixture(dir.path());
  auto accounts = sys->entities<account>();
  check_history(accounts, "acct-1", {opened{"ann"}, deposited{500}, withdrawn{200}, deposited{50}});
  check_history(accounts, "acct-2",
                {opened{"Zo\xc3\xab O'Brien"}, deposited{100}, withdrawn{100}, closed{}});
  check_history(accounts, "acct-3", {opened{""}});
}

TEST_CASE("the v1 fixture journal: states recover (snapshot + events) and commands go on") {
  strata::test::temp_dir dir{"strata-bank-fixture"};
  copy_fixture(dir.path());
  auto sys = open_fixture(dir.path());
  auto accounts = sys->entities<account>();
  // current(): the v1 snapshot at seq 3 (decode_state) plus the events after it.
  auto a1 = accounts.current("acct-1");
  REQUIRE_MESSAGE(static_cast<bool>(a1), strata::describe(a1.error()));
  CHECK(a1->state == state_of(true, false, "ann", 350, 4));
  auto a2 = accounts.current("acct-2");
  REQUIRE(static_cast<bool>(a2));
  CHECK(a2->state == state_of(false, true, "Zo\xc3\xab O'Brien", 0, 4));
  auto a3 = accounts.current("acct-3");
  REQUIRE(static_cast<bool>(a3));
  CHECK(a3->state == state_of(true, false, "", 0, 1));
  // The recovered actors answer and append after the recorded events.
  auto b = accounts.ask("acct-1", get_balance{});
  REQUIRE(static_cast<bool>(b));
  CHECK(*b == balance_reply{350, 4});
  auto d = accounts.ask("acct-1", deposit{1});
  REQUIRE(static_cast<bool>(d));
  CHECK(*d == balance_reply{351, 5});
  auto c = accounts.ask("acct-2", deposit{1});
  REQUIRE_FALSE(static_cast<bool>(c));
  CHECK(strata::rejection_of<account>(c.error()) == account::rejection::closed);
}

TEST_CASE("the v1 fixture journal: the generated encode writes the stored bytes again") {
  strata::test::temp_dir dir{"strata-bank-fixture"};
  copy_fixture(dir.path());
  strata::persistence::journal_options opts;
  opts.env.path = dir.path();
  auto j = strata::persistence::journal::open(opts);
  REQUIRE_MESSAGE(static_cast<bool>(j), j.error().to_string());
  std::size_t events = 0;
  for (const char* id : {"account:acct-1", "account:acct-2", "account:acct-3"}) {
    auto records = (*j)->load_stream(id);
    REQUIRE(static_cast<bool>(records));
    for (const auto& r : *records) {
      INFO(id << " seq " << r.seq << " type " << r.type);
      auto e = account::decode(r.type, r.schema_version, r.payload);
      REQUIRE(e.has_value());
      auto again = account::encode(*e);
      CHECK(again.type == r.type);
      CHECK(again.schema_version == r.schema_version);
      CHECK(again.payload == r.payload); // byte for byte: the format did not change
      ++events;
    }
  }
  CHECK(events == 9);
}
