// Tests of journal::discard_after (persistence/src/journal_discard.cpp): a stream's
// events after a seq leave the log, the index and the snapshot store in one
// transaction; appends and imports continue right after the kept seq; readers and
// read_global (what the Kafka bridge reads) never see the discarded events; verify
// stays clean, also after reopen and with the index not yet flushed.
#include "strata/persistence/journal.hpp"
#include "strata/persistence/snapshot_store.hpp"

#include "test_util.hpp"

#include <lmdb.h>

#include <string>
#include <vector>

using namespace strata::persistence;
using namespace strata::persistence::test;

namespace {

constexpr std::int64_t t0 = 1'700'000'000'000'000'000ll;

event_record remote_event(const std::string& pid, std::uint64_t seq, const std::string& tag) {
  event_record e;
  e.persistence_id = pid;
  e.seq = seq;
  e.timestamp_ns = t0 + static_cast<std::int64_t>(seq);
  e.type = "deposited";
  e.payload = tag + "#" + std::to_string(seq);
  e.writer_node = "node-b";
  return e;
}

snapshot_record snap(const std::string& pid, std::uint64_t seq) {
  snapshot_record s;
  s.persistence_id = pid;
  s.seq = seq;
  s.timestamp_ns = t0;
  s.type = "state";
  s.payload = pid + "@" + std::to_string(seq);
  return s;
}

std::uint64_t head_of(const journal& j, std::string_view pid) {
  auto r = j.highest_seq(pid);
  STRATA_REQUIRE_VALUE(r);
  return *r;
}

discard_report discard_ok(journal& j, const std::vector<discard_point>& points) {
  auto r = j.discard_after(points);
  STRATA_REQUIRE_VALUE(r);
  return *r;
}

/// Stream pids of the global log, in position order.
std::vector<std::string> global_payloads(const journal& j) {
  std::vector<std::string> out;
  for (auto& e : read_global_all(j))
    out.push_back(e.payload);
  return out;
}

} // namespace

