// Damaged derived data (the streams, stream_names and index tables, meta counters) is
// detected on use and by verify, never used as a wrong answer; repair rebuilds it
// from the log (issue 7, findings 2 and 3).
#include "strata/persistence/journal.hpp"
#include "strata/persistence/snapshot_store.hpp"

#include "test_util.hpp"

#include <algorithm>
#include <set>
#include <string>
#include <vector>

using namespace strata::persistence;
using namespace strata::persistence::test;

namespace {

bool mentions(const status& st, const std::string& what) {
  return st.message().find(what) != std::string::npos;
}

std::string pid_of(int i) { return "account:acct-" + std::to_string(i); }

/// Eight streams, stream i with 10 + i events over several batches; small index
/// flushes, so every stream has several index entries. Returns the streams' events.
std::vector<std::vector<event_record>> write_bank(const std::string& dir) {
  auto j = open_journal(journal_opts(dir, 7));
  for (int round = 0; round < 20; ++round) {
    std::vector<stream_write> batch;
    for (int i = 0; i < 8; ++i)
      if (round < 10 + i)
        batch.push_back(make_write(pid_of(i), static_cast<std::uint64_t>(round),
                                   {"amount=" + std::to_string(round * 100 + i)}));
    append_ok(*j, batch);
  }
  std::vector<std::vector<event_record>> all;
  for (int i = 0; i < 8; ++i)
    all.push_back(load_all(*j, pid_of(i)));
  snapshot_record s;
  s.persistence_id = pid_of(5);
  s.seq = 4;
  s.type = "state";
  s.payload = "balance=4";
  STRATA_REQUIRE_OK(j->snapshots().save(s));
  STRATA_REQUIRE_OK(j->close());
  return all;
}

/// The LMDB leaf node of `pid` in the streams table (node header: data size 8, flags
/// 0, key size; then the key and the 8-byte id), at every offset it occurs (old copies
/// of a page stay in free space). Flips bit `bit` of byte `at` of the node's key+value.
int flip_streams_entry(const std::string& dir, const std::string& pid, std::size_t at, int bit) {
  auto file = dir + "/data.mdb";
  auto bytes = read_file(file);
  std::string needle = std::string("\x08\x00\x00\x00\x00\x00", 6) + static_cast<char>(pid.size()) +
                       std::string(1, '\0') + pid;
  int copies = 0;
  for (auto pos = bytes.find(needle); pos != std::string::npos; pos = bytes.find(needle, pos + 1)) {
    auto target = pos + 8 + at;
    bytes[target] = static_cast<char>(bytes[target] ^ (1 << bit));
    ++copies;
  }
  write_file(file, bytes);
  return copies;
}

/// Runs fn(txn, table) in a write transaction of a raw environment on `dir`.
void edit_table(const std::string& dir, const std::string& name,
                const std::function<status(write_txn&, table)>& fn) {
  env_options o;
  o.path = dir;
  o.sync = sync_mode::nosync;
  auto env = environment::open(o);
  STRATA_REQUIRE_VALUE(env);
  auto t = (*env)->open_table(name);
  STRATA_REQUIRE_VALUE(t);
  STRATA_REQUIRE_OK((*env)->write([&](write_txn& txn) {
    return fn(txn, *t);
  }));
}

/// Deletes the `nth` index entry of the first stream that has more than nth entries.
void delete_index_entry(const std::string& dir, std::size_t nth) {
  edit_table(dir, "index", [&](write_txn& txn, table t) -> status {
    std::vector<std::string> keys;
    auto st = txn.scan(t, {}, [&](std::string_view k, std::string_view) {
      keys.emplace_back(k);
      return true;
    });
    if (!st.ok()) return st;
    REQUIRE(keys.size() > nth);
    return txn.del(t, keys[nth]);
  });
}

std::set<std::string> tables_of(const verify_report& r) {
  std::set<std::string> out;
  for (auto& p : r.problems)
    out.insert(p.table);
  return out;
}

verify_report verify_read_only(const std::string& dir) {
  auto j = journal::open_read_only(journal_opts(dir));
  STRATA_REQUIRE_VALUE(j);
  auto r = (*j)->verify_all();
  STRATA_REQUIRE_VALUE(r);
  return *r;
}

} // namespace

