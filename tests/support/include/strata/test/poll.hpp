// File: strata/test/poll.hpp — wait for a condition with a bounded deadline.
//
//   REQUIRE(strata::test::eventually([&] { return sys->stats().passivated > 0; }));
//   REQUIRE(strata::test::eventually([&] { return watch.count() == n; }, 5000));  // ms
//
// For effects that are asynchronous by nature (passivation, a process writing a file,
// Kafka catching up); never used to order events, which is what a message is for.
// Threads: any (cond runs on the calling thread).
#pragma once

#include <chrono>
#include <functional>

namespace strata::test {

/// Polls `cond` (about every 5 ms) until it holds or `timeout` has passed; then
/// returns what it says one last time.
bool eventually(const std::function<bool()>& cond,
                std::chrono::milliseconds timeout = std::chrono::seconds(20));

/// The same with the timeout in milliseconds.
inline bool eventually(const std::function<bool()>& cond, int timeout_ms) {
  return eventually(cond, std::chrono::milliseconds(timeout_ms));
}

} // namespace strata::test
