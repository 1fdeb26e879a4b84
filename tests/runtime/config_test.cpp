// tests runtime/src/config.cpp
#include "strata/runtime/config.hpp"
#include "strata/runtime/system.hpp"

#include <doctest/doctest.h>

#include <cstdio>
#include <fstream>
#include <memory>
#include <string>
#include <type_traits>
#include <unistd.h>
#include <vector>

TEST_CASE("config: command line sets known keys and returns the rest in order") {
  const char* argv[] = {"prog",
                        "--data",
                        "/tmp/x",
                        "deposit",
                        "--durability=nosync",
                        "acct-1",
                        "--snapshot-every.account=7",
                        "100",
                        "--owner",
                        "ann"};
  std::vector<std::string> rest;
  auto c = strata::config::from_args(10, argv, &rest);
  REQUIRE(c);
  CHECK(c->data_dir == "/tmp/x");
  CHECK(c->durability == strata::persistence::sync_mode::nosync);
  CHECK(c->snapshot_every_for("account") == 7);
  CHECK(c->snapshot_every_for("order") == c->snapshot_every);
  CHECK(rest == std::vector<std::string>{"deposit", "acct-1", "100", "--owner", "ann"});
}

TEST_CASE("config: bad values are errors that name the key") {
  const char* argv[] = {"prog", "--stash-max=lots"};
  auto c = strata::config::from_args(2, argv, nullptr);
  REQUIRE_FALSE(c);
  // The same result type as system::open, printed the same way.
  static_assert(std::is_same_v<decltype(c), strata::result<strata::config>>);
  static_assert(std::is_same_v<decltype(strata::system::open(strata::config{})),
                               strata::result<std::unique_ptr<strata::system>>>);
  static_assert(std::is_same_v<strata::result<int>, caf::expected<int>>);
  auto text = strata::describe(c.error());
  CHECK(text.rfind("invalid_argument: ", 0) == 0);
  CHECK(text.find("stash-max") != std::string::npos);
  CHECK(strata::runtime_error_of(c.error()) == strata::runtime_errc::invalid_argument);
  const char* argv2[] = {"prog", "--bogus=1"};
  CHECK_FALSE(strata::config::from_args(2, argv2, nullptr));
  strata::config cfg;
  CHECK_FALSE(cfg.set("max-inflight-writes", "0").ok());
  CHECK(cfg.set("max_inflight_writes", "3").ok());
  CHECK(cfg.max_inflight_writes == 3);
}

TEST_CASE("config: file, then command line overrides it") {
  auto path = std::string("/tmp/strata_cfg_test_") + std::to_string(::getpid()) + ".ini";
  {
    std::ofstream f(path);
    f << "# comment\n[strata]\ndata-dir = \"/var/x\"\npassivate-after-ms = 250\n"
         "[other]\nignored = 1\n";
  }
  auto f = strata::config::from_file(path);
  REQUIRE(f);
  CHECK(f->data_dir == "/var/x");
  CHECK(f->passivate_after_ms == 250);
  std::string cf = "--config-file=" + path;
  const char* argv[] = {"prog", "--passivate-after-ms", "99", cf.c_str()};
  auto c = strata::config::from_args(4, argv, nullptr);
  REQUIRE(c);
  CHECK(c->data_dir == "/var/x");
  CHECK(c->passivate_after_ms == 99);
  std::remove(path.c_str());
  auto missing = strata::config::from_file(path);
  REQUIRE_FALSE(missing);
  CHECK(strata::describe(missing.error()) == "not_found: cannot open config file '" + path + "'");
}

TEST_CASE("config: read-only is a switch, lock-wait-ms a number") {
  const char* argv[] = {"prog", "--read-only", "balances", "--lock-wait-ms", "250"};
  std::vector<std::string> rest;
  auto c = strata::config::from_args(5, argv, &rest);
  REQUIRE(c);
  CHECK(c->read_only);
  CHECK(c->lock_wait_ms == 250);
  CHECK(rest == std::vector<std::string>{"balances"});
  const char* argv2[] = {"prog", "--read-only", "false", "x"};
  c = strata::config::from_args(4, argv2, &rest);
  REQUIRE(c);
  CHECK_FALSE(c->read_only);
  CHECK(rest == std::vector<std::string>{"x"});
  const char* argv3[] = {"prog", "--read-only=maybe"};
  c = strata::config::from_args(2, argv3, nullptr);
  REQUIRE_FALSE(c);
  CHECK(strata::describe(c.error()).find("read-only") != std::string::npos);
  strata::config d;
  CHECK(d.set("read_only", "yes").ok());
  CHECK(d.read_only);
  CHECK_FALSE(d.set("lock-wait-ms", "-1").ok());
}