TEST_CASE("integrity: a flipped bit in a streams entry's id is reported, fails reads and "
          "refuses appends") {
  temp_dir dir;
  auto all = write_bank(dir.path());
  REQUIRE(verify_read_only(dir.path()).ok());
  auto pid = pid_of(5);
  // Byte pid.size() + 7 is the id's low byte; bit 4 turns id 6 into 22 (no such stream).
  REQUIRE(flip_streams_entry(dir.path(), pid, pid.size() + 7, 4) >= 1);

  auto rep = verify_read_only(dir.path());
  CHECK_FALSE(rep.ok());
  CHECK(tables_of(rep).count("streams") == 1);

  auto ro = journal::open_read_only(journal_opts(dir.path()));
  STRATA_REQUIRE_VALUE(ro);
  auto r = (*ro)->load_stream(pid);
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error().code() == errc::corrupt);
  CHECK(mentions(r.error(), "table streams"));
  CHECK(mentions(r.error(), pid));
  CHECK_FALSE((*ro)->highest_seq(pid).has_value());
  // The other streams still read.
  CHECK(load_all(**ro, pid_of(4)) == all[4]);
  ro->reset();

  auto j = open_journal(journal_opts(dir.path()));
  auto res = j->append({make_write(pid, stream_write::any_seq, {"again"}),
                        make_write(pid_of(4), all[4].size(), {"fine"})});
  STRATA_REQUIRE_VALUE(res);
  CHECK((*res)[0].st.code() == errc::corrupt);
  CHECK(mentions((*res)[0].st, "table streams"));
  CHECK((*res)[1].st.ok());
  CHECK((*res)[1].last_seq == all[4].size() + 1);
  // Still refused on the next call: a damaged stream is never cached as new.
  auto again = j->append({make_write(pid, 0, {"seq 1 again"})});
  STRATA_REQUIRE_VALUE(again);
  CHECK((*again)[0].st.code() == errc::corrupt);
}

TEST_CASE("integrity: a flipped bit in a streams entry's key hides no stream") {
  temp_dir dir;
  auto all = write_bank(dir.path());
  auto pid = pid_of(5);
  // The last key byte '5' becomes 'u': the entry now sorts in the wrong place.
  REQUIRE(flip_streams_entry(dir.path(), pid, pid.size() - 1, 6) >= 1);
  CHECK_FALSE(verify_read_only(dir.path()).ok());
  auto ro = journal::open_read_only(journal_opts(dir.path()));
  STRATA_REQUIRE_VALUE(ro);
  auto r = (*ro)->load_stream(pid);
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error().code() == errc::corrupt);
  CHECK(mentions(r.error(), "table streams"));
  ro->reset();
  auto j = open_journal(journal_opts(dir.path()));
  auto res = j->append({make_write(pid, 0, {"seq 1 again"})});
  STRATA_REQUIRE_VALUE(res);
  CHECK((*res)[0].st.code() == errc::corrupt);
}

TEST_CASE("integrity: a missing index entry is a gap: reads fail, verify reports it") {
  temp_dir dir;
  auto all = write_bank(dir.path());
  delete_index_entry(dir.path(), 1); // the second entry of the first stream
  auto ro = journal::open_read_only(journal_opts(dir.path()));
  STRATA_REQUIRE_VALUE(ro);
  std::size_t failed = 0;
  for (int i = 0; i < 8; ++i) {
    auto r = (*ro)->load_stream(pid_of(i));
    if (r) {
      CHECK(*r == all[static_cast<std::size_t>(i)]);
      continue;
    }
    ++failed;
    CHECK(r.error().code() == errc::corrupt);
    CHECK(mentions(r.error(), "table index"));
    CHECK(mentions(r.error(), "gap"));
  }
  CHECK(failed == 1);
  auto rep = (*ro)->verify_all();
  STRATA_REQUIRE_VALUE(rep);
  CHECK_FALSE(rep->ok());
  CHECK(tables_of(*rep).count("index") == 1);
  CHECK((*ro)->verify().code() == errc::corrupt);
}

