// strata-bank report: the report projection fed from the journal or from Kafka.
#include "bank/report_cli.hpp"

#include <strata/kafka/bridge.hpp>
#include <strata/kafka/consumer.hpp>
#include <strata/persistence/journal.hpp>
#include <strata/persistence/projection.hpp>
#include <strata/runtime/ids.hpp>
#include <strata/runtime/system.hpp>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <sstream>
#include <unistd.h>

namespace bank {

namespace sp = strata::persistence;
namespace sk = strata::kafka;

namespace {

using clock_type = std::chrono::steady_clock;

std::uint32_t ms_left(clock_type::time_point deadline) {
  auto now = clock_type::now();
  if (now >= deadline) return 0;
  return static_cast<std::uint32_t>(
    std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now).count());
}

/// A fresh directory under $TMPDIR (or /tmp), removed with everything in it.
class scratch_dir {
 public:
  static sp::result<scratch_dir> make() {
    std::error_code ec;
    auto base = std::filesystem::temp_directory_path(ec);
    if (ec) base = "/tmp";
    std::string tmpl = (base / "strata-bank-report-XXXXXX").string();
    if (::mkdtemp(tmpl.data()) == nullptr)
      return sp::status{sp::errc::io_error, "cannot create a temporary directory " + tmpl};
    return scratch_dir{tmpl};
  }
  scratch_dir(scratch_dir&& o) noexcept : path_(std::move(o.path_)) { o.path_.clear(); }
  scratch_dir& operator=(scratch_dir&&) = delete;
  ~scratch_dir() {
    if (!path_.empty()) {
      std::error_code ec;
      std::filesystem::remove_all(path_, ec);
    }
  }
  const std::string& path() const noexcept { return path_; }

 private:
  explicit scratch_dir(std::string p) : path_(std::move(p)) {}
  std::string path_;
};

/// Account streams of the journal whose head the report has not reached yet (the first
/// few named in `behind`). Errors: io_error, corrupt.
sp::result<std::size_t> accounts_behind(const sp::journal& j, const report& r,
                                        std::string& behind) {
  auto streams = j.list_streams();
  if (!streams) return streams.error();
  std::size_t n = 0;
  for (const auto& pid : *streams) {
    if (pid.compare(0, account_stream_prefix.size(), account_stream_prefix) != 0) continue;
    auto head = j.highest_seq(pid);
    if (!head) return head.error();
    auto it = r.accounts.find(pid.substr(account_stream_prefix.size()));
    std::uint64_t have = it == r.accounts.end() ? 0 : it->second.last_seq;
    if (have < *head) {
      if (++n <= 3)
        behind += " " + pid + " (" + std::to_string(have) + "/" + std::to_string(*head) + ")";
    }
  }
  return n;
}

} // namespace

std::string format_report(const report& r) {
  std::ostringstream out;
  for (const auto& [id, t] : r.accounts) // std::map: sorted bytewise by id
    out << strata::escape_text(id, true) << " deposits=" << t.deposited_cents
        << " withdrawals=" << t.withdrawn_cents << "\n";
  out << "total deposits=" << r.total.deposited_cents << " withdrawals=" << r.total.withdrawn_cents
      << "\n";
  return out.str();
}

sp::result<report> report_from_journal(const sp::journal& j, std::uint32_t timeout_ms) {
  const auto deadline = clock_type::now() + std::chrono::milliseconds(timeout_ms);
  const std::uint64_t last = j.last_position(); // what the journal held when we started
  constexpr std::size_t chunk = 4096;
  report out;
  std::uint64_t next = 1;
  sp::status problem;
  while (next <= last) {
    std::size_t seen = 0;
    auto st = j.read_global(next, chunk, [&](const sp::event_record& e) {
      ++seen;
      next = e.position + 1;
      if (e.position > last) return false;
      std::string_view pid = e.persistence_id;
      if (pid.substr(0, account_stream_prefix.size()) != account_stream_prefix) return true;
      auto& acc = out.accounts[std::string{pid.substr(account_stream_prefix.size())}];
      account_totals before = acc;
      problem = fold_event(acc, e);
      if (!problem.ok()) return false;
      out.total.deposited_cents += acc.deposited_cents - before.deposited_cents;
      out.total.withdrawn_cents += acc.withdrawn_cents - before.withdrawn_cents;
      out.total.deposits += acc.deposits - before.deposits;
      out.total.withdrawals += acc.withdrawals - before.withdrawals;
      return true;
    });
    if (!st.ok()) return st;
    if (!problem.ok()) return problem;
    if (seen == 0) break; // the rest was deleted
    if (next <= last && ms_left(deadline) == 0)
      return sp::status{sp::errc::unavailable,
                        "report: read the journal up to position " + std::to_string(next - 1) +
                          " of " + std::to_string(last) + " within " + std::to_string(timeout_ms) +
                          " ms; give more --timeout-ms"};
  }
  return out;
}

