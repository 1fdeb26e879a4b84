// tests runtime/src/system.cpp, region.cpp, group_commit.cpp and entity.cpp (with
// runtime/include/strata/runtime/detail/entity.hpp) through the public API.
#include "counter.hpp"
#include "test_util.hpp"

#include "strata/runtime/detail/region.hpp"
#include "strata/runtime/testing.hpp"
#include "strata/test/files.hpp"

#include <atomic>
#include <filesystem>
#include <functional>
#include <map>
#include <random>

using namespace test_counter;
using namespace test_util;
using strata::runtime_errc;

namespace {

/// open_system with fault injection (strata/runtime/testing.hpp).
std::unique_ptr<strata::system> open_system(const strata::config& c, strata::testing::faults f) {
  auto s = strata::testing::open_with_faults(c, std::move(f));
  if (!s) FAIL("cannot open the system: " << strata::describe(s.error()));
  return std::move(*s);
}

std::optional<runtime_errc> code_of(const caf::error& e) { return strata::runtime_error_of(e); }

std::int64_t value_in_journal(strata::entities<counter>& c, const std::string& id) {
  auto s = c.state_at_seq(id);
  REQUIRE_MESSAGE(s, strata::describe(s.error()));
  return s->state.value;
}

} // namespace

TEST_CASE("system: commands, rejections, queries, no-reply and a throwing handler") {
  temp_dir dir;
  auto sys = open_system(test_config(dir.path()));
  auto c = sys->entities<counter>();
  CHECK(c.type() == "counter");
  CHECK(c.persistence_id("a") == "counter:a");

  auto r = c.ask("a", add{5});
  REQUIRE_MESSAGE(r, strata::describe(r.error()));
  CHECK(*r == 5);
  r = c.ask("a", sub{6});
  REQUIRE_FALSE(r);
  CHECK(strata::rejection_of<counter>(r.error()) == counter::rejection::insufficient);
  // The detail the handler built reaches the caller (and is not stored).
  CHECK(strata::describe(r.error()) == "rejected: insufficient: value 5 is less than 6");
  CHECK(strata::rejection_detail(r.error()) == "value 5 is less than 6");
  r = c.ask("a", add_twice{2});
  REQUIRE(r);
  CHECK(*r == 9);
  r = c.ask("a", get{});
  REQUIRE(r);
  CHECK(*r == 9);

  r = c.ask("a", touch{});
  REQUIRE_FALSE(r);
  CHECK(code_of(r.error()) == runtime_errc::no_reply);

  r = c.ask("a", boom{});
  REQUIRE_FALSE(r);
  CHECK(code_of(r.error()) == runtime_errc::internal);

  auto h = c.history("a");
  REQUIRE(h);
  REQUIRE(h->size() == 4); // added 5, added 2, added 2, touched — nothing for the others
  CHECK(h->at(0).seq == 1);
  CHECK(h->at(0).type == "added");
  CHECK(std::holds_alternative<touched>(h->at(3).event));
  CHECK(h->at(3).timestamp_ns >= h->at(0).timestamp_ns);
  CHECK(h->at(0).timestamp_ns > 0);

  r = c.ask("a", get{});
  REQUIRE(r);
  CHECK(*r == 9);
  CHECK(value_in_journal(c, "a") == 9);

  r = c.ask("", get{});
  REQUIRE_FALSE(r);
  CHECK(code_of(r.error()) == runtime_errc::invalid_argument);

  auto ids = c.ids();
  REQUIRE(ids);
  CHECK(*ids == std::vector<std::string>{"a"});
}

TEST_CASE("system: an event that cannot be encoded fails its command only, also inside an "
          "open write") {
  temp_dir dir;
  auto sys = open_system(test_config(dir.path()));
  auto c = sys->entities<counter>();
  // Pipelined: while writes are in flight, later commands share the entity's open write
  // (its reused buffer); the failing encode must leave the events before it intact.
  const int n = 400;
  collector<std::int64_t> got;
  for (int i = 0; i < n; ++i) {
    counter::command cmd = add{1};
    if (i % 14 == 3) cmd = add{counter::unencodable};
    if (i % 14 == 10) cmd = add_twice{counter::unencodable}; // fails at its second event
    c.ask_async("enc", cmd, [&got, i](caf::expected<std::int64_t> r) {
      got.add(static_cast<std::size_t>(i), std::move(r));
    });
  }
  REQUIRE(got.wait_for(n));
  std::int64_t expect = 0;
  std::lock_guard<std::mutex> g{got.mtx};
  for (auto& it : got.items) {
    CAPTURE(it.index);
    if (it.index % 7 == 3) {
      REQUIRE_FALSE(it.result);
      CHECK(code_of(it.result.error()) == runtime_errc::internal);
    } else {
      ++expect;
      REQUIRE_MESSAGE(it.result, strata::describe(it.result.error()));
      CHECK(*it.result == expect); // replies in command order, on the stored state
    }
  }
  auto cur = c.current("enc");
  REQUIRE(cur);
  CHECK(cur->state.value == expect);
  CHECK(cur->seq == static_cast<std::uint64_t>(expect)); // nothing else was stored
}

