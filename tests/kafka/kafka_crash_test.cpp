// A bridge process is killed with SIGKILL while it appends and publishes, then
// restarted, several times. The mock cluster lives in this (parent) process, so it keeps
// what was acknowledged. Afterwards: every journal event is on the topic, per key in
// order, duplicates only as byte-exact repeats, and a projection fed from the topic
// equals the fold of the journal. STRATA_LONG=1 runs many more rounds.
#include "kafka_test_util.hpp"

#include "strata/kafka/consumer.hpp"
#include "strata/kafka/mock.hpp"
#include "strata/persistence/offset_store.hpp"
#include "strata/persistence/projection.hpp"

#include <csignal>
#include <sys/wait.h>
#include <unistd.h>

using namespace strata::persistence;
using namespace strata::kafka;
using namespace strata::persistence::test;

namespace {

constexpr int partitions = 64;
const std::string topic = "strata.account";

pid_t spawn_child(const std::vector<std::string>& args) {
  std::vector<char*> argv;
  std::string exe = STRATA_KAFKA_CHILD;
  argv.push_back(exe.data());
  std::vector<std::string> copy = args;
  for (auto& a : copy)
    argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    ::execv(exe.c_str(), argv.data());
    ::_exit(127);
  }
  return pid;
}

struct balance {
  std::int64_t cents = 0;
  std::uint64_t count = 0;
  std::uint64_t last_seq = 0;
  friend bool operator==(const balance& a, const balance& b) {
    return a.cents == b.cents && a.count == b.count && a.last_seq == b.last_seq;
  }
};

// Payload "<pid>#<seq>:<amount>", type deposited / withdrawn (see kafka_bridge_child).
void fold(balance& b, const event_record& e) {
  auto amount = std::stoll(e.payload.substr(e.payload.find(':') + 1));
  b.cents += e.type == "withdrawn" ? -amount : amount;
  ++b.count;
  b.last_seq = e.seq;
}

std::string encode(const balance& b) {
  return std::to_string(b.cents) + "," + std::to_string(b.count) + "," + std::to_string(b.last_seq);
}

balance decode(std::string_view s) {
  balance b;
  std::string str{s};
  auto c1 = str.find(','), c2 = str.rfind(',');
  b.cents = std::stoll(str.substr(0, c1));
  b.count = std::stoull(str.substr(c1 + 1, c2 - c1 - 1));
  b.last_seq = std::stoull(str.substr(c2 + 1));
  return b;
}

} // namespace

TEST_CASE("bridge killed with SIGKILL mid-stream and restarted loses nothing") {
  auto seed = test_seed();
  std::mt19937_64 rng{seed};
  const bool long_run = std::getenv("STRATA_LONG") != nullptr;
  // The mock keeps at most 5 MiB per partition and then drops the oldest records, which
  // would make the final "everything arrived" check impossible: each round publishes
  // 1-15k records before the kill lands, so the long run stays at 10 rounds over many
  // streams (20 rounds over 150 streams filled a partition).
  const int rounds = long_run ? 10 : 3;
  const std::string streams = long_run ? "3000" : "150";
  temp_dir dir{"strata-kafka-crash"};
  auto mock = mock_cluster::start(3);
  STRATA_REQUIRE_VALUE(mock);
  STRATA_REQUIRE_OK((*mock)->create_topic(topic, partitions));
  const std::string bootstrap = (*mock)->bootstrap_servers();
  const std::string data = dir.sub("node");

  int killed = 0;
  topic_watch watch{bootstrap, topic, partitions};
  for (int round = 0; round < rounds; ++round) {
    auto before = watch.count();
    REQUIRE(before >= 0);
    // Kill after a random number of newly published records (or at least mid-stream).
    std::int64_t kill_after = std::uniform_int_distribution<std::int64_t>(200, 4'000)(rng);
    // The child would append for many seconds: it is always killed mid-stream.
    pid_t pid = spawn_child({"--data", data, "--bootstrap", bootstrap, "--events", "2000000",
                             "--streams", streams, "--seed", std::to_string(seed + round)});
    int ws = 0;
    bool exited = false;
    REQUIRE(eventually(
      [&] {
        if (::waitpid(pid, &ws, WNOHANG) == pid) {
          exited = true;
          return true;
        }
        return watch.count() >= before + kill_after;
      },
      60'000));
    if (!exited) {
      ::kill(pid, SIGKILL);
      MESSAGE("round " << round << ": killed after " << watch.count() - before
                       << " new records (threshold " << kill_after << ")");
      REQUIRE(::waitpid(pid, &ws, 0) == pid);
      INFO("child exit status " << ws);
      REQUIRE(WIFSIGNALED(ws));
      ++killed;
    } else {
      INFO("child exit status " << ws);
      CHECK((WIFEXITED(ws) && WEXITSTATUS(ws) == 0));
    }
  }
  CHECK(killed == rounds);
  // A last run appends a little more and exits normally after draining everything.
  pid_t pid = spawn_child({"--data", data, "--bootstrap", bootstrap, "--events", "500", "--streams",
                           streams, "--seed", std::to_string(seed + 1000)});
  int ws = 0;
  REQUIRE(::waitpid(pid, &ws, 0) == pid);
  REQUIRE(WIFEXITED(ws));
  REQUIRE(WEXITSTATUS(ws) == 0);

  auto j = open_journal(journal_opts(data));
  STRATA_REQUIRE_OK(j->verify());
  auto records = read_topic(bootstrap, topic, partitions);
  auto c = check_topic_matches_journal(*j, records, partitions);
  MESSAGE(killed << " kills, " << c.journal_events << " journal events, " << c.records
                 << " records, " << c.duplicates << " duplicates (exact repeats)");

  // The projection fed from Kafka equals the fold of the journal.
  auto view = j->env().open_table("crash.view");
  STRATA_REQUIRE_VALUE(view);
  table t = *view;
  projection p{"crash", [t](write_txn& txn, const event_record& e) -> status {
                 balance b;
                 auto cur = txn.get(t, e.persistence_id);
                 if (!cur) return cur.error();
                 if (*cur) b = decode(**cur);
                 fold(b, e);
                 return txn.put(t, e.persistence_id, encode(b));
               }};
  consumer_options co;
  co.bootstrap_servers = bootstrap;
  co.topics = {topic};
  auto consumer = projection_consumer::open(*j, p, co);
  STRATA_REQUIRE_VALUE(consumer);
  STRATA_REQUIRE_OK((*consumer)->catch_up(60'000));
  auto ps = (*consumer)->stats();
  CHECK(ps.applied == c.journal_events);
  CHECK(ps.duplicates == c.duplicates);
  CHECK(ps.gaps == 0);

  std::map<std::string, balance> expected;
  for (auto& e : read_global_all(*j))
    fold(expected[e.persistence_id], e);
  std::map<std::string, balance> actual;
  STRATA_REQUIRE_OK(j->env().read([&](read_txn& txn) {
    return txn.scan(t, {}, [&](std::string_view k, std::string_view v) {
      actual[std::string{k}] = decode(v);
      return true;
    });
  }));
  CHECK(actual.size() == expected.size());
  CHECK(actual == expected);
}
