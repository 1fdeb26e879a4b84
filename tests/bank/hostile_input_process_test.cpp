// Hostile ids and owners (issue 7, finding 7): the CLI and the runtime reject ids and
// owners with control characters, and every strata-bank output escapes what it prints,
// so one line of `balances`, `history`, `balance` or `report` is always one record —
// also for text stored before the rules existed (written here straight into the
// journal or through the runtime, which does not check owners).
#include "bank/account.hpp"
#include "bank_process.hpp"

#include <strata/persistence/journal.hpp>
#include <strata/runtime/all.hpp>

#include <doctest/doctest.h>

#include <sstream>
#include <string>
#include <vector>

using namespace bank::test;

namespace {

const std::string forged_tail = "\nseq=99 time=2026-01-01T00:00:00Z type=deposited amount=5";

struct fixture {
  temp_dir dir{"strata-bank-hostile"};
  std::string data = dir.sub("data");
  run_result bank(std::vector<std::string> args) {
    args.insert(args.begin(), {"--data", data, "--durability", "nosync"});
    return run(dir.path(), args);
  }
};

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  std::string l;
  while (std::getline(in, l))
    out.push_back(l);
  return out;
}

bool contains(const std::string& hay, const std::string& needle) {
  return hay.find(needle) != std::string::npos;
}

/// Appends `events` to stream `pid` directly (no runtime, no id rules): how an older
/// version or another tool could have stored them.
void append_raw(const std::string& data, const std::string& pid,
                const std::vector<bank::account::event>& events) {
  strata::persistence::journal_options o;
  o.env.path = data;
  o.env.sync = strata::persistence::sync_mode::nosync;
  auto j = strata::persistence::journal::open(o);
  REQUIRE_MESSAGE(j, j.error().to_string());
  strata::persistence::stream_write w;
  w.persistence_id = pid;
  auto head = (*j)->highest_seq(pid);
  REQUIRE(head);
  w.expected_seq = *head;
  for (const auto& e : events) {
    auto b = bank::account::encode(e);
    strata::persistence::event_data d;
    d.type = b.type;
    d.schema_version = b.schema_version;
    d.payload = b.payload;
    w.events.push_back(std::move(d));
  }
  auto r = (*j)->append({w});
  REQUIRE(r);
  REQUIRE_MESSAGE((*r)[0].st.ok(), (*r)[0].st.to_string());
  REQUIRE((*j)->close().ok());
}

} // namespace

TEST_CASE_FIXTURE(fixture, "the CLI rejects ids and owners with control characters (exit 2)") {
  const std::vector<std::string> bad_ids = {
    "a\nb",        "acct-1" + forged_tail, "a\tb", "a\rb", "a\x1b[31mb", "a\x7f", "a\xC2\x85",
    "bad\xFFutf8", std::string(300, 'x')};
  for (const auto& id : bad_ids) {
    for (auto args : {std::vector<std::string>{"open", id},
                      {"deposit", id, "5"},
                      {"history", id},
                      {"balance", id}}) {
      auto r = bank(args);
      INFO(args[0] << " " << strata::escape_text(id) << ": " << r.err);
      CHECK(r.exit_code == 2);
      CHECK(contains(r.err, "bad account ID"));
      CHECK(r.out.empty());
    }
  }
  auto r = bank({"open", "ok-1", "--owner", "x" + forged_tail});
  INFO(r.err);
  CHECK(r.exit_code == 2);
  CHECK(contains(r.err, "--owner must be printable text"));
  CHECK(bank({"open", "ok-1", "--owner", "Zoë Smith"}).exit_code == 0);
  r = bank({"balances"});
  CHECK(r.out == "ok-1 balance=0\n"); // nothing of the rejected ones was stored
  r = bank({"history", "ok-1"});
  auto h = parse_history(r.out);
  REQUIRE(h.size() == 1);
  CHECK(h[0].owner == "Zoë Smith");
}

TEST_CASE_FIXTURE(fixture, "the runtime rejects a hostile id with invalid_argument") {
  strata::config c;
  c.data_dir = data;
  c.durability = strata::persistence::sync_mode::nosync;
  auto sys = strata::system::open(c);
  REQUIRE(sys);
  auto accounts = (*sys)->entities<bank::account>();
  auto r = accounts.ask("acct-1" + forged_tail, bank::open_account{"x"});
  REQUIRE_FALSE(r);
  CHECK(strata::runtime_error_of(r.error()) == strata::runtime_errc::invalid_argument);
  CHECK(contains(strata::describe(r.error()), "control character"));
  auto h = accounts.history("a\nb");
  REQUIRE_FALSE(h);
  CHECK(strata::runtime_error_of(h.error()) == strata::runtime_errc::invalid_argument);
  auto ids = accounts.ids();
  REQUIRE(ids);
  CHECK(ids->empty());
}

TEST_CASE_FIXTURE(fixture, "stored hostile owners and ids are printed escaped: one line per "
                           "record, nothing forged") {
  {
    // The runtime does not check owners (the domain's business): store a hostile one.
    strata::config c;
    c.data_dir = data;
    c.durability = strata::persistence::sync_mode::nosync;
    auto sys = strata::system::open(c);
    REQUIRE(sys);
    auto accounts = (*sys)->entities<bank::account>();
    REQUIRE(accounts.ask("h-1", bank::open_account{"x" + forged_tail + "\t\\"}));
    REQUIRE(accounts.ask("h-1", bank::deposit{3}));
  }
  // An id stored against the rules (as an older version could have).
  append_raw(data, "account:acct-9 balance=1000000\nacct-8",
             {bank::opened{"y"}, bank::deposited{1}});
  append_raw(data, "account:sp ace", {bank::opened{"z"}, bank::deposited{2}});

  auto r = bank({"history", "h-1"});
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  auto lines = lines_of(r.out);
  REQUIRE(lines.size() == 2); // opened, deposited: the owner's newline did not split it
  CHECK(lines[0].rfind("seq=1 ", 0) == 0);
  CHECK(contains(lines[0], "owner=x\\nseq=99 time=2026-01-01T00:00:00Z type=deposited amount=5"
                           "\\t\\\\"));
  auto h = parse_history(r.out);
  REQUIRE(h.size() == 2);
  CHECK(h[1].seq == 2);
  CHECK(h[1].amount == 3);

  r = bank({"balances"});
  INFO(r.err);
  for (const auto& l : lines_of(r.out)) {
    INFO(l);
    CHECK(l.find(' ') == l.rfind(' ')); // "ID balance=N": the id has no raw space
    CHECK(l.rfind("acct-8", 0) != 0);
    CHECK(l.rfind("acct-9 ", 0) != 0);
  }
  auto b = parse_balances(r.out);
  CHECK(b["h-1"] == 3);
  CHECK(b["sp\\x20ace"] == 2);
  // The id against the rules: not answered as if it were fine, and never unescaped.
  CHECK(b.count("acct-9 balance=1000000") == 0);
  CHECK(r.exit_code == 4);
  CHECK(contains(r.err, "acct-9 balance=1000000\\nacct-8"));
  CHECK(lines_of(r.err).size() == 1);

  r = bank({"report"});
  REQUIRE(r.exit_code == 0);
  lines = lines_of(r.out);
  CHECK(lines.size() == 4); // three accounts, then the total
  CHECK(contains(r.out, "acct-9\\x20balance=1000000\\nacct-8 deposits=1 withdrawals=0\n"));
  CHECK(contains(r.out, "sp\\x20ace deposits=2 withdrawals=0\n"));
}
