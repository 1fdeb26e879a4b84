// Tests of strata::persistence::snapshot_store (persistence/src/snapshot_store.cpp):
// save and load, keep-N retention, snapshots saved in the same append() call, refusals.
#include "strata/persistence/snapshot_store.hpp"

#include "strata/persistence/journal.hpp"

#include "test_util.hpp"

#include <string>
#include <vector>

using namespace strata::persistence;
using namespace strata::persistence::test;

namespace {

snapshot_record snap(const std::string& pid, std::uint64_t seq) {
  snapshot_record s;
  s.persistence_id = pid;
  s.seq = seq;
  s.timestamp_ns = 1'650'000'000'000'000'000ll + static_cast<std::int64_t>(seq);
  s.type = "state.v" + std::to_string(seq % 3);
  s.schema_version = 4;
  s.payload = pid + "-state-at-" + std::to_string(seq) + std::string("\0\xff", 2);
  return s;
}

void fill(journal& j, const std::string& pid, int n) {
  std::vector<std::string> p;
  for (int i = 0; i < n; ++i)
    p.push_back(pid + "#" + std::to_string(i + 1));
  append_ok(j, {make_write(pid, stream_write::any_seq, p)});
}

std::vector<std::uint64_t> listed(const snapshot_store& s, std::string_view pid) {
  auto l = s.list(pid);
  STRATA_REQUIRE_VALUE(l);
  return *l;
}

std::optional<snapshot_record> latest(const snapshot_store& s, std::string_view pid) {
  auto r = s.load_latest(pid);
  STRATA_REQUIRE_VALUE(r);
  return *r;
}

std::optional<std::uint64_t> at_or_before(const snapshot_store& s, std::string_view pid,
                                          std::uint64_t max_seq) {
  auto r = s.load_at_or_before(pid, max_seq);
  STRATA_REQUIRE_VALUE(r);
  if (!*r) return std::nullopt;
  return (*r)->seq;
}

void check_same(const snapshot_record& got, const snapshot_record& want) {
  CHECK(got.persistence_id == want.persistence_id);
  CHECK(got.seq == want.seq);
  CHECK(got.timestamp_ns == want.timestamp_ns);
  CHECK(got.type == want.type);
  CHECK(got.schema_version == want.schema_version);
  CHECK(got.payload == want.payload);
  CHECK(got.checksum == crc32c(want.payload));
}

} // namespace

TEST_CASE("snapshot_store: save, load_latest, load_at_or_before, list, reopen") {
  temp_dir dir;
  auto o = journal_opts(dir.path());
  {
    auto j = open_journal(o);
    fill(*j, "acct", 10);
    fill(*j, "acct-2", 10); // shares a prefix with "acct"
    auto& s = j->snapshots();
    s.set_keep_n(5);
    CHECK(!latest(s, "acct").has_value());
    CHECK(listed(s, "acct").empty());
    for (std::uint64_t seq : {2, 4, 6})
      STRATA_REQUIRE_OK(s.save(snap("acct", seq)));
    STRATA_REQUIRE_OK(s.save(snap("acct-2", 9)));

    CHECK(listed(s, "acct") == std::vector<std::uint64_t>{2, 4, 6});
    CHECK(listed(s, "acct-2") == std::vector<std::uint64_t>{9});
    auto l = latest(s, "acct");
    REQUIRE(l.has_value());
    check_same(*l, snap("acct", 6));
    CHECK(at_or_before(s, "acct", 5) == std::optional<std::uint64_t>(4));
    CHECK(at_or_before(s, "acct", 4) == std::optional<std::uint64_t>(4));
    CHECK(at_or_before(s, "acct", 100) == std::optional<std::uint64_t>(6));
    CHECK(at_or_before(s, "acct", 1) == std::nullopt);
    auto r = s.load_at_or_before("acct", 3);
    STRATA_REQUIRE_VALUE(r);
    REQUIRE(r->has_value());
    check_same(**r, snap("acct", 2));
    STRATA_REQUIRE_OK(j->close());
  }
  auto j = open_journal(o);
  auto& s = j->snapshots();
  CHECK(listed(s, "acct") == std::vector<std::uint64_t>{2, 4, 6});
  auto l = latest(s, "acct-2");
  REQUIRE(l.has_value());
  check_same(*l, snap("acct-2", 9));
  CHECK(!latest(s, "never-written").has_value());
}

