// Tests of journal::import_base and journal::first_held_seq
// (persistence/src/journal_import.cpp): a stream started or moved forward at a snapshot
// continues at its seq + 1 for append and import, reads, verify_all, repair, reopen,
// delete_events_before and read-only opens see the base, and a base costs the same at
// any seq.
#include "strata/persistence/journal.hpp"
#include "strata/persistence/snapshot_store.hpp"

#include "test_util.hpp"

#include <filesystem>
#include <future>
#include <string>
#include <vector>

using namespace strata::persistence;
using namespace strata::persistence::test;

namespace {

constexpr std::int64_t t0 = 1'700'000'000'000'000'000ll;

snapshot_record snap(const std::string& pid, std::uint64_t seq) {
  snapshot_record s;
  s.persistence_id = pid;
  s.seq = seq;
  s.timestamp_ns = t0;
  s.type = "state";
  s.payload = pid + "@" + std::to_string(seq);
  return s;
}

/// Event `seq` of `pid` as another node wrote it (for import).
event_record remote_event(const std::string& pid, std::uint64_t seq) {
  event_record e;
  e.persistence_id = pid;
  e.seq = seq;
  e.timestamp_ns = t0 + static_cast<std::int64_t>(seq);
  e.type = "deposited";
  e.payload = pid + "#" + std::to_string(seq);
  e.writer_node = "node-a";
  return e;
}

base_report base_ok(journal& j, const snapshot_record& s) {
  auto r = j.import_base(s);
  STRATA_REQUIRE_VALUE(r);
  return *r;
}

std::uint64_t head_of(const journal& j, std::string_view pid) {
  auto r = j.highest_seq(pid);
  STRATA_REQUIRE_VALUE(r);
  return *r;
}

std::uint64_t first_held(const journal& j, std::string_view pid) {
  auto r = j.first_held_seq(pid);
  STRATA_REQUIRE_VALUE(r);
  return *r;
}

std::vector<std::uint64_t> seqs_of(const journal& j, std::string_view pid, std::uint64_t from = 1,
                                   std::uint64_t to = journal::max_seq) {
  auto r = j.load_stream(pid, from, to);
  STRATA_REQUIRE_VALUE(r);
  std::vector<std::uint64_t> out;
  for (auto& e : *r)
    out.push_back(e.seq);
  auto views = load_views(j, pid, from, to); // the copy-free path agrees
  STRATA_REQUIRE_VALUE(views);
  CHECK(views->size() == out.size());
  return out;
}

std::uint64_t latest_snapshot_seq(journal& j, std::string_view pid) {
  auto r = j.snapshots().load_latest(pid);
  STRATA_REQUIRE_VALUE(r);
  return *r ? (*r)->seq : 0;
}

/// Bytes of all keys and values of the tables that a base writes to.
std::uint64_t table_bytes(journal& j) {
  std::uint64_t n = 0;
  for (auto name : {"index", "bases", "streams", "stream_names", "snapshots", "meta"}) {
    auto t = open_table(j.env(), name);
    STRATA_REQUIRE_OK(j.env().read([&](read_txn& txn) {
      return txn.scan(t, {}, [&](std::string_view k, std::string_view v) {
        n += k.size() + v.size();
        return true;
      });
    }));
  }
  return n;
}

} // namespace

