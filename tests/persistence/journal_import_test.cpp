// Tests of journal::import (persistence/src/journal_import.cpp): events of another node
// keep their persistence id, seq and timestamp; a re-import is a no-op; a different
// event under a stored (persistence id, seq) and a gap are refused with nothing of the
// batch written; imported positions are recorded (next_imported) and survive reopen.
#include "strata/persistence/journal.hpp"

#include "test_util.hpp"

#include <filesystem>
#include <string>
#include <vector>

using namespace strata::persistence;
using namespace strata::persistence::test;

namespace {

constexpr std::int64_t t0 = 1'700'000'000'000'000'000ll;

/// Event `seq` of `pid` as another node ("node-a") wrote it.
event_record remote_event(const std::string& pid, std::uint64_t seq) {
  event_record e;
  e.persistence_id = pid;
  e.seq = seq;
  e.position = 1000 + seq; // the other node's position: not kept
  e.timestamp_ns = t0 + static_cast<std::int64_t>(seq) * 7;
  e.type = "deposited";
  e.schema_version = 2;
  e.payload = pid + "#" + std::to_string(seq) + std::string("\0\xff", 2);
  e.tags = {"t1"};
  e.correlation_id = "corr";
  e.causation_id = "cause-" + std::to_string(seq);
  e.writer_node = "node-a";
  e.shard_epoch = 3;
  return e;
}

std::vector<event_record> remote_events(const std::string& pid, std::uint64_t from,
                                        std::uint64_t to) {
  std::vector<event_record> v;
  for (auto s = from; s <= to; ++s)
    v.push_back(remote_event(pid, s));
  return v;
}

/// `got` is `want` as stored here: every field but the position (and checksum) kept.
void check_same_event(const event_record& got, const event_record& want) {
  INFO("stream " << want.persistence_id << " seq " << want.seq);
  CHECK(got.persistence_id == want.persistence_id);
  CHECK(got.seq == want.seq);
  CHECK(got.timestamp_ns == want.timestamp_ns);
  CHECK(got.type == want.type);
  CHECK(got.schema_version == want.schema_version);
  CHECK(got.payload == want.payload);
  CHECK(got.tags == want.tags);
  CHECK(got.correlation_id == want.correlation_id);
  CHECK(got.causation_id == want.causation_id);
  CHECK(got.writer_node == want.writer_node);
  CHECK(got.shard_epoch == want.shard_epoch);
}

import_report import_ok(journal& j, const std::vector<event_record>& evs) {
  auto r = j.import(evs);
  STRATA_REQUIRE_VALUE(r);
  return *r;
}

position_range next_imported(const journal& j, std::uint64_t from) {
  auto r = j.next_imported(from);
  STRATA_REQUIRE_VALUE(r);
  return *r;
}

} // namespace

TEST_CASE("import keeps persistence id, seq and timestamp; reads and reopen see it") {
  temp_dir dir;
  auto o = journal_opts(dir.path());
  auto batch = remote_events("account:a", 1, 3);
  auto b = remote_events("account:b", 1, 2);
  batch.insert(batch.begin() + 1, b.begin(), b.end()); // streams interleaved
  {
    auto j = open_journal(o);
    append_ok(*j, {make_write("account:local", 0, {"x"})}); // position 1
    auto rep = import_ok(*j, batch);
    CHECK(rep.imported == 5);
    CHECK(rep.duplicates == 0);
    CHECK(rep.first_position == 2);
    CHECK(rep.last_position == 6);
    CHECK(j->last_position() == 6);
    auto global = read_global_all(*j);
    REQUIRE(global.size() == 6);
    for (std::size_t i = 0; i < batch.size(); ++i) {
      check_same_event(global[i + 1], batch[i]);
      CHECK(global[i + 1].position == i + 2); // a local position
    }
    CHECK(next_imported(*j, 1).first == 2);
    CHECK(next_imported(*j, 1).last == 6);
    CHECK(next_imported(*j, 7).first == 0);
  }
  auto j = open_journal(o); // the index is rebuilt from the log, the ranges are kept
  auto a = load_all(*j, "account:a");
  REQUIRE(a.size() == 3);
  for (std::size_t i = 0; i < 3; ++i)
    check_same_event(a[i], remote_event("account:a", i + 1));
  CHECK(load_all(*j, "account:b").size() == 2);
  CHECK(next_imported(*j, 4).first == 2);
  STRATA_CHECK_OK(j->verify());
  // Local appends continue the imported stream, at new positions that are not imported.
  auto res = append_ok(*j, {make_write("account:a", 3, {"local"})});
  CHECK(res[0].first_seq == 4);
  CHECK(res[0].last_position == 7);
  CHECK(next_imported(*j, 7).first == 0);
  CHECK(load_all(*j, "account:a").back().timestamp_ns > t0 + 21);
}

