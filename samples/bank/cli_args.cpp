#include "bank/cli_args.hpp"

#include "strata/persistence/timestamp.hpp"

#include <strata/runtime/ids.hpp>

#include <cerrno>
#include <cstdlib>
#include <limits>
#include <string_view>

namespace bank::cli {

namespace {

bool parse_i64(const std::string& s, std::int64_t& out) {
  if (s.empty()) return false;
  errno = 0;
  char* end = nullptr;
  long long v = std::strtoll(s.c_str(), &end, 10);
  if (errno != 0 || end != s.c_str() + s.size()) return false;
  out = v;
  return true;
}

bool parse_u64(const std::string& s, std::uint64_t& out) {
  if (s.empty() || s[0] < '0' || s[0] > '9') return false;
  errno = 0;
  char* end = nullptr;
  unsigned long long v = std::strtoull(s.c_str(), &end, 10);
  if (errno != 0 || end != s.c_str() + s.size()) return false;
  out = v;
  return true;
}

/// Options of one sub-command: `--name value` or `--name=value`.
class option_reader {
 public:
  explicit option_reader(const std::vector<std::string>& args) : args_(args) {}

  /// Splits positionals from options; false (with error_) on a malformed option.
  bool split(std::size_t from, const std::vector<std::string_view>& known) {
    for (std::size_t i = from; i < args_.size(); ++i) {
      const auto& a = args_[i];
      if (a.size() > 2 && a[0] == '-' && a[1] == '-') {
        auto eq = a.find('=');
        std::string name = a.substr(2, eq == std::string::npos ? std::string::npos : eq - 2);
        bool ok = false;
        for (auto k : known)
          ok = ok || k == name;
        if (!ok) {
          error_ = "unknown option '--" + name + "'";
          return false;
        }
        if (eq != std::string::npos) {
          options_.emplace_back(name, a.substr(eq + 1));
        } else if (i + 1 < args_.size()) {
          options_.emplace_back(name, args_[++i]);
        } else {
          error_ = "option '--" + name + "' needs a value";
          return false;
        }
      } else {
        positional_.push_back(a);
      }
    }
    return true;
  }

  const std::vector<std::string>& positional() const noexcept { return positional_; }
  const std::vector<std::pair<std::string, std::string>>& options() const noexcept {
    return options_;
  }
  const std::string& error() const noexcept { return error_; }

