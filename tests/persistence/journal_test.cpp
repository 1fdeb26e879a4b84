// Tests of strata::persistence::journal (persistence/src/journal.cpp): append/read/reopen
// round trips, per-stream conflicts, the global log, index rebuild after a crash,
// deletion, and refusal of invalid input.
#include "strata/persistence/journal.hpp"

#include "strata/persistence/snapshot_store.hpp"

#include "test_util.hpp"

#include <algorithm>
#include <atomic>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

using namespace strata::persistence;
using namespace strata::persistence::test;

namespace {

/// A write with fully populated envelope fields.
stream_write rich_write(const std::string& pid, std::uint64_t expected, int n,
                        std::uint64_t epoch) {
  stream_write w;
  w.persistence_id = pid;
  w.expected_seq = expected;
  w.shard_epoch = epoch;
  for (int i = 0; i < n; ++i) {
    event_data e;
    e.type = "type-" + std::to_string(i);
    e.schema_version = 2 + static_cast<std::uint32_t>(i);
    e.payload = pid + "/payload/" + std::to_string(expected + 1 + i) + std::string("\0\x01\xfe", 3);
    e.timestamp_ns = 1'600'000'000'000'000'000ll + i;
    e.tags = {"tag-a", "tag-" + pid, ""};
    e.correlation_id = "corr-" + pid;
    e.causation_id = "cause-" + std::to_string(i);
    w.events.push_back(std::move(e));
  }
  return w;
}

/// `n` payloads "<pid>#<seq>" for seqs first..first+n-1.
std::vector<std::string> numbered(const std::string& pid, std::uint64_t first, int n) {
  std::vector<std::string> v;
  for (int i = 0; i < n; ++i)
    v.push_back(pid + "#" + std::to_string(first + i));
  return v;
}

std::vector<std::uint64_t> seqs_of(const std::vector<event_record>& v) {
  std::vector<std::uint64_t> out;
  for (auto& e : v)
    out.push_back(e.seq);
  return out;
}

std::vector<std::uint64_t> range(std::uint64_t from, std::uint64_t to) {
  std::vector<std::uint64_t> out;
  for (auto i = from; i <= to; ++i)
    out.push_back(i);
  return out;
}

std::uint64_t head(const journal& j, std::string_view pid) {
  auto h = j.highest_seq(pid);
  STRATA_REQUIRE_VALUE(h);
  return *h;
}

/// Checks that the stream holds exactly numbered(pid, 1, n) at seqs 1..n.
void check_numbered_stream(const journal& j, const std::string& pid, int n) {
  INFO("stream " << pid);
  auto evs = load_all(j, pid);
  CHECK(seqs_of(evs) == range(1, static_cast<std::uint64_t>(n)));
  CHECK(payloads_of(evs) == numbered(pid, 1, n));
  CHECK(head(j, pid) == static_cast<std::uint64_t>(n));
}

} // namespace

TEST_CASE("journal: every envelope field survives append, read and reopen") {
  temp_dir dir;
  auto o = journal_opts(dir.path());
  o.writer_node = "node-7";
  std::vector<event_record> a_before, b_before;
  {
    auto j = open_journal(o);
    CHECK(j->last_position() == 0);
    auto res = append_ok(*j, {rich_write("acct-a", 0, 3, 11), rich_write("acct-b", 0, 2, 12)});
    CHECK(res[0].first_seq == 1);
    CHECK(res[0].last_seq == 3);
    CHECK(res[0].first_position == 1);
    CHECK(res[0].last_position == 3);
    CHECK(res[1].first_seq == 1);
    CHECK(res[1].last_seq == 2);
    CHECK(res[1].first_position == 4);
    CHECK(res[1].last_position == 5);
    CHECK(j->last_position() == 5);

    a_before = load_all(*j, "acct-a");
    b_before = load_all(*j, "acct-b");
    auto written = rich_write("acct-a", 0, 3, 11);
    REQUIRE(a_before.size() == 3);
    for (std::size_t i = 0; i < 3; ++i) {
      const auto& e = a_before[i];
      const auto& w = written.events[i];
      CHECK(e.persistence_id == "acct-a");
      CHECK(e.seq == i + 1);
      CHECK(e.position == i + 1);
      CHECK(e.timestamp_ns == w.timestamp_ns);
      CHECK(e.type == w.type);
      CHECK(e.schema_version == w.schema_version);
      CHECK(e.payload == w.payload);
      CHECK(e.tags == w.tags);
      CHECK(e.correlation_id == w.correlation_id);
      CHECK(e.causation_id == w.causation_id);
      CHECK(e.writer_node == "node-7");
      CHECK(e.shard_epoch == 11);
      CHECK(e.checksum == crc32c(w.payload));
    }
    REQUIRE(b_before.size() == 2);
    CHECK(b_before[1].shard_epoch == 12);
    CHECK(b_before[1].position == 5);
    STRATA_REQUIRE_OK(j->close());
  }
  auto j = open_journal(o);
  CHECK(load_all(*j, "acct-a") == a_before);
  CHECK(load_all(*j, "acct-b") == b_before);
  CHECK(j->last_position() == 5);
  CHECK(head(*j, "acct-a") == 3);
  STRATA_CHECK_OK(j->verify());
}

