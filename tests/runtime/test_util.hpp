// Helpers for the runtime tests: temporary data directories, callback collectors.
#pragma once

#include "strata/runtime/all.hpp"

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

/// A fresh directory under /tmp, removed at scope exit.
struct temp_dir {
  std::string path;
  temp_dir() {
    std::string tmpl = "/tmp/strata_rt_XXXXXX";
    char* p = ::mkdtemp(tmpl.data());
    REQUIRE(p != nullptr);
    path = p;
  }
  ~temp_dir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
};

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

/// Polls `cond` until it holds or `timeout` passes (for asynchronous effects such as
/// passivation; never used to order events).
inline bool eventually(const std::function<bool()>& cond,
                       std::chrono::milliseconds timeout = std::chrono::seconds(20)) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (cond()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return cond();
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