TEST_CASE("discard_after: the tail leaves reads, the log and the snapshots; appends continue") {
  journal_options o;
  for (std::size_t flush : {std::size_t{100'000}, std::size_t{1}}) { // pending, then indexed
    CAPTURE(flush);
    temp_dir d;
    o = journal_opts(d.path(), flush);
    {
      auto j = open_journal(o);
      append_ok(*j,
                {make_write("account:a", 0, {"a1", "a2", "a3", "a4", "a5"}),
                 make_write("account:b", 0, {"b1", "b2"})},
                {snap("account:a", 2), snap("account:a", 4)});
      append_ok(*j, {make_write("account:b", 2, {"b3"})});
      auto rep = discard_ok(*j, {{"account:a", 3}});
      CHECK(rep.events == 2);
      CHECK(rep.streams == 1);
      CHECK(rep.snapshots == 1);
      CHECK(head_of(*j, "account:a") == 3);
      CHECK(payloads_of(load_all(*j, "account:a")) == std::vector<std::string>{"a1", "a2", "a3"});
      CHECK(global_payloads(*j) == std::vector<std::string>{"a1", "a2", "a3", "b1", "b2", "b3"});
      auto latest = j->snapshots().load_latest("account:a");
      STRATA_REQUIRE_VALUE(latest);
      REQUIRE(*latest);
      CHECK((*latest)->seq == 2);
      check_clean(*j);
      // The next event is seq 4 again, at a new position.
      append_ok(*j, {make_write("account:a", 3, {"A4"})});
      CHECK(payloads_of(load_all(*j, "account:a")) ==
            std::vector<std::string>{"a1", "a2", "a3", "A4"});
      check_clean(*j);
    }
    auto j = open_journal(o); // the cut survives reopen (and the re-index of the tail)
    CHECK(head_of(*j, "account:a") == 4);
    CHECK(global_payloads(*j) ==
          std::vector<std::string>{"a1", "a2", "a3", "b1", "b2", "b3", "A4"});
    check_clean(*j);
  }
}

TEST_CASE("discard_after: another owner's history imported over the discarded tail") {
  temp_dir dir;
  auto j = open_journal(journal_opts(dir.path()));
  append_ok(*j, {make_write("account:a", 0, {"a1", "a2", "a3", "a4", "a5"})});
  auto kept = load_all(*j, "account:a");
  // Kafka holds 1..3 as here and a different 4..6: the import conflicts until the cut.
  std::vector<event_record> kafka(kept.begin(), kept.begin() + 3);
  for (std::uint64_t s = 4; s <= 6; ++s)
    kafka.push_back(remote_event("account:a", s, "other"));
  auto bad = j->import(kafka);
  REQUIRE(!bad);
  CHECK(bad.error().code() == errc::conflict);
  CHECK(discard_ok(*j, {{"account:a", 3}}).events == 2);
  auto r = j->import(kafka);
  STRATA_REQUIRE_VALUE(r);
  CHECK(r->imported == 3);
  CHECK(r->duplicates == 3);
  CHECK(payloads_of(load_all(*j, "account:a")) ==
        std::vector<std::string>{"a1", "a2", "a3", "other#4", "other#5", "other#6"});
  check_clean(*j);
}

TEST_CASE("discard_after: a stream cut to 0 is gone; a later write creates it again") {
  temp_dir dir;
  auto o = journal_opts(dir.path());
  {
    auto j = open_journal(o);
    append_ok(*j, {make_write("account:a", 0, {"a1", "a2"}), make_write("account:b", 0, {"b1"})},
              {snap("account:a", 1)});
    auto rep = discard_ok(*j, {{"account:a", 0}, {"account:b", 1}, {"account:zz", 0}});
    CHECK(rep.events == 2);
    CHECK(rep.streams == 1); // b is at 1 already, zz is unknown
    CHECK(rep.snapshots == 1);
    CHECK(head_of(*j, "account:a") == 0);
    auto streams = j->list_streams();
    STRATA_REQUIRE_VALUE(streams);
    CHECK(*streams == std::vector<std::string>{"account:b"});
    check_clean(*j);
    append_ok(*j, {make_write("account:a", 0, {"x1"})});
    CHECK(payloads_of(load_all(*j, "account:a")) == std::vector<std::string>{"x1"});
    check_clean(*j);
  }
  auto j = open_journal(o);
  CHECK(payloads_of(load_all(*j, "account:a")) == std::vector<std::string>{"x1"});
  check_clean(*j);
}

TEST_CASE("discard_after: nothing to cut writes no transaction") {
  temp_dir dir;
  auto j = open_journal(journal_opts(dir.path()));
  append_ok(*j, {make_write("account:a", 0, {"a1", "a2"})});
  REQUIRE(j->flush_index().ok());
  const auto before = last_txn(*j);
  auto rep = discard_ok(*j, {{"account:a", 2}, {"account:a2", 0}});
  CHECK(rep.events == 0);
  CHECK(rep.streams == 0);
  CHECK(last_txn(*j) == before);
}

TEST_CASE("discard_after: errors") {
  temp_dir dir;
  auto o = journal_opts(dir.path());
  auto j = open_journal(o);
  append_ok(*j, {make_write("account:a", 0, {"a1", "a2"})});
  SUBCASE("named twice") {
    auto r = j->discard_after({{"account:a", 1}, {"account:a", 0}});
    REQUIRE(!r);
    CHECK(r.error().code() == errc::invalid_argument);
    CHECK(head_of(*j, "account:a") == 2);
  }
  SUBCASE("empty persistence id") {
    auto r = j->discard_after("", 1);
    REQUIRE(!r);
    CHECK(r.error().code() == errc::invalid_argument);
  }
  SUBCASE("below a base") {
    REQUIRE(j->import_base(snap("account:b", 10)));
    auto r = j->discard_after("account:b", 5);
    REQUIRE(!r);
    CHECK(r.error().code() == errc::invalid_argument);
    CHECK(r.error().message().find("base") != std::string::npos);
    CHECK(head_of(*j, "account:b") == 10);
    // At the base itself: nothing past it is held, nothing to do.
    auto at = j->discard_after("account:b", 10);
    STRATA_REQUIRE_VALUE(at);
    CHECK(at->streams == 0);
    check_clean(*j);
  }
  SUBCASE("closed") {
    REQUIRE(j->close().ok());
    auto r = j->discard_after("account:a", 1);
    REQUIRE(!r);
    CHECK(r.error().code() == errc::closed);
  }
  SUBCASE("read-only") {
    auto ro = journal::open_read_only(o);
    STRATA_REQUIRE_VALUE(ro);
    auto r = (*ro)->discard_after("account:a", 1);
    REQUIRE(!r);
    CHECK(r.error().code() == errc::invalid_argument);
  }
}
