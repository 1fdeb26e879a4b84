#include "strata/runtime/config.hpp"

#include <cctype>
#include <charconv>
#include <fstream>
#include <sstream>

namespace strata {

namespace {

using persistence::errc;
using persistence::status;

std::string normalise(std::string_view key) {
  std::string k(key);
  for (auto& c : k)
    if (c == '_') c = '-';
  return k;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front())))
    s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back())))
    s.remove_suffix(1);
  if (s.size() >= 2 && s.front() == '"' && s.back() == '"') s = s.substr(1, s.size() - 2);
  return s;
}

template <class T>
status parse_uint(std::string_view key, std::string_view v, T& out) {
  std::uint64_t x = 0;
  auto res = std::from_chars(v.data(), v.data() + v.size(), x);
  if (res.ec != std::errc{} || res.ptr != v.data() + v.size() || v.empty())
    return {errc::invalid_argument, "config key '" + std::string(key) +
                                      "' expects a non-negative integer, got '" + std::string(v) +
                                      "'"};
  out = static_cast<T>(x);
  return {};
}

status parse_bool(std::string_view key, std::string_view v, bool& out) {
  if (v == "true" || v == "1" || v == "yes" || v == "on") {
    out = true;
    return {};
  }
  if (v == "false" || v == "0" || v == "no" || v == "off") {
    out = false;
    return {};
  }
  return {errc::invalid_argument, "config key '" + std::string(key) +
                                    "' expects true or false, got '" + std::string(v) + "'"};
}

/// "host:port" or "[v6]:port" (port 1..65535) into `out`.
status parse_seed(std::string_view item, config::cluster_seed& out) {
  auto bad = [&] {
    return status{errc::invalid_argument, "config key 'cluster-seeds' expects host:port,… "
                                          "(IPv6 as [::1]:4500), got '" +
                                            std::string(item) + "'"};
  };
  auto colon = item.rfind(':');
  if (colon == std::string_view::npos || colon == 0) return bad();
  auto host = item.substr(0, colon);
  if (host.front() == '[') {
    if (host.size() < 3 || host.back() != ']') return bad();
    host = host.substr(1, host.size() - 2);
  } else if (host.find(':') != std::string_view::npos) {
    return bad();
  }
  std::uint32_t port = 0;
  auto p = item.substr(colon + 1);
  auto res = std::from_chars(p.data(), p.data() + p.size(), port);
  if (p.empty() || res.ec != std::errc{} || res.ptr != p.data() + p.size() || port == 0 ||
      port > 65535)
    return bad();
  out.host = std::string(host);
  out.port = static_cast<std::uint16_t>(port);
  return {};
}

status parse_seeds(std::string_view v, std::vector<config::cluster_seed>& out) {
  std::vector<config::cluster_seed> seeds;
  while (!v.empty()) {
    auto comma = v.find(',');
    auto item = trim(v.substr(0, comma));
    v = comma == std::string_view::npos ? std::string_view{} : v.substr(comma + 1);
    if (item.empty()) continue;
    config::cluster_seed s;
    if (auto st = parse_seed(item, s); !st.ok()) return st;
    seeds.push_back(std::move(s));
  }
  out = std::move(seeds);
  return {};
}

status set_failure(config& c, const std::string& key, std::string_view v, bool& handled);

/// The cluster-* keys; `handled` false for any other key.
status set_cluster(config& c, const std::string& key, std::string_view v, bool& handled) {
  handled = true;
  if (key == "cluster-host") {
    if (v.empty()) return {errc::invalid_argument, "config key 'cluster-host' must not be empty"};
    c.cluster_host = std::string(v);
    return {};
  }
  if (key == "cluster-port") {
    std::uint64_t port = 0;
    auto st = parse_uint(key, v, port);
    if (st.ok() && port > 65535)
      return {errc::invalid_argument,
              "config key 'cluster-port' expects 0..65535, got '" + std::string(v) + "'"};
    if (st.ok()) c.cluster_port = static_cast<std::uint16_t>(port);
    return st;
  }
  if (key == "cluster-seeds") return parse_seeds(v, c.cluster_seeds);
  if (key == "cluster-shards" || key == "cluster-gossip-ms") {
    bool shards = key == "cluster-shards";
    auto& field = shards ? c.cluster_shards : c.cluster_gossip_ms;
    std::uint64_t max = shards ? 65536 : 60000;
    std::uint64_t x = 0;
    auto st = parse_uint(key, v, x);
    if (st.ok() && (x == 0 || x > max))
      return {errc::invalid_argument, "config key '" + key + "' expects 1.." + std::to_string(max) +
                                        ", got '" + std::string(v) + "'"};
    if (st.ok()) field = static_cast<std::uint32_t>(x);
    return st;
  }
  return set_failure(c, key, v, handled);
}

