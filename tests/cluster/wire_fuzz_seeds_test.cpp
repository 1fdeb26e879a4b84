// The seed corpus of the cluster_wire_fuzz target (tests/fuzz/cluster_wire_fuzz.cpp)
// through that target's own properties, in the normal test run (the libFuzzer build,
// scripts/fuzz, is clang-only): each seed, each of its truncations and each one-byte
// change of it. A failed property aborts, which fails the test.
#include "wire.hpp"

#include <doctest/doctest.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

namespace {

int run(const std::string& bytes) {
  return LLVMFuzzerTestOneInput(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size());
}

} // namespace

TEST_CASE("the cluster_wire_fuzz seeds, their truncations and one-byte changes pass") {
  namespace fs = std::filesystem;
  const fs::path dir = STRATA_CLUSTER_WIRE_CORPUS;
  REQUIRE(fs::is_directory(dir));
  std::size_t seeds = 0;
  for (const auto& entry : fs::directory_iterator(dir)) {
    CAPTURE(entry.path().string());
    std::ifstream in(entry.path(), std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    ++seeds;
    CHECK(run(bytes) == 0);
    // The gossip seeds are valid messages, so the fuzzer starts from deep inside.
    auto name = entry.path().filename().string();
    if (name.rfind("heartbeat", 0) == 0)
      CHECK(strata::cluster::wire::decode_heartbeat(bytes).has_value());
    else if (name.rfind("member_id", 0) != 0)
      CHECK(strata::cluster::wire::decode_gossip(bytes, 4).has_value());
    for (std::size_t n = 0; n < bytes.size(); ++n)
      CHECK(run(bytes.substr(0, n)) == 0);
    for (std::size_t i = 0; i < bytes.size(); ++i)
      for (int delta : {1, 0x80, 0xff}) {
        auto changed = bytes;
        changed[i] = static_cast<char>(static_cast<unsigned char>(changed[i]) + delta);
        CHECK(run(changed) == 0);
      }
  }
  CHECK(seeds >= 8);
}