 private:
  const std::vector<std::string>& args_;
  std::vector<std::string> positional_;
  std::vector<std::pair<std::string, std::string>> options_;
  std::string error_;
};

parse_result fail(std::string why) { return parse_result{std::nullopt, std::move(why)}; }

} // namespace

parse_result parse(const std::vector<std::string>& args) {
  if (args.empty()) return fail("missing sub-command");
  const std::string& sub = args[0];
  command_line c;
  std::vector<std::string_view> known;
  std::size_t n_positional = 0;
  if (sub == "open") {
    c.what = verb::open;
    known = {"owner"};
    n_positional = 1;
  } else if (sub == "deposit" || sub == "withdraw") {
    c.what = sub == "deposit" ? verb::deposit : verb::withdraw;
    n_positional = 2;
  } else if (sub == "close") {
    c.what = verb::close;
    n_positional = 1;
  } else if (sub == "balance") {
    c.what = verb::balance;
    known = {"as-of-seq", "as-of-time"};
    n_positional = 1;
  } else if (sub == "history") {
    c.what = verb::history;
    n_positional = 1;
  } else if (sub == "balances") {
    c.what = verb::balances;
  } else if (sub == "load") {
    c.what = verb::load;
    known = {"accounts", "ops", "clients", "ack-log", "seed", "on-error"};
  } else if (sub == "report") {
    c.what = verb::report;
    known = {"source", "timeout-ms"};
  } else if (sub == "node") {
    c.what = verb::node;
    known = {"port", "seeds", "host"};
  } else if (sub == "members" || sub == "shards") {
    c.what = sub == "members" ? verb::members : verb::shards;
  } else {
    return fail("unknown sub-command '" + sub + "'");
  }
  option_reader r{args};
  if (!r.split(1, known)) return fail(sub + ": " + r.error());
  const auto& pos = r.positional();
  if (pos.size() != n_positional)
    return fail(sub + ": expected " + std::to_string(n_positional) + " argument(s), got " +
                std::to_string(pos.size()));
  if (n_positional >= 1) {
    c.id = pos[0];
    if (auto st = strata::validate_id(account_type, c.id); !st.ok())
      return fail(sub + ": bad account ID: " + st.message());
  }
  if (n_positional == 2 && !parse_i64(pos[1], c.amount))
    return fail(sub + ": AMOUNT must be an integer number of cents, got '" + pos[1] + "'");
  for (const auto& [name, value] : r.options()) {
    std::uint64_t u = 0;
    if (name == "owner") {
      if (auto why = strata::first_unprintable(value); !why.empty())
        return fail("open: --owner must be printable text: " + why + " of \"" +
                    strata::escape_text(value) + "\"");
      if (value.size() > owner_max_bytes)
        return fail("open: --owner must be at most " + std::to_string(owner_max_bytes) +
                    " bytes, got " + std::to_string(value.size()));
      c.owner = value;
    } else if (name == "as-of-seq") {
      if (!parse_u64(value, u))
        return fail("--as-of-seq needs a non-negative integer, got '" + value + "'");
      c.as_of_seq = u;
    } else if (name == "as-of-time") {
      auto t = strata::parse_iso8601(value);
      if (!t)
        return fail("--as-of-time needs a UTC time like 2026-11-22T06:40:00.123456789Z or "
                    "2026-11-22T06:40:00Z, got '" +
                    value + "'");
      c.as_of_time_ns = *t;
    } else if (name == "source") {
      if (value == "journal")
        c.source = report_source::journal;
      else if (value == "kafka")
        c.source = report_source::kafka;
      else
        return fail("report: --source must be journal or kafka, got '" + value + "'");
    } else if (name == "seeds" || name == "host") {
      if (value.empty()) return fail("node: --" + name + " needs a value");
      (name == "seeds" ? c.seeds : c.host) = value;
    } else if (name == "on-error") {
      if (value != "stop" && value != "continue")
        return fail("load: --on-error must be stop or continue, got '" + value + "'");
      c.continue_on_error = value == "continue";
    } else if (name == "ack-log") {
      if (value.empty()) return fail("--ack-log needs a file name");
      c.ack_log = value;
    } else {
      if (!parse_u64(value, u))
        return fail("--" + name + " needs a non-negative integer, got '" + value + "'");
      if (name == "accounts")
        c.accounts = u;
      else if (name == "ops")
        c.ops = u;
      else if (name == "clients")
        c.clients = u;
      else if (name == "seed")
        c.seed = u;
      else if (name == "timeout-ms")
        c.timeout_ms = u;
      else if (name == "port") {
        if (u == 0 || u > 65535) return fail("node: --port must be in 1..65535");
        c.port = static_cast<std::uint16_t>(u);
      }
    }
  }
  if (c.as_of_seq && c.as_of_time_ns)
    return fail("balance: give --as-of-seq or --as-of-time, not both");
  if (c.what == verb::load) {
    if (c.accounts == 0 || c.accounts > 10'000'000)
      return fail("load: --accounts must be in 1..10000000");
    if (c.clients == 0 || c.clients > 100'000) return fail("load: --clients must be in 1..100000");
    if (c.ops > 1'000'000'000) return fail("load: --ops must be at most 1000000000");
  }
  if (c.what == verb::node && c.port == 0) return fail("node: --port P is required");
  if (c.what == verb::report && (c.timeout_ms == 0 || c.timeout_ms > 86'400'000))
    return fail("report: --timeout-ms must be in 1..86400000");
  return parse_result{std::move(c), {}};
}

bool is_read_only(const command_line& c) noexcept {
  switch (c.what) {
    case verb::balance:
    case verb::history:
    case verb::balances: return true;
    case verb::report: return c.source == report_source::journal;
    default: return false;
  }
}

bool has_data_option(int argc, const char* const* argv) {
  for (int i = 1; i < argc; ++i) {
    std::string_view a = argv[i];
    if (a == "--") return false;
    if (a == "--data" || a == "--data-dir") return i + 1 < argc;
    if (a.rfind("--data=", 0) == 0 || a.rfind("--data-dir=", 0) == 0) return true;
  }
  return false;
}

std::optional<std::string> take_cluster_option(std::vector<std::string>& argv, std::string& error) {
  std::optional<std::string> out;
  for (std::size_t i = 1; i < argv.size(); ++i) {
    if (argv[i] == "--") break;
    if (argv[i] == "--cluster") {
      if (i + 1 >= argv.size() || argv[i + 1].empty() || argv[i + 1][0] == '-') {
        error = "--cluster needs HOST:PORT[,HOST:PORT…]";
        return std::nullopt;
      }
      out = argv[i + 1];
      argv.erase(argv.begin() + static_cast<std::ptrdiff_t>(i),
                 argv.begin() + static_cast<std::ptrdiff_t>(i + 2));
      --i;
    } else if (argv[i].rfind("--cluster=", 0) == 0) {
      out = argv[i].substr(10);
      if (out->empty()) {
        error = "--cluster needs HOST:PORT[,HOST:PORT…]";
        return std::nullopt;
      }
      argv.erase(argv.begin() + static_cast<std::ptrdiff_t>(i));
      --i;
    }
  }
  return out;
}

bool works_in_cluster(const command_line& c) noexcept {
  return c.what != verb::node && c.what != verb::report;
}

const char* usage() noexcept {
  return "usage: strata-bank --data DIR [runtime options] COMMAND ...\n"
         "       strata-bank --cluster HOST:PORT[,...] COMMAND ...   (through a cluster)\n"
         "commands:\n"
         "  open ID [--owner NAME]            open an account        -> ID balance=0\n"
         "  deposit ID AMOUNT                 AMOUNT in cents        -> ID balance=N\n"
         "  withdraw ID AMOUNT                                       -> ID balance=N\n"
         "  close ID                          only at balance 0      -> ID closed\n"
         "  balance ID [--as-of-seq N | --as-of-time ISO8601]        -> ID balance=N\n"
         "  history ID                        seq=N time=T type=... one line per event\n"
         "  balances                          ID balance=N per account, sorted by ID\n"
         "  load --accounts N --ops M --clients C [--ack-log FILE] [--seed S]\n"
         "       [--on-error stop|continue]   continue: count an infrastructure error\n"
         "                                    as an op of unknown outcome and go on\n"
         "  report [--source journal|kafka] [--timeout-ms N]\n"
         "                                    ID deposits=N withdrawals=M per account,\n"
         "                                    then total deposits=N withdrawals=M\n"
         "  node --port P [--seeds HOST:PORT,...] [--host H]  run a cluster node (needs\n"
         "                                    --kafka BOOTSTRAP; SIGTERM = graceful leave)\n"
         "  members                           ADDRESS STATE INCARNATION (--cluster)\n"
         "  shards                            SHARD OWNER EPOCH (--cluster)\n"
         "runtime options (strata::config): --durability sync|nosync, --snapshot-every N,\n"
         "  --passivate-after-ms N, --stash-max N, --max-inflight-writes N,\n"
         "  --scheduler-threads N, --config-file PATH,\n"
         "  --kafka BOOTSTRAP|mock (publish the journal to Kafka; mock = in-process cluster),\n"
         "  --replication local|replicated, --replication-timeout-ms N (default 10000),\n"
         "  --kafka-partitions N, --kafka-drain-ms N, ...\n"
         "  --lock-wait-ms N: a writing command waits this long for another one on DIR\n"
         "  (default 5000), then fails with `locked` (exit 4) naming it\n"
         "balance, history, balances and report --source journal open DIR read-only: they\n"
         "run beside a writing command. IDs: printable UTF-8, no control characters, at most\n"
         "247 bytes; output escapes \\ newline tab and control bytes (\\\\ \\n \\t \\xNN)\n"
         "exit codes: 0 ok, 2 usage, 3 rejected by the domain, 4 infrastructure error,\n"
         "5 (node) downed by the cluster\n";
}

} // namespace bank::cli