/// The cluster's failure-detection and downing keys; `handled` false for any other key.
status set_failure(config& c, const std::string& key, std::string_view v, bool& handled) {
  handled = true;
  if (key == "cluster-phi-threshold") {
    double x = 0;
    auto res = std::from_chars(v.data(), v.data() + v.size(), x);
    if (v.empty() || res.ec != std::errc{} || res.ptr != v.data() + v.size() || !(x > 0.0) ||
        x > 100.0)
      return {errc::invalid_argument,
              "config key 'cluster-phi-threshold' expects a number > 0 and <= 100 (8 = "
              "Akka's default), got '" +
                std::string(v) + "'"};
    c.cluster_phi_threshold = x;
    return {};
  }
  struct range {
    const char* key;
    std::uint32_t config::*field;
    std::uint64_t min, max;
  };
  for (auto r :
       {range{"cluster-heartbeat-ms", &config::cluster_heartbeat_ms, 1, 60000},
        range{"cluster-acceptable-pause-ms", &config::cluster_acceptable_pause_ms, 0, 60000},
        range{"cluster-stable-after-ms", &config::cluster_stable_after_ms, 1, 600000},
        range{"cluster-self-down-lead-ms", &config::cluster_self_down_lead_ms, 0, 600000}}) {
    if (key != r.key) continue;
    std::uint64_t x = 0;
    auto st = parse_uint(key, v, x);
    if (st.ok() && (x < r.min || x > r.max))
      return {errc::invalid_argument, "config key '" + key + "' expects " + std::to_string(r.min) +
                                        ".." + std::to_string(r.max) + " (milliseconds), got '" +
                                        std::string(v) + "'"};
    if (st.ok()) c.*r.field = static_cast<std::uint32_t>(x);
    return st;
  }
  handled = false;
  return {};
}

/// Keys that are a switch on the command line: `--key` alone means true.
bool is_flag(std::string_view key) {
  auto k = normalise(key);
  return k == "read-only" || k == "cluster-client";
}

} // namespace

std::uint64_t config::snapshot_every_for(std::string_view type) const {
  auto i = snapshot_every_by_type.find(std::string(type));
  return i == snapshot_every_by_type.end() ? snapshot_every : i->second;
}

bool config::replicated_for(std::string_view type) const {
  auto i = replicated_by_type.find(std::string(type));
  return i == replicated_by_type.end() ? replicated : i->second;
}

