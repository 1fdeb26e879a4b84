// journal::open_read_only: readers that run while another process writes see every
// committed event (also those not yet in the index), write nothing and break nothing
// (issue 7, finding 2).
#include "strata/persistence/journal.hpp"
#include "strata/persistence/offset_store.hpp"
#include "strata/persistence/snapshot_store.hpp"

#include "test_util.hpp"

#include <sys/wait.h>

#include <chrono>
#include <map>
#include <string>
#include <vector>

using namespace strata::persistence;
using namespace strata::persistence::test;

namespace {

std::unique_ptr<journal> open_ro(const std::string& dir) {
  auto j = journal::open_read_only(journal_opts(dir));
  STRATA_REQUIRE_VALUE(j);
  return std::move(*j);
}

/// Checks that `pid` reads as seqs 1..n with the payloads the writer below gives them
/// ("<pid>#<seq>"); returns n.
std::size_t check_prefix(const journal& j, const std::string& pid) {
  auto evs = j.load_stream(pid);
  STRATA_REQUIRE_VALUE(evs);
  for (std::size_t i = 0; i < evs->size(); ++i) {
    INFO("stream " << pid << " event " << i);
    REQUIRE((*evs)[i].seq == i + 1);
    REQUIRE((*evs)[i].payload == pid + "#" + std::to_string(i + 1));
  }
  return evs->size();
}

constexpr int writer_streams = 6;
constexpr int writer_rounds = 1500;

/// The writer process: rounds of one event for each of a few streams per batch, a
/// small index flush threshold so the index is flushed while the readers read.
int run_writer(const std::string& dir) {
  auto j = journal::open(journal_opts(dir, 250));
  if (!j) return 10;
  for (int round = 1; round <= writer_rounds; ++round) {
    std::vector<stream_write> batch;
    for (int s = 0; s < writer_streams; ++s)
      if ((round + s) % 3 != 0 || round == 1) {
        auto pid = "s" + std::to_string(s);
        auto head = (*j)->highest_seq(pid);
        if (!head) return 11;
        batch.push_back(make_write(pid, *head, {pid + "#" + std::to_string(*head + 1)}));
      }
    auto r = (*j)->append(batch);
    if (!r) return 12;
    for (auto& w : *r)
      if (!w.st.ok()) return 13;
  }
  return (*j)->close().ok() ? 0 : 14;
}

} // namespace

TEST_CASE("read-only: readers in a loop while another process appends see seqs 1..n, and "
          "verify passes afterwards") {
  temp_dir dir;
  {
    auto j = open_journal(journal_opts(dir.path()));
    STRATA_REQUIRE_OK(j->close());
  }
  pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) ::_exit(run_writer(dir.path()));
  // One long-lived reader (its tail map grows and is pruned as the writer flushes) and
  // one fresh reader per round (the one-shot CLI case).
  auto longlived = open_ro(dir.path());
  std::map<std::string, std::size_t> seen;
  int status_word = 0, rounds = 0;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  for (;;) {
    bool done = ::waitpid(child, &status_word, WNOHANG) == child;
    auto fresh = open_ro(dir.path());
    for (int s = 0; s < writer_streams; ++s) {
      auto pid = "s" + std::to_string(s);
      for (const journal* j : {longlived.get(), fresh.get()}) {
        auto n = check_prefix(*j, pid);
        CHECK(n >= seen[pid]); // never goes back
        seen[pid] = n;
        auto head = j->highest_seq(pid);
        STRATA_REQUIRE_VALUE(head);
        CHECK(*head >= n);
      }
    }
    ++rounds;
    if (done) break;
    REQUIRE(std::chrono::steady_clock::now() < deadline);
  }
  REQUIRE(WIFEXITED(status_word));
  REQUIRE(WEXITSTATUS(status_word) == 0);
  CHECK(rounds >= 2);
  auto rep = longlived->verify_all();
  STRATA_REQUIRE_VALUE(rep);
  for (auto& p : rep->problems)
    INFO(p.to_string());
  CHECK(rep->ok());
  auto writer = open_journal(journal_opts(dir.path()));
  STRATA_CHECK_OK(writer->verify());
  std::size_t total = 0;
  for (int s = 0; s < writer_streams; ++s) {
    auto pid = "s" + std::to_string(s);
    auto n = check_prefix(*writer, pid);
    CHECK(n == check_prefix(*longlived, pid));
    total += n;
  }
  CHECK(total == writer->last_position());
}