TEST_CASE("importing the same batch again is a no-op") {
  temp_dir dir;
  auto j = open_journal(journal_opts(dir.path()));
  auto batch = remote_events("account:a", 1, 4);
  import_ok(*j, batch);
  auto before = read_global_all(*j);
  auto rep = import_ok(*j, batch);
  CHECK(rep.imported == 0);
  CHECK(rep.duplicates == 4);
  CHECK(rep.first_position == 0);
  CHECK(read_global_all(*j) == before);
  // Overlapping: 3..6 appends 5 and 6 only.
  rep = import_ok(*j, remote_events("account:a", 3, 6));
  CHECK(rep.imported == 2);
  CHECK(rep.duplicates == 2);
  CHECK(load_all(*j, "account:a").size() == 6);
  // A repeat inside one batch is a duplicate too.
  auto twice = remote_events("account:c", 1, 2);
  twice.push_back(remote_event("account:c", 2));
  rep = import_ok(*j, twice);
  CHECK(rep.imported == 2);
  CHECK(rep.duplicates == 1);
}

TEST_CASE("a different event under a stored (persistence id, seq) is refused; nothing written") {
  temp_dir dir;
  auto j = open_journal(journal_opts(dir.path()));
  import_ok(*j, remote_events("account:a", 1, 3));
  append_ok(*j, {make_write("account:l", 0, {"mine"})});
  auto before = read_global_all(*j);

  auto check_refused = [&](std::vector<event_record> batch, const std::string& what) {
    INFO(what);
    auto r = j->import(batch);
    REQUIRE_FALSE(r);
    CHECK(r.error().code() == errc::conflict);
    CHECK(r.error().message().find(what) != std::string::npos);
    CHECK(read_global_all(*j) == before);
    CHECK(next_imported(*j, before.size() + 1).first == 0);
  };
  auto other = remote_event("account:a", 2);
  other.payload = "another payload";
  std::vector<event_record> batch = remote_events("account:new", 1, 2); // valid on its own
  batch.push_back(other);
  check_refused(batch, "stream 'account:a' seq 2");
  other = remote_event("account:a", 3);
  other.timestamp_ns += 1;
  check_refused({other}, "stream 'account:a' seq 3");
  other = remote_event("account:a", 1);
  other.type = "withdrawn";
  check_refused({remote_event("account:a", 4), other}, "stream 'account:a' seq 1");
  // Against a local append, and two different events under one seq in one batch.
  auto mine = remote_event("account:l", 1);
  check_refused({mine}, "stream 'account:l' seq 1");
  auto dup = remote_event("account:z", 1);
  dup.payload = "z";
  check_refused({remote_event("account:z", 1), dup}, "stream 'account:z' seq 1");
  CHECK(load_all(*j, "account:new").empty());
  CHECK(load_all(*j, "account:z").empty());
}

TEST_CASE("a gap is refused, naming stream, expected and found seq; nothing written") {
  temp_dir dir;
  auto j = open_journal(journal_opts(dir.path()));
  import_ok(*j, remote_events("account:a", 1, 2));
  auto before = read_global_all(*j);
  auto batch = remote_events("account:b", 1, 3);
  batch.push_back(remote_event("account:a", 5));
  auto r = j->import(batch);
  REQUIRE_FALSE(r);
  CHECK(r.error().code() == errc::invalid_argument);
  CHECK(r.error().message().find("'account:a'") != std::string::npos);
  CHECK(r.error().message().find("expected seq 3 but found seq 5") != std::string::npos);
  CHECK(read_global_all(*j) == before);
  CHECK(load_all(*j, "account:b").empty());
  // A new stream must start at seq 1.
  r = j->import({remote_event("account:c", 2)});
  REQUIRE_FALSE(r);
  CHECK(r.error().message().find("expected seq 1 but found seq 2") != std::string::npos);
  // The journal still takes imports and appends afterwards.
  import_ok(*j, remote_events("account:a", 3, 5));
  append_ok(*j, {make_write("account:a", 5, {"after"})});
  CHECK(load_all(*j, "account:a").size() == 6);
}

