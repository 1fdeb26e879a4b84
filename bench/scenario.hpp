// File: bench/scenario.hpp
//
// The scenario registry of strata-bench. A scenario is a named, timed run that
// produces one JSON line. Add one in its own .cpp file:
//
//   namespace {
//   strata::bench::result run_hot(strata::bench::context& ctx) {
//     strata::bench::result r;
//     strata::bench::stopwatch sw;
//     …                      // ctx.opts().events, ctx.fresh_dir("hot"), …
//     r.events = n;
//     r.seconds = sw.seconds();
//     return r.add("actors", 1000);
//   }
//   const strata::bench::registrar reg{{"hot", "commands to 1k hot actors", 200,
//                                       /*ratio_vs=*/"", /*in_default=*/true, run_hot}};
//   } // namespace
//
// and add the file (and any library it needs) to bench/CMakeLists.txt. Scenarios run
// in `order` (baselines first, so a scenario with `ratio_vs` can be compared with a
// baseline measured in the same invocation), whatever order the command line names
// them in. A scenario reports failure by throwing (e.g. `bench::fail(...)`).
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace strata::bench {

/// CPU seconds (user + system) of this process so far (getrusage).
double process_cpu_seconds();
/// A TCP port free on 127.0.0.1 right now (bind to port 0, read it back, close), for
/// a listener other processes or nodes must be told in advance. Fails the scenario
/// when no socket can be bound.
std::uint16_t free_loopback_port();
/// The q-quantile (0..1) of latencies in microseconds, in milliseconds (0 when empty);
/// reorders `us`.
double percentile_ms(std::vector<std::uint32_t>& us, double q);

/// Command-line options shared by all scenarios.
struct options {
  bool quick = false;                 ///< smaller run (--quick)
  std::uint64_t events = 1'000'000;   ///< events / records per scenario (--events)
  std::uint64_t streams = 10'000;     ///< streams interleaved (--streams)
  std::uint64_t batch_events = 1'000; ///< events per transaction (--batch)
  std::size_t payload_bytes = 100;    ///< bytes per event payload / record value
  bool nosync = false;                ///< --nosync: no fsync per commit (both sides)
  std::filesystem::path root;         ///< this invocation's scratch dir (under --dir)
};

/// The outcome of one scenario: becomes one JSON object on stdout.
class result {
 public:
  std::uint64_t events = 0;
  double seconds = 0;

  /// Extra fields, printed after the standard ones in insertion order.
  result& add(std::string key, std::string_view text);
  result& add(std::string key, const char* text) {
    return add(std::move(key), std::string_view{text});
  }
  result& add(std::string key, double number);
  result& add(std::string key, std::uint64_t number);
  result& add(std::string key, std::int64_t number);
  result& add(std::string key, int number) { return add(std::move(key), std::int64_t{number}); }
  result& add(std::string key, bool flag);
  /// `json` must be a valid JSON value (array, object, …).
  result& add_raw(std::string key, std::string json);

  double events_per_s() const { return seconds > 0 ? double(events) / seconds : 0.0; }

  /// The JSON line (without newline) for scenario `name`.
  std::string to_json(std::string_view name) const;

  /// Extra field's raw JSON value, if set.
  std::optional<std::string> field(std::string_view key) const;

 private:
  std::vector<std::pair<std::string, std::string>> fields_; // key → JSON value text
};

/// State of one invocation, shared by the scenarios that run in it.
class context {
 public:
  explicit context(const options& opts) : opts_(opts) {}

  const options& opts() const noexcept { return opts_; }

  /// Starts a round (see --repeat): removes the previous round's directories,
  /// artifacts and results.
  void begin_round();

  /// A new, empty directory under the invocation's scratch root (removed at exit).
  std::filesystem::path fresh_dir(std::string_view name);

  /// Artifacts scenarios leave for later ones (e.g. the journal scenario's data dir,
  /// which `scan` reads).
  void put_artifact(const std::string& key, std::filesystem::path p) {
    artifacts_[key] = std::move(p);
  }
  std::optional<std::filesystem::path> artifact(const std::string& key) const;

  /// Results of the scenarios that already ran in this invocation.
  const result* result_of(const std::string& scenario) const;
  void record(const std::string& scenario, const result& r) { results_[scenario] = r; }

 private:
  const options& opts_;
  unsigned next_dir_ = 0;
  std::map<std::string, std::filesystem::path> artifacts_;
  std::map<std::string, result> results_;
};

struct scenario {
  std::string name;
  std::string description;
  int order = 100;        ///< run order; baselines < 100, what compares to them after
  std::string ratio_vs;   ///< when that scenario ran first: add "ratio_vs" and "ratio"
  bool in_default = true; ///< run when no scenario is named on the command line
  std::function<result(context&)> run;
};

/// All registered scenarios (static registration; order of registration unspecified).
std::vector<scenario>& registry();

/// Registers a scenario at static-initialisation time.
struct registrar {
  explicit registrar(scenario s) { registry().push_back(std::move(s)); }
};

/// A scenario failure.
struct failure : std::runtime_error {
  using std::runtime_error::runtime_error;
};
[[noreturn]] inline void fail(const std::string& what) { throw failure(what); }

/// A scenario that cannot run on this machine (an optional dependency, such as the
/// PostgreSQL server, is not installed): strata-bench prints `why` as a progress line
/// and a `{"scenario":…,"skipped":why}` line, and this is not a failure (exit 0).
struct skipped : std::runtime_error {
  using std::runtime_error::runtime_error;
};
[[noreturn]] inline void skip(const std::string& why) { throw skipped(why); }

/// A further ratio printed in `scenario`'s line besides its own `ratio_vs`: its
/// events/s over `baseline`'s in the same round, as the field "ratio_vs_<baseline>"
/// (median over rounds with --repeat). Reported only when both ran in the round;
/// `baseline` must have the lower `order`. Register one from any scenario file:
///
///   const strata::bench::comparison_registrar cmp{{"e2e", "postgres-e2e"}};
struct comparison {
  std::string scenario;
  std::string baseline;
};

/// All registered comparisons.
std::vector<comparison>& comparisons();

/// Registers a comparison at static-initialisation time.
struct comparison_registrar {
  explicit comparison_registrar(comparison c) { comparisons().push_back(std::move(c)); }
};

/// Wall-clock timing (steady clock).
class stopwatch {
 public:
  stopwatch() : start_(std::chrono::steady_clock::now()) {}
  double seconds() const {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  }
  void restart() { start_ = std::chrono::steady_clock::now(); }

 private:
  std::chrono::steady_clock::time_point start_;
};

/// Progress line on stderr ("[bench] …").
void progress(const std::string& line);

/// Fills `out` with `n` deterministic, incompressible bytes for record `i` (the same
/// bytes on both sides of a ratio).
void fill_payload(std::string& out, std::uint64_t i, std::size_t n);

/// LMDB map size used by both sides of a ratio: large enough that no map growth
/// happens during a timed run.
inline std::size_t map_size_for(const options& o) {
  std::size_t need = static_cast<std::size_t>(o.events) * (o.payload_bytes + 400);
  return need > (std::size_t{1} << 30) ? need : (std::size_t{1} << 30);
}

/// Size of `dir`/data.mdb (LMDB grows the file as pages are used), 0 if absent.
inline std::uint64_t data_file_bytes(const std::filesystem::path& dir) {
  std::error_code ec;
  auto n = std::filesystem::file_size(dir / "data.mdb", ec);
  return ec ? 0 : static_cast<std::uint64_t>(n);
}

/// u64 big-endian into 8 bytes.
inline void put_be64(unsigned char* out, std::uint64_t v) {
  for (int k = 7; k >= 0; --k) {
    out[k] = static_cast<unsigned char>(v);
    v >>= 8;
  }
}

} // namespace strata::bench