TEST_CASE("snapshot_store: keep-N retention keeps the newest snapshots") {
  temp_dir dir;
  auto j = open_journal(journal_opts(dir.path()));
  fill(*j, "r", 20);
  fill(*j, "other", 20);
  auto& s = j->snapshots();
  CHECK(s.keep_n() >= 1);
  s.set_keep_n(0);
  CHECK(s.keep_n() == 1);

  s.set_keep_n(2);
  STRATA_REQUIRE_OK(s.save(snap("other", 1)));
  STRATA_REQUIRE_OK(s.save(snap("other", 2)));
  for (std::uint64_t seq = 1; seq <= 6; ++seq)
    STRATA_REQUIRE_OK(s.save(snap("r", seq)));
  CHECK(listed(s, "r") == std::vector<std::uint64_t>{5, 6});
  CHECK(at_or_before(s, "r", 4) == std::nullopt); // older ones are really gone
  // Retention is per stream.
  CHECK(listed(s, "other") == std::vector<std::uint64_t>{1, 2});

  s.set_keep_n(3);
  for (std::uint64_t seq = 10; seq <= 13; ++seq)
    STRATA_REQUIRE_OK(s.save(snap("r", seq)));
  CHECK(listed(s, "r") == std::vector<std::uint64_t>{11, 12, 13});
  // Saving an older seq than the kept ones: only the newest keep_n survive.
  STRATA_REQUIRE_OK(s.save(snap("r", 7)));
  CHECK(listed(s, "r") == std::vector<std::uint64_t>{11, 12, 13});
  // Saving the same seq again replaces it.
  auto again = snap("r", 13);
  again.payload = "replacement";
  STRATA_REQUIRE_OK(s.save(again));
  CHECK(listed(s, "r") == std::vector<std::uint64_t>{11, 12, 13});
  auto replaced = latest(s, "r");
  REQUIRE(replaced.has_value());
  CHECK(replaced->payload == "replacement");
  s.set_keep_n(1);
  STRATA_REQUIRE_OK(s.save(snap("r", 20)));
  CHECK(listed(s, "r") == std::vector<std::uint64_t>{20});
  auto l = latest(s, "r");
  REQUIRE(l.has_value());
  check_same(*l, snap("r", 20));
}

TEST_CASE("snapshot_store: refuses unknown streams and seqs outside the stream") {
  temp_dir dir;
  auto j = open_journal(journal_opts(dir.path()));
  fill(*j, "known", 3);
  auto& s = j->snapshots();
  CHECK(s.save(snap("unknown", 1)).code() == errc::invalid_argument);
  CHECK(s.save(snap("known", 0)).code() == errc::invalid_argument);
  CHECK(s.save(snap("known", 4)).code() == errc::invalid_argument);
  CHECK(listed(s, "unknown").empty());
  CHECK(listed(s, "known").empty());
  STRATA_CHECK_OK(s.save(snap("known", 3)));
}

TEST_CASE("snapshot_store: snapshots saved in the same append() call") {
  temp_dir dir;
  auto o = journal_opts(dir.path());
  auto j = open_journal(o);
  j->snapshots().set_keep_n(2);

  // A snapshot of a stream created by the same batch, at its new head.
  auto res = append_ok(*j, {make_write("a", 0, {"a#1", "a#2", "a#3"}), make_write("b", 0, {"b#1"})},
                       {snap("a", 3)});
  CHECK(res[0].last_seq == 3);
  CHECK(listed(j->snapshots(), "a") == std::vector<std::uint64_t>{3});

  // Retention applies to snapshots saved through append too.
  append_ok(*j, {make_write("a", 3, {"a#4"})}, {snap("a", 4)});
  append_ok(*j, {make_write("a", 4, {"a#5"})}, {snap("a", 5), snap("b", 1)});
  CHECK(listed(j->snapshots(), "a") == std::vector<std::uint64_t>{4, 5});
  CHECK(listed(j->snapshots(), "b") == std::vector<std::uint64_t>{1});

  // A snapshot of an unknown stream fails the whole batch: no event, no snapshot.
  const auto last = j->last_position();
  auto r = j->append({make_write("a", 5, {"a#6"})}, {snap("a", 6), snap("ghost", 1)});
  REQUIRE(!r.has_value());
  INFO("error: " << r.error().to_string());
  CHECK(r.error().code() == errc::invalid_argument);
  CHECK(j->last_position() == last);
  auto h = j->highest_seq("a");
  STRATA_REQUIRE_VALUE(h);
  CHECK(*h == 5);
  CHECK(listed(j->snapshots(), "a") == std::vector<std::uint64_t>{4, 5});
  CHECK(listed(j->snapshots(), "ghost").empty());
  // The journal continues at the same position and seq after the refused batch.
  auto next = append_ok(*j, {make_write("a", 5, {"a#6"})});
  CHECK(next[0].first_position == last + 1);
  CHECK(next[0].first_seq == 6);
  CHECK(payloads_of(load_all(*j, "a")).back() == "a#6");
  STRATA_CHECK_OK(j->verify());

  // Survives reopen.
  STRATA_REQUIRE_OK(j->close());
  j.reset();
  j = open_journal(o);
  auto l = latest(j->snapshots(), "a");
  REQUIRE(l.has_value());
  check_same(*l, snap("a", 5));
  CHECK(load_all(*j, "a").size() == 6);
}

TEST_CASE("snapshot_store: save inside a caller's transaction commits or aborts with it") {
  temp_dir dir;
  auto j = open_journal(journal_opts(dir.path()));
  fill(*j, "t", 5);
  auto& s = j->snapshots();
  auto st = j->env().write([&](write_txn& txn) -> status {
    if (auto e = s.save(txn, snap("t", 2)); !e.ok()) return e;
    return {errc::invalid_argument, "abort on purpose"};
  });
  CHECK(st.code() == errc::invalid_argument);
  CHECK(listed(s, "t").empty());
  STRATA_REQUIRE_OK(j->env().write([&](write_txn& txn) {
    return s.save(txn, snap("t", 5));
  }));
  CHECK(listed(s, "t") == std::vector<std::uint64_t>{5});
}
