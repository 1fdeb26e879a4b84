// strata-bench: runs the registered scenarios and prints one JSON object per line on
// stdout (progress on stderr). See docs/performance.md.
#include "scenario.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/statfs.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <map>
#include <set>
#include <sstream>

namespace fs = std::filesystem;

namespace strata::bench {

std::uint16_t free_loopback_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) fail("socket() failed: " + std::string(std::strerror(errno)));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(a);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    ::close(fd);
    fail("no free port on 127.0.0.1");
  }
  ::close(fd);
  return ntohs(a.sin_port);
}

double process_cpu_seconds() {
  struct rusage ru {};
  getrusage(RUSAGE_SELF, &ru);
  auto tv = [](const timeval& t) {
    return double(t.tv_sec) + double(t.tv_usec) / 1e6;
  };
  return tv(ru.ru_utime) + tv(ru.ru_stime);
}

double percentile_ms(std::vector<std::uint32_t>& us, double q) {
  if (us.empty()) return 0;
  auto k = static_cast<std::size_t>(q * static_cast<double>(us.size() - 1));
  std::nth_element(us.begin(), us.begin() + static_cast<std::ptrdiff_t>(k), us.end());
  return us[k] / 1000.0;
}

// ---- registry, result, context -------------------------------------------------

std::vector<scenario>& registry() {
  static std::vector<scenario> all;
  return all;
}

std::vector<comparison>& comparisons() {
  static std::vector<comparison> all;
  return all;
}

namespace {

std::string json_string(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\t': out += "\\t"; break;
      case '\r': out += "\\r"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out += c;
        }
    }
  }
  return out + "\"";
}

std::string json_number(double v) {
  if (!std::isfinite(v)) return "null";
  char buf[64];
  // Integers print as integers, the rest with enough digits to be useful.
  if (std::fabs(v) >= 1000 && std::fabs(v) < 1e15)
    std::snprintf(buf, sizeof buf, "%.0f", v);
  else
    std::snprintf(buf, sizeof buf, "%.4g", v);
  return buf;
}

} // namespace

result& result::add(std::string key, std::string_view text) {
  fields_.emplace_back(std::move(key), json_string(text));
  return *this;
}
result& result::add(std::string key, double number) {
  fields_.emplace_back(std::move(key), json_number(number));
  return *this;
}
result& result::add(std::string key, std::uint64_t number) {
  fields_.emplace_back(std::move(key), std::to_string(number));
  return *this;
}
result& result::add(std::string key, std::int64_t number) {
  fields_.emplace_back(std::move(key), std::to_string(number));
  return *this;
}
result& result::add_raw(std::string key, std::string json) {
  fields_.emplace_back(std::move(key), std::move(json));
  return *this;
}
result& result::add(std::string key, bool flag) {
  fields_.emplace_back(std::move(key), flag ? "true" : "false");
  return *this;
}

std::optional<std::string> result::field(std::string_view key) const {
  for (auto& [k, v] : fields_)
    if (k == key) return v;
  return std::nullopt;
}

std::string result::to_json(std::string_view name) const {
  char secs[32];
  std::snprintf(secs, sizeof secs, "%.3f", seconds);
  std::string out = "{\"scenario\":" + json_string(name) + ",\"events\":" + std::to_string(events) +
                    ",\"seconds\":" + secs + ",\"events_per_s\":" +
                    std::to_string(static_cast<std::uint64_t>(std::llround(events_per_s())));
  for (auto& [k, v] : fields_)
    out += "," + json_string(k) + ":" + v;
  return out + "}";
}

void context::begin_round() {
  std::error_code ec;
  fs::remove_all(opts_.root, ec);
  fs::create_directories(opts_.root, ec);
  if (ec) fail("cannot recreate " + opts_.root.string() + ": " + ec.message());
  artifacts_.clear();
  results_.clear();
}

fs::path context::fresh_dir(std::string_view name) {
  fs::path p = opts_.root / (std::to_string(next_dir_++) + "-" + std::string(name));
  fs::remove_all(p);
  fs::create_directories(p);
  return p;
}

std::optional<fs::path> context::artifact(const std::string& key) const {
  auto i = artifacts_.find(key);
  if (i == artifacts_.end()) return std::nullopt;
  return i->second;
}