TEST_CASE("journal: a zero timestamp is stamped at append") {
  temp_dir dir;
  auto j = open_journal(journal_opts(dir.path()));
  append_ok(*j, {make_write("s", 0, {"x"})});
  auto evs = load_all(*j, "s");
  REQUIRE(evs.size() == 1);
  CHECK(evs[0].timestamp_ns > 0);
}

TEST_CASE("journal: seqs and global positions are gap-free across batches and streams") {
  temp_dir dir;
  auto j = open_journal(journal_opts(dir.path(), 4));
  std::map<std::string, std::uint64_t> heads;
  std::vector<std::pair<std::string, std::uint64_t>> order; // append order of (pid, seq)
  const std::vector<std::string> ids = {"s1", "s2", "s3", "s4", "s5"};
  for (int b = 0; b < 20; ++b) {
    std::vector<stream_write> batch;
    for (int k = 0; k < 3; ++k) {
      const auto& pid = ids[static_cast<std::size_t>((b * 3 + k * 2) % 5)];
      int n = 1 + (b + k) % 3;
      batch.push_back(make_write(pid, heads[pid], numbered(pid, heads[pid] + 1, n)));
      for (int i = 0; i < n; ++i)
        order.emplace_back(pid, ++heads[pid]);
    }
    append_ok(*j, batch);
  }
  auto all = read_global_all(*j);
  REQUIRE(all.size() == order.size());
  for (std::size_t i = 0; i < all.size(); ++i) {
    CHECK(all[i].position == i + 1);
    CHECK(all[i].persistence_id == order[i].first);
    CHECK(all[i].seq == order[i].second);
    CHECK(all[i].payload == order[i].first + "#" + std::to_string(order[i].second));
  }
  CHECK(j->last_position() == order.size());
  for (auto& [pid, n] : heads)
    check_numbered_stream(*j, pid, static_cast<int>(n));
  STRATA_CHECK_OK(j->verify());
}

TEST_CASE("journal: a wrong expected_seq fails that stream only; the others commit") {
  temp_dir dir;
  auto j = open_journal(journal_opts(dir.path()));
  append_ok(*j, {make_write("a", 0, numbered("a", 1, 2)), make_write("b", 0, numbered("b", 1, 1))});

  // a expects 1 but its head is 2; c is new (expected 0); b expects its real head.
  auto r = j->append({make_write("a", 1, {"a#bad"}), make_write("c", 0, numbered("c", 1, 2)),
                      make_write("b", 1, numbered("b", 2, 1))});
  STRATA_REQUIRE_VALUE(r);
  REQUIRE(r->size() == 3);
  CHECK((*r)[0].st.code() == errc::conflict);
  CHECK((*r)[0].st.message().find("'a'") != std::string::npos);
  CHECK((*r)[0].last_seq == 2); // the unchanged head
  STRATA_CHECK_OK((*r)[1].st);
  CHECK((*r)[1].last_seq == 2);
  STRATA_CHECK_OK((*r)[2].st);
  CHECK((*r)[2].last_seq == 2);
  // The refused write used no positions: c got 4..5, b got 6.
  CHECK((*r)[1].first_position == 4);
  CHECK((*r)[1].last_position == 5);
  CHECK((*r)[2].first_position == 6);
  CHECK(j->last_position() == 6);

  check_numbered_stream(*j, "a", 2);
  check_numbered_stream(*j, "b", 2);
  check_numbered_stream(*j, "c", 2);

  // Expecting a stream to be new when it exists, and expecting a head ahead of it.
  auto r2 = j->append({make_write("a", 0, {"x"}), make_write("b", 7, {"y"})});
  STRATA_REQUIRE_VALUE(r2);
  CHECK((*r2)[0].st.code() == errc::conflict);
  CHECK((*r2)[1].st.code() == errc::conflict);
  // A new stream expecting a non-zero head.
  auto r3 = j->append({make_write("new", 3, {"z"})});
  STRATA_REQUIRE_VALUE(r3);
  CHECK((*r3)[0].st.code() == errc::conflict);
  CHECK((*r3)[0].last_seq == 0);
  CHECK(head(*j, "new") == 0);
  CHECK(j->last_position() == 6);
  auto streams = j->list_streams();
  STRATA_REQUIRE_VALUE(streams);
  CHECK(*streams == std::vector<std::string>{"a", "b", "c"});
  STRATA_CHECK_OK(j->verify());

  // An empty batch is a no-op.
  auto r4 = j->append({});
  STRATA_REQUIRE_VALUE(r4);
  CHECK(r4->empty());
  CHECK(j->last_position() == 6);
}

