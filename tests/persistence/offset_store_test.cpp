// Tests of strata::persistence::offset_store (persistence/src/offset_store.cpp): named
// consumer positions, and a view write committed with its offset in ONE transaction.
#include "strata/persistence/offset_store.hpp"

#include "strata/persistence/journal.hpp"

#include "test_util.hpp"

#include <string>
#include <utility>
#include <vector>

using namespace strata::persistence;
using namespace strata::persistence::test;

namespace {

std::optional<std::uint64_t> offset(const offset_store& s, std::string_view consumer) {
  auto r = s.get(consumer);
  STRATA_REQUIRE_VALUE(r);
  return *r;
}

} // namespace

TEST_CASE("offset_store: get, put, overwrite, list sorted, reopen") {
  temp_dir dir;
  auto o = journal_opts(dir.path());
  using entries = std::vector<std::pair<std::string, std::uint64_t>>;
  {
    auto j = open_journal(o);
    auto& s = j->offsets();
    CHECK(offset(s, "bridge") == std::nullopt);
    auto empty = s.list();
    STRATA_REQUIRE_VALUE(empty);
    CHECK(empty->empty());

    STRATA_REQUIRE_OK(s.put("bridge", 17));
    STRATA_REQUIRE_OK(s.put("report", 0));
    STRATA_REQUIRE_OK(s.put("audit", ~std::uint64_t{0}));
    CHECK(offset(s, "bridge") == std::optional<std::uint64_t>(17));
    CHECK(offset(s, "report") == std::optional<std::uint64_t>(0)); // 0 is a position, not absence
    STRATA_REQUIRE_OK(s.put("bridge", 4242));
    CHECK(offset(s, "bridge") == std::optional<std::uint64_t>(4242));

    auto l = s.list();
    STRATA_REQUIRE_VALUE(l);
    CHECK(*l == entries{{"audit", ~std::uint64_t{0}}, {"bridge", 4242}, {"report", 0}});
    STRATA_REQUIRE_OK(j->close());
  }
  auto j = open_journal(o);
  auto l = j->offsets().list();
  STRATA_REQUIRE_VALUE(l);
  CHECK(*l == entries{{"audit", ~std::uint64_t{0}}, {"bridge", 4242}, {"report", 0}});
}

TEST_CASE("offset_store: a view write and its offset commit in one transaction") {
  temp_dir dir;
  auto j = open_journal(journal_opts(dir.path()));
  auto& env = j->env();
  auto view = env.open_table("bank.report");
  STRATA_REQUIRE_VALUE(view);
  auto& offsets = j->offsets();

  STRATA_REQUIRE_OK(env.write([&](write_txn& txn) -> status {
    if (auto s = txn.put(*view, "acct-1", "42"); !s.ok()) return s;
    if (auto s = offsets.put(txn, "report", 10); !s.ok()) return s;
    // Visible inside the transaction before it commits.
    auto in_txn = offsets.get(txn, "report");
    REQUIRE(in_txn.has_value());
    CHECK(*in_txn == std::optional<std::uint64_t>(10));
    return {};
  }));
  CHECK(read_value(env, *view, "acct-1") == std::optional<std::string>("42"));
  CHECK(offset(offsets, "report") == std::optional<std::uint64_t>(10));

  SUBCASE("the function fails after putting both: neither is stored") {
    auto st = env.write([&](write_txn& txn) -> status {
      if (auto s = txn.put(*view, "acct-1", "99"); !s.ok()) return s;
      if (auto s = offsets.put(txn, "report", 11); !s.ok()) return s;
      if (auto s = offsets.put(txn, "new-consumer", 5); !s.ok()) return s;
      return {errc::unavailable, "downstream refused"};
    });
    CHECK(st.code() == errc::unavailable);
    CHECK(read_value(env, *view, "acct-1") == std::optional<std::string>("42"));
    CHECK(offset(offsets, "report") == std::optional<std::uint64_t>(10));
    CHECK(offset(offsets, "new-consumer") == std::nullopt);
  }
  SUBCASE("a reader sees both or neither") {
    STRATA_REQUIRE_OK(env.write([&](write_txn& txn) -> status {
      if (auto s = txn.put(*view, "acct-1", "43"); !s.ok()) return s;
      return offsets.put(txn, "report", 11);
    }));
    STRATA_REQUIRE_OK(env.read([&](read_txn& txn) -> status {
      auto v = txn.get(*view, "acct-1");
      auto p = offsets.get(txn, "report");
      REQUIRE(v.has_value());
      REQUIRE(p.has_value());
      CHECK(*v == std::optional<std::string_view>("43"));
      CHECK(*p == std::optional<std::uint64_t>(11));
      return {};
    }));
  }
}