TEST_CASE("base on a new stream: append and import continue at base + 1; survives reopen") {
  temp_dir dir;
  auto o = journal_opts(dir.path());
  {
    auto j = open_journal(o);
    auto r = base_ok(*j, snap("account:a", 10));
    CHECK(r.moved);
    CHECK(r.absent == 10);
    CHECK(r.snapshot_saved);
    CHECK(head_of(*j, "account:a") == 10);
    CHECK(first_held(*j, "account:a") == 11);
    CHECK(seqs_of(*j, "account:a").empty());
    CHECK(latest_snapshot_seq(*j, "account:a") == 10);
    // The writer's cached state learned the head: expected 0 is now a conflict.
    auto stale = j->append({make_write("account:a", 0, {"x"})});
    STRATA_REQUIRE_VALUE(stale);
    CHECK((*stale)[0].st.code() == errc::conflict);
    auto w = append_ok(*j, {make_write("account:a", 10, {"p11"})});
    CHECK(w[0].first_seq == 11);
    auto imp = j->import({remote_event("account:a", 12)});
    STRATA_REQUIRE_VALUE(imp);
    CHECK(imp->imported == 1);
    CHECK(seqs_of(*j, "account:a") == std::vector<std::uint64_t>{11, 12});
    CHECK(seqs_of(*j, "account:a", 3, 11) == std::vector<std::uint64_t>{11});
    CHECK(seqs_of(*j, "account:a", 3, 9).empty());
    CHECK(read_global_all(*j).size() == 2);
    auto ids = j->list_streams();
    STRATA_REQUIRE_VALUE(ids);
    CHECK(*ids == std::vector<std::string>{"account:a"});
    check_clean(*j);
    STRATA_REQUIRE_OK(j->flush_index());
    CHECK(seqs_of(*j, "account:a") == std::vector<std::uint64_t>{11, 12});
    check_clean(*j);
  }
  {
    auto j = open_journal(o);
    CHECK(head_of(*j, "account:a") == 12);
    CHECK(first_held(*j, "account:a") == 11);
    CHECK(seqs_of(*j, "account:a") == std::vector<std::uint64_t>{11, 12});
    CHECK(latest_snapshot_seq(*j, "account:a") == 10);
    check_clean(*j);
  }
  auto ro = journal::open_read_only(o);
  STRATA_REQUIRE_VALUE(ro);
  CHECK(head_of(**ro, "account:a") == 12);
  CHECK(first_held(**ro, "account:a") == 11);
  CHECK(seqs_of(**ro, "account:a") == std::vector<std::uint64_t>{11, 12});
  check_clean(**ro);
  auto refused = (*ro)->import_base(snap("account:b", 3));
  REQUIRE(!refused);
  CHECK(refused.error().code() == errc::invalid_argument);
}

TEST_CASE("base on a stream with events: the head moves, the events below stay readable") {
  for (bool flushed : {false, true}) {
    INFO("index flushed before the base: " << flushed);
    temp_dir dir;
    auto o = journal_opts(dir.path());
    {
      auto j = open_journal(o);
      append_ok(*j, {make_write("s", 0, {"1", "2", "3"})});
      if (flushed) STRATA_REQUIRE_OK(j->flush_index());
      auto r = base_ok(*j, snap("s", 10));
      CHECK(r.moved);
      CHECK(r.absent == 7);
      CHECK(head_of(*j, "s") == 10);
      CHECK(first_held(*j, "s") == 1);
      CHECK(seqs_of(*j, "s") == std::vector<std::uint64_t>{1, 2, 3});
      append_ok(*j, {make_write("s", 10, {"11", "12"})});
      CHECK(seqs_of(*j, "s") == std::vector<std::uint64_t>{1, 2, 3, 11, 12});
      CHECK(seqs_of(*j, "s", 3, 11) == std::vector<std::uint64_t>{3, 11});
      check_clean(*j);
      // Seq <= base is a duplicate that cannot be compared here; a gap after it is refused.
      auto dup = j->import({remote_event("s", 5)});
      REQUIRE(!dup);
      CHECK(dup.error().code() == errc::conflict);
      auto gap = j->import({remote_event("s", 14)});
      REQUIRE(!gap);
      CHECK(gap.error().code() == errc::invalid_argument);
    }
    auto j = open_journal(o);
    CHECK(seqs_of(*j, "s") == std::vector<std::uint64_t>{1, 2, 3, 11, 12});
    CHECK(head_of(*j, "s") == 12);
    check_clean(*j);
  }
}

TEST_CASE("base at or below the head only saves the snapshot, and not when a later one exists") {
  temp_dir dir;
  auto j = open_journal(journal_opts(dir.path()));
  append_ok(*j, {make_write("s", 0, {"1", "2", "3", "4", "5"})});
  auto r = base_ok(*j, snap("s", 3));
  CHECK(!r.moved);
  CHECK(r.absent == 0);
  CHECK(r.snapshot_saved);
  CHECK(latest_snapshot_seq(*j, "s") == 3);
  CHECK(head_of(*j, "s") == 5);
  STRATA_REQUIRE_OK(j->snapshots().save(snap("s", 5)));
  r = base_ok(*j, snap("s", 4));
  CHECK(!r.snapshot_saved);
  CHECK(latest_snapshot_seq(*j, "s") == 5);
  CHECK(seqs_of(*j, "s") == std::vector<std::uint64_t>{1, 2, 3, 4, 5});
  CHECK(first_held(*j, "s") == 1);
  check_clean(*j);
}

