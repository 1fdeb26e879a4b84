// A bank cluster in real processes on loopback, for the cluster process tests: one
// strata-kafka-mock and `strata-bank node` processes, driven through
// `strata-bank --cluster` (members, shards, balances, history, load). Also the checks
// every such test ends with: histories without gaps, balances equal to the folds, and
// every acknowledged op of an ack log exactly once at its seq.
#pragma once

#include "bank_process.hpp"
#include "strata/test/net.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <vector>

namespace bank::test {

constexpr std::uint32_t cluster_shards = 64;

struct member_line {
  std::string address;
  std::string state;
  std::uint64_t incarnation = 0;
};

/// `members`: "ADDRESS STATE INCARNATION" lines.
inline std::vector<member_line> parse_members(const std::string& text) {
  std::vector<member_line> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream ls(line);
    member_line m;
    ls >> m.address >> m.state >> m.incarnation;
    if (!ls) throw std::runtime_error("bad members line: " + line);
    out.push_back(m);
  }
  return out;
}

/// `shards`: "SHARD OWNER EPOCH" lines → owner per shard.
inline std::vector<std::string> parse_shards(const std::string& text) {
  std::vector<std::string> owner;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream ls(line);
    std::uint32_t s = 0;
    std::string o;
    std::uint64_t epoch = 0;
    ls >> s >> o >> epoch;
    if (!ls || s != owner.size()) throw std::runtime_error("bad shards line: " + line);
    owner.push_back(o);
  }
  return owner;
}

class cluster_rig {
 public:
  /// `node_args`: extra arguments of every node (e.g. {"--replication", "replicated"}).
  explicit cluster_rig(std::vector<std::string> node_args = {}) : node_args_(std::move(node_args)) {
    const std::string boot = dir_.sub("kafka.bootstrap");
    mock_ = std::make_unique<process>(STRATA_KAFKA_MOCK_PATH,
                                      std::vector<std::string>{"--bootstrap-file", boot},
                                      dir_.sub("mock.out"), dir_.sub("mock.err"));
    REQUIRE(eventually(
      [&] {
        return !slurp(boot).empty() || mock_->exited();
      },
      std::chrono::seconds(30)));
    REQUIRE_FALSE(mock_->exited());
    bootstrap_ = slurp(boot);
    while (!bootstrap_.empty() && bootstrap_.back() == '\n')
      bootstrap_.pop_back();
  }

  const temp_dir& dir() const { return dir_; }
  const std::string& bootstrap() const { return bootstrap_; }

  /// Starts node i (0-based) joining through node 0 (or itself when it is node 0). A
  /// node started again (after it exited) keeps its port and data directory: a new
  /// incarnation of the same address; its output goes to node-I.R.err (R = restarts).
  void start_node(std::size_t i) {
    if (ports_.size() <= i) ports_.resize(i + 1, 0);
    if (ports_[i] == 0) ports_[i] = strata::test::free_port();
    if (nodes_.size() <= i) nodes_.resize(i + 1);
    if (starts_.size() <= i) starts_.resize(i + 1, 0);
    const std::string n = "node-" + std::to_string(i);
    const std::string log = starts_[i]++ == 0 ? n : n + "." + std::to_string(starts_[i] - 1);
    std::vector<std::string> args{
      "--data",  dir_.sub(n), "--kafka", bootstrap_, "node", "--port", std::to_string(ports_[i]),
      "--seeds", address(0)};
    args.insert(args.begin(), node_args_.begin(), node_args_.end());
    nodes_[i] =
      std::make_unique<process>(binary(), args, dir_.sub(log + ".out"), dir_.sub(log + ".err"));
  }

  std::string address(std::size_t i) const { return "127.0.0.1:" + std::to_string(ports_[i]); }
  process& node(std::size_t i) { return *nodes_.at(i); }
  std::size_t nodes() const { return nodes_.size(); }

  /// Runs `strata-bank --cluster <node i> args…`.
  run_result via(std::size_t i, std::vector<std::string> args) {
    args.insert(args.begin(), {"--cluster", address(i)});
    return run(dir_.path(), args);
  }