TEST_CASE("journal: two writes for the same stream in one batch apply in order") {
  temp_dir dir;
  auto j = open_journal(journal_opts(dir.path()));
  auto res = append_ok(*j, {make_write("s", 0, numbered("s", 1, 2)), make_write("t", 0, {"t#1"}),
                            make_write("s", 2, numbered("s", 3, 1))});
  CHECK(res[0].last_seq == 2);
  CHECK(res[2].first_seq == 3);
  CHECK(res[2].last_seq == 3);
  CHECK(res[2].first_position == 4);
  check_numbered_stream(*j, "s", 3);

  // The second write expects the head from before the batch: it conflicts, the first
  // write of the batch stays.
  auto r = j->append({make_write("s", 3, numbered("s", 4, 1)), make_write("s", 3, {"s#dup"})});
  STRATA_REQUIRE_VALUE(r);
  STRATA_CHECK_OK((*r)[0].st);
  CHECK((*r)[1].st.code() == errc::conflict);
  CHECK((*r)[1].last_seq == 4);
  check_numbered_stream(*j, "s", 4);
}

TEST_CASE("journal: any_seq appends after whatever is there") {
  temp_dir dir;
  auto j = open_journal(journal_opts(dir.path()));
  auto r1 = append_ok(*j, {make_write("s", stream_write::any_seq, numbered("s", 1, 2))});
  CHECK(r1[0].first_seq == 1);
  auto r2 = append_ok(*j, {make_write("s", stream_write::any_seq, numbered("s", 3, 2)),
                           make_write("s", stream_write::any_seq, numbered("s", 5, 1))});
  CHECK(r2[0].first_seq == 3);
  CHECK(r2[1].last_seq == 5);
  check_numbered_stream(*j, "s", 5);
}

TEST_CASE("journal: read_stream ranges, early stop and load_stream max_count") {
  temp_dir dir;
  auto j = open_journal(journal_opts(dir.path(), 3));
  for (int i = 0; i < 10; ++i)
    append_ok(*j,
              {make_write("s", static_cast<std::uint64_t>(i), numbered("s", i + 1, 1)),
               make_write("other", static_cast<std::uint64_t>(i), numbered("other", i + 1, 1))});

  auto ranged = [&](std::uint64_t from, std::uint64_t to) {
    std::vector<event_record> out;
    STRATA_REQUIRE_OK(j->read_stream("s", from, to, [&](const event_record& e) {
      out.push_back(e);
      return true;
    }));
    return seqs_of(out);
  };
  CHECK(ranged(3, 7) == range(3, 7));
  CHECK(ranged(8, journal::max_seq) == range(8, 10));
  CHECK(ranged(1, 1) == range(1, 1));
  CHECK(ranged(10, 10) == range(10, 10));
  CHECK(ranged(11, journal::max_seq).empty());
  CHECK(ranged(7, 3).empty());

  int visits = 0;
  STRATA_REQUIRE_OK(j->read_stream("s", 1, journal::max_seq, [&](const event_record& e) {
    CHECK(e.seq == static_cast<std::uint64_t>(visits + 1));
    return ++visits < 2;
  }));
  CHECK(visits == 2);

  auto first4 = j->load_stream("s", 1, journal::max_seq, 4);
  STRATA_REQUIRE_VALUE(first4);
  CHECK(seqs_of(*first4) == range(1, 4));
  CHECK(payloads_of(*first4) == numbered("s", 1, 4));
  auto mid = j->load_stream("s", 5, 9, 2);
  STRATA_REQUIRE_VALUE(mid);
  CHECK(seqs_of(*mid) == range(5, 6));

  auto unknown = j->load_stream("nope");
  STRATA_REQUIRE_VALUE(unknown);
  CHECK(unknown->empty());
  CHECK(head(*j, "nope") == 0);
}

