// journal::append_async: batches planned on top of batches still queued for the commit
// thread, committed in call order; a failed batch fails the ones planned on it.
#include "test_util.hpp"

#include <condition_variable>
#include <map>
#include <mutex>

using namespace strata::persistence;
using namespace strata::persistence::test;

namespace {

/// Collects append_async outcomes (delivered on the journal's commit thread).
struct outcomes {
  std::mutex mu;
  std::condition_variable cv;
  std::vector<std::pair<int, result<std::vector<write_result>>>> got;

  append_callback slot(int tag) {
    return [this, tag](result<std::vector<write_result>> r) {
      std::lock_guard lk(mu);
      got.emplace_back(tag, std::move(r));
      cv.notify_all();
    };
  }
  void wait_for(std::size_t n) {
    std::unique_lock lk(mu);
    REQUIRE(cv.wait_for(lk, std::chrono::seconds(60), [&] {
      return got.size() >= n;
    }));
  }
};

std::vector<std::string> payloads(const std::string& pid, std::uint64_t first, int n) {
  std::vector<std::string> v;
  for (int i = 0; i < n; ++i)
    v.push_back(pid + "#" + std::to_string(first + i));
  return v;
}

std::uint64_t head(const journal& j, std::string_view pid) {
  auto h = j.highest_seq(pid);
  STRATA_REQUIRE_VALUE(h);
  return *h;
}

} // namespace

TEST_CASE("journal: append_async plans on queued batches and commits them in order") {
  temp_dir dir;
  auto o = journal_opts(dir.path(), 7);
  o.max_pipelined_batches = 4;
  auto j = open_journal(o);
  outcomes out;
  // Each batch extends streams whose previous events are, most likely, not committed
  // yet: the expected seqs are the planned heads.
  const int batches = 50;
  std::map<std::string, std::uint64_t> heads;
  for (int b = 0; b < batches; ++b) {
    std::vector<stream_write> batch;
    for (const std::string& pid :
         {std::string("p"), std::string("q"), "r" + std::to_string(b % 5)}) {
      auto n = 1 + b % 3;
      batch.push_back(make_write(pid, heads[pid], payloads(pid, heads[pid] + 1, n)));
      heads[pid] += n;
    }
    j->append_async(batch, {}, out.slot(b));
  }
  out.wait_for(batches);
  std::uint64_t expect_pos = 1;
  for (int b = 0; b < batches; ++b) {
    INFO("batch " << b);
    REQUIRE(out.got[b].first == b); // callbacks in call order
    auto& r = out.got[b].second;
    STRATA_REQUIRE_VALUE(r);
    for (auto& wr : *r) {
      STRATA_CHECK_OK(wr.st);
      CHECK(wr.first_position == expect_pos);
      expect_pos = wr.last_position + 1;
    }
  }
  for (auto& [pid, n] : heads) {
    auto evs = load_all(*j, pid);
    REQUIRE(evs.size() == n);
    for (std::uint64_t i = 0; i < n; ++i)
      CHECK(evs[i].payload == pid + "#" + std::to_string(i + 1));
  }
  STRATA_CHECK_OK(j->verify());
}

TEST_CASE("journal: a failed batch fails what was planned on it; the next call starts over") {
  temp_dir dir;
  auto o = journal_opts(dir.path(), 5);
  o.env.map_size_bytes = 256u << 10;
  o.env.map_size_max_bytes = 1u << 20;
  o.max_pipelined_batches = 8;
  auto j = open_journal(o);
  append_ok(*j, {make_write("m", 0, payloads("m", 1, 3))});

  outcomes out;
  std::vector<std::string> big(40, std::string(50'000, 'B')); // ~2 MiB: no room in 1 MiB
  j->append_async({make_write("m", 3, big)}, {}, out.slot(0));
  // Planned on top of the big batch (m's head would be 43 after it).
  j->append_async({make_write("m", 43, {"m#44"}), make_write("x", 0, {"x#1"})}, {}, out.slot(1));
  out.wait_for(2);
  REQUIRE(!out.got[0].second.has_value());
  CHECK(out.got[0].second.error().code() == errc::map_full);
  // The second batch must not commit on top of nothing: either it failed with the first
  // (still queued when that failed) or it was planned afresh and m's write conflicts.
  auto& second = out.got[1].second;
  bool refused = !second.has_value() || !(*second)[0].st.ok();
  CHECK(refused);
  CHECK(head(*j, "m") == 3);

  // The next call plans from what is committed.
  auto res = append_ok(*j, {make_write("m", 3, payloads("m", 4, 2)), make_write("y", 0, {"y#1"})});
  CHECK(res[0].first_seq == 4);
  auto evs = load_all(*j, "m");
  REQUIRE(evs.size() == 5);
  CHECK(evs[4].payload == "m#5");
  STRATA_CHECK_OK(j->verify());
  STRATA_REQUIRE_OK(j->close());
  j.reset();
  j = open_journal(o);
  CHECK(head(*j, "m") == 5);
  STRATA_CHECK_OK(j->verify());
}

TEST_CASE("journal: event timestamps stamped at append strictly increase, across reopen") {
  temp_dir dir;
  auto o = journal_opts(dir.path(), 3);
  std::int64_t last = 0;
  for (int round = 0; round < 2; ++round) {
    auto j = open_journal(o);
    for (int b = 0; b < 5; ++b)
      append_ok(*j, {make_write("t", stream_write::any_seq, payloads("t", 0, 20)),
                     make_write("u", stream_write::any_seq, payloads("u", 0, 3))});
    auto all = read_global_all(*j);
    for (auto& e : all) {
      if (e.position <= static_cast<std::uint64_t>(round) * 115) continue;
      CHECK(e.timestamp_ns > last);
      last = e.timestamp_ns;
    }
    STRATA_REQUIRE_OK(j->close());
  }
}

TEST_CASE("journal: append_async by address reads the writes during the call only") {
  temp_dir dir;
  auto o = journal_opts(dir.path(), 5);
  o.max_pipelined_batches = 2;
  auto j = open_journal(o);
  outcomes out;
  // The same two writes are reused for every batch, as the runtime's entities reuse
  // their write buffers: each batch overwrites them as soon as append_async returned,
  // while the batches before it may still be queued or committing.
  std::vector<stream_write> writes(2);
  writes[0].persistence_id = "a";
  writes[1].persistence_id = "b";
  const write_refs refs{&writes[0], &writes[1]};
  const int batches = 20;
  for (int b = 0; b < batches; ++b) {
    for (auto& w : writes) {
      w.expected_seq = static_cast<std::uint64_t>(b);
      w.events.assign(1, event_data{});
      w.events[0].type = "t";
      w.events[0].payload = w.persistence_id + "#" + std::to_string(b + 1);
    }
    j->append_async(refs, {}, out.slot(b));
    for (auto& w : writes)
      w.events[0].payload = "overwritten"; // the journal must not see this
  }
  out.wait_for(batches);
  for (auto& [tag, r] : out.got) {
    INFO("batch " << tag);
    STRATA_REQUIRE_VALUE(r);
    for (auto& wr : *r)
      STRATA_CHECK_OK(wr.st);
  }
  for (const std::string pid : {"a", "b"}) {
    auto evs = load_all(*j, pid);
    REQUIRE(evs.size() == static_cast<std::size_t>(batches));
    for (int i = 0; i < batches; ++i)
      CHECK(evs[static_cast<std::size_t>(i)].payload == pid + "#" + std::to_string(i + 1));
  }
  STRATA_CHECK_OK(j->verify());
}
