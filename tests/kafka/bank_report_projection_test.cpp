// Tests of samples/bank/report_projection.cpp: the bank report fed from the journal and
// from Kafka (through the bridge and a consumer) equals the fold of the journal.
#include "kafka_test_util.hpp"

#include "report_projection.hpp"

#include "bank/schema/bank.capnp.h"
#include "strata/kafka/bridge.hpp"
#include "strata/kafka/consumer.hpp"
#include "strata/kafka/mock.hpp"

#include <capnp/message.h>
#include <capnp/serialize.h>

using namespace strata::persistence;
using namespace strata::kafka;
using namespace strata::persistence::test;

namespace {

std::string to_bytes(capnp::MallocMessageBuilder& mb) {
  auto words = capnp::messageToFlatArray(mb);
  auto bytes = words.asBytes();
  return std::string(reinterpret_cast<const char*>(bytes.begin()), bytes.size());
}

event_data bank_event(const std::string& type, std::int64_t cents, const std::string& owner = {}) {
  capnp::MallocMessageBuilder mb;
  if (type == "opened")
    mb.initRoot<bank::schema::Opened>().setOwner(owner);
  else if (type == "deposited")
    mb.initRoot<bank::schema::Deposited>().setCents(cents);
  else if (type == "withdrawn")
    mb.initRoot<bank::schema::Withdrawn>().setCents(cents);
  else
    mb.initRoot<bank::schema::Closed>();
  event_data e;
  e.type = type;
  e.payload = to_bytes(mb);
  return e;
}

/// Random account histories: open, deposits/withdrawals (never below zero), some close.
template <class Rng>
void write_bank_history(journal& j, Rng& rng, int accounts, int events) {
  std::vector<std::int64_t> balance(static_cast<std::size_t>(accounts), -1); // -1: not open
  std::vector<bool> closed(static_cast<std::size_t>(accounts), false);
  std::uniform_int_distribution<int> pick(0, accounts - 1), cents(1, 50'000), op(0, 99);
  for (int i = 0; i < events; i += 10) {
    std::map<int, std::vector<event_data>> per;
    for (int k = 0; k < 10; ++k) {
      int a = pick(rng);
      auto ua = static_cast<std::size_t>(a);
      if (closed[ua]) continue;
      if (balance[ua] < 0) {
        per[a].push_back(bank_event("opened", 0, "owner-" + std::to_string(a)));
        balance[ua] = 0;
      } else if (int o = op(rng); o < 60) {
        auto c = cents(rng);
        per[a].push_back(bank_event("deposited", c));
        balance[ua] += c;
      } else if (o < 97) {
        if (balance[ua] == 0) continue;
        auto c = std::min<std::int64_t>(balance[ua], cents(rng));
        per[a].push_back(bank_event("withdrawn", c));
        balance[ua] -= c;
      } else if (balance[ua] == 0) {
        per[a].push_back(bank_event("closed", 0));
        closed[ua] = true;
      }
    }
    std::vector<stream_write> batch;
    for (auto& [a, evs] : per) {
      stream_write w;
      w.persistence_id = "account:acct-" + std::to_string(a);
      auto head = j.highest_seq(w.persistence_id);
      STRATA_REQUIRE_VALUE(head);
      w.expected_seq = *head;
      w.events = std::move(evs);
      batch.push_back(std::move(w));
    }
    // another aggregate type in the same log: not part of the report
    batch.push_back(make_write("order:o-" + std::to_string(i), 0, {"x"}));
    append_ok(j, batch);
  }
}

bank::report fold_journal(const journal& j) {
  bank::report r;
  for (auto& e : read_global_all(j)) {
    if (e.persistence_id.rfind("account:", 0) != 0) continue;
    auto& acc = r.accounts[e.persistence_id.substr(8)];
    STRATA_REQUIRE_OK(bank::fold_event(acc, e));
  }
  for (auto& [id, t] : r.accounts) {
    r.total.deposited_cents += t.deposited_cents;
    r.total.withdrawn_cents += t.withdrawn_cents;
    r.total.deposits += t.deposits;
    r.total.withdrawals += t.withdrawals;
  }
  return r;
}

} // namespace

TEST_CASE("bank report from the journal equals the fold of the journal") {
  auto seed = test_seed();
  std::mt19937_64 rng{seed};
  temp_dir dir{"strata-bank-report"};
  auto j = open_journal(journal_opts(dir.sub("j")));
  write_bank_history(*j, rng, 40, 3'000);
  auto rp = bank::report_projection::open(*j);
  STRATA_REQUIRE_VALUE(rp);
  auto tail = journal_projection::open(*j, (*rp)->projection(), {});
  STRATA_REQUIRE_VALUE(tail);
  STRATA_REQUIRE_OK((*tail)->catch_up(30'000));
  auto rep = (*rp)->read();
  STRATA_REQUIRE_VALUE(rep);
  auto expected = fold_journal(*j);
  CHECK(rep->accounts.size() == expected.accounts.size());
  CHECK(*rep == expected);
  CHECK(rep->total.balance_cents() >= 0);
}

TEST_CASE("bank report fed from Kafka equals the fold of the journal") {
  STRATA_TEST_SEED(seed);
  bridge_rig rig{3, seed};
  auto& j = *rig.j;
  write_bank_history(j, rig.rng, 40, 2'000);
  STRATA_REQUIRE_OK(rig.mock->create_topic("strata.order", 64));
  rig.opts.types.clear(); // "account:acct-1" → type "account" → topic strata.account
  CHECK(rig.start().topic_for("account:acct-1") == "strata.account");
  CHECK(rig.stop(30'000) == 0);

  auto reader = open_journal(journal_opts(rig.dir.sub("reader")));
  auto rp = bank::report_projection::open(*reader);
  STRATA_REQUIRE_VALUE(rp);
  consumer_options co;
  co.bootstrap_servers = rig.mock->bootstrap_servers();
  co.topics = {"strata.account"};
  auto c = projection_consumer::open(*reader, (*rp)->projection(), co);
  STRATA_REQUIRE_VALUE(c);
  STRATA_REQUIRE_OK((*c)->catch_up(30'000));
  auto rep = (*rp)->read();
  STRATA_REQUIRE_VALUE(rep);
  CHECK(*rep == fold_journal(j));
}

TEST_CASE("fold_event rejects unknown types and versions and malformed payloads") {
  bank::account_totals t;
  event_record e;
  e.persistence_id = "account:x";
  e.seq = 1;
  e.type = "teleported";
  CHECK(bank::fold_event(t, e).code() == errc::invalid_argument);
  e.type = "deposited";
  e.schema_version = 2;
  CHECK(bank::fold_event(t, e).code() == errc::invalid_argument);
  e.schema_version = 1;
  e.payload = "garbage!";
  CHECK(bank::fold_event(t, e).code() == errc::corrupt);
  CHECK(t == bank::account_totals{});
}