TEST_CASE("a second import_base of the same snapshot changes nothing") {
  temp_dir dir;
  auto j = open_journal(journal_opts(dir.path()));
  CHECK(base_ok(*j, snap("s", 7)).moved);
  auto before = table_bytes(*j);
  auto r = base_ok(*j, snap("s", 7));
  CHECK(!r.moved);
  CHECK(r.absent == 0);
  CHECK(!r.snapshot_saved);
  CHECK(table_bytes(*j) == before);
  CHECK(head_of(*j, "s") == 7);
  check_clean(*j);
}

TEST_CASE("bases in a row, with events between, read, verify and repair") {
  temp_dir dir;
  auto o = journal_opts(dir.path());
  {
    auto j = open_journal(o);
    base_ok(*j, snap("c", 5));
    append_ok(*j, {make_write("c", 5, {"6", "7"})});
    base_ok(*j, snap("c", 100));
    base_ok(*j, snap("c", 200)); // right after another base: the ranges chain
    std::promise<result<std::vector<write_result>>> done;
    j->append_async({make_write("c", 200, {"201"})}, {}, [&](auto r) {
      done.set_value(std::move(r));
    });
    auto r = done.get_future().get();
    STRATA_REQUIRE_VALUE(r);
    CHECK((*r)[0].first_seq == 201);
    CHECK(seqs_of(*j, "c") == std::vector<std::uint64_t>{6, 7, 201});
    CHECK(seqs_of(*j, "c", 8, 200).empty());
    check_clean(*j);
  }
  auto rep = journal::repair(o);
  STRATA_REQUIRE_VALUE(rep);
  CHECK(rep->before.ok());
  CHECK(rep->after.ok());
  CHECK(rep->snapshots_dropped.empty());
  auto j = open_journal(o);
  CHECK(seqs_of(*j, "c") == std::vector<std::uint64_t>{6, 7, 201});
  CHECK(head_of(*j, "c") == 201);
  CHECK(first_held(*j, "c") == 6);
  CHECK(latest_snapshot_seq(*j, "c") == 200);
}

TEST_CASE("repair keeps a base, also of a stream without events") {
  temp_dir dir;
  auto o = journal_opts(dir.path());
  {
    auto j = open_journal(o);
    append_ok(*j, {make_write("b", 0, {"1", "2"})});
    base_ok(*j, snap("a", 10));
    base_ok(*j, snap("b", 20));
    append_ok(*j, {make_write("b", 20, {"21", "22"})});
  }
  auto rep = journal::repair(o);
  STRATA_REQUIRE_VALUE(rep);
  CHECK(rep->before.ok());
  for (auto& p : rep->after.problems)
    INFO(p.to_string());
  CHECK(rep->after.ok());
  CHECK(rep->streams == 2);
  CHECK(rep->snapshots_dropped.empty());
  auto j = open_journal(o);
  CHECK(head_of(*j, "a") == 10);
  CHECK(first_held(*j, "a") == 11);
  CHECK(latest_snapshot_seq(*j, "a") == 10);
  CHECK(seqs_of(*j, "b") == std::vector<std::uint64_t>{1, 2, 21, 22});
  CHECK(head_of(*j, "b") == 22);
  auto w = append_ok(*j, {make_write("a", 10, {"11"})});
  CHECK(w[0].first_seq == 11);
  check_clean(*j);
}

TEST_CASE("delete_events_before on a based stream") {
  temp_dir dir;
  auto o = journal_opts(dir.path());
  {
    auto j = open_journal(o);
    append_ok(*j, {make_write("s", 0, {"1", "2", "3"})});
    base_ok(*j, snap("s", 10));
    append_ok(*j, {make_write("s", 10, {"11", "12"})});
    STRATA_REQUIRE_OK(j->delete_events_before("s", 11));
    CHECK(seqs_of(*j, "s") == std::vector<std::uint64_t>{12});
    CHECK(first_held(*j, "s") == 12);
    CHECK(head_of(*j, "s") == 12);
    check_clean(*j);
  }
  auto rep = journal::repair(o);
  STRATA_REQUIRE_VALUE(rep);
  CHECK(rep->after.ok());
  auto j = open_journal(o);
  CHECK(seqs_of(*j, "s") == std::vector<std::uint64_t>{12});
  CHECK(first_held(*j, "s") == 12);
  append_ok(*j, {make_write("s", 12, {"13"})});
  check_clean(*j);
}