  /// Waits until node `through` lists exactly `up` as up members and every other member
  /// it lists is down or removed with its address in `gone` (a killed or left node; a
  /// restarted node's address may be in both), and every shard has an owner among `up`;
  /// returns the owner per shard.
  std::vector<std::string> await_stable(std::size_t through, const std::set<std::string>& up,
                                        const std::set<std::string>& gone = {},
                                        std::chrono::seconds within = std::chrono::seconds(90)) {
    std::vector<std::string> owners;
    std::string last;
    bool ok = eventually(
      [&] {
        auto m = via(through, {"members"});
        auto s = via(through, {"shards"});
        last = m.out + "--\n" + s.out + m.err + s.err;
        if (m.exit_code != 0 || s.exit_code != 0) return false;
        std::set<std::string> live;
        for (auto& l : parse_members(m.out)) {
          if (l.state == "up") {
            live.insert(l.address);
          } else if ((l.state != "down" && l.state != "removed") || gone.count(l.address) == 0) {
            return false;
          }
        }
        if (live != up) return false;
        owners = parse_shards(s.out);
        if (owners.size() != cluster_shards) return false;
        return std::all_of(owners.begin(), owners.end(), [&](const std::string& o) {
          return up.count(o) == 1;
        });
      },
      within);
    INFO("last members/shards output:\n" << last);
    std::string errs; // one INFO: an INFO inside the loop would end with its iteration
    for (std::size_t i = 0; i < nodes_.size(); ++i)
      if (nodes_[i]) errs += "node-" + std::to_string(i) + " stderr:\n" + nodes_[i]->err() + "\n";
    INFO(errs);
    REQUIRE(ok);
    return owners;
  }

 private:
  std::vector<std::string> node_args_;
  temp_dir dir_;
  std::unique_ptr<process> mock_;
  std::string bootstrap_;
  std::vector<std::uint16_t> ports_;
  std::vector<std::size_t> starts_;
  std::vector<std::unique_ptr<process>> nodes_;
};

inline std::map<std::string, int> count_owners(const std::vector<std::string>& owners) {
  std::map<std::string, int> n;
  for (auto& o : owners)
    ++n[o];
  return n;
}

/// The checker every cluster test ends with, in the spirit of Jepsen's bank test, from
/// the ack log and the final histories read through node `through`: every account's
/// history has seqs 1..n and cluster-wide `balances` equal its fold; every acknowledged
/// op appears exactly once in the ack log and in the history at its seq with its type
/// and amount, so in the order it was acknowledged per account. Ops that ended with an
/// error (`load --on-error continue`) may be in a history or not: nothing is checked
/// for them. Returns the histories.
inline std::map<std::string, std::vector<history_line>>
verify_accounts(cluster_rig& rig, std::size_t through, const std::string& ack_log) {
  auto b = rig.via(through, {"balances"});
  INFO("balances stderr: " << b.err);
  REQUIRE(b.exit_code == 0);
  auto balances = parse_balances(b.out);
  REQUIRE(!balances.empty());
  std::map<std::string, std::vector<history_line>> histories;
  for (const auto& [id, balance] : balances) {
    auto r = rig.via(through, {"history", id});
    INFO("history " << id << " stderr: " << r.err);
    REQUIRE(r.exit_code == 0);
    auto h = parse_history(r.out);
    for (std::size_t k = 0; k < h.size(); ++k)
      REQUIRE_MESSAGE(h[k].seq == k + 1, id << ": history has a gap at index " << k);
    CHECK_MESSAGE(balance == fold_balance(h, h.size()), id);
    histories[id] = std::move(h);
  }
  if (ack_log.empty()) return histories;
  const auto acks = read_acks(ack_log);
  REQUIRE(!acks.empty());
  std::set<std::pair<std::string, std::uint64_t>> seen;
  for (const auto& a : acks) {
    INFO("ack: " << a.id << " " << a.seq << " " << a.op << " " << a.amount);
    REQUIRE_MESSAGE(seen.emplace(a.id, a.seq).second, "two acknowledged ops at one seq");
    auto it = histories.find(a.id);
    REQUIRE(it != histories.end());
    REQUIRE(a.seq >= 1);
    REQUIRE(a.seq <= it->second.size());
    const auto& h = it->second[a.seq - 1];
    CHECK(h.type == (a.op == "deposit" ? "deposited" : "withdrawn"));
    CHECK(h.amount == a.amount);
  }
  return histories;
}

/// Starts nodes 0..2 and waits until they agree; the owner per shard.
inline std::vector<std::string> start_three(cluster_rig& rig) {
  for (std::size_t i = 0; i < 3; ++i)
    rig.start_node(i);
  return rig.await_stable(0, {rig.address(0), rig.address(1), rig.address(2)});
}

/// `load --ack-log` through node `through` in the background (plus `extra` arguments),
/// once it has acknowledged its first op.
inline std::unique_ptr<process> start_load(cluster_rig& rig, std::size_t through,
                                           const std::string& log, std::uint64_t ops,
                                           std::vector<std::string> extra = {}) {
  std::vector<std::string> args{"--cluster",
                                rig.address(through),
                                "load",
                                "--accounts",
                                "40",
                                "--ops",
                                std::to_string(ops),
                                "--clients",
                                "8",
                                "--ack-log",
                                log,
                                "--seed",
                                std::to_string(test_seed())};
  args.insert(args.end(), extra.begin(), extra.end());
  auto load =
    std::make_unique<process>(binary(), args, rig.dir().sub("load.out"), rig.dir().sub("load.err"));
  REQUIRE(eventually(
    [&] {
      return !slurp(log).empty() || load->exited();
    },
    std::chrono::seconds(60)));
  return load;
}

} // namespace bank::test
