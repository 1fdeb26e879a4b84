// Property (RapidCheck): any interleaving of batches over many streams — with random
// batch composition, payload sizes (including empty and multi-page), wrong expected
// seqs, index flush thresholds, reopen points and prefix deletions — reads back
// exactly as a simple in-memory model says: per stream gap-free and in order, the
// global log in append order, verify() ok.
#include "strata/persistence/journal.hpp"

#include "test_util.hpp"

#include <rapidcheck.h>

#include <algorithm>
#include <map>
#include <string>
#include <vector>

using namespace strata::persistence;
using namespace strata::persistence::test;

namespace {

/// What the journal should hold: every appended event by position, and per stream the
/// positions of its seqs and how many leading events were deleted.
struct model {
  struct entry {
    std::string pid;
    std::uint64_t seq = 0;
    std::string payload;
    bool deleted = false;
  };
  std::vector<entry> log;                                  // index = position - 1
  std::map<std::string, std::vector<std::size_t>> streams; // seq - 1 -> log index
  std::map<std::string, std::uint64_t> deleted_up_to;

  std::uint64_t head(const std::string& pid) const {
    auto i = streams.find(pid);
    return i == streams.end() ? 0 : i->second.size();
  }
  void append(const std::string& pid, std::string payload) {
    auto& s = streams[pid];
    s.push_back(log.size());
    log.push_back({pid, s.size(), std::move(payload)});
  }
  void delete_before(const std::string& pid, std::uint64_t up_to) {
    auto& s = streams.at(pid);
    for (std::uint64_t seq = 1; seq <= up_to && seq <= s.size(); ++seq)
      log[s[seq - 1]].deleted = true;
    auto& d = deleted_up_to[pid];
    d = std::max(d, std::min<std::uint64_t>(up_to, s.size()));
  }
};

std::string stream_name(int i) { return "s-" + std::to_string(i); }

std::string gen_payload() {
  // Mostly small, sometimes empty, sometimes larger than a page (overflow pages).
  const int kind = *rc::gen::inRange(0, 10);
  std::size_t n = 0;
  if (kind == 0)
    n = 0;
  else if (kind == 9)
    n = static_cast<std::size_t>(*rc::gen::inRange(4000, 12000));
  else
    n = static_cast<std::size_t>(*rc::gen::inRange(1, 300));
  auto seed = *rc::gen::arbitrary<std::uint32_t>();
  std::string p(n, '\0');
  for (std::size_t i = 0; i < n; ++i)
    p[i] = static_cast<char>((seed + i * 131u) >> (i % 7));
  return p;
}

void check_against(const journal& j, const model& m) {
  // Global log: the surviving events in position order.
  std::vector<event_record> all;
  auto read = j.read_global(1, ~std::size_t{0}, [&](const event_record& e) {
    all.push_back(e);
    return true;
  });
  RC_ASSERT(read.ok());
  RC_ASSERT(j.last_position() == m.log.size());
  std::size_t next = 0;
  for (std::size_t i = 0; i < m.log.size(); ++i) {
    const auto& want = m.log[i];
    if (want.deleted) continue;
    RC_ASSERT(next < all.size());
    const auto& got = all[next++];
    RC_ASSERT(got.position == i + 1);
    RC_ASSERT(got.persistence_id == want.pid);
    RC_ASSERT(got.seq == want.seq);
    RC_ASSERT(got.payload == want.payload);
  }
  RC_ASSERT(next == all.size());
  // Each stream: seqs deleted_up_to+1 .. head, payloads in order.
  for (auto& [pid, positions] : m.streams) {
    auto d = m.deleted_up_to.count(pid) ? m.deleted_up_to.at(pid) : 0;
    auto evs = j.load_stream(pid);
    RC_ASSERT(evs.has_value());
    RC_ASSERT(evs->size() == positions.size() - d);
    for (std::size_t i = 0; i < evs->size(); ++i) {
      const auto& want = m.log[positions[d + i]];
      RC_ASSERT((*evs)[i].seq == d + i + 1);
      RC_ASSERT((*evs)[i].position == positions[d + i] + 1);
      RC_ASSERT((*evs)[i].payload == want.payload);
      RC_ASSERT((*evs)[i].persistence_id == pid);
    }
    auto views = load_views(j, pid);
    RC_ASSERT(views.has_value());
    RC_ASSERT(*views == *evs);
    auto h = j.highest_seq(pid);
    RC_ASSERT(h.has_value());
    RC_ASSERT(*h == positions.size());
  }
  auto streams = j.list_streams();
  RC_ASSERT(streams.has_value());
  std::vector<std::string> expected;
  for (auto& [pid, positions] : m.streams)
    expected.push_back(pid); // std::map: already sorted
  RC_ASSERT(*streams == expected);
  auto st = j.verify();
  RC_ASSERT_FALSE(!st.ok());
}

} // namespace