TEST_CASE("config: cluster keys; without them the cluster is off") {
  strata::config plain;
  CHECK_FALSE(plain.cluster_enabled());
  CHECK(plain.cluster_shards == 64);
  const char* argv[] = {"prog",
                        "--cluster-host=10.0.0.5",
                        "--cluster-port",
                        "4501",
                        "--cluster-seeds=10.0.0.1:4500, [::1]:4502,node-c:4503",
                        "--cluster-shards=32",
                        "--cluster-gossip-ms=250"};
  auto c = strata::config::from_args(7, argv, nullptr);
  REQUIRE(c);
  CHECK(c->cluster_enabled());
  CHECK(c->cluster_host == "10.0.0.5");
  CHECK(c->cluster_port == 4501);
  REQUIRE(c->cluster_seeds.size() == 3);
  CHECK(c->cluster_seeds[0].host == "10.0.0.1");
  CHECK(c->cluster_seeds[0].port == 4500);
  CHECK(c->cluster_seeds[1].host == "::1");
  CHECK(c->cluster_seeds[2].host == "node-c");
  CHECK(c->cluster_seeds[2].port == 4503);
  CHECK(c->cluster_shards == 32);
  CHECK(c->cluster_gossip_ms == 250);
  strata::config s;
  CHECK(s.set("cluster-seeds", "a:1").ok());
  CHECK(s.cluster_enabled());
  for (auto bad : {"a", "a:", ":1", "a:0", "a:70000", "::1:5", "[::1:5", "a:1,b"})
    CHECK_MESSAGE(!s.set("cluster-seeds", bad).ok(), bad);
  CHECK_FALSE(s.set("cluster-port", "65536").ok());
  CHECK_FALSE(s.set("cluster-shards", "0").ok());
  CHECK_FALSE(s.set("cluster-gossip-ms", "0").ok());
  CHECK_FALSE(s.set("cluster-host", "").ok());
  // Client mode and the handoff bound.
  const char* cargv[] = {"prog", "--cluster-client", "--cluster-seeds=127.0.0.1:4500",
                         "--cluster-handoff-timeout-ms=1500"};
  auto cc = strata::config::from_args(4, cargv, nullptr);
  REQUIRE(cc);
  CHECK(cc->cluster_client);
  CHECK(cc->cluster_enabled());
  CHECK(cc->cluster_handoff_timeout_ms == 1500);
  CHECK_FALSE(s.set("cluster-handoff-timeout-ms", "0").ok());
}

TEST_CASE("config: cluster failure-detection and downing keys") {
  strata::config d;
  CHECK(d.cluster_heartbeat_ms == 200);
  CHECK(d.cluster_phi_threshold == 8.0);
  CHECK(d.cluster_acceptable_pause_ms == 500);
  CHECK(d.cluster_stable_after_ms == 1500);
  CHECK(d.cluster_self_down_lead_ms == 750);
  const char* argv[] = {"prog",
                        "--cluster-heartbeat-ms=100",
                        "--cluster-phi-threshold",
                        "10.5",
                        "--cluster-acceptable-pause-ms=0",
                        "--cluster-stable-after-ms=3000",
                        "--cluster_self_down_lead_ms=1000"};
  auto c = strata::config::from_args(7, argv, nullptr);
  REQUIRE(c);
  CHECK(c->cluster_heartbeat_ms == 100);
  CHECK(c->cluster_phi_threshold == 10.5);
  CHECK(c->cluster_acceptable_pause_ms == 0);
  CHECK(c->cluster_stable_after_ms == 3000);
  CHECK(c->cluster_self_down_lead_ms == 1000);
  strata::config s;
  for (auto [key, bad] :
       {std::pair{"cluster-heartbeat-ms", "0"}, std::pair{"cluster-heartbeat-ms", "60001"},
        std::pair{"cluster-phi-threshold", "0"}, std::pair{"cluster-phi-threshold", "-1"},
        std::pair{"cluster-phi-threshold", "101"}, std::pair{"cluster-phi-threshold", "nan"},
        std::pair{"cluster-phi-threshold", "8x"}, std::pair{"cluster-acceptable-pause-ms", "60001"},
        std::pair{"cluster-stable-after-ms", "0"}, std::pair{"cluster-self-down-lead-ms", "x"}}) {
    auto st = s.set(key, bad);
    CHECK_MESSAGE(!st.ok(), key << "=" << bad);
    CHECK_MESSAGE(st.message().find(key) != std::string::npos, st.message());
  }
  CHECK(s.cluster_heartbeat_ms == 200); // a refused value changes nothing
}

TEST_CASE("config: cluster routing keys") {
  strata::config c;
  CHECK(c.set("cluster-forward-timeout-ms", "250").ok());
  CHECK(c.set("cluster-batch-max", "64").ok());
  CHECK(c.set("cluster-batch-linger-us", "0").ok());
  CHECK(c.set("cluster-max-inflight-batches", "2").ok());
  CHECK(c.set("cluster_buffer_max", "8").ok());
  CHECK(c.cluster_forward_timeout_ms == 250);
  CHECK(c.cluster_batch_max == 64);
  CHECK(c.cluster_batch_linger_us == 0);
  CHECK(c.cluster_max_inflight_batches == 2);
  CHECK(c.cluster_buffer_max == 8);
  for (auto key : {"cluster-forward-timeout-ms", "cluster-batch-max",
                   "cluster-max-inflight-batches", "cluster-buffer-max"}) {
    auto st = c.set(key, "0");
    CHECK_FALSE(st.ok());
    CHECK(st.message().find(key) != std::string::npos);
  }
}
