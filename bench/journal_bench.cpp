// Scenarios `journal` and `scan`: strata's journal with the records, batch size and
// sync setting of `baseline-lmdb`, spread over many interleaved streams as a group
// commit would form its batches.
#include "scenario.hpp"

#include "strata/persistence/journal.hpp"

#include <algorithm>
#include <condition_variable>
#include <mutex>
#include <random>
#include <string>
#include <vector>

namespace strata::bench {
namespace {

namespace sp = strata::persistence;

std::string stream_name(std::uint64_t k) { return "stream-" + std::to_string(k); }

sp::journal_options journal_opts(const std::filesystem::path& dir, const options& o) {
  sp::journal_options jo;
  jo.env.path = dir.string();
  jo.env.sync = o.nosync ? sp::sync_mode::nosync : sp::sync_mode::sync;
  jo.env.map_size_bytes = map_size_for(o); // same as the baseline: no growth while timed
  jo.env.map_size_max_bytes = std::max(jo.env.map_size_max_bytes, jo.env.map_size_bytes);
  return jo;
}

std::unique_ptr<sp::journal> open_journal(const std::filesystem::path& dir, const options& o) {
  auto j = sp::journal::open(journal_opts(dir, o));
  if (!j) fail("journal::open " + dir.string() + ": " + j.error().to_string());
  return std::move(*j);
}

/// "" when every write of an append's result is ok, else what went wrong.
std::string check_results(const sp::result<std::vector<sp::write_result>>& res, std::size_t n) {
  if (!res) return "journal::append: " + res.error().to_string();
  if (res->size() != n)
    return "journal::append returned " + std::to_string(res->size()) + " results for " +
           std::to_string(n) + " writes";
  for (const auto& wr : *res)
    if (!wr.st.ok()) return "journal::append: " + wr.st.to_string();
  return {};
}

/// Appends `o.events` events of `o.payload_bytes` to `o.streams` streams in batches
/// of `o.batch_events`. Each event picks its stream at random (fixed seed, so every
/// run writes the same data); a batch holds one stream_write per distinct stream, with
/// the expected_seq the writer tracks. Then closes the journal. Timed from the first
/// batch to after close (which flushes the index and syncs).
/// `pipelined`: through append_async, each batch queued while the previous one
/// commits (the journal's own pipeline depth); all results are checked before close.
result write_journal(const std::filesystem::path& dir, const options& o, bool pipelined = false) {
  auto j = open_journal(dir, o);
  std::mt19937_64 rng(42);
  std::uniform_int_distribution<std::uint64_t> pick(0, o.streams - 1);
  std::vector<std::uint64_t> heads(o.streams, 0);
  // stream → its write's index in the current batch (npos: not in it). The batch's
  // objects are reused from batch to batch (strings keep their capacity), as a writer
  // that cares about allocations would do; `build_s` reports this client-side cost.
  constexpr std::size_t npos = ~std::size_t{0};
  std::vector<std::size_t> slot(o.streams, npos);
  std::vector<std::uint64_t> stream_of; // per write in the batch
  std::vector<std::size_t> used_events; // per write in the batch
  std::vector<sp::stream_write> batch;
  std::uint64_t writes = 0;

  std::mutex mx; // pipelined: completions arrive on the journal's commit thread
  std::condition_variable cv;
  std::uint64_t queued = 0, done = 0;
  std::string first_error;

  double in_append_s = 0; // time inside journal::append (the rest: building batches)
  stopwatch sw;
  std::uint64_t i = 0;
  while (i < o.events) {
    std::size_t used = 0;
    stream_of.clear();
    used_events.clear();
    std::uint64_t end = std::min(o.events, i + o.batch_events);
    for (; i < end; ++i) {
      std::uint64_t s = pick(rng);
      std::size_t k = slot[s];
      if (k == npos) {
        k = slot[s] = used++;
        if (k == batch.size()) batch.emplace_back();
        auto& w = batch[k];
        w.persistence_id = stream_name(s);
        w.expected_seq = heads[s];
        stream_of.push_back(s);
        used_events.push_back(0);
      }
      auto& w = batch[k];
      if (used_events[k] == w.events.size()) w.events.emplace_back();
      auto& e = w.events[used_events[k]++];
      e.type = "bench";
      fill_payload(e.payload, i, o.payload_bytes);
    }
    batch.resize(used);
    for (std::size_t k = 0; k < used; ++k)
      batch[k].events.resize(used_events[k]);
    stopwatch append_sw;
    if (pipelined) {
      {
        std::lock_guard lk(mx);
        if (!first_error.empty()) break; // an earlier batch failed: stop queueing, report it below
        ++queued;
      }
      j->append_async(batch, {},
                      [&, n = batch.size()](sp::result<std::vector<sp::write_result>> res) {
                        std::string err = check_results(res, n);
                        std::lock_guard lk(mx);
                        if (!err.empty() && first_error.empty()) first_error = err;
                        ++done;
                        cv.notify_all();
                      });
    } else {
      auto res = j->append(batch);
      if (auto err = check_results(res, batch.size()); !err.empty()) fail(err);
    }
    in_append_s += append_sw.seconds();
    for (std::size_t k = 0; k < used; ++k) {
      heads[stream_of[k]] += batch[k].events.size();
      slot[stream_of[k]] = npos;
    }
    writes += used;
  }
  if (pipelined) {
    std::unique_lock lk(mx);
    cv.wait(lk, [&] {
      return done == queued;
    });
    if (!first_error.empty()) fail(first_error);
  }
  double loop_s = sw.seconds();
  stopwatch close_sw;
  if (auto st = j->close(); !st.ok()) fail("journal::close: " + st.to_string());
  j.reset();
  double close_s = close_sw.seconds();

  result r;
  r.seconds = sw.seconds();
  r.events = o.events;
  r.add("streams", o.streams)
    .add("batch", o.batch_events)
    .add("payload_bytes", static_cast<std::uint64_t>(o.payload_bytes))
    .add("writes_per_batch",
         static_cast<double>(writes) / double((o.events + o.batch_events - 1) / o.batch_events))
    .add("sync", o.nosync ? "nosync" : "fsync")
    .add("append_s", in_append_s)
    .add("build_s", loop_s - in_append_s)
    .add("close_s", close_s)
    .add("db_bytes", data_file_bytes(dir))
    // data.mdb (log, index, streams, meta) per event, and what it adds to the payload.
    .add("at_rest_bytes_per_event", static_cast<double>(data_file_bytes(dir)) / double(o.events))
    .add("at_rest_overhead_bytes_per_event",
         static_cast<double>(data_file_bytes(dir)) / double(o.events) - double(o.payload_bytes));
  return r;
}

result run_journal_sync(context& ctx) {
  auto dir = ctx.fresh_dir("journal-sync");
  return write_journal(dir, ctx.opts(), false);
}

result run_journal(context& ctx) {
  auto dir = ctx.fresh_dir("journal");
  result r = write_journal(dir, ctx.opts(), true);
  r.add("pipelined", true);
  ctx.put_artifact("journal", dir);
  return r;
}

/// The journal scenario's data directory, written (untimed) when it did not run.
std::filesystem::path journal_data(context& ctx) {
  if (auto dir = ctx.artifact("journal")) return *dir;
  progress("writing the journal data first (not timed)");
  auto dir = ctx.fresh_dir("journal");
  write_journal(dir, ctx.opts());
  ctx.put_artifact("journal", dir);
  return dir;
}

result run_scan_global(context& ctx) {
  const options& o = ctx.opts();
  auto j = open_journal(journal_data(ctx), o);
  stopwatch sw;
  std::uint64_t n = 0, sum = 0, expect = 1;
  std::string problem;
  auto st = j->read_global(1, ~std::size_t{0}, [&](const sp::event_record& e) {
    if (e.position != expect) {
      problem = "position " + std::to_string(e.position) + ", expected " + std::to_string(expect);
      return false;
    }
    ++expect;
    for (unsigned char c : e.payload)
      sum += c;
    ++n;
    return true;
  });
  double secs = sw.seconds();
  if (!st.ok()) fail("journal::read_global: " + st.to_string());
  if (!problem.empty()) fail(problem);
  if (n != o.events)
    fail("read " + std::to_string(n) + " events, expected " + std::to_string(o.events));
  result r;
  r.events = n;
  r.seconds = secs;
  r.add("checksum", sum % 1000003);
  return r;
}

/// Reads every stream of the journal scenario's data back through `read` (called as
/// read(journal, id, visitor-of-(seq, payload))), checking per-stream order.
template <class Read>
result scan_streams(context& ctx, Read read) {
  const options& o = ctx.opts();
  auto dir = journal_data(ctx);
  stopwatch open_sw;
  auto j = open_journal(dir, o);
  double open_s = open_sw.seconds();

  stopwatch sw;
  auto ids = j->list_streams();
  if (!ids) fail("journal::list_streams: " + ids.error().to_string());
  std::uint64_t n = 0, sum = 0;
  for (const auto& id : *ids) {
    std::uint64_t expect = 1;
    std::string problem;
    auto st = read(*j, id, [&](std::uint64_t seq, std::string_view payload) {
      if (seq != expect) {
        problem = id + ": seq " + std::to_string(seq) + ", expected " + std::to_string(expect);
        return false;
      }
      ++expect;
      for (unsigned char c : payload) // touch every byte, as baseline-scan does
        sum += c;
      ++n;
      return true;
    });
    if (!st.ok()) fail("reading stream " + id + ": " + st.to_string());
    if (!problem.empty()) fail(problem);
  }
  double secs = sw.seconds();
  if (n != o.events)
    fail("read " + std::to_string(n) + " events, expected " + std::to_string(o.events));
  result r;
  r.events = n;
  r.seconds = secs;
  r.add("streams", static_cast<std::uint64_t>(ids->size()))
    .add("open_s", open_s)
    .add("checksum", sum % 1000003);
  return r;
}

result run_scan(context& ctx) {
  return scan_streams(ctx, [](const sp::journal& j, const std::string& id, auto&& visit) {
    return j.read_stream(id, 1, sp::journal::max_seq, [&](const sp::event_record& e) {
      return visit(e.seq, std::string_view(e.payload));
    });
  });
}

result run_scan_view(context& ctx) {
  return scan_streams(ctx, [](const sp::journal& j, const std::string& id, auto&& visit) {
    return j.read_stream_view(id, 1, sp::journal::max_seq, [&](const sp::event_view& e) {
      return visit(e.seq, e.payload);
    });
  });
}

const registrar reg_journal{{"journal",
                             "strata journal: N 100-byte events over 10k interleaved streams, "
                             "batches of 1000 (one txn, one fsync each) through append_async "
                             "as the runtime's group-commit writer uses it (the next batch is "
                             "encoded while the previous one commits), incl. close",
                             20, "baseline-lmdb", true, run_journal}};
const registrar reg_journal_sync{{"journal-sync",
                                  "as journal, through the synchronous journal::append (each "
                                  "batch encoded, then committed, then the next)",
                                  21, "baseline-lmdb", true, run_journal_sync}};
const registrar reg_scan{{"scan",
                          "journal::read_stream of every stream (envelopes decoded and "
                          "checksummed) over the journal scenario's data",
                          40, "baseline-scan", true, run_scan}};
const registrar reg_scan_view{{"scan-view",
                               "as scan, through the copy-free journal::read_stream_view "
                               "(the recovery path)",
                               41, "baseline-scan", true, run_scan_view}};
const registrar reg_scan_global{{"scan-global",
                                 "journal::read_global of the whole log in position order "
                                 "(decoded, checksummed) over the journal scenario's data",
                                 42, "baseline-scan", true, run_scan_global}};

} // namespace
} // namespace strata::bench