TEST_CASE("journal property: any interleaving of batches reads back exactly") {
  const bool ok = rc::check("interleaved batches read back exactly", [] {
    temp_dir dir("strata-prop");
    const int n_streams = *rc::gen::inRange(1, 40);
    auto o = journal_opts(dir.path(), static_cast<std::size_t>(*rc::gen::inRange(1, 64)));
    auto j = journal::open(o);
    RC_ASSERT(j.has_value());
    std::unique_ptr<journal> jp = std::move(*j);
    model m;
    int reopens = 0, conflicts = 0, deletes = 0;

    const int n_steps = *rc::gen::inRange(1, 30);
    for (int step = 0; step < n_steps; ++step) {
      const int what = *rc::gen::inRange(0, 20);
      if (what == 2 && !m.streams.empty()) { // delete a prefix of a stream
        auto it = m.streams.begin();
        std::advance(it, *rc::gen::inRange<std::size_t>(0, m.streams.size()));
        const auto up_to = *rc::gen::inRange<std::uint64_t>(1, it->second.size() + 1);
        RC_ASSERT(jp->delete_events_before(it->first, up_to).ok());
        m.delete_before(it->first, up_to);
        ++deletes;
        continue;
      }
      if (what == 0 || what == 1) { // reopen, with or without an explicit close()
        if (what == 0) RC_ASSERT(jp->close().ok());
        jp.reset();
        ++reopens;
        o.index_flush_events = static_cast<std::size_t>(*rc::gen::inRange(1, 64));
        auto again = journal::open(o);
        RC_ASSERT(again.has_value());
        jp = std::move(*again);
        check_against(*jp, m);
        continue;
      }
      // A batch: random writes, some for the same stream, some with a wrong expected seq.
      std::vector<stream_write> batch;
      std::vector<bool> should_conflict;
      std::map<std::string, std::uint64_t> heads; // heads as the batch proceeds
      const int n_writes = *rc::gen::inRange(1, 12);
      for (int w = 0; w < n_writes; ++w) {
        auto pid = stream_name(*rc::gen::inRange(0, n_streams));
        if (!heads.count(pid)) heads[pid] = m.head(pid);
        stream_write sw;
        sw.persistence_id = pid;
        const bool wrong = *rc::gen::inRange(0, 10) == 0;
        const bool any = !wrong && *rc::gen::inRange(0, 10) == 0;
        sw.expected_seq = wrong
                            ? heads[pid] + 1 + static_cast<std::uint64_t>(*rc::gen::inRange(0, 3))
                          : any ? stream_write::any_seq
                                : heads[pid];
        const int n_events = *rc::gen::inRange(1, 6);
        for (int e = 0; e < n_events; ++e)
          sw.events.push_back(make_event("e", gen_payload()));
        if (!wrong) heads[pid] += static_cast<std::uint64_t>(n_events);
        should_conflict.push_back(wrong);
        batch.push_back(std::move(sw));
      }
      auto r = jp->append(batch);
      RC_ASSERT(r.has_value());
      RC_ASSERT(r->size() == batch.size());
      for (std::size_t w = 0; w < batch.size(); ++w) {
        const auto& res = (*r)[w];
        if (should_conflict[w]) {
          RC_ASSERT(res.st.code() == errc::conflict);
          ++conflicts;
          continue;
        }
        RC_ASSERT(res.st.ok());
        const auto& pid = batch[w].persistence_id;
        RC_ASSERT(res.first_seq == m.head(pid) + 1);
        RC_ASSERT(res.first_position == m.log.size() + 1);
        for (auto& e : batch[w].events)
          m.append(pid, e.payload);
        RC_ASSERT(res.last_seq == m.head(pid));
        RC_ASSERT(res.last_position == m.log.size());
      }
    }
    RC_CLASSIFY(m.log.size() >= 100, "100+ events");
    RC_CLASSIFY(reopens > 0, "reopened");
    RC_CLASSIFY(conflicts > 0, "conflicts");
    RC_CLASSIFY(deletes > 0, "deletes");
    check_against(*jp, m);
    RC_ASSERT(jp->close().ok());
    jp.reset();
    auto final_open = journal::open(o);
    RC_ASSERT(final_open.has_value());
    check_against(**final_open, m);
  });
  CHECK(ok);
}