TEST_CASE("system: replies come in command order and only after the events are durable") {
  temp_dir dir;
  STRATA_TEST_SEED(seed);
  std::mt19937 rng(static_cast<std::uint32_t>(seed));
  auto sys = open_system(test_config(dir.path()));
  auto c = sys->entities<counter>();
  auto pid = c.persistence_id("hot");
  auto& journal = sys->journal();

  // A reference model decides what every reply must be.
  const std::size_t n = 3000;
  std::vector<counter::command> cmds;
  std::vector<std::optional<std::int64_t>> expect_value(n);
  std::vector<std::optional<counter::rejection>> expect_rej(n);
  std::vector<std::uint64_t> events_before_reply(n);
  std::int64_t value = 0;
  std::uint64_t events = 0;
  for (std::size_t i = 0; i < n; ++i) {
    switch (rng() % 4) {
      case 0: cmds.emplace_back(add{static_cast<std::int64_t>(rng() % 5 + 1)}); break;
      case 1: cmds.emplace_back(sub{static_cast<std::int64_t>(rng() % 8 + 1)}); break;
      case 2: cmds.emplace_back(get{}); break;
      default: cmds.emplace_back(add_twice{static_cast<std::int64_t>(rng() % 3 + 1)});
    }
    auto eff = counter::handle(counter::state{value, events}, cmds.back());
    if (eff.kind() == strata::effect_kind::reject) {
      expect_rej[i] = *eff.rejection();
    } else {
      auto after = strata::fold<counter>(counter::state{value, events}, eff.events());
      value = after.value;
      events = after.events;
      expect_value[i] = value;
    }
    events_before_reply[i] = events;
  }

  collector<std::int64_t> got;
  for (std::size_t i = 0; i < n; ++i)
    c.ask_async("hot", cmds[i], [&got, &journal, pid, i](caf::expected<std::int64_t> r) {
      auto head = journal.highest_seq(pid);
      got.add(i, std::move(r), head ? *head : 0);
    });
  REQUIRE(got.wait_for(n));
  std::lock_guard<std::mutex> g{got.mtx};
  REQUIRE(got.items.size() == n);
  for (std::size_t k = 0; k < n; ++k) {
    auto& it = got.items[k];
    CAPTURE(k);
    REQUIRE(it.index == k); // command order
    if (expect_rej[k]) {
      REQUIRE_FALSE(it.result);
      CHECK(strata::rejection_of<counter>(it.result.error()) == expect_rej[k]);
    } else {
      REQUIRE_MESSAGE(it.result, strata::describe(it.result.error()));
      CHECK(*it.result == *expect_value[k]);
    }
    // Durable before the reply: the journal already holds every event decided so far.
    CHECK(it.extra >= events_before_reply[k]);
  }
  // The journal holds exactly the model's events (the entity's write buffers are reused
  // from write to write: nothing is lost, repeated or left over).
  auto cur = c.state_at_seq("hot");
  REQUIRE(cur);
  CHECK(cur->state.value == value);
  CHECK(cur->seq == events);
  auto st = sys->stats();
  CHECK(st.committed_events == events);
  // The commit-time histogram counts every commit once.
  std::uint64_t in_histogram = 0;
  for (auto n : st.commit_us_histogram)
    in_histogram += n;
  CHECK(in_histogram == st.commits);
  MESSAGE("hot entity: " << n << " commands, " << events << " events in " << st.commits
                         << " commits");
}

