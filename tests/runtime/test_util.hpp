// Helpers for the runtime tests: a test configuration, opening a system, callback
// collectors. Temporary directories, seeds and polling come from tests/support.
#pragma once

#include "strata/runtime/all.hpp"
#include "strata/test/poll.hpp"
#include "strata/test/seed.hpp"
#include "strata/test/temp_dir.hpp"

#include <doctest/doctest.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace test_util {

// The helpers of every test folder (tests/support, strata::test_support).
using strata::test::eventually;
using strata::test::temp_dir;

inline strata::config test_config(const std::string& dir) {
  strata::config c;
  c.data_dir = dir;
  c.durability = strata::persistence::sync_mode::nosync; // replies still wait for commit
  c.scheduler_threads = 4;
  c.passivate_after_ms = 0; // tests passivate explicitly unless they test the sweeper
  c.map_size_bytes = std::size_t{64} << 20;
  return c;
}

inline std::unique_ptr<strata::system> open_system(const strata::config& c) {
  auto s = strata::system::open(c);
  if (!s) FAIL("cannot open the system: " << strata::describe(s.error()));
  return std::move(*s);
}

/// Collects async replies: (command index, result, extra).
template <class Reply>
struct collector {
  struct item {
    std::size_t index;
    caf::expected<Reply> result;
    std::uint64_t extra;
  };
  std::mutex mtx;
  std::condition_variable cv;
  std::vector<item> items;

  void add(std::size_t i, caf::expected<Reply> r, std::uint64_t extra = 0) {
    std::lock_guard<std::mutex> g{mtx};
    items.push_back(item{i, std::move(r), extra});
    cv.notify_all();
  }
  bool wait_for(std::size_t n, std::chrono::seconds t = std::chrono::seconds(30)) {
    std::unique_lock<std::mutex> g{mtx};
    return cv.wait_for(g, t, [&] {
      return items.size() >= n;
    });
  }
  std::size_t size() {
    std::lock_guard<std::mutex> g{mtx};
    return items.size();
  }
};

} // namespace test_util
