// What the crash test's child process (crash_child.cpp) and the parent test
// (crash_test.cpp) agree on: stream names, the deterministic payload of every event,
// and the line the child prints after each committed batch.
//
//   child:  B <last position of the batch> <stream>=<last seq> <stream>=<last seq> ...\n
//           E <error message>\n   (then exits with a non-zero code)
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace strata::persistence::crash {

/// Number of streams the child writes to.
inline constexpr int stream_count = 24;

inline std::string stream_name(int i) { return "crash-" + std::to_string(i); }

inline std::uint64_t mix(std::uint64_t x) noexcept {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

/// The payload of event `seq` of stream `pid`: a readable prefix, then pseudo-random
/// bytes; usually short, every tenth or so larger than a page.
inline std::string payload_for(std::string_view pid, std::uint64_t seq) {
  std::uint64_t h = 1469598103934665603ull;
  for (unsigned char c : pid)
    h = (h ^ c) * 1099511628211ull;
  h = mix(h ^ mix(seq));
  const std::size_t n = h % 10 == 0 ? 4096 + h % 3000 : h % 200;
  std::string p(pid);
  p += '@';
  p += std::to_string(seq);
  p += '|';
  for (std::size_t i = 0; i < n; ++i)
    p.push_back(static_cast<char>(mix(h + i) & 0xff));
  return p;
}

} // namespace strata::persistence::crash