TEST_CASE("system: commands sent during recovery are stashed, handled after it in order; "
          "beyond stash-max they are answered stash_full") {
  temp_dir dir;
  auto cfg = test_config(dir.path());
  {
    auto sys = open_system(cfg);
    auto c = sys->entities<counter>();
    REQUIRE(c.ask("target", add{100}));
  }
  std::mutex m;
  std::condition_variable cv;
  bool entered = false;
  bool release = false;
  cfg.max_recovering = 1;
  cfg.stash_max = 5;
  strata::testing::faults faults;
  faults.before_recover = [&](const std::string& pid) {
    if (pid != "counter:blocker") return;
    std::unique_lock<std::mutex> g{m};
    entered = true;
    cv.notify_all();
    cv.wait(g, [&] {
      return release;
    }); // holds the only recovery permit
  };
  auto sys = open_system(cfg, std::move(faults));
  auto c = sys->entities<counter>();
  collector<std::int64_t> blocker;
  c.ask_async("blocker", get{}, [&](caf::expected<std::int64_t> r) {
    blocker.add(0, r);
  });
  {
    std::unique_lock<std::mutex> g{m};
    REQUIRE(cv.wait_for(g, std::chrono::seconds(20), [&] {
      return entered;
    }));
  }
  collector<std::int64_t> got;
  for (std::size_t i = 0; i < 8; ++i)
    c.ask_async("target", add{static_cast<std::int64_t>(i + 1)},
                [&got, i](caf::expected<std::int64_t> r) {
                  got.add(i, std::move(r));
                });
  // The 3 over the bound are answered while recovery is still blocked.
  REQUIRE(got.wait_for(3));
  {
    std::lock_guard<std::mutex> g{got.mtx};
    REQUIRE(got.items.size() == 3);
    for (std::size_t k = 0; k < 3; ++k) {
      CHECK(got.items[k].index == 5 + k);
      REQUIRE_FALSE(got.items[k].result);
      CHECK(code_of(got.items[k].result.error()) == runtime_errc::stash_full);
    }
  }
  CHECK(sys->stats().waiting_for_recovery >= 1);
  {
    std::lock_guard<std::mutex> g{m};
    release = true;
    cv.notify_all();
  }
  REQUIRE(got.wait_for(8));
  REQUIRE(blocker.wait_for(1));
  std::lock_guard<std::mutex> g{got.mtx};
  std::int64_t expected = 100;
  for (std::size_t k = 3; k < 8; ++k) {
    auto& it = got.items[k];
    CHECK(it.index == k - 3);
    expected += static_cast<std::int64_t>(it.index + 1);
    REQUIRE(it.result);
    CHECK(*it.result == expected); // handled on the recovered state, in order
  }
}

TEST_CASE("system: idle entities passivate and reactivate by recovery") {
  temp_dir dir;
  auto cfg = test_config(dir.path());
  cfg.passivate_after_ms = 30;
  auto sys = open_system(cfg);
  auto c = sys->entities<counter>();
  REQUIRE(c.ask("p", add{5}));
  REQUIRE(c.ask("q", add{1}));
  CHECK(sys->stats().recoveries == 2);
  REQUIRE(eventually([&] {
    return c.live() == 0;
  }));
  CHECK(sys->stats().passivations >= 2);
  auto r = c.ask("p", add{1});
  REQUIRE(r);
  CHECK(*r == 6); // the state came back from the journal
  CHECK(sys->stats().recoveries == 3);
  CHECK(c.live() >= 1);
}

TEST_CASE("system: passivation racing with commands loses and duplicates nothing") {
  temp_dir dir;
  auto sys = open_system(test_config(dir.path()));
  auto c = sys->entities<counter>();
  std::atomic<bool> done{false};
  std::atomic<int> errors{0};
  std::mutex first_error_mtx;
  std::string first_error;
  const int per_thread = 300;
  std::vector<std::thread> clients;
  for (int t = 0; t < 3; ++t)
    clients.emplace_back([&, t] {
      auto id = "r" + std::to_string(t);
      for (int i = 0; i < per_thread; ++i) {
        auto r = c.ask(id, add{1});
        if (!r || *r != i + 1) {
          ++errors;
          std::lock_guard<std::mutex> g{first_error_mtx};
          if (first_error.empty())
            first_error =
              r ? "reply " + std::to_string(*r) + " for command #" + std::to_string(i + 1)
                : strata::describe(r.error());
        }
      }
    });
  std::thread passivator([&] {
    while (!done)
      sys->passivate_idle(0);
  });
  for (auto& t : clients)
    t.join();
  done = true;
  passivator.join();
  CAPTURE(first_error);
  CHECK(errors == 0);
  for (int t = 0; t < 3; ++t)
    CHECK(value_in_journal(c, "r" + std::to_string(t)) == per_thread);
  CHECK(sys->stats().recoveries > 3);
}