const result* context::result_of(const std::string& scenario) const {
  auto i = results_.find(scenario);
  return i == results_.end() ? nullptr : &i->second;
}

void progress(const std::string& line) { std::cerr << "[bench] " << line << std::endl; }

void fill_payload(std::string& out, std::uint64_t i, std::size_t n) {
  out.resize(n);
  // splitmix64 stream seeded by the record number: cheap and incompressible.
  std::uint64_t x = i * 0x9E3779B97F4A7C15ull + 1;
  for (std::size_t k = 0; k < n; k += 8) {
    x += 0x9E3779B97F4A7C15ull;
    std::uint64_t z = x;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    std::memcpy(&out[k], &z, std::min<std::size_t>(8, n - k));
  }
}

} // namespace strata::bench

// ---- main ----------------------------------------------------------------------

namespace {

using namespace strata::bench;

constexpr std::uint64_t quick_events = 200'000;
constexpr std::uint64_t quick_repeat = 3;

void usage(std::ostream& os) {
  os << "usage: strata-bench [--quick] [--events N] [--streams N] [--batch N]\n"
        "                    [--payload N] [--repeat K] [--nosync] [--dir PATH] [--keep] [--list] "
        "[SCENARIO...]\n"
        "\n"
        "Runs the named scenarios (all default ones when none is named) and prints one\n"
        "JSON object per line on stdout; progress goes to stderr. Naming the baseline of a\n"
        "comparison also runs the scenario that reports it: baseline-postgres runs journal,\n"
        "postgres-scan runs scan, postgres-e2e and skeleton run e2e.\n"
        "\n"
        "  --quick       smaller run: "
     << quick_events << " events, " << quick_repeat
     << " rounds (unless --events / --repeat say otherwise)\n"
        "  --events N    events (records) per scenario (default 1000000)\n"
        "  --streams N   streams interleaved by the journal scenarios (default 10000)\n"
        "  --batch N     events per write transaction (default 1000)\n"
        "  --payload N   bytes per event payload / baseline record (default 100)\n"
        "  --repeat K    run every scenario K times, round by round; print the median run\n"
        "                and the median of the per-round ratios (default 1)\n"
        "  --nosync      no fsync per commit, on both sides of every ratio (default: fsync)\n"
        "  --dir PATH    where scratch data directories are created (and removed after);\n"
        "                default: <build dir>/bench-data, next to bin/ (a real disk, not tmpfs)\n"
        "  --keep        keep the last round's data directories (for mdb_stat, strata journal)\n"
        "  --list        list the scenarios and exit\n"
        "\n"
        "Exit: 0 all ran (or skipped: a missing optional dependency), 1 a scenario failed,\n"
        "2 usage error.\n";
}

bool parse_u64(const char* s, std::uint64_t& out) {
  if (!s || !*s) return false;
  char* end = nullptr;
  errno = 0;
  unsigned long long v = std::strtoull(s, &end, 10);
  if (errno != 0 || *end != '\0' || s[0] == '-') return false;
  out = v;
  return true;
}

/// Bytes this process caused to be written to storage so far (/proc/self/io), or -1.
std::int64_t storage_write_bytes() {
  std::FILE* f = std::fopen("/proc/self/io", "r");
  if (!f) return -1;
  char line[128];
  long long v = -1;
  while (std::fgets(line, sizeof line, f))
    if (std::sscanf(line, "write_bytes: %lld", &v) == 1) break;
  std::fclose(f);
  return v;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

/// "[0.912,1.030]": per-round ratios.
std::string ratio_list(const std::vector<double>& ratios) {
  std::string list = "[";
  for (double x : ratios) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%s%.3f", list.size() > 1 ? "," : "", x);
    list += buf;
  }
  return list + "]";
}

/// Per-round ratios of one scenario against other scenarios (comparisons()).
using extra_ratios = std::map<std::string, std::vector<double>>;

/// The JSON line of a scenario that ran runs.size() times: its median run.
std::string summary(const scenario& s, std::vector<result> runs, const std::vector<double>& ratios,
                    const extra_ratios& extra) {
  std::sort(runs.begin(), runs.end(), [](const result& a, const result& b) {
    return a.events_per_s() < b.events_per_s();
  });
  result r = runs[runs.size() / 2];
  if (runs.size() > 1)
    r.add("runs", static_cast<std::uint64_t>(runs.size()))
      .add("events_per_s_min", std::round(runs.front().events_per_s()))
      .add("events_per_s_max", std::round(runs.back().events_per_s()));
  if (!ratios.empty()) {
    r.add("ratio_vs", s.ratio_vs).add("ratio", std::round(median(ratios) * 1000) / 1000);
    if (ratios.size() > 1) r.add_raw("ratios", ratio_list(ratios));
  }
  for (const auto& [baseline, v] : extra) {
    r.add("ratio_vs_" + baseline, std::round(median(v) * 1000) / 1000);
    if (v.size() > 1) r.add_raw("ratios_vs_" + baseline, ratio_list(v));
  }
  return r.to_json(s.name);
}

fs::path default_dir() {
  std::error_code ec;
  fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec && exe.has_parent_path() && exe.parent_path().has_parent_path())
    return exe.parent_path().parent_path() / "bench-data";
  return fs::current_path() / "bench-data";
}