TEST_CASE("read-only: events not yet in the index are read from the log tail, before and "
          "after the writer flushes") {
  temp_dir dir;
  auto w = open_journal(journal_opts(dir.path(), 1'000'000));
  append_ok(*w, {make_write("a", 0, {"a#1", "a#2"}), make_write("b", 0, {"b#1"})});
  STRATA_REQUIRE_OK(w->flush_index());
  append_ok(*w, {make_write("a", 2, {"a#3"}), make_write("c", 0, {"c#1"})});
  auto ro = open_ro(dir.path());
  CHECK(check_prefix(*ro, "a") == 3);
  CHECK(check_prefix(*ro, "b") == 1);
  CHECK(check_prefix(*ro, "c") == 1);
  CHECK(*ro->highest_seq("a") == 3);
  CHECK(*ro->highest_seq("c") == 1);
  CHECK(ro->last_position() == 5);
  auto ids = ro->list_streams();
  STRATA_REQUIRE_VALUE(ids);
  CHECK(*ids == std::vector<std::string>{"a", "b", "c"});
  // The same reader after more appends and a flush (its tail map is pruned).
  append_ok(*w, {make_write("a", 3, {"a#4"})});
  CHECK(check_prefix(*ro, "a") == 4);
  STRATA_REQUIRE_OK(w->flush_index());
  append_ok(*w, {make_write("a", 4, {"a#5"}), make_write("b", 1, {"b#2"})});
  CHECK(check_prefix(*ro, "a") == 5);
  CHECK(check_prefix(*ro, "b") == 2);
  CHECK(ro->load_stream("a", 4)->size() == 2);
  CHECK(ro->last_position() == 8);
  STRATA_CHECK_OK(ro->verify());
}

TEST_CASE("read-only: every mutating call fails with 'opened read-only'") {
  temp_dir dir;
  {
    auto w = open_journal(journal_opts(dir.path()));
    append_ok(*w, {make_write("a", 0, {"a#1"})});
  }
  auto ro = open_ro(dir.path());
  auto r = ro->append({make_write("a", 1, {"a#2"})});
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error().code() == errc::invalid_argument);
  CHECK(r.error().message().find("opened read-only") != std::string::npos);
  CHECK(ro->flush_index().code() == errc::invalid_argument);
  CHECK(ro->delete_events_before("a", 1).code() == errc::invalid_argument);
  snapshot_record s;
  s.persistence_id = "a";
  s.seq = 1;
  s.type = "t";
  CHECK(ro->snapshots().save(s).code() == errc::invalid_argument);
  CHECK(ro->offsets().put("p", 1).code() == errc::invalid_argument);
  STRATA_CHECK_OK(ro->close());
  CHECK(check_prefix(*open_ro(dir.path()), "a") == 1);
}

TEST_CASE("read-only: opening, reading and verifying leaves data.mdb byte-identical") {
  temp_dir dir;
  {
    // A crash-like exit: the writer flushed part of the index only, so a writer open
    // would re-index the tail.
    auto w = open_journal(journal_opts(dir.path(), 3));
    for (std::uint64_t i = 0; i < 10; ++i)
      append_ok(*w, {make_write("a", i, {"a#" + std::to_string(i + 1)})});
    STRATA_REQUIRE_OK(w->close());
    w.reset();
    CHECK(run_in_child([&] {
            auto j = journal::open(journal_opts(dir.path(), 1000));
            if (!j) return 1;
            append_ok(**j, {make_write("a", 10, {"a#11"})});
            std::_Exit(0); // no close: "a#11" stays out of the index
          }) == 0);
  }
  auto before = read_file(dir.sub("data.mdb"));
  {
    auto ro = open_ro(dir.path());
    CHECK(check_prefix(*ro, "a") == 11);
    STRATA_CHECK_OK(ro->verify());
    STRATA_REQUIRE_VALUE(ro->list_streams());
    CHECK(read_global_all(*ro).size() == 11);
  }
  CHECK(read_file(dir.sub("data.mdb")) == before);
}

TEST_CASE("read-only: a directory without a journal is not_found, and nothing is created") {
  temp_dir dir;
  auto j = journal::open_read_only(journal_opts(dir.sub("nothing-here")));
  REQUIRE_FALSE(j.has_value());
  CHECK(j.error().code() == errc::not_found);
  CHECK_FALSE(std::filesystem::exists(dir.sub("nothing-here")));
}