TEST_CASE("system: a failed journal write fails the commands on top of it; the entity "
          "recovers and its state equals the journal") {
  temp_dir dir;
  auto cfg = test_config(dir.path());
  std::atomic<int> fail_before{0};
  std::atomic<int> fail_after{0};
  strata::testing::faults faults;
  faults.append = [&](strata::testing::append_phase p,
                      const std::vector<strata::persistence::stream_write>&) {
    using strata::persistence::errc;
    if (p == strata::testing::append_phase::before && fail_before > 0) {
      --fail_before;
      return strata::persistence::status{errc::io_error, "injected: disk gone"};
    }
    if (p == strata::testing::append_phase::after && fail_after > 0) {
      --fail_after;
      return strata::persistence::status{errc::io_error, "injected: sync result lost"};
    }
    return strata::persistence::status{};
  };
  auto sys = open_system(cfg, std::move(faults));
  auto c = sys->entities<counter>();
  REQUIRE(c.ask("f", add{10}));

  fail_before = 1;
  auto r = c.ask("f", add{5});
  REQUIRE_FALSE(r);
  CHECK(code_of(r.error()) == runtime_errc::io_error);
  CHECK(strata::describe(r.error()).find("injected") != std::string::npos);
  r = c.ask("f", get{});
  REQUIRE(r);
  CHECK(*r == 10);
  CHECK(value_in_journal(c, "f") == 10);

  // Stored, but reported failed: the entity must not stay behind the journal either.
  fail_after = 1;
  r = c.ask("f", add{7});
  REQUIRE_FALSE(r);
  r = c.ask("f", get{});
  REQUIRE(r);
  CHECK(*r == 17);
  CHECK(value_in_journal(c, "f") == 17);

  // A failure in the middle of a pipelined burst.
  collector<std::int64_t> got;
  const std::size_t n = 400;
  for (std::size_t i = 0; i < n; ++i) {
    if (i == 50) fail_before = 2;
    c.ask_async("f", add{1}, [&got, i](caf::expected<std::int64_t> x) {
      got.add(i, x);
    });
  }
  REQUIRE(got.wait_for(n));
  std::int64_t ok = 0;
  std::size_t failed = 0;
  {
    std::lock_guard<std::mutex> g{got.mtx};
    for (auto& it : got.items) {
      if (it.result) {
        ++ok;
      } else {
        ++failed;
        auto code = code_of(it.result.error());
        CHECK((code == runtime_errc::io_error || code == runtime_errc::write_failed));
      }
    }
  }
  CHECK(failed + static_cast<std::size_t>(ok) == n);
  r = c.ask("f", get{});
  REQUIRE(r);
  CHECK(*r == 17 + ok);
  CHECK(value_in_journal(c, "f") == 17 + ok);
  CHECK(sys->stats().failed_commits >= 2);
}

TEST_CASE("system: restart recovers from snapshot + tail, equal to a full replay") {
  temp_dir dir;
  auto cfg = test_config(dir.path());
  cfg.snapshot_every = 10;
  {
    auto sys = open_system(cfg);
    auto c = sys->entities<counter>();
    for (int i = 0; i < 25; ++i)
      REQUIRE(c.ask("s", add{2}));
  }
  auto sys = open_system(cfg);
  auto c = sys->entities<counter>();
  auto snaps = sys->journal().snapshots().list("counter:s");
  REQUIRE(snaps);
  REQUIRE_FALSE(snaps->empty());
  CHECK(snaps->back() >= 10);
  auto cur = c.current("s");
  auto full = c.state_at_seq("s");
  REQUIRE(cur);
  REQUIRE(full);
  CHECK(cur->seq == 25);
  CHECK(cur->state == full->state);
  CHECK(full->state.value == 50);
  auto r = c.ask("s", get{});
  REQUIRE(r);
  CHECK(*r == 50);
  auto at10 = c.state_at_seq("s", 10);
  REQUIRE(at10);
  CHECK(at10->state.value == 20);
  auto h = c.history("s");
  REQUIRE(h);
  auto at_time = c.state_at_time("s", h->at(11).timestamp_ns);
  REQUIRE(at_time);
  CHECK(at_time->seq >= 12);
  CHECK(at_time->state.value == static_cast<std::int64_t>(at_time->seq) * 2);
}