sp::result<report> report_from_kafka(strata::system& sys, std::uint32_t timeout_ms,
                                     std::ostream& log) {
  auto* bridge = sys.kafka_bridge();
  if (bridge == nullptr)
    return sp::status{sp::errc::invalid_argument,
                      "report --source kafka needs Kafka: --kafka BOOTSTRAP or --kafka mock"};
  const auto deadline = clock_type::now() + std::chrono::milliseconds(timeout_ms);
  auto& j = sys.journal();

  // 1. Everything the journal holds is in Kafka (with --kafka mock the bridge publishes
  //    the whole journal into the fresh in-process cluster first).
  const std::uint64_t last = j.last_position();
  log << "report: waiting until Kafka (" << sys.kafka_bootstrap()
      << ") acknowledged journal position " << last << "\n";
  if (!bridge->wait_acknowledged(last, ms_left(deadline))) {
    auto s = bridge->stats();
    return sp::status{sp::errc::unavailable,
                      "Kafka acknowledged only up to journal position " +
                        std::to_string(s.acknowledged_position) + " of " + std::to_string(last) +
                        " within " + std::to_string(timeout_ms) + " ms" +
                        (s.last_error.empty() ? std::string{} : "; last error: " + s.last_error)};
  }

  // 2. A report built from scratch from the topic, in a scratch environment: it does not
  //    depend on what an earlier run consumed (a mock cluster is new in every process).
  auto dir = scratch_dir::make();
  if (!dir) return dir.error();
  sp::journal_options jo;
  jo.env.path = dir->path();
  jo.env.sync = sp::sync_mode::nosync;
  auto view_env = sp::journal::open(jo);
  if (!view_env) return view_env.error();
  sp::result<report> out = sp::status{sp::errc::internal, "not built"};
  {
    auto rp = report_projection::open(**view_env);
    if (!rp) return rp.error();
    sk::consumer_options co;
    co.bootstrap_servers = sys.kafka_bootstrap();
    co.topics = {account_topic};
    co.start = sp::start_from::beginning;
    co.metadata_timeout_ms = std::max<std::uint32_t>(1, ms_left(deadline));
    auto consumer = sk::projection_consumer::open(**view_env, (*rp)->projection(), co);
    if (!consumer) return consumer.error();
    // 3. Consume until every account stream of the journal is applied up to its head.
    for (;;) {
      auto st = (*consumer)->catch_up(std::max<std::uint32_t>(1, ms_left(deadline)));
      if (!st.ok() && st.code() != sp::errc::unavailable) return st;
      auto rep = (*rp)->read();
      if (!rep) return rep.error();
      std::string behind;
      auto n = accounts_behind(j, *rep, behind);
      if (!n) return n.error();
      if (*n == 0) {
        auto ps = (*consumer)->stats();
        log << "report: consumed " << (*consumer)->records_read() << " records of " << account_topic
            << " (" << ps.applied << " applied, " << ps.duplicates << " duplicates dropped)\n";
        out = std::move(*rep);
        break;
      }
      if (ms_left(deadline) == 0)
        return sp::status{sp::errc::unavailable,
                          std::to_string(*n) + " account(s) not caught up from " + account_topic +
                            " within " + std::to_string(timeout_ms) + " ms:" + behind +
                            (st.ok() ? std::string{} : "; " + st.to_string())};
      // Behind although the watermarks were reached: wait for more records a little.
      auto more = (*consumer)->poll(std::min<std::uint32_t>(200, ms_left(deadline)));
      if (!more) return more.error();
    }
  }
  if (auto st = (*view_env)->close(); !st.ok()) return st;
  return out;
}

} // namespace bank
