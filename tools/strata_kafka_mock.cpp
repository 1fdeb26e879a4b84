// strata-kafka-mock: a stand-alone Kafka mock cluster (librdkafka's mock brokers on
// loopback) for scripts, demos and the cluster launcher.
//
//   strata-kafka-mock --brokers 3 --partitions 64 --bootstrap-file /tmp/kafka.bootstrap
//
// Prints the bootstrap list on stdout (one line), writes it to --bootstrap-file (atomic
// rename, so a script polling for the file never reads half of it), creates the topics
// of --topics with --partitions partitions, and runs until SIGTERM or SIGINT.
// Topics not created here are auto-created by the mock with 4 partitions, which the
// strata bridge refuses (it needs one partition per shard).
#include "strata/kafka/mock.hpp"

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

namespace {

void usage(std::ostream& out) {
  out << "usage: strata-kafka-mock [--brokers N] [--partitions P] [--topics T1,T2,...]\n"
         "                         [--bootstrap-file FILE]\n"
         "  --brokers N          mock brokers (default 3)\n"
         "  --partitions P       partitions of each topic in --topics (default 64 = shards)\n"
         "  --topics LIST        topics to create (default strata.account,strata.order and\n"
         "                       their snapshot topics strata.account.snapshots, ...)\n"
         "  --bootstrap-file F   also write the bootstrap list to F\n"
         "Prints the bootstrap list and runs until SIGTERM/SIGINT.\n";
}

bool parse_int(const char* s, int& out) {
  char* end = nullptr;
  long v = std::strtol(s, &end, 10);
  if (!s[0] || *end || v < 1 || v > 100000) return false;
  out = static_cast<int>(v);
  return true;
}

std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> out;
  std::string cur;
  for (char c : s) {
    if (c == ',') {
      if (!cur.empty()) out.push_back(cur);
      cur.clear();
    } else {
      cur += c;
    }
  }
  if (!cur.empty()) out.push_back(cur);
  return out;
}

} // namespace

int main(int argc, char** argv) {
  int brokers = 3;
  int partitions = 64;
  std::string topics =
    "strata.account,strata.order,strata.account.snapshots,strata.order.snapshots";
  std::string bootstrap_file;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto need = [&](const char* what) -> const char* {
      if (i + 1 >= argc) {
        std::cerr << "strata-kafka-mock: " << a << " needs " << what << "\n";
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--brokers") {
      if (!parse_int(need("a number"), brokers) || brokers > 32) {
        std::cerr << "strata-kafka-mock: --brokers must be 1..32\n";
        return 2;
      }
    } else if (a == "--partitions") {
      if (!parse_int(need("a number"), partitions)) {
        std::cerr << "strata-kafka-mock: --partitions must be a positive number\n";
        return 2;
      }
    } else if (a == "--topics") {
      topics = need("a comma-separated list");
    } else if (a == "--bootstrap-file") {
      bootstrap_file = need("a file name");
    } else if (a == "-h" || a == "--help") {
      usage(std::cout);
      return 0;
    } else {
      std::cerr << "strata-kafka-mock: unknown argument '" << a << "'\n";
      usage(std::cerr);
      return 2;
    }
  }

  // Block the stop signals before librdkafka starts its threads (they inherit the
  // mask), then wait for them synchronously on this thread.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  auto mock = strata::kafka::mock_cluster::start(brokers);
  if (!mock) {
    std::cerr << "strata-kafka-mock: " << mock.error().to_string() << "\n";
    return 1;
  }
  for (const auto& t : split(topics))
    if (auto st = (*mock)->create_topic(t, partitions); !st.ok()) {
      std::cerr << "strata-kafka-mock: " << st.to_string() << "\n";
      return 1;
    }
  const std::string& bootstrap = (*mock)->bootstrap_servers();
  if (!bootstrap_file.empty()) {
    std::string tmp = bootstrap_file + ".tmp";
    {
      std::ofstream out(tmp, std::ios::trunc);
      out << bootstrap << "\n";
      if (!out.good()) {
        std::cerr << "strata-kafka-mock: cannot write " << tmp << "\n";
        return 1;
      }
    }
    if (std::rename(tmp.c_str(), bootstrap_file.c_str()) != 0) {
      std::cerr << "strata-kafka-mock: cannot rename " << tmp << " to " << bootstrap_file << ": "
                << std::strerror(errno) << "\n";
      return 1;
    }
  }
  std::cout << bootstrap << std::endl;
  std::cerr << "strata-kafka-mock: " << brokers << " broker(s), topics " << topics << " with "
            << partitions << " partitions; stop with SIGTERM or Ctrl-C\n";

  int sig = 0;
  sigwait(&stop_signals, &sig);
  std::cerr << "strata-kafka-mock: signal " << sig << ", stopping\n";
  mock->reset();
  if (!bootstrap_file.empty()) std::remove(bootstrap_file.c_str());
  return 0;
}
