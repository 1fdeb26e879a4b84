// A bridge in its own process for kafka_crash_test: opens the journal in --data, starts
// a Kafka bridge to --bootstrap, appends --events account-like events (checking nothing
// but that appends succeed), then drains. The test SIGKILLs it at random moments; the
// mock cluster lives in the test process and survives.
//
//   kafka_bridge_child --data DIR --bootstrap HOST:PORT,… --events N --streams S --seed X
//
// Exit: 0 drained everything, 3 events left unpublished after --drain-ms, 2 usage,
// 1 an error (printed).
#include "strata/kafka/bridge.hpp"
#include "strata/persistence/journal.hpp"

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <iostream>
#include <map>
#include <random>
#include <string>
#include <thread>
#include <vector>

using namespace strata::persistence;
using namespace strata::kafka;

int main(int argc, char** argv) {
  std::string data, bootstrap;
  std::uint64_t events = 1000, seed = 1;
  std::uint32_t streams = 100, drain_ms = 60'000;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string k = argv[i], v = argv[i + 1];
    if (k == "--data")
      data = v;
    else if (k == "--bootstrap")
      bootstrap = v;
    else if (k == "--events")
      events = std::strtoull(v.c_str(), nullptr, 10);
    else if (k == "--streams")
      streams = static_cast<std::uint32_t>(std::strtoul(v.c_str(), nullptr, 10));
    else if (k == "--seed")
      seed = std::strtoull(v.c_str(), nullptr, 10);
    else if (k == "--drain-ms")
      drain_ms = static_cast<std::uint32_t>(std::strtoul(v.c_str(), nullptr, 10));
    else {
      std::cerr << "kafka_bridge_child: unknown argument " << k << "\n";
      return 2;
    }
  }
  if (data.empty() || bootstrap.empty() || streams == 0) {
    std::cerr << "kafka_bridge_child: --data and --bootstrap are required\n";
    return 2;
  }
  journal_options jo;
  jo.env.path = data;
  jo.env.sync = sync_mode::nosync; // survives SIGKILL (not a power cut): what is tested
  jo.writer_node = "child";
  auto j = journal::open(jo);
  if (!j) {
    std::cerr << "kafka_bridge_child: " << j.error().to_string() << "\n";
    return 1;
  }
  bridge_options bo;
  bo.bootstrap_servers = bootstrap;
  bo.types = {{"acct-", "account"}};
  bo.offset_commit_interval_ms = 10; // many offset commits: many kill points between them
  if (std::getenv("STRATA_CHILD_VERBOSE"))
    bo.on_error = [](const status& st) {
      std::cerr << "kafka_bridge_child: bridge: " << st.to_string() << "\n";
    };
  if (const char* dbg = std::getenv("STRATA_CHILD_DEBUG")) {
    bo.producer_config.emplace_back("debug", dbg);
    bo.log_level = 7;
  }
  auto b = bridge::start(**j, bo);
  if (!b) {
    std::cerr << "kafka_bridge_child: " << b.error().to_string() << "\n";
    return 1;
  }
  if (std::getenv("STRATA_CHILD_VERBOSE")) {
    auto st = (*b)->stats();
    std::cerr << "kafka_bridge_child: start: journal at " << st.journal_position
              << ", bridge resumes after " << st.stored_position << "\n";
  }
  std::atomic<bool> done_flag{false};
  std::thread reporter;
  if (std::getenv("STRATA_CHILD_VERBOSE"))
    reporter = std::thread([&] {
      while (!done_flag.load()) {
        auto st = (*b)->stats();
        std::cerr << "kafka_bridge_child: journal " << st.journal_position << " produced "
                  << st.produced_position << " acked " << st.acknowledged_position << " stored "
                  << st.stored_position << "\n";
        std::this_thread::sleep_for(std::chrono::milliseconds(25));
      }
    });
  std::mt19937_64 rng{seed};
  std::uniform_int_distribution<std::uint32_t> pick(0, streams - 1);
  std::uniform_int_distribution<int> amount(1, 1000);
  std::uint64_t done = 0;
  while (done < events) {
    std::map<std::string, std::vector<int>> per_stream;
    for (int i = 0; i < 50 && done < events; ++i, ++done)
      per_stream["acct-" + std::to_string(pick(rng))].push_back(amount(rng));
    std::vector<stream_write> writes;
    for (auto& [pid, amounts] : per_stream) {
      auto head = (*j)->highest_seq(pid);
      if (!head) {
        std::cerr << "kafka_bridge_child: " << head.error().to_string() << "\n";
        return 1;
      }
      stream_write w;
      w.persistence_id = pid;
      w.expected_seq = *head;
      std::uint64_t seq = *head;
      for (int a : amounts) {
        event_data e;
        e.type = a % 3 == 0 ? "withdrawn" : "deposited";
        e.payload = pid + "#" + std::to_string(++seq) + ":" + std::to_string(a);
        w.events.push_back(std::move(e));
      }
      writes.push_back(std::move(w));
    }
    auto r = (*j)->append(writes);
    if (!r) {
      std::cerr << "kafka_bridge_child: " << r.error().to_string() << "\n";
      return 1;
    }
    for (auto& w : *r)
      if (!w.st.ok()) {
        std::cerr << "kafka_bridge_child: " << w.st.to_string() << "\n";
        return 1;
      }
    (*b)->notify();
  }
  done_flag = true;
  if (reporter.joinable()) reporter.join();
  auto left = (*b)->stop(drain_ms);
  if (auto st = (*j)->close(); !st.ok()) {
    std::cerr << "kafka_bridge_child: " << st.to_string() << "\n";
    return 1;
  }
  if (left > 0) {
    std::cerr << "kafka_bridge_child: " << left << " events still unpublished\n";
    return 3;
  }
  return 0;
}