TEST_CASE("journal: read_global from a position with max_count, in append order") {
  temp_dir dir;
  auto j = open_journal(journal_opts(dir.path()));
  // 12 events in 4 batches alternating over 3 streams.
  std::vector<std::string> expected;
  std::map<std::string, std::uint64_t> heads;
  for (int b = 0; b < 4; ++b) {
    std::vector<stream_write> batch;
    for (const char* pid : {"x", "y", "z"}) {
      std::string p = std::string(pid) + "@" + std::to_string(b);
      batch.push_back(make_write(pid, heads[pid]++, {p}));
      expected.push_back(p);
    }
    std::reverse(batch.begin(), batch.end()); // batch order, not name order, decides
    std::reverse(expected.end() - 3, expected.end());
    append_ok(*j, batch);
  }
  auto all = read_global_all(*j);
  CHECK(payloads_of(all) == expected);

  std::vector<event_record> part;
  STRATA_REQUIRE_OK(j->read_global(5, 3, [&](const event_record& e) {
    part.push_back(e);
    return true;
  }));
  REQUIRE(part.size() == 3);
  CHECK(part[0].position == 5);
  CHECK(part[2].position == 7);
  CHECK(part[0] == all[4]);
  CHECK(part[2] == all[6]);

  // Early stop, max_count 0 and a start past the end.
  int visits = 0;
  STRATA_REQUIRE_OK(j->read_global(1, 100, [&](const event_record&) {
    return ++visits < 4;
  }));
  CHECK(visits == 4);
  visits = 0;
  STRATA_REQUIRE_OK(j->read_global(1, 0, [&](const event_record&) {
    return ++visits, true;
  }));
  CHECK(visits == 0);
  CHECK(read_global_all(*j, 13).empty());
  CHECK(read_global_all(*j, 12).size() == 1);
}

TEST_CASE("journal: read_global_raw yields envelopes that decode to the stored events") {
  temp_dir dir;
  auto j = open_journal(journal_opts(dir.path()));
  append_ok(*j, {rich_write("r1", 0, 2, 5), rich_write("r2", 0, 3, 6)});
  append_ok(*j, {rich_write("r1", 2, 1, 5)});
  auto all = read_global_all(*j);
  REQUIRE(all.size() == 6);

  std::vector<std::uint64_t> positions;
  STRATA_REQUIRE_OK(j->read_global_raw(2, 10, [&](std::uint64_t pos, std::string_view bytes) {
    positions.push_back(pos);
    auto e = decode_envelope(bytes, "test");
    STRATA_REQUIRE_VALUE(e);
    CHECK(*e == all[pos - 1]);
    CHECK(e->position == pos);
    return true;
  }));
  CHECK(positions == range(2, 6));
}

TEST_CASE("journal: list_streams is sorted; highest_seq and last_position track appends") {
  temp_dir dir;
  auto j = open_journal(journal_opts(dir.path()));
  auto empty = j->list_streams();
  STRATA_REQUIRE_VALUE(empty);
  CHECK(empty->empty());
  const std::vector<std::string> ids = {"order-10", "account-2", "b", "account-10", "a", "zz"};
  std::uint64_t n = 0;
  for (auto& id : ids) {
    append_ok(*j, {make_write(id, 0, numbered(id, 1, static_cast<int>(id.size())))});
    n += id.size();
  }
  auto streams = j->list_streams();
  STRATA_REQUIRE_VALUE(streams);
  auto sorted = ids;
  std::sort(sorted.begin(), sorted.end());
  CHECK(*streams == sorted);
  for (auto& id : ids)
    CHECK(head(*j, id) == id.size());
  CHECK(j->last_position() == n);
}

TEST_CASE("journal: reads see events that are appended but not yet indexed") {
  temp_dir dir;
  auto j = open_journal(journal_opts(dir.path(), 1000));
  append_ok(*j, {make_write("p", 0, numbered("p", 1, 3))});
  append_ok(*j, {make_write("p", 3, numbered("p", 4, 2)), make_write("q", 0, {"q#1"})});
  check_numbered_stream(*j, "p", 5);
  check_numbered_stream(*j, "q", 1);
  auto streams = j->list_streams();
  STRATA_REQUIRE_VALUE(streams);
  CHECK(*streams == std::vector<std::string>{"p", "q"});
  STRATA_CHECK_OK(j->verify());
  STRATA_REQUIRE_OK(j->flush_index());
  check_numbered_stream(*j, "p", 5);
  STRATA_CHECK_OK(j->verify());
}

