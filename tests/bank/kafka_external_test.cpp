// A consumer outside strata reads what `strata-bank load --kafka BOOTSTRAP` published
// (issue 4, "How it will be checked"), all real processes:
//   build/bin/strata-kafka-mock --brokers 3 --partitions 64 --topics strata.account ...
//   strata-bank --data D --kafka BOOTSTRAP load --accounts 20 --ops 2000 --clients 8
//   kcat -C -b BOOTSTRAP -t strata.account -o beginning -e     (every record)
//   kcat ... -f '%s' | capnp decode --short persistence/schema/envelope.capnp Envelope
// and checks: every record sits in the partition of its key's shard; per account the
// seqs are 1..n without gaps, in offset order within the partition (a repeat would
// have to be a byte-exact copy of the earlier record); the record values decode with
// `capnp decode` to the same (persistence id, seq, type) as with the C++ codec; the
// amounts match `strata-bank history`; events persisted while Kafka was unreachable
// are published by the next run; `report --source kafka` against that cluster
// equals `report` from the journal. The mock is stopped with SIGTERM.
#include "bank_process.hpp"

#include "bank/schema/bank.capnp.h"
#include "strata/persistence/codec.hpp"
#include "strata/persistence/shard.hpp"

#include <capnp/message.h>
#include <capnp/serialize.h>
#include <doctest/doctest.h>

#include <signal.h>
#include <sys/wait.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

using namespace bank::test;

namespace {

/// Runs `sh -c cmd` and returns its stdout (binary-safe) and exit status.
std::pair<std::string, int> shell(const std::string& cmd) {
  std::string out;
  FILE* p = ::popen(cmd.c_str(), "r");
  if (p == nullptr) return {out, -1};
  char buf[65536];
  std::size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0)
    out.append(buf, n);
  int st = ::pclose(p);
  return {out, WIFEXITED(st) ? WEXITSTATUS(st) : -1};
}

bool have_program(const std::string& name) {
  return shell("command -v " + name + " >/dev/null 2>&1 && echo yes").first == "yes\n";
}

/// strata-kafka-mock in the background; SIGTERM (then reaped) when destroyed.
class mock_process {
 public:
  mock_process(const temp_dir& dir, const std::string& bootstrap_file)
    : proc_(STRATA_KAFKA_MOCK_PATH,
            {"--brokers", "3", "--partitions", "64", "--topics", "strata.account",
             "--bootstrap-file", bootstrap_file},
            dir.sub("mock.out"), dir.sub("mock.err")) {}
  ~mock_process() { terminate(); }
  mock_process(const mock_process&) = delete;
  mock_process& operator=(const mock_process&) = delete;
  /// SIGTERM and wait; the exit code (-1 when a signal ended it).
  int terminate() {
    proc_.kill_and_wait(SIGTERM);
    return proc_.exit_code();
  }
  bool running() { return !proc_.exited(); }
  std::string err() const { return proc_.err(); }

 private:
  process proc_;
};

struct record {
  std::int32_t partition = 0;
  std::int64_t offset = 0;
  std::string key;
  std::string value;
};

/// Parses kcat output written with -f '%p %o %S %k\n%s\n' (the value length first, so
/// binary values need no escaping).
std::vector<record> parse_kcat(const std::string& text) {
  std::vector<record> out;
  std::size_t at = 0;
  while (at < text.size()) {
    auto nl = text.find('\n', at);
    if (nl == std::string::npos) throw std::runtime_error("truncated kcat header");
    std::string header = text.substr(at, nl - at);
    record r;
    long long len = 0;
    char key[512];
    if (std::sscanf(header.c_str(), "%d %lld %lld %511s", &r.partition,
                    reinterpret_cast<long long*>(&r.offset), &len, key) != 4 ||
        len < 0)
      throw std::runtime_error("bad kcat header: " + header);
    r.key = key;
    at = nl + 1;
    if (at + static_cast<std::size_t>(len) + 1 > text.size() ||
        text[at + static_cast<std::size_t>(len)] != '\n')
      throw std::runtime_error("truncated kcat value after: " + header);
    r.value = text.substr(at, static_cast<std::size_t>(len));
    at += static_cast<std::size_t>(len) + 1;
    out.push_back(std::move(r));
  }
  return out;
}