TEST_CASE("system: shutdown answers every command exactly once; acknowledged ones survive") {
  temp_dir dir;
  auto cfg = test_config(dir.path());
  const std::size_t n = 3000;
  std::vector<std::atomic<int>> calls(n);
  std::map<std::string, std::int64_t> acked;
  std::mutex m;
  {
    auto sys = open_system(cfg);
    auto c = sys->entities<counter>();
    for (std::size_t i = 0; i < n; ++i) {
      auto id = "d" + std::to_string(i % 20);
      c.ask_async(id, add{1}, [&, i, id](caf::expected<std::int64_t> r) {
        ++calls[i];
        if (r) {
          std::lock_guard<std::mutex> g{m};
          ++acked[id];
        } else {
          CHECK(code_of(r.error()) == runtime_errc::shutting_down);
        }
      });
    }
    sys->shutdown();
    for (std::size_t i = 0; i < n; ++i)
      REQUIRE(calls[i] == 1);
    auto r = c.ask("d0", get{});
    REQUIRE_FALSE(r);
    CHECK(code_of(r.error()) == runtime_errc::shutting_down);
  }
  auto sys = open_system(cfg);
  auto c = sys->entities<counter>();
  for (int k = 0; k < 20; ++k) {
    auto id = "d" + std::to_string(k);
    CHECK(value_in_journal(c, id) == acked[id]);
  }
}

TEST_CASE("system: many entities from many threads") {
  temp_dir dir;
  auto sys = open_system(test_config(dir.path()));
  auto c = sys->entities<counter>();
  const int threads = 4, ids = 200, rounds = 5;
  std::atomic<int> errors{0};
  std::vector<std::thread> ts;
  for (int t = 0; t < threads; ++t)
    ts.emplace_back([&, t] {
      collector<std::int64_t> got;
      for (int k = 0; k < rounds; ++k)
        for (int i = 0; i < ids; ++i)
          c.ask_async("m" + std::to_string(i), add{t + 1}, [&got](caf::expected<std::int64_t> r) {
            got.add(0, r);
          });
      if (!got.wait_for(static_cast<std::size_t>(ids * rounds))) ++errors;
      std::lock_guard<std::mutex> g{got.mtx};
      for (auto& it : got.items)
        if (!it.result) ++errors;
    });
  for (auto& t : ts)
    t.join();
  CHECK(errors == 0);
  CHECK(c.live() == static_cast<std::size_t>(ids));
  for (int i = 0; i < ids; ++i)
    CHECK(value_in_journal(c, "m" + std::to_string(i)) == rounds * (1 + 2 + 3 + 4));
}

TEST_CASE("system: at most max-recovering entities recover at once") {
  temp_dir dir;
  auto cfg = test_config(dir.path());
  std::atomic<int> now{0};
  std::atomic<int> peak{0};
  cfg.max_recovering = 2;
  strata::testing::faults faults;
  faults.before_recover = [&](const std::string&) {
    int n = ++now;
    int p = peak.load();
    while (n > p && !peak.compare_exchange_weak(p, n)) {
    }
    // Stay a moment so overlapping recoveries would be seen (not a synchronisation).
    std::this_thread::sleep_for(std::chrono::microseconds(200));
    --now;
  };
  auto sys = open_system(cfg, std::move(faults));
  auto c = sys->entities<counter>();
  collector<std::int64_t> got;
  const std::size_t n = 300;
  for (std::size_t i = 0; i < n; ++i)
    c.ask_async("w" + std::to_string(i), add{1}, [&got, i](caf::expected<std::int64_t> r) {
      got.add(i, r);
    });
  REQUIRE(got.wait_for(n));
  {
    std::lock_guard<std::mutex> g{got.mtx};
    for (auto& it : got.items)
      CHECK(it.result);
  }
  CHECK(peak.load() >= 1);
  CHECK(peak.load() <= 2);
  CHECK(sys->stats().recoveries == n);
}

TEST_CASE("system: ids against the rules fail with invalid_argument in commands and reads") {
  temp_dir dir;
  auto sys = open_system(test_config(dir.path()));
  auto c = sys->entities<counter>();
  for (const std::string& bad :
       std::vector<std::string>{"a\nb", "a\x1b", std::string(300, 'x'), "\xFF"}) {
    auto r = c.ask(bad, add{1});
    REQUIRE_FALSE(r);
    CHECK(code_of(r.error()) == runtime_errc::invalid_argument);
    auto f = c.ask_future(bad, get{}).get();
    REQUIRE_FALSE(f);
    CHECK(code_of(f.error()) == runtime_errc::invalid_argument);
    c.tell(bad, add{1});
    auto h = c.history(bad);
    REQUIRE_FALSE(h);
    CHECK(code_of(h.error()) == runtime_errc::invalid_argument);
    CHECK(code_of(c.current(bad).error()) == runtime_errc::invalid_argument);
    CHECK(code_of(c.state_at_seq(bad, 1).error()) == runtime_errc::invalid_argument);
    CHECK(code_of(c.state_at_time(bad, 1).error()) == runtime_errc::invalid_argument);
  }
  auto r = c.ask("a b:c", add{1}); // spaces and ':' are fine
  REQUIRE_MESSAGE(r, strata::describe(r.error()));
  auto ids = c.ids();
  REQUIRE(ids);
  CHECK(*ids == std::vector<std::string>{"a b:c"}); // nothing of the told commands
}