namespace {

/// Appends 7 batches over 4 streams: 20 events with index_flush_events 3, so at any
/// point some index entries are written and some pending.
void append_workload(journal& j) {
  std::map<std::string, std::uint64_t> heads;
  const char* ids[] = {"w0", "w1", "w2", "w3"};
  for (int b = 0; b < 7; ++b) {
    std::vector<stream_write> batch;
    for (int k = 0; k <= b % 3; ++k) {
      std::string pid = ids[(b + k) % 4];
      int n = 1 + (b + k) % 2;
      batch.push_back(make_write(pid, heads[pid], numbered(pid, heads[pid] + 1, n)));
      heads[pid] += static_cast<std::uint64_t>(n);
    }
    append_ok(j, batch);
  }
}

void check_workload(const journal& j) {
  std::map<std::string, std::uint64_t> heads;
  for (auto& e : read_global_all(j))
    heads[e.persistence_id] = e.seq;
  CHECK(heads.size() == 4);
  for (auto& [pid, n] : heads)
    check_numbered_stream(j, pid, static_cast<int>(n));
  CHECK(j.last_position() == read_global_all(j).size());
  auto streams = j.list_streams();
  STRATA_REQUIRE_VALUE(streams);
  CHECK(*streams == std::vector<std::string>{"w0", "w1", "w2", "w3"});
  STRATA_CHECK_OK(j.verify());
}

} // namespace

TEST_CASE("journal: reopen after close() with a partly indexed log") {
  temp_dir dir;
  auto o = journal_opts(dir.path(), 3);
  std::uint64_t last = 0;
  {
    auto j = open_journal(o);
    append_workload(*j);
    last = j->last_position();
    check_workload(*j);
    STRATA_REQUIRE_OK(j->close());
    auto r = j->append({make_write("w0", stream_write::any_seq, {"late"})});
    REQUIRE(!r.has_value());
    CHECK(r.error().code() == errc::closed);
  }
  auto j = open_journal(o);
  CHECK(j->last_position() == last);
  check_workload(*j);
  // Appending continues from the recovered heads.
  auto h = head(*j, "w1");
  auto res = append_ok(*j, {make_write("w1", h, {"w1#" + std::to_string(h + 1)})});
  CHECK(res[0].first_position == last + 1);
  check_workload(*j);
}

TEST_CASE("journal: reopen after a process exits without close() rebuilds the index") {
  temp_dir dir;
  auto o = journal_opts(dir.path(), 3);
  // The child appends, then exits without close() and without destructors: the pending
  // index entries are lost and must be rebuilt from the log at the next open.
  int code = run_in_child([&] {
    auto j = journal::open(o);
    if (!j) return 1;
    append_workload(**j); // REQUIRE failures in the child turn into exit code 98
    std::fflush(nullptr);
    ::_exit(0);
    return 0;
  });
  REQUIRE(code == 0);
  {
    auto j = open_journal(o);
    check_workload(*j);
    // Crash again after more appends, this time with a different flush threshold.
    STRATA_REQUIRE_OK(j->close());
  }
  auto o2 = journal_opts(dir.path(), 5);
  code = run_in_child([&] {
    auto j = journal::open(o2);
    if (!j) return 1;
    auto h = (*j)->highest_seq("w2");
    if (!h) return 2;
    auto r = (*j)->append({make_write("w2", *h, numbered("w2", *h + 1, 4))});
    if (!r || !(*r)[0].st.ok()) return 3;
    ::_exit(0);
  });
  REQUIRE(code == 0);
  auto j = open_journal(o2);
  check_workload(*j);
}