persistence::status config::set(std::string_view key_in, std::string_view value_in) {
  auto key = normalise(trim(key_in));
  auto v = trim(value_in);
  bool handled = false;
  if (auto st = set_cluster(*this, key, v, handled); handled) return st;
  if (key == "kafka") {
    kafka = std::string(v);
    return {};
  }
  if (key == "kafka-partitions") {
    auto st = parse_uint(key, v, kafka_partitions);
    if (st.ok() && kafka_partitions == 0)
      return {errc::invalid_argument, "config key 'kafka-partitions' must be >= 1"};
    return st;
  }
  if (key == "kafka-linger-ms") return parse_uint(key, v, kafka_linger_ms);
  if (key == "kafka-drain-ms") return parse_uint(key, v, kafka_drain_ms);
  if (key == "kafka-compression") {
    if (v != "none" && v != "gzip" && v != "snappy" && v != "lz4" && v != "zstd")
      return {errc::invalid_argument, "config key 'kafka-compression' expects "
                                      "none|gzip|snappy|lz4|zstd, got '" +
                                        std::string(v) + "'"};
    kafka_compression = std::string(v);
    return {};
  }
  if (key == "replication-timeout-ms") {
    std::uint64_t ms = 0;
    auto st = parse_uint(key, v, ms);
    if (st.ok() && (ms == 0 || ms > 3'600'000))
      return {errc::invalid_argument,
              "config key 'replication-timeout-ms' expects 1..3600000 (milliseconds), got '" +
                std::string(v) + "'"};
    if (st.ok()) replication_timeout_ms = static_cast<std::uint32_t>(ms);
    return st;
  }
  const std::string repl = "replication";
  if (key.compare(0, repl.size(), repl) == 0 &&
      (key.size() == repl.size() || key[repl.size()] == '.')) {
    if (v != "local" && v != "replicated")
      return {errc::invalid_argument,
              "config key '" + key + "' expects local or replicated, got '" + std::string(v) + "'"};
    bool on = v == "replicated";
    if (key.size() == repl.size())
      replicated = on;
    else
      replicated_by_type[key.substr(repl.size() + 1)] = on;
    return {};
  }
  if (key == "data-dir" || key == "data") {
    if (v.empty()) return {errc::invalid_argument, "config key 'data-dir' must not be empty"};
    data_dir = std::string(v);
    return {};
  }
  if (key == "durability") {
    auto m = persistence::parse_sync_mode(v);
    if (!m)
      return {errc::invalid_argument,
              "config key 'durability' expects sync or nosync, got '" + std::string(v) + "'"};
    durability = *m;
    return {};
  }
  if (key == "scheduler-policy") {
    if (v != "stealing" && v != "sharing")
      return {errc::invalid_argument, "config key 'scheduler-policy' expects stealing or "
                                      "sharing, got '" +
                                        std::string(v) + "'"};
    scheduler_policy = std::string(v);
    return {};
  }
  if (key == "read-only") return parse_bool(key, v, read_only);
  if (key == "lock-wait-ms") return parse_uint(key, v, lock_wait_ms);
  if (key == "node-name") {
    node_name = std::string(v);
    return {};
  }
  if (key == "map-size-mb") {
    std::size_t mb = 0;
    auto st = parse_uint(key, v, mb);
    if (st.ok()) map_size_bytes = mb << 20;
    return st;
  }
  if (key == "map-size-max-mb") {
    std::size_t mb = 0;
    auto st = parse_uint(key, v, mb);
    if (st.ok()) map_size_max_bytes = mb << 20;
    return st;
  }
  const std::string per_type = "snapshot-every.";
  if (key.compare(0, per_type.size(), per_type) == 0 && key.size() > per_type.size()) {
    std::uint64_t n = 0;
    auto st = parse_uint(key, v, n);
    if (st.ok()) snapshot_every_by_type[key.substr(per_type.size())] = n;
    return st;
  }
  if (key == "snapshot-every") return parse_uint(key, v, snapshot_every);
  if (key == "passivate-after-ms") return parse_uint(key, v, passivate_after_ms);
  if (key == "max-recovering") return parse_uint(key, v, max_recovering);
  if (key == "stash-max") return parse_uint(key, v, stash_max);
  if (key == "writer-batch-events-max") return parse_uint(key, v, writer_batch_events_max);
  if (key == "writer-linger-us") return parse_uint(key, v, writer_linger_us);
  if (key == "writer-linger-events") return parse_uint(key, v, writer_linger_events);
  if (key == "max-inflight-writes") {
    auto st = parse_uint(key, v, max_inflight_writes);
    if (st.ok() && max_inflight_writes == 0)
      return {errc::invalid_argument, "config key 'max-inflight-writes' must be >= 1"};
    return st;
  }
  if (key == "entity-batch-events-max") return parse_uint(key, v, entity_batch_events_max);
  if (key == "scheduler-threads") return parse_uint(key, v, scheduler_threads);
  if (key == "max-throughput") return parse_uint(key, v, max_throughput);
  if (key == "directory-shards") return parse_uint(key, v, directory_shards);
  if (key == "index-flush-events") return parse_uint(key, v, index_flush_events);
  for (auto [name, field] :
       {std::pair{"cluster-forward-timeout-ms", &cluster_forward_timeout_ms},
        std::pair{"cluster-batch-max", &cluster_batch_max},
        std::pair{"cluster-max-inflight-batches", &cluster_max_inflight_batches},
        std::pair{"cluster-buffer-max", &cluster_buffer_max}})
    if (key == name) {
      auto st = parse_uint(key, v, *field);
      if (st.ok() && *field == 0)
        return {errc::invalid_argument, "config key '" + key + "' must be >= 1"};
      return st;
    }
  if (key == "cluster-batch-linger-us") return parse_uint(key, v, cluster_batch_linger_us);
  if (key == "cluster-handoff-timeout-ms") {
    auto st = parse_uint(key, v, cluster_handoff_timeout_ms);
    if (st.ok() && cluster_handoff_timeout_ms == 0)
      return {errc::invalid_argument, "config key 'cluster-handoff-timeout-ms' must be >= 1"};
    return st;
  }
  if (key == "cluster-client") return parse_bool(key, v, cluster_client);
  return {errc::invalid_argument, "unknown config key '" + std::string(key_in) + "'"};
}

