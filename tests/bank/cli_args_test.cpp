// The strata-bank command line (samples/bank/cli_args.cpp). Its UTC timestamps are the
// library's (strata/persistence/timestamp.hpp, tests/persistence/timestamp_test.cpp).
#include "bank/cli_args.hpp"

#include <doctest/doctest.h>
#include <rapidcheck.h>

#include <string>
#include <vector>

using namespace bank;
using bank::cli::parse;
using bank::cli::verb;
using args = std::vector<std::string>;

TEST_CASE("cli: every sub-command") {
  auto r = parse(args{"open", "acct-1", "--owner", "ann"});
  REQUIRE(r.value);
  CHECK(r.value->what == verb::open);
  CHECK(r.value->id == "acct-1");
  CHECK(r.value->owner == "ann");

  r = parse(args{"open", "--owner=bob smith", "acct-2"});
  REQUIRE(r.value);
  CHECK(r.value->id == "acct-2");
  CHECK(r.value->owner == "bob smith");

  r = parse(args{"deposit", "a", "250"});
  REQUIRE(r.value);
  CHECK(r.value->what == verb::deposit);
  CHECK(r.value->amount == 250);

  r = parse(args{"withdraw", "a", "-3"});
  REQUIRE(r.value);
  CHECK(r.value->what == verb::withdraw);
  CHECK(r.value->amount == -3); // the domain rejects it (invalid_amount), not the parser

  r = parse(args{"balance", "a", "--as-of-seq", "7"});
  REQUIRE(r.value);
  CHECK(r.value->as_of_seq == std::optional<std::uint64_t>{7});
  CHECK_FALSE(r.value->as_of_time_ns);

  r = parse(args{"balance", "a", "--as-of-time=1970-01-01T00:00:01Z"});
  REQUIRE(r.value);
  CHECK(r.value->as_of_time_ns == std::optional<std::int64_t>{1'000'000'000});

  r = parse(args{"history", "a"});
  REQUIRE(r.value);
  CHECK(r.value->what == verb::history);

  r = parse(args{"balances"});
  REQUIRE(r.value);
  CHECK(r.value->what == verb::balances);

  r = parse(args{"close", "a"});
  REQUIRE(r.value);
  CHECK(r.value->what == verb::close);

  r = parse(args{"load", "--accounts", "5", "--ops=100", "--clients", "3", "--ack-log", "/tmp/x",
                 "--seed", "42"});
  REQUIRE(r.value);
  CHECK(r.value->what == verb::load);
  CHECK(r.value->accounts == 5);
  CHECK(r.value->ops == 100);
  CHECK(r.value->clients == 3);
  CHECK(r.value->ack_log == "/tmp/x");
  CHECK(r.value->seed == std::optional<std::uint64_t>{42});
  CHECK_FALSE(r.value->continue_on_error);
  r = parse(args{"load", "--on-error", "continue"});
  REQUIRE(r.value);
  CHECK(r.value->continue_on_error);
  r = parse(args{"load", "--on-error=stop"});
  REQUIRE(r.value);
  CHECK_FALSE(r.value->continue_on_error);
  r = parse(args{"load", "--on-error", "ignore"});
  REQUIRE_FALSE(r.value);
  CHECK(r.error.find("--on-error must be stop or continue") != std::string::npos);
}

TEST_CASE("cli: report and its options") {
  auto r = parse(args{"report"});
  REQUIRE(r.value);
  CHECK(r.value->what == verb::report);
  CHECK(r.value->source == cli::report_source::journal);
  CHECK(r.value->timeout_ms == 60'000);
  r = parse(args{"report", "--source", "kafka", "--timeout-ms=5000"});
  REQUIRE(r.value);
  CHECK(r.value->source == cli::report_source::kafka);
  CHECK(r.value->timeout_ms == 5000);
  r = parse(args{"report", "--source=journal"});
  REQUIRE(r.value);
  CHECK(r.value->source == cli::report_source::journal);
  for (const auto& bad : {args{"report", "--source", "disk"}, args{"report", "acct-1"},
                          args{"report", "--timeout-ms", "0"}, args{"report", "--source"},
                          args{"report", "--owner", "x"}})
    CHECK_MESSAGE(!parse(bad).value, bad.size());
}

TEST_CASE("cli: usage errors") {
  for (const args& bad :
       {args{}, args{"frobnicate"}, args{"open"}, args{"open", "a", "b"}, args{"deposit", "a"},
        args{"deposit", "a", "12x"}, args{"deposit", "a", "1.5"},
        args{"balance", "a", "--as-of-seq"}, args{"balance", "a", "--as-of-seq", "-1"},
        args{"balance", "a", "--as-of-time", "yesterday"},
        args{"balance", "a", "--as-of-seq", "1", "--as-of-time", "2026-11-22T06:40:00Z"},
        args{"history", "a", "--owner", "x"}, args{"balances", "x"},
        args{"load", "--accounts", "0"}, args{"load", "--clients", "0"},
        args{"load", "--ops", "many"}, args{"open", ""}}) {
    auto r = parse(bad);
    CHECK_FALSE(r.value.has_value());
    CHECK_FALSE(r.error.empty());
  }
}

TEST_CASE("cli: --data is required") {
  const char* with[] = {"strata-bank", "--data", "d", "balances"};
  const char* with_eq[] = {"strata-bank", "--data-dir=d", "balances"};
  const char* without[] = {"strata-bank", "balances"};
  const char* dangling[] = {"strata-bank", "balances", "--data"};
  CHECK(cli::has_data_option(4, with));
  CHECK(cli::has_data_option(3, with_eq));
  CHECK_FALSE(cli::has_data_option(2, without));
  CHECK_FALSE(cli::has_data_option(3, dangling));
}

TEST_CASE("cli: the cluster sub-commands and --cluster") {
  auto r = parse(args{"node", "--port", "4501", "--seeds", "127.0.0.1:4500", "--host", "10.0.0.2"});
  REQUIRE(r.value);
  CHECK(r.value->what == verb::node);
  CHECK(r.value->port == 4501);
  CHECK(r.value->seeds == "127.0.0.1:4500");
  CHECK(r.value->host == "10.0.0.2");
  CHECK_FALSE(cli::works_in_cluster(*r.value));
  CHECK_FALSE(parse(args{"node"}).value); // --port is required
  CHECK_FALSE(parse(args{"node", "--port", "0"}).value);
  CHECK_FALSE(parse(args{"node", "--port", "65536"}).value);
  CHECK_FALSE(parse(args{"node", "--port", "1", "--seeds="}).value);
  CHECK_FALSE(parse(args{"members", "x"}).value);
  REQUIRE(parse(args{"members"}).value);
  CHECK(parse(args{"members"}).value->what == verb::members);
  CHECK(parse(args{"shards"}).value->what == verb::shards);
  CHECK(cli::works_in_cluster(*parse(args{"shards"}).value));
  CHECK(cli::works_in_cluster(*parse(args{"balances"}).value));
  CHECK_FALSE(cli::works_in_cluster(*parse(args{"report"}).value));

  std::string err;
  args a{"strata-bank", "--cluster", "h:1,h:2", "deposit", "x", "5"};
  auto c = cli::take_cluster_option(a, err);
  CHECK(err.empty());
  REQUIRE(c);
  CHECK(*c == "h:1,h:2");
  CHECK(a == args{"strata-bank", "deposit", "x", "5"});
  args b{"strata-bank", "members", "--cluster=h:1"};
  c = cli::take_cluster_option(b, err);
  REQUIRE(c);
  CHECK(*c == "h:1");
  CHECK(b == args{"strata-bank", "members"});
  args none{"strata-bank", "--data", "d", "balances"};
  CHECK_FALSE(cli::take_cluster_option(none, err));
  CHECK(err.empty());
  args dangling{"strata-bank", "balances", "--cluster"};
  CHECK_FALSE(cli::take_cluster_option(dangling, err));
  CHECK_FALSE(err.empty());
}