TEST_CASE("journal: delete_events_before removes a prefix and keeps the head") {
  temp_dir dir;
  auto o = journal_opts(dir.path(), 4);
  auto j = open_journal(o);
  for (int i = 0; i < 10; ++i)
    append_ok(*j, {make_write("d", static_cast<std::uint64_t>(i), numbered("d", i + 1, 1)),
                   make_write("k", static_cast<std::uint64_t>(i), numbered("k", i + 1, 1))});
  STRATA_REQUIRE_OK(j->delete_events_before("d", 4));

  auto d = load_all(*j, "d");
  CHECK(seqs_of(d) == range(5, 10));
  CHECK(payloads_of(d) == numbered("d", 5, 6));
  CHECK(head(*j, "d") == 10);
  check_numbered_stream(*j, "k", 10);
  // The global log skips the deleted positions and keeps everything else.
  auto all = read_global_all(*j);
  CHECK(all.size() == 16);
  for (auto& e : all)
    CHECK(!(e.persistence_id == "d" && e.seq <= 4));
  CHECK(j->last_position() == 20);
  STRATA_CHECK_OK(j->verify());

  // The stream continues from its head, also after reopen.
  append_ok(*j, {make_write("d", 10, numbered("d", 11, 1))});
  STRATA_REQUIRE_OK(j->close());
  j.reset();
  j = open_journal(o);
  CHECK(seqs_of(load_all(*j, "d")) == range(5, 11));
  CHECK(head(*j, "d") == 11);
  STRATA_CHECK_OK(j->verify());

  CHECK(j->delete_events_before("unknown", 3).code() == errc::not_found);

  // Deleting everything keeps the stream and its head.
  STRATA_REQUIRE_OK(j->delete_events_before("k", 10));
  CHECK(load_all(*j, "k").empty());
  CHECK(head(*j, "k") == 10);
  auto streams = j->list_streams();
  STRATA_REQUIRE_VALUE(streams);
  CHECK(*streams == std::vector<std::string>{"d", "k"});
  append_ok(*j, {make_write("k", 10, numbered("k", 11, 1))});
  CHECK(seqs_of(load_all(*j, "k")) == range(11, 11));
  STRATA_CHECK_OK(j->verify());
}