TEST_CASE("first_held_seq of unknown, normal, deleted and based streams") {
  temp_dir dir;
  auto j = open_journal(journal_opts(dir.path()));
  CHECK(first_held(*j, "nobody") == 1);
  append_ok(*j, {make_write("n", 0, {"1", "2", "3"}), make_write("d", 0, {"1", "2", "3"})});
  CHECK(first_held(*j, "n") == 1);
  STRATA_REQUIRE_OK(j->delete_events_before("d", 2));
  CHECK(first_held(*j, "d") == 3);
  STRATA_REQUIRE_OK(j->delete_events_before("d", 3));
  CHECK(first_held(*j, "d") == 4);
  base_ok(*j, snap("b", 1000));
  CHECK(first_held(*j, "b") == 1001);
  append_ok(*j, {make_write("n", 3, {"4"})}); // not yet indexed: read from the writer's memory
  CHECK(first_held(*j, "n") == 1);
}

TEST_CASE("a base at seq 10^9 writes about as many bytes as one at seq 10") {
  temp_dir dir;
  auto o = journal_opts(dir.path());
  auto j = open_journal(o);
  append_ok(*j, {make_write("warm", 0, {"x"})}); // the tables exist with a page each
  auto size = [&] {
    return std::filesystem::file_size(dir.sub("data.mdb"));
  };
  auto b0 = table_bytes(*j);
  auto f0 = size();
  base_ok(*j, snap("low", 10));
  auto b1 = table_bytes(*j);
  auto f1 = size();
  base_ok(*j, snap("hig", 1'000'000'000));
  auto b2 = table_bytes(*j);
  auto f2 = size();
  INFO("table bytes " << b0 << " -> " << b1 << " -> " << b2 << ", file " << f0 << " -> " << f1
                      << " -> " << f2);
  // Same id length and key lengths: the two bases store the same number of bytes (the
  // snapshot payloads differ by 8 characters). 8 bytes per absent seq would be 8 GB.
  CHECK(b2 - b1 <= b1 - b0 + 16);
  CHECK(b2 - b1 < 1024);
  CHECK(f2 - f1 <= 16 * 4096);
  CHECK(head_of(*j, "hig") == 1'000'000'000);
  append_ok(*j, {make_write("hig", 1'000'000'000, {"next"})});
  CHECK(seqs_of(*j, "hig") == std::vector<std::uint64_t>{1'000'000'001});
  check_clean(*j);
}

TEST_CASE("import_base errors: seq 0, persistence id length, closed") {
  temp_dir dir;
  auto j = open_journal(journal_opts(dir.path()));
  auto zero = j->import_base(snap("s", 0));
  REQUIRE(!zero);
  CHECK(zero.error().code() == errc::invalid_argument);
  CHECK(zero.error().message().find("'s'") != std::string::npos);
  auto empty = j->import_base(snap("", 3));
  REQUIRE(!empty);
  CHECK(empty.error().code() == errc::invalid_argument);
  auto longer = j->import_base(snap(std::string(256, 'x'), 3));
  REQUIRE(!longer);
  CHECK(longer.error().code() == errc::invalid_argument);
  CHECK(head_of(*j, "s") == 0);
  STRATA_REQUIRE_OK(j->close());
  auto closed = j->import_base(snap("s", 3));
  REQUIRE(!closed);
  CHECK(closed.error().code() == errc::closed);
}

TEST_CASE("verify reports a gap in a stream's index once its base entry is gone") {
  temp_dir dir;
  auto o = journal_opts(dir.path());
  {
    auto j = open_journal(o);
    append_ok(*j, {make_write("s", 0, {"1"})});
    base_ok(*j, snap("s", 10));
    append_ok(*j, {make_write("s", 10, {"11"})});
    STRATA_REQUIRE_OK(j->flush_index());
    auto bases = open_table(j->env(), "bases");
    std::string key(1, '\x01');
    key += "s";
    key += std::string("\0\0\0\0\0\0\0\x0a", 8);
    REQUIRE(read_value(j->env(), bases, key).has_value());
    STRATA_REQUIRE_OK(j->env().write([&](write_txn& txn) {
      return txn.del(bases, key);
    }));
    auto rep = j->verify_all();
    STRATA_REQUIRE_VALUE(rep);
    CHECK(rep->problem_count >= 1);
    auto read = j->load_stream("s");
    REQUIRE(!read);
    CHECK(read.error().code() == errc::corrupt);
  }
}

TEST_CASE("a read-only journal reads based streams beside the writer, also un-indexed events") {
  temp_dir dir;
  auto w = open_journal(journal_opts(dir.path(), 1'000'000));
  append_ok(*w, {make_write("s", 0, {"1"})});
  base_ok(*w, snap("s", 10));
  append_ok(*w, {make_write("s", 10, {"11", "12"})}); // in the log only, not in the index
  auto ro = journal::open_read_only(journal_opts(dir.path()));
  STRATA_REQUIRE_VALUE(ro);
  CHECK(seqs_of(**ro, "s") == std::vector<std::uint64_t>{1, 11, 12});
  CHECK(head_of(**ro, "s") == 12);
  CHECK(first_held(**ro, "s") == 1);
  check_clean(**ro);
  base_ok(*w, snap("t", 5));
  CHECK(head_of(**ro, "t") == 5);
  CHECK(first_held(**ro, "t") == 6);
  CHECK(seqs_of(**ro, "t").empty());
  append_ok(*w, {make_write("t", 5, {"6"})});
  CHECK(seqs_of(**ro, "t") == std::vector<std::uint64_t>{6});
  check_clean(**ro);
}

TEST_CASE("verify reports a base whose index entry is gone; repair restores it from table bases") {
  temp_dir dir;
  auto o = journal_opts(dir.path());
  {
    auto j = open_journal(o);
    base_ok(*j, snap("a", 10));
    auto streams = open_table(j->env(), "streams");
    auto id = read_value(j->env(), streams, "a");
    REQUIRE(id.has_value());
    auto index = open_table(j->env(), "index");
    auto key = *id + std::string("\0\0\0\0\0\0\0\x0a", 8); // (stream id, seq 10)
    REQUIRE(read_value(j->env(), index, key).has_value());
    STRATA_REQUIRE_OK(j->env().write([&](write_txn& txn) {
      return txn.del(index, key);
    }));
    auto rep = j->verify_all();
    STRATA_REQUIRE_VALUE(rep);
    bool named = false;
    for (auto& p : rep->problems)
      named = named || (p.table == "bases" && p.key.find("'a'") != std::string::npos);
    CHECK(named);
  }
  auto rep = journal::repair(o);
  STRATA_REQUIRE_VALUE(rep);
  CHECK(!rep->before.ok());
  CHECK(rep->after.ok());
  auto j = open_journal(o);
  CHECK(head_of(*j, "a") == 10);
  CHECK(first_held(*j, "a") == 11);
  CHECK(latest_snapshot_seq(*j, "a") == 10);
}

TEST_CASE("import_bases moves many streams in one transaction, in the order given") {
  temp_dir dir("strata-base");
  auto j = open_journal(journal_opts(dir.sub("j")));
  append_ok(*j, {make_write("held", 0, {"a", "b", "c", "d", "e"})});
  std::vector<snapshot_record> snaps;
  for (int i = 0; i < 200; ++i)
    snaps.push_back(snap("s-" + std::to_string(i), 10 + static_cast<std::uint64_t>(i)));
  snaps.push_back(snap("held", 3)); // below its head: only the snapshot, on its own
  auto r = j->import_bases(snaps);
  STRATA_REQUIRE_VALUE(r);
  REQUIRE(r->size() == snaps.size());
  for (int i = 0; i < 200; ++i) {
    INFO(i);
    const auto& s = snaps[static_cast<std::size_t>(i)];
    CHECK((*r)[static_cast<std::size_t>(i)].moved);
    CHECK((*r)[static_cast<std::size_t>(i)].absent == s.seq);
    CHECK(head_of(*j, s.persistence_id) == s.seq);
    CHECK(first_held(*j, s.persistence_id) == s.seq + 1);
  }
  CHECK_FALSE(r->back().moved);
  CHECK(r->back().snapshot_saved);
  CHECK(head_of(*j, "held") == 5);
  // The streams continue at their bases; verify finds nothing wrong.
  auto e = remote_event("s-7", 18);
  auto imp = j->import({e});
  STRATA_REQUIRE_VALUE(imp);
  CHECK(imp->imported == 1);
  STRATA_REQUIRE_OK(j->verify());
  // Again: nothing moves, nothing is saved.
  auto again = j->import_bases(snaps);
  STRATA_REQUIRE_VALUE(again);
  for (const auto& b : *again) {
    CHECK_FALSE(b.moved);
    CHECK_FALSE(b.snapshot_saved);
  }
  auto twice = j->import_bases({snap("x", 4), snap("x", 5)});
  REQUIRE_FALSE(twice);
  CHECK(twice.error().code() == errc::invalid_argument);
  CHECK(head_of(*j, "x") == 0);
}