TEST_CASE("integrity: verify lists every problem, each naming table and key") {
  temp_dir dir;
  write_bank(dir.path());
  REQUIRE(flip_streams_entry(dir.path(), pid_of(5), pid_of(5).size() + 7, 4) >= 1);
  delete_index_entry(dir.path(), 1);
  edit_table(dir.path(), "stream_names", [](write_txn& txn, table t) {
    return txn.del(t, std::string("\0\0\0\0\0\0\0\x03", 8)); // id 3
  });
  edit_table(dir.path(), "meta", [](write_txn& txn, table t) {
    return txn.put(t, "next_stream_id", "bad");
  });
  auto rep = verify_read_only(dir.path());
  CHECK(rep.problem_count >= 4);
  CHECK(rep.problems.size() == rep.problem_count);
  auto tables = tables_of(rep);
  for (auto t : {"streams", "stream_names", "index", "meta"}) {
    INFO("table " << t);
    CHECK(tables.count(t) == 1);
  }
  for (auto& p : rep.problems) {
    CHECK_FALSE(p.key.empty());
    CHECK_FALSE(p.what.empty());
  }
  auto ro = journal::open_read_only(journal_opts(dir.path()));
  // A damaged meta counter fails the open; verify still lists everything.
  if (ro) {
    auto few = (*ro)->verify_all(2);
    STRATA_REQUIRE_VALUE(few);
    CHECK(few->problems.size() == 2);
    CHECK(few->problem_count == rep.problem_count);
  } else {
    CHECK(ro.error().code() == errc::corrupt);
    CHECK(mentions(ro.error(), "table meta"));
  }
}

TEST_CASE("integrity: repair rebuilds damaged derived tables from the log") {
  temp_dir dir;
  auto all = write_bank(dir.path());
  REQUIRE(flip_streams_entry(dir.path(), pid_of(5), pid_of(5).size() + 7, 4) >= 1);
  delete_index_entry(dir.path(), 1);
  edit_table(dir.path(), "stream_names", [](write_txn& txn, table t) {
    return txn.del(t, std::string("\0\0\0\0\0\0\0\x03", 8));
  });
  REQUIRE_FALSE(verify_read_only(dir.path()).ok());

  auto rep = journal::repair(journal_opts(dir.path()));
  STRATA_REQUIRE_VALUE(rep);
  CHECK_FALSE(rep->before.ok());
  CHECK(rep->after.ok());
  CHECK(rep->streams == 8);
  // acct-5 keeps the id stream_names gives it, so its snapshot stays where it is.
  CHECK(rep->snapshots_remapped.empty());
  CHECK(rep->snapshots_dropped.empty());
  CHECK(rep->records == 10 + 11 + 12 + 13 + 14 + 15 + 16 + 17);
  CHECK(verify_read_only(dir.path()).ok());

  auto j = open_journal(journal_opts(dir.path()));
  for (int i = 0; i < 8; ++i)
    CHECK(load_all(*j, pid_of(i)) == all[static_cast<std::size_t>(i)]);
  // The snapshot of the damaged stream is kept (remapped if its id changed).
  auto snap = j->snapshots().load_latest(pid_of(5));
  STRATA_REQUIRE_VALUE(snap);
  REQUIRE(snap->has_value());
  CHECK((*snap)->payload == "balance=4");
  // Appends continue each stream at its real head.
  auto res = append_ok(*j, {make_write(pid_of(5), all[5].size(), {"next"})});
  CHECK(res[0].first_seq == all[5].size() + 1);
  STRATA_CHECK_OK(j->verify());
}

TEST_CASE("integrity: repair refuses a damaged log and changes nothing") {
  temp_dir dir;
  write_bank(dir.path());
  {
    auto j = open_journal(journal_opts(dir.path()));
    append_ok(*j, {make_write("victim", 0, {std::string(64, 'Q')})});
    STRATA_REQUIRE_OK(j->close());
  }
  // Damage that record (packing keeps a run of non-zero bytes together).
  auto file = dir.sub("data.mdb");
  auto bytes = read_file(file);
  std::string needle(24, 'Q');
  int copies = 0; // old copies of the page may sit in free space: damage each
  for (auto at = bytes.find(needle); at != std::string::npos; at = bytes.find(needle, at + 64)) {
    bytes[at + 12] = static_cast<char>(bytes[at + 12] ^ 0x01);
    ++copies;
  }
  REQUIRE(copies >= 1);
  write_file(file, bytes);
  auto before = read_file(file);
  auto rep = journal::repair(journal_opts(dir.path()));
  REQUIRE_FALSE(rep.has_value());
  CHECK(rep.error().code() == errc::corrupt);
  CHECK(mentions(rep.error(), "the log itself is damaged"));
  CHECK(read_file(file) == before);
}