TEST_CASE("system: read-only answers reads, refuses commands and changes no byte") {
  temp_dir dir;
  {
    auto sys = open_system(test_config(dir.path()));
    auto c = sys->entities<counter>();
    REQUIRE(c.ask("a", add{5}));
    REQUIRE(c.ask("a", add{2}));
    REQUIRE(c.ask("b", add{1}));
  }
  const auto before = strata::test::slurp(dir.path() + "/data.mdb");
  REQUIRE_FALSE(before.empty());
  auto cfg = test_config(dir.path());
  cfg.read_only = true;
  {
    auto sys = open_system(cfg);
    auto c = sys->entities<counter>();
    auto r = c.ask("a", add{1});
    REQUIRE_FALSE(r);
    CHECK(code_of(r.error()) == runtime_errc::read_only);
    CHECK(strata::describe(r.error()).find("read-only") != std::string::npos);
    c.tell("b", add{1});
    auto h = c.history("a");
    REQUIRE_MESSAGE(h, strata::describe(h.error()));
    CHECK(h->size() == 2);
    auto s = c.current("a");
    REQUIRE(s);
    CHECK(s->state.value == 7);
    CHECK(s->seq == 2);
    CHECK(value_in_journal(c, "b") == 1);
    auto at = c.state_at_seq("a", 1);
    REQUIRE(at);
    CHECK(at->state.value == 5);
    auto ids = c.ids();
    REQUIRE(ids);
    CHECK(*ids == std::vector<std::string>{"a", "b"});
    CHECK(sys->stats().commits == 0);
    CHECK(sys->kafka_bridge() == nullptr);
  }
  CHECK(strata::test::slurp(dir.path() + "/data.mdb") == before);
  // Contradicting settings, and a directory without a journal.
  cfg.kafka = "mock";
  auto k = strata::system::open(cfg);
  REQUIRE_FALSE(k);
  CHECK(code_of(k.error()) == runtime_errc::invalid_argument);
  auto none = test_config(dir.path() + "/nothing-here");
  none.read_only = true;
  auto n = strata::system::open(none);
  REQUIRE_FALSE(n);
  CHECK(code_of(n.error()) == runtime_errc::not_found);
  CHECK_FALSE(std::filesystem::exists(dir.path() + "/nothing-here"));
}

TEST_CASE("system: commands sent from inside reply callbacks are routed from the entity "
          "and answered (chains over shared entities)") {
  temp_dir dir;
  auto sys = open_system(test_config(dir.path()));
  auto c = sys->entities<counter>();
  const int chains = 50, steps = 20, ids = 7;
  CHECK(strata::detail::current_entity() == nullptr); // not inside an entity here
  std::atomic<int> outside{0};
  collector<std::int64_t> got;
  std::function<void(int, int)> step = [&](int chain, int k) {
    if (k == steps) return;
    auto id = "chain" + std::to_string((chain + k) % ids);
    c.ask_async(id, add{1}, [&, chain, k](caf::expected<std::int64_t> r) {
      // The callback runs in the entity that answered: the next command is sent
      // with that entity's send (region::dispatch), not anonymously.
      if (strata::detail::current_entity() == nullptr) ++outside;
      got.add(static_cast<std::size_t>(chain), std::move(r));
      step(chain, k + 1);
    });
  };
  for (int i = 0; i < chains; ++i)
    step(i, 0);
  REQUIRE(got.wait_for(static_cast<std::size_t>(chains * steps)));
  CHECK(outside == 0);
  {
    std::lock_guard<std::mutex> g{got.mtx};
    for (auto& it : got.items)
      CHECK_MESSAGE(it.result, strata::describe(it.result.error()));
  }
  std::int64_t total = 0;
  for (int i = 0; i < ids; ++i)
    total += value_in_journal(c, "chain" + std::to_string(i));
  CHECK(total == chains * steps);
}