namespace {

persistence::result<config> read_file(const std::string& path, config base) {
  std::ifstream in(path);
  if (!in) return persistence::status{errc::not_found, "cannot open config file '" + path + "'"};
  std::string line;
  std::size_t n = 0;
  std::string section;
  while (std::getline(in, line)) {
    ++n;
    auto l = trim(line);
    if (l.empty() || l.front() == '#' || l.front() == ';') continue;
    if (l.front() == '[') {
      section = std::string(
        trim(l.substr(1, l.find(']') == std::string_view::npos ? l.size() - 1 : l.find(']') - 1)));
      continue;
    }
    if (!section.empty() && section != "strata") continue; // other sections belong to other tools
    auto eq = l.find('=');
    if (eq == std::string_view::npos)
      return persistence::status{errc::invalid_argument,
                                 path + ":" + std::to_string(n) + ": expected key = value"};
    auto st = base.set(l.substr(0, eq), l.substr(eq + 1));
    if (!st.ok())
      return persistence::status{st.code(), path + ":" + std::to_string(n) + ": " + st.message()};
  }
  return base;
}

persistence::result<config> parse_args(int argc, const char* const* argv,
                                       std::vector<std::string>* rest, config base) {
  std::vector<std::string> args;
  for (int i = 1; i < argc; ++i)
    args.emplace_back(argv[i]);
  // The config file first, so that explicit options override it.
  for (std::size_t i = 0; i < args.size(); ++i) {
    std::string path;
    if (args[i].rfind("--config-file=", 0) == 0)
      path = args[i].substr(14);
    else if (args[i] == "--config-file" && i + 1 < args.size())
      path = args[i + 1];
    else
      continue;
    auto f = read_file(path, std::move(base));
    if (!f) return f.error();
    base = std::move(*f);
  }
  std::vector<std::string> unknown;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const auto& a = args[i];
    if (a == "--") {
      for (++i; i < args.size(); ++i)
        unknown.push_back(args[i]);
      break;
    }
    if (a.rfind("--config-file", 0) == 0) {
      if (a == "--config-file") ++i;
      continue;
    }
    if (a.size() > 2 && a[0] == '-' && a[1] == '-') {
      auto body = a.substr(2);
      auto eq = body.find('=');
      std::string key = body.substr(0, eq);
      config probe = base;
      bool has_value = eq != std::string::npos;
      std::string value = has_value ? body.substr(eq + 1) : std::string{};
      if (!has_value && is_flag(key)) {
        // `--flag [true|false]`: the value only when the next argument is one.
        bool on = true;
        if (i + 1 < args.size() && parse_bool(key, args[i + 1], on).ok())
          ++i;
        else
          on = true;
        if (auto st = base.set(key, on ? "true" : "false"); !st.ok()) return st;
        continue;
      }
      if (!has_value) {
        // `--key value`: only when `key` is ours.
        if (i + 1 < args.size()) {
          auto st = probe.set(key, args[i + 1]);
          if (st.ok()) {
            base = std::move(probe);
            ++i;
            continue;
          }
          if (st.message().rfind("unknown config key", 0) != 0) return st; // ours, but a bad value
        }
      } else {
        auto st = probe.set(key, value);
        if (st.ok()) {
          base = std::move(probe);
          continue;
        }
        if (st.message().rfind("unknown config key", 0) != 0) return st; // ours, but a bad value
      }
    }
    unknown.push_back(a);
  }
  if (!unknown.empty()) {
    if (rest == nullptr)
      return persistence::status{errc::invalid_argument,
                                 "unknown command-line argument '" + unknown.front() + "'"};
    *rest = std::move(unknown);
  } else if (rest != nullptr) {
    rest->clear();
  }
  return base;
}

result<config> to_result(persistence::result<config> r) {
  if (!r) return to_error(r.error());
  return std::move(*r);
}

} // namespace

result<config> config::from_file(const std::string& path) { return from_file(path, config{}); }

result<config> config::from_file(const std::string& path, config base) {
  return to_result(read_file(path, std::move(base)));
}

result<config> config::from_args(int argc, const char* const* argv,
                                 std::vector<std::string>* rest) {
  return from_args(argc, argv, rest, config{});
}

result<config> config::from_args(int argc, const char* const* argv, std::vector<std::string>* rest,
                                 config base) {
  return to_result(parse_args(argc, argv, rest, std::move(base)));
}

} // namespace strata