void describe_filesystem(const fs::path& p) {
  struct statfs st {};
  if (statfs(p.c_str(), &st) != 0) return;
  // TMPFS_MAGIC: fsync is free there, the figures would not mean what they say.
  if (st.f_type == 0x01021994)
    progress("WARNING: " + p.string() +
             " is on tmpfs: fsync costs nothing there; use --dir on a disk");
}

} // namespace

int main(int argc, char** argv) {
  options opts;
  bool events_given = false;
  std::uint64_t repeat = 0;
  bool keep = false;
  bool list = false;
  fs::path dir;
  std::vector<std::string> names;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto need_value = [&](std::uint64_t& out) {
      if (i + 1 >= argc || !parse_u64(argv[i + 1], out) || out == 0) {
        std::cerr << "strata-bench: " << a << " needs a positive integer\n";
        usage(std::cerr);
        std::exit(2);
      }
      ++i;
    };
    if (a == "--quick") {
      opts.quick = true;
    } else if (a == "--events") {
      need_value(opts.events);
      events_given = true;
    } else if (a == "--streams") {
      need_value(opts.streams);
    } else if (a == "--batch") {
      need_value(opts.batch_events);
    } else if (a == "--payload") {
      std::uint64_t n = 0;
      need_value(n);
      opts.payload_bytes = static_cast<std::size_t>(n);
    } else if (a == "--repeat") {
      need_value(repeat);
    } else if (a == "--nosync") {
      opts.nosync = true;
    } else if (a == "--dir") {
      if (i + 1 >= argc) {
        std::cerr << "strata-bench: --dir needs a path\n";
        usage(std::cerr);
        return 2;
      }
      dir = argv[++i];
    } else if (a == "--keep") {
      keep = true;
    } else if (a == "--list") {
      list = true;
    } else if (a == "-h" || a == "--help") {
      usage(std::cout);
      return 0;
    } else if (!a.empty() && a[0] == '-') {
      std::cerr << "strata-bench: unknown option " << a << "\n";
      usage(std::cerr);
      return 2;
    } else {
      names.push_back(a);
    }
  }
  if (opts.quick && !events_given) opts.events = quick_events;
  if (repeat == 0) repeat = opts.quick ? quick_repeat : 1;

  auto all = registry();
  std::stable_sort(all.begin(), all.end(), [](const scenario& a, const scenario& b) {
    return a.order != b.order ? a.order < b.order : a.name < b.name;
  });
  if (list) {
    for (auto& s : all)
      std::cout << s.name << (s.in_default ? "" : " (only when named)") << "\n    " << s.description
                << "\n";
    return 0;
  }

  std::set<std::string> wanted(names.begin(), names.end());
  for (auto& n : wanted) {
    if (std::none_of(all.begin(), all.end(), [&](const scenario& s) {
          return s.name == n;
        })) {
      std::cerr << "strata-bench: unknown scenario '" << n << "' (see --list)\n";
      return 2;
    }
  }
  // Naming the baseline of a comparison (e.g. postgres-scan) also runs the scenario
  // compared with it (scan), so that the ratio is reported.
  for (const auto& c : comparisons())
    if (wanted.count(c.baseline) && wanted.insert(c.scenario).second)
      progress("also running " + c.scenario + ": it reports ratio_vs_" + c.baseline);
  std::vector<const scenario*> to_run;
  for (auto& s : all)
    if (wanted.empty() ? s.in_default : wanted.count(s.name) > 0) to_run.push_back(&s);

  if (dir.empty()) dir = default_dir();
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) {
    std::cerr << "strata-bench: cannot create " << dir << ": " << ec.message() << "\n";
    return 2;
  }
  opts.root = fs::absolute(dir) / ("run-" + std::to_string(::getpid()));
  fs::remove_all(opts.root, ec);
  fs::create_directories(opts.root, ec);
  if (ec) {
    std::cerr << "strata-bench: cannot create " << opts.root << ": " << ec.message() << "\n";
    return 2;
  }
  describe_filesystem(opts.root);
  progress("scratch dir " + opts.root.string() + ", events " + std::to_string(opts.events) +
           ", streams " + std::to_string(opts.streams) + ", batch " +
           std::to_string(opts.batch_events) + ", payload " + std::to_string(opts.payload_bytes) +
           " B, " + (opts.nosync ? "nosync" : "fsync per commit"));

  context ctx(opts);
  int rc = 0;
  // With --repeat K every scenario runs K times, interleaved round by round so that a
  // scenario and its baseline see the same disk conditions. Printed: the median run
  // (by events_per_s) and the median of the per-round ratios.
  std::map<std::string, std::vector<result>> runs;
  std::map<std::string, std::vector<double>> ratios;
  std::map<std::string, extra_ratios> extras; // scenario → comparisons()
  std::set<std::string> failed;               // and skipped: not run again in later rounds
  for (std::uint64_t round = 1; round <= repeat; ++round) {
    ctx.begin_round();
    for (auto* s : to_run) {
      if (failed.count(s->name)) continue;
      progress("running " + s->name +
               (repeat > 1 ? " (round " + std::to_string(round) + "/" + std::to_string(repeat) + ")"
                           : "") +
               " ...");
      try {
        double cpu0 = process_cpu_seconds();
        std::int64_t io0 = storage_write_bytes();
        result r = s->run(ctx);
        // Whole scenario incl. untimed set-up: where the time went (CPU vs waiting).
        r.add("cpu_s", std::round((process_cpu_seconds() - cpu0) * 1000) / 1000);
        if (std::int64_t io1 = storage_write_bytes(); io0 >= 0 && io1 >= 0)
          r.add("disk_write_bytes", static_cast<std::int64_t>(io1 - io0));
        ctx.record(s->name, r);
        if (!s->ratio_vs.empty())
          if (auto* base = ctx.result_of(s->ratio_vs); base && base->events_per_s() > 0)
            ratios[s->name].push_back(r.events_per_s() / base->events_per_s());
        for (const auto& c : comparisons())
          if (c.scenario == s->name)
            if (auto* base = ctx.result_of(c.baseline); base && base->events_per_s() > 0)
              extras[s->name][c.baseline].push_back(r.events_per_s() / base->events_per_s());
        runs[s->name].push_back(r);
      } catch (const skipped& e) {
        progress("skipped " + s->name + ": " + e.what());
        std::cout << "{\"scenario\":" << json_string(s->name)
                  << ",\"skipped\":" << json_string(e.what()) << "}" << std::endl;
        failed.insert(s->name);
        continue;
      } catch (const std::exception& e) {
        std::cerr << "strata-bench: scenario " << s->name << " failed: " << e.what() << "\n";
        failed.insert(s->name);
        rc = 1;
        continue;
      }
      if (round == repeat)
        std::cout << summary(*s, runs[s->name], ratios[s->name], extras[s->name]) << std::endl;
    }
  }
  if (keep) {
    progress("kept the last round's data in " + opts.root.string() + " (--keep)");
    return rc;
  }
  fs::remove_all(opts.root, ec);
  if (ec)
    std::cerr << "strata-bench: could not remove " << opts.root << ": " << ec.message() << "\n";
  return rc;
}