TEST_CASE("import refuses records without seq or timestamp, and a read-only journal") {
  temp_dir dir;
  auto o = journal_opts(dir.path());
  auto j = open_journal(o);
  auto e = remote_event("account:a", 1);
  e.timestamp_ns = 0;
  auto r = j->import({e});
  REQUIRE_FALSE(r);
  CHECK(r.error().code() == errc::invalid_argument);
  e = remote_event("account:a", 1);
  e.seq = 0;
  CHECK(j->import({e}).error().code() == errc::invalid_argument);
  import_ok(*j, remote_events("account:a", 1, 2));
  auto ro = journal::open_read_only(o);
  STRATA_REQUIRE_VALUE(ro);
  CHECK((*ro)->import(remote_events("account:a", 3, 3)).error().code() == errc::invalid_argument);
  CHECK(next_imported(**ro, 1).first == 1); // the writer's ranges, seen read-only
  CHECK((*ro)->load_stream("account:a")->size() == 2);
}

TEST_CASE("a journal from before import (bank-journal-v1) opens, reports no import, then imports") {
  temp_dir dir;
  std::filesystem::copy_file(STRATA_FIXTURE_DIR "/bank-journal-v1/data.mdb",
                             dir.path() + "/data.mdb");
  auto o = journal_opts(dir.path());
  o.env.map_size_bytes = std::size_t{64} << 20;
  std::uint64_t last = 0;
  std::vector<std::string> streams;
  {
    auto ro = journal::open_read_only(o); // no table `imported` in this file
    STRATA_REQUIRE_VALUE(ro);
    CHECK(next_imported(**ro, 1).first == 0);
    last = (*ro)->last_position();
    REQUIRE(last > 0);
    auto l = (*ro)->list_streams();
    STRATA_REQUIRE_VALUE(l);
    streams = *l;
  }
  {
    auto j = open_journal(o);
    CHECK(next_imported(*j, 1).first == 0);
    auto rep = import_ok(*j, remote_events("account:moved", 1, 2));
    CHECK(rep.first_position == last + 1);
    STRATA_CHECK_OK(j->verify());
  }
  auto ro = journal::open_read_only(o);
  STRATA_REQUIRE_VALUE(ro);
  CHECK(next_imported(**ro, 1).first == last + 1);
  CHECK(next_imported(**ro, 1).last == last + 2);
  auto l = (*ro)->list_streams();
  STRATA_REQUIRE_VALUE(l);
  CHECK(l->size() == streams.size() + 1);
  CHECK((*ro)->load_stream(streams.front())->size() > 0);
  STRATA_CHECK_OK((*ro)->verify());
}

TEST_CASE("verify_all checks table imported") {
  temp_dir dir;
  auto j = open_journal(journal_opts(dir.path()));
  import_ok(*j, remote_events("account:a", 1, 2)); // positions 1-2
  STRATA_CHECK_OK(j->verify());
  auto be64 = [](std::uint64_t v) {
    std::string s(8, '\0');
    for (int i = 7; i >= 0; --i, v >>= 8)
      s[static_cast<std::size_t>(i)] = static_cast<char>(v & 0xFF);
    return s;
  };
  auto t = open_table(j->env(), "imported");
  STRATA_REQUIRE_OK(put(j->env(), t, be64(10), be64(9))); // beyond the log
  auto rep = j->verify_all();
  STRATA_REQUIRE_VALUE(rep);
  REQUIRE(rep->problem_count == 1);
  CHECK(rep->problems[0].table == "imported");
  CHECK(rep->problems[0].key == "position 10");
  CHECK(rep->problems[0].what.find("beyond the log's last position 2") != std::string::npos);
}