TEST_CASE("journal: readers on other threads see a consistent prefix while appends run") {
  temp_dir dir;
  auto o = journal_opts(dir.path(), 7);
  o.env.map_size_bytes = 64u << 10; // the map grows while readers are active
  auto j = open_journal(o);
  const auto initial_map = j->env().map_size_bytes();
  std::atomic<bool> done{false};
  std::atomic<int> reads{0};
  // Failures are collected and asserted on the test's thread.
  std::vector<std::string> problems;
  std::mutex problems_mu;
  auto problem = [&](std::string what) {
    std::lock_guard lk(problems_mu);
    problems.push_back(std::move(what));
  };
  auto reader = [&](std::string pid) {
    std::uint64_t last_seen = 0;
    while (!done.load()) {
      auto evs = j->load_stream(pid);
      if (!evs) {
        problem("load_stream " + pid + ": " + evs.error().to_string());
        return;
      }
      for (std::size_t i = 0; i < evs->size(); ++i)
        if ((*evs)[i].seq != i + 1 || (*evs)[i].payload != pid + "#" + std::to_string(i + 1)) {
          problem("stream " + pid + " out of order or wrong at index " + std::to_string(i));
          return;
        }
      if (evs->size() < last_seen) {
        problem("stream " + pid + " shrank");
        return;
      }
      last_seen = evs->size();
      std::uint64_t next = 1;
      auto st = j->read_global(1, ~std::size_t{0}, [&](const event_record& e) {
        if (e.position != next++) {
          problem("global log gap at " + std::to_string(e.position));
          return false;
        }
        return true;
      });
      if (!st.ok()) {
        problem("read_global: " + st.to_string());
        return;
      }
      ++reads;
    }
  };
  std::thread r1(reader, "c0"), r2(reader, "c1");
  std::map<std::string, std::uint64_t> heads;
  for (int b = 0; b < 300; ++b) {
    std::vector<stream_write> batch;
    for (const char* pid : {"c0", "c1", "c2"}) {
      int n = 1 + (b % 3);
      batch.push_back(make_write(pid, heads[pid], numbered(pid, heads[pid] + 1, n)));
      heads[pid] += static_cast<std::uint64_t>(n);
    }
    append_ok(*j, batch);
  }
  // Let each reader finish at least one pass over the final state.
  const int before = reads.load();
  for (int spin = 0; reads.load() < before + 2 && spin < 100'000; ++spin)
    std::this_thread::yield();
  done = true;
  r1.join();
  r2.join();
  CHECK(problems.empty());
  for (auto& p : problems)
    MESSAGE(p);
  CHECK(reads.load() > 0);
  CHECK(j->env().map_size_bytes() > initial_map);
  for (auto& [pid, n] : heads)
    check_numbered_stream(*j, pid, static_cast<int>(n));
}

TEST_CASE("journal: invalid input is refused and stores nothing") {
  temp_dir dir;
  auto o = journal_opts(dir.path());
  o.max_batch_events = 10;
  auto j = open_journal(o);
  append_ok(*j, {make_write("base", 0, {"base#1"})});

  // The refusal may come as the outer result or as the write's own status; either way
  // invalid_argument and nothing stored.
  auto refused = [&](const std::vector<stream_write>& batch) {
    auto r = j->append(batch);
    if (!r.has_value()) {
      INFO("error: " << r.error().to_string());
      CHECK(r.error().code() == errc::invalid_argument);
    } else {
      REQUIRE(r->size() == batch.size());
      CHECK((*r)[0].st.code() == errc::invalid_argument);
    }
    CHECK(j->last_position() == 1);
  };
  SUBCASE("empty persistence id") { refused({make_write("", 0, {"x"})}); }
  SUBCASE("persistence id longer than 255 bytes") {
    refused({make_write(std::string(256, 'p'), 0, {"x"})});
    CHECK(head(*j, std::string(256, 'p')) == 0);
  }
  SUBCASE("batch over max_batch_events") {
    auto r = j->append(
      {make_write("big", 0, numbered("big", 1, 6)), make_write("base", 1, numbered("base", 2, 5))});
    REQUIRE(!r.has_value());
    CHECK(r.error().code() == errc::invalid_argument);
    CHECK(j->last_position() == 1);
    CHECK(head(*j, "big") == 0);
    CHECK(head(*j, "base") == 1);
    // Exactly at the limit is fine.
    append_ok(*j, {make_write("big", 0, numbered("big", 1, 5)),
                   make_write("base", 1, numbered("base", 2, 5))});
    CHECK(j->last_position() == 11);
  }
  auto streams = j->list_streams();
  STRATA_REQUIRE_VALUE(streams);
  CHECK(std::count(streams->begin(), streams->end(), std::string()) == 0);
  STRATA_CHECK_OK(j->verify());
}

TEST_CASE("journal: a 255-byte persistence id and binary payloads are stored") {
  temp_dir dir;
  auto j = open_journal(journal_opts(dir.path()));
  std::string id(255, 'i');
  std::string payload("\0\0\xff\x00zz", 6);
  append_ok(*j, {make_write(id, 0, {payload, "", std::string(70'000, 'L')})});
  auto evs = load_all(*j, id);
  REQUIRE(evs.size() == 3);
  CHECK(evs[0].payload == payload);
  CHECK(evs[1].payload.empty());
  CHECK(evs[2].payload == std::string(70'000, 'L'));
  STRATA_CHECK_OK(j->verify());
}

TEST_CASE("journal: a batch that fails as a whole leaves no trace in memory or on disk") {
  temp_dir dir;
  auto o = journal_opts(dir.path(), 5);
  o.env.map_size_bytes = 256u << 10;
  o.env.map_size_max_bytes = 1u << 20;
  auto j = open_journal(o);
  append_ok(*j, {make_write("m", 0, numbered("m", 1, 3)), make_write("n", 0, {"n#1"})});

  // ~2 MiB in one batch cannot fit in a 1 MiB map.
  std::vector<std::string> big(40, std::string(50'000, 'B'));
  auto r = j->append({make_write("m", 3, big), make_write("fresh", 0, {"fresh#1"})});
  REQUIRE(!r.has_value());
  INFO("error: " << r.error().to_string());
  CHECK(r.error().code() == errc::map_full);
  CHECK(j->last_position() == 4);
  CHECK(head(*j, "m") == 3);
  CHECK(head(*j, "fresh") == 0);

  // The journal goes on from where it was: same positions, same seqs, nothing phantom.
  auto res =
    append_ok(*j, {make_write("m", 3, numbered("m", 4, 2)), make_write("fresh", 0, {"fresh#1"})});
  CHECK(res[0].first_position == 5);
  CHECK(res[0].first_seq == 4);
  CHECK(res[1].first_position == 7);
  check_numbered_stream(*j, "m", 5);
  check_numbered_stream(*j, "fresh", 1);
  CHECK(read_global_all(*j).size() == 7);
  auto streams = j->list_streams();
  STRATA_REQUIRE_VALUE(streams);
  CHECK(*streams == std::vector<std::string>{"fresh", "m", "n"});
  STRATA_CHECK_OK(j->verify());
  STRATA_REQUIRE_OK(j->close());
  j.reset();
  j = open_journal(o);
  check_numbered_stream(*j, "m", 5);
  CHECK(j->last_position() == 7);
  STRATA_CHECK_OK(j->verify());
}

TEST_CASE("journal: deletions and snapshots survive a process exit without close()") {
  temp_dir dir;
  auto o = journal_opts(dir.path(), 1000); // everything still pending in the index
  int code = run_in_child([&] {
    auto j = journal::open(o);
    if (!j) return 1;
    append_ok(**j,
              {make_write("x", 0, numbered("x", 1, 6)), make_write("y", 0, numbered("y", 1, 2))});
    if (!(*j)->delete_events_before("x", 4).ok()) return 2;
    append_ok(**j, {make_write("x", 6, numbered("x", 7, 1))},
              {snapshot_record{"x", 7, 1, "s", 1, "state", 0}});
    ::_exit(0);
  });
  REQUIRE(code == 0);
  auto j = open_journal(o);
  auto x = load_all(*j, "x");
  CHECK(seqs_of(x) == range(5, 7));
  CHECK(payloads_of(x) == numbered("x", 5, 3));
  CHECK(head(*j, "x") == 7);
  check_numbered_stream(*j, "y", 2);
  CHECK(j->last_position() == 9);
  CHECK(read_global_all(*j).size() == 5);
  auto snap = j->snapshots().load_latest("x");
  STRATA_REQUIRE_VALUE(snap);
  REQUIRE(snap->has_value());
  CHECK((*snap)->payload == "state");
  STRATA_CHECK_OK(j->verify());
}

TEST_CASE("journal: a batch of the default max_batch_events commits in one call") {
  temp_dir dir;
  auto o = journal_opts(dir.path()); // default index_flush_events and max_batch_events
  o.env.map_size_bytes = 64u << 10;  // and the map grows inside this one transaction
  auto j = open_journal(o);
  const std::size_t total = o.max_batch_events, streams = 1000;
  std::vector<stream_write> batch(streams);
  for (std::size_t s = 0; s < streams; ++s) {
    batch[s].persistence_id = "bulk-" + std::to_string(s);
    for (std::size_t i = 0; i < total / streams; ++i)
      batch[s].events.push_back(make_event("t", std::string(100, static_cast<char>('a' + s % 26))));
  }
  auto res = append_ok(*j, batch);
  CHECK(res.back().last_position == total);
  CHECK(j->last_position() == total);
  auto some = load_all(*j, "bulk-777");
  CHECK(some.size() == total / streams);
  CHECK(some.back().seq == total / streams);
  CHECK(some.back().payload == std::string(100, static_cast<char>('a' + 777 % 26)));
  STRATA_CHECK_OK(j->verify());
}

TEST_CASE("journal: read_stream_view sees exactly what read_stream sees") {
  temp_dir dir;
  auto o = journal_opts(dir.path(), 4);
  auto j = open_journal(o);
  append_ok(*j, {rich_write("v", 0, 3, 2), make_write("w", 0, numbered("w", 1, 5))});
  append_ok(*j, {rich_write("v", 3, 4, 3)}); // partly indexed, partly pending
  auto check = [&](const journal& jj) {
    for (auto [from, to] : {std::pair<std::uint64_t, std::uint64_t>{1, journal::max_seq},
                            {2, 5},
                            {7, 7},
                            {8, journal::max_seq}}) {
      INFO("range " << from << ".." << to);
      auto views = load_views(jj, "v", from, to);
      STRATA_REQUIRE_VALUE(views);
      auto records = jj.load_stream("v", from, to);
      STRATA_REQUIRE_VALUE(records);
      CHECK(*views == *records);
    }
    auto unknown = load_views(jj, "nope");
    STRATA_REQUIRE_VALUE(unknown);
    CHECK(unknown->empty());
    int visits = 0;
    STRATA_REQUIRE_OK(jj.read_stream_view("w", 1, journal::max_seq, [&](const event_view&) {
      return ++visits < 3;
    }));
    CHECK(visits == 3);
  };
  check(*j);
  STRATA_REQUIRE_OK(j->delete_events_before("v", 2));
  check(*j);
  STRATA_REQUIRE_OK(j->close());
  j.reset();
  j = open_journal(o);
  check(*j);
  auto v = load_views(*j, "v");
  STRATA_REQUIRE_VALUE(v);
  CHECK(seqs_of(*v) == range(3, 7));
}
