#include "strata/test/poll.hpp"

#include <thread>

namespace strata::test {

bool eventually(const std::function<bool()>& cond, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (cond()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(5)); // polling, not a sync
  }
  return cond();
}

} // namespace strata::test