template <class T>
std::int64_t cents_of(const std::string& payload) {
  std::vector<capnp::word> words(payload.size() / sizeof(capnp::word));
  std::memcpy(words.data(), payload.data(), words.size() * sizeof(capnp::word));
  capnp::FlatArrayMessageReader r(kj::arrayPtr(words.data(), words.size()));
  return r.getRoot<T>().getCents();
}

/// The value of `name = "..."` or `name = 123` in a `capnp decode --short` line.
std::string field(const std::string& line, const std::string& name) {
  auto at = line.find(name + " = ");
  if (at == std::string::npos) return {};
  at += name.size() + 3;
  if (line[at] == '"') {
    auto end = line.find('"', at + 1);
    return line.substr(at + 1, end - at - 1);
  }
  auto end = line.find_first_of(",)", at);
  return line.substr(at, end - at);
}

} // namespace

TEST_CASE("an external consumer (kcat + capnp decode) reads every event of a load in order") {
  REQUIRE_MESSAGE(have_program("kcat"), "kcat is missing: run scripts/install-deps");
  REQUIRE_MESSAGE(have_program("capnp"), "capnp is missing: run scripts/install-deps");
  STRATA_TEST_SEED(seed);
  temp_dir dir{"strata-bank-kcat"};
  const std::string boot_file = dir.sub("kafka.bootstrap");
  const std::string data = dir.sub("data");
  mock_process mock{dir, boot_file};

  // The mock writes its bootstrap list atomically once it is up.
  std::string bootstrap;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (bootstrap.empty() && std::chrono::steady_clock::now() < deadline) {
    bootstrap = slurp(boot_file);
    while (!bootstrap.empty() && (bootstrap.back() == '\n' || bootstrap.back() == ' '))
      bootstrap.pop_back();
    if (bootstrap.empty()) {
      REQUIRE_MESSAGE(mock.running(), "strata-kafka-mock exited: " << mock.err());
      std::this_thread::sleep_for(std::chrono::milliseconds(20)); // polling, not a sync
    }
  }
  REQUIRE_MESSAGE(!bootstrap.empty(), "no bootstrap file from strata-kafka-mock: " << mock.err());

  // Commands while Kafka is unreachable succeed (local durability) and say what is left
  // unpublished; the next start with Kafka publishes it (account `early` below).
  for (const auto& cmd : {std::vector<std::string>{"open", "early"},
                          std::vector<std::string>{"deposit", "early", "5"}}) {
    std::vector<std::string> args{"--data",           data, "--kafka", "127.0.0.1:1",
                                  "--kafka-drain-ms", "200"};
    args.insert(args.end(), cmd.begin(), cmd.end());
    auto e = run(dir.path(), args);
    INFO("stderr: " << e.err);
    REQUIRE(e.exit_code == 0);
    CHECK(e.err.find("not yet published to Kafka") != std::string::npos);
  }

  auto r = run(dir.path(), {"--data", data, "--kafka", bootstrap, "load", "--accounts", "20",
                            "--ops", "2000", "--clients", "8", "--seed", std::to_string(seed)});
  INFO("load stderr: " << r.err);
  REQUIRE(r.exit_code == 0);
  // It exited only after Kafka acknowledged everything it persisted.
  REQUIRE(r.err.find("kafka: journal published up to position") != std::string::npos);

  // 1. Every record, with partition, offset, key and the raw value.
  const std::string kcat = "kcat -C -b '" + bootstrap + "' -t strata.account -o beginning -e -q";
  auto [raw, rc] = shell(kcat + " -f '%p %o %S %k\\n%s\\n'");
  REQUIRE(rc == 0);
  auto records = parse_kcat(raw);
  REQUIRE(!records.empty());
  std::sort(records.begin(), records.end(), [](const record& a, const record& b) {
    return std::tie(a.partition, a.offset) < std::tie(b.partition, b.offset);
  });

  // 2. Per account, in offset order within its partition: seqs 1..n, no gaps.
  std::map<std::string, std::vector<std::string>> values_by_pid; // [seq-1] = value
  std::map<std::string, std::vector<strata::persistence::event_record>> events_by_pid;
  std::map<std::string, std::int32_t> partition_of;
  std::size_t repeats = 0;
  std::multiset<std::tuple<std::string, std::uint64_t, std::string>> codec_ids;
  for (const auto& rec : records) {
    INFO("record partition " << rec.partition << " offset " << rec.offset << " key " << rec.key);
    auto e = strata::persistence::decode_envelope(rec.value);
    REQUIRE(e.has_value());
    CHECK(e->persistence_id == rec.key);
    CHECK(rec.partition == static_cast<std::int32_t>(strata::persistence::shard_of(rec.key, 64)));
    auto [it, fresh] = partition_of.emplace(rec.key, rec.partition);
    CHECK(it->second == rec.partition);
    codec_ids.emplace(e->persistence_id, e->seq, e->type);
    auto& vals = values_by_pid[rec.key];
    if (e->seq == vals.size() + 1) {
      vals.push_back(rec.value);
      events_by_pid[rec.key].push_back(*e);
    } else {
      // Only an exact repeat of an earlier record may come out of order.
      REQUIRE_MESSAGE(e->seq >= 1, "seq 0");
      REQUIRE_MESSAGE(e->seq <= vals.size(), "gap: seq " << e->seq << " after " << vals.size());
      CHECK(vals[e->seq - 1] == rec.value);
      ++repeats;
    }
  }
  MESSAGE(records.size() << " records, " << values_by_pid.size() << " accounts, " << repeats
                         << " exact repeats");
  CHECK(values_by_pid.size() == 21); // acct-0..19 and early
  CHECK(values_by_pid["account:early"].size() == 2);

  // 3. The same values decoded by capnp (outside C++): same (persistence id, seq, type).
  auto [decoded, rc2] = shell(kcat + " -f '%s' | capnp decode --short '" STRATA_SOURCE_DIR
                                     "/persistence/schema/envelope.capnp' Envelope");
  REQUIRE(rc2 == 0);
  std::multiset<std::tuple<std::string, std::uint64_t, std::string>> capnp_ids;
  {
    std::istringstream in(decoded);
    std::string line;
    while (std::getline(in, line))
      capnp_ids.emplace(field(line, "persistenceId"), std::stoull(field(line, "seq")),
                        field(line, "eventType"));
  }
  CHECK(capnp_ids.size() == records.size());
  CHECK(capnp_ids == codec_ids);

  // 4. Amounts and types match `strata-bank history`, which has exactly n events.
  for (const auto& [pid, events] : events_by_pid) {
    const std::string id = pid.substr(std::string("account:").size());
    INFO("account " << id);
    auto h = run(dir.path(), {"--data", data, "history", id});
    REQUIRE(h.exit_code == 0);
    auto hist = parse_history(h.out);
    REQUIRE(hist.size() == events.size());
    for (std::size_t i = 0; i < hist.size(); ++i) {
      INFO("seq " << i + 1);
      CHECK(events[i].type == hist[i].type);
      if (hist[i].type == "deposited")
        CHECK(cents_of<bank::schema::Deposited>(events[i].payload) == hist[i].amount);
      else if (hist[i].type == "withdrawn")
        CHECK(cents_of<bank::schema::Withdrawn>(events[i].payload) == hist[i].amount);
    }
  }

  // 5. The report projection fed from this cluster equals the one from the journal.
  auto from_journal = run(dir.path(), {"--data", data, "report"});
  REQUIRE(from_journal.exit_code == 0);
  auto from_kafka =
    run(dir.path(), {"--data", data, "--kafka", bootstrap, "report", "--source", "kafka"});
  INFO("report stderr: " << from_kafka.err);
  REQUIRE(from_kafka.exit_code == 0);
  CHECK(from_kafka.out == from_journal.out);

  CHECK(mock.terminate() == 0);
  CHECK(slurp(boot_file).empty()); // the mock removes its bootstrap file
}