TEST_CASE("integrity: an interrupted repair is refused by every open until repair runs "
          "again") {
  temp_dir dir;
  auto all = write_bank(dir.path());
  edit_table(dir.path(), "meta", [](write_txn& txn, table t) {
    return txn.put(t, "repair_in_progress", "1");
  });
  auto w = journal::open(journal_opts(dir.path()));
  REQUIRE_FALSE(w.has_value());
  CHECK(w.error().code() == errc::corrupt);
  CHECK(mentions(w.error(), "repair"));
  auto ro = journal::open_read_only(journal_opts(dir.path()));
  REQUIRE_FALSE(ro.has_value());
  CHECK(ro.error().code() == errc::corrupt);
  auto rep = journal::repair(journal_opts(dir.path()));
  STRATA_REQUIRE_VALUE(rep);
  CHECK(rep->after.ok());
  auto j = open_journal(journal_opts(dir.path()));
  CHECK(load_all(*j, pid_of(7)) == all[7]);
}

namespace {

/// Flips bit 5 of byte 6 of the stream id in the index key (id, first) wherever the
/// key occurs in data.mdb (in place, as a damaged disk would: the entry keeps its slot).
int flip_index_key(const std::string& dir, std::uint64_t id, std::uint64_t first) {
  auto file = dir + "/data.mdb";
  auto bytes = read_file(file);
  std::string key(16, '\0');
  for (int i = 0; i < 8; ++i) {
    key[static_cast<std::size_t>(7 - i)] = static_cast<char>((id >> (8 * i)) & 0xFF);
    key[static_cast<std::size_t>(15 - i)] = static_cast<char>((first >> (8 * i)) & 0xFF);
  }
  std::string needle = std::string("\x00\x00\x00\x00\x10\x00", 6) + key; // flags, ksize 16
  int copies = 0;
  for (auto at = bytes.find(needle); at != std::string::npos; at = bytes.find(needle, at + 1)) {
    bytes[at + 6 + 6] = static_cast<char>(bytes[at + 6 + 6] ^ 0x20);
    ++copies;
  }
  write_file(file, bytes);
  return copies;
}

} // namespace

TEST_CASE("integrity: an index entry whose stream id flipped in place is never read as a "
          "shorter or empty stream") {
  for (std::uint64_t entry_first : {1u, 8u}) {
    CAPTURE(entry_first);
    temp_dir dir;
    std::vector<std::vector<event_record>> all;
    {
      // Four streams of 10 events; index flushes after 7 pending events, so each
      // stream's index has entries starting at seq 1 and at a later seq.
      auto j = open_journal(journal_opts(dir.path(), 1000));
      for (std::uint64_t round = 0; round < 10; ++round) {
        std::vector<stream_write> batch;
        for (int i = 0; i < 4; ++i)
          batch.push_back(make_write(pid_of(i), round, {"e" + std::to_string(round)}));
        append_ok(*j, batch);
        if (round == 6) STRATA_REQUIRE_OK(j->flush_index());
      }
      for (int i = 0; i < 4; ++i)
        all.push_back(load_all(*j, pid_of(i)));
      STRATA_REQUIRE_OK(j->close());
    }
    // Stream id 2 is pid_of(1); its entries start at seqs 1 and 8.
    REQUIRE(flip_index_key(dir.path(), 2, entry_first) >= 1);
    auto ro = journal::open_read_only(journal_opts(dir.path()));
    STRATA_REQUIRE_VALUE(ro);
    auto r = (*ro)->load_stream(pid_of(1));
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().code() == errc::corrupt);
    CHECK(mentions(r.error(), "table index"));
    // The head is either the right one (10) or refused, never a smaller one.
    auto head = (*ro)->highest_seq(pid_of(1));
    if (head) CHECK(*head == 10);
    if (!head) CHECK(head.error().code() == errc::corrupt);
    if (entry_first == 8) CHECK_FALSE(head.has_value());
    CHECK_FALSE(verify_read_only(dir.path()).ok());
    ro->reset();
    auto j = open_journal(journal_opts(dir.path()));
    auto res = j->append({make_write(pid_of(1), stream_write::any_seq, {"x"})});
    STRATA_REQUIRE_VALUE(res);
    if ((*res)[0].st.ok())
      CHECK((*res)[0].first_seq == 11);
    else
      CHECK((*res)[0].st.code() == errc::corrupt);
    if (entry_first == 8) CHECK((*res)[0].st.code() == errc::corrupt);
  }
}
