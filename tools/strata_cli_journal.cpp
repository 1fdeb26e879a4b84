// `strata journal stats|dump|verify|demo` (docs/tools.md).
#include "strata_cli.hpp"

#include "strata/persistence/journal.hpp"
#include "strata/persistence/timestamp.hpp"

#include <cstdio>
#include <filesystem>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

namespace strata::cli {
namespace {

namespace sp = strata::persistence;
namespace fs = std::filesystem;

/// Exit code for a persistence error: a damaged journal is a finding (1), anything
/// else means the data could not be used (4).
int code_of(const sp::status& st) {
  return st.code() == sp::errc::corrupt || st.code() == sp::errc::internal ? exit_failed
                                                                           : exit_infra;
}

[[noreturn]] void fail(const sp::status& st, const std::string& doing) {
  throw command_error(code_of(st), doing + ": " + st.to_string());
}

/// Opens the journal in `dir` read-only (stats, dump, verify): works while a node
/// writes to it, writes nothing, and refuses a directory without a journal.
std::unique_ptr<sp::journal> open_read_only(const std::string& dir) {
  sp::journal_options o;
  o.env.path = dir;
  auto j = sp::journal::open_read_only(o);
  if (!j) {
    if (j.error().code() == sp::errc::not_found)
      throw command_error(exit_infra, "no journal in '" + dir +
                                        "' (no data.mdb there): check --data, or create one "
                                        "with `strata journal demo --data DIR`");
    fail(j.error(), "cannot open the journal in '" + dir + "'");
  }
  return std::move(*j);
}

/// Opens (creating) the journal in `dir` for writing (demo).
std::unique_ptr<sp::journal> open_writer(const std::string& dir) {
  sp::journal_options o;
  o.env.path = dir;
  o.env.lock_wait_ms = 5000;
  auto j = sp::journal::open(o);
  if (!j) fail(j.error(), "cannot open the journal in '" + dir + "'");
  return std::move(*j);
}

/// `s` with control characters, DEL and (unless `backslash` is false, for messages the
/// journal escaped already) the backslash written as \xNN, so that a field cannot
/// break its line: one output line is one record.
std::string escaped(std::string_view s, bool backslash = true) {
  std::string out;
  out.reserve(s.size());
  for (unsigned char c : s) {
    if (c < 0x20 || c == 0x7F || (backslash && c == '\\')) {
      char buf[5];
      std::snprintf(buf, sizeof buf, "\\x%02X", c);
      out += buf;
    } else {
      out.push_back(static_cast<char>(c));
    }
  }
  return out;
}

std::string human_bytes(std::uint64_t b) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(b);
  int u = 0;
  while (v >= 1024 && u < 4) {
    v /= 1024;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f %s", v, units[u]);
  return buf;
}

void print_event(const sp::event_record& e) {
  std::cout << e.position << '\t' << escaped(e.persistence_id) << '\t' << e.seq << '\t'
            << strata::format_iso8601(e.timestamp_ns) << '\t' << escaped(e.type) << '\t'
            << e.payload.size() << '\n';
}

constexpr std::size_t max_listed_problems = 1000;

const char* dump_header = "# position\tstream\tseq\ttime\ttype\tpayload_bytes\n";

// ---- commands ---------------------------------------------------------------------

int stats(const args& a) {
  std::string dir = a.require("data");
  auto j = open_read_only(dir);
  auto ids = j->list_streams();
  if (!ids) fail(ids.error(), "listing streams");
  std::uint64_t events = 0, payload = 0;
  auto st = j->read_global_raw(1, ~std::size_t{0}, [&](std::uint64_t, std::string_view bytes) {
    ++events;
    payload += bytes.size();
    return true;
  });
  if (!st.ok()) fail(st, "reading the log");
  std::error_code ec;
  auto file_bytes = fs::file_size(fs::path(dir) / "data.mdb", ec);
  std::cout << "data:            " << dir << "\n"
            << "streams:         " << ids->size() << "\n"
            << "events:          " << events << "\n"
            << "last position:   " << j->last_position() << "\n"
            << "envelopes:       " << payload << " bytes unpacked (" << human_bytes(payload)
            << ")\n"
            << "map size:        " << j->env().map_size_bytes() << " ("
            << human_bytes(j->env().map_size_bytes()) << ")\n";
  if (!ec)
    std::cout << "data.mdb:        " << file_bytes << " (" << human_bytes(file_bytes) << ")\n";
  if (auto cst = j->close(); !cst.ok()) fail(cst, "closing the journal");
  return exit_ok;
}

int dump(const args& a) {
  std::string dir = a.require("data");
  auto stream = a.get("stream");
  std::uint64_t limit = a.u64("limit", ~std::uint64_t{0});
  auto j = open_read_only(dir);
  std::cout << dump_header;
  std::uint64_t n = 0;
  auto visit = [&](const sp::event_record& e) {
    if (n >= limit) return false;
    print_event(e);
    ++n;
    return true;
  };
  sp::status st;
  if (stream) {
    if (stream->empty()) throw usage_error("--stream needs a stream id");
    std::uint64_t from_seq = a.u64("from", 1);
    st = j->read_stream(*stream, from_seq, sp::journal::max_seq, visit);
  } else {
    std::uint64_t from = a.u64("from", 1);
    st = j->read_global(from, static_cast<std::size_t>(limit), visit);
  }
  if (!st.ok())
    fail(st, "reading " + (stream ? "stream '" + escaped(*stream) + "'" : std::string("the log")));
  std::cout.flush();
  if (auto cst = j->close(); !cst.ok()) fail(cst, "closing the journal");
  return exit_ok;
}

int verify(const args& a) {
  std::string dir = a.require("data");
  auto j = open_read_only(dir);
  auto rep = j->verify_all(max_listed_problems);
  if (!rep) fail(rep.error(), "verify could not read '" + dir + "'");
  if (!rep->ok()) {
    for (auto& p : rep->problems)
      std::cout << "problem: " << escaped(p.to_string(), false) << "\n";
    if (rep->problem_count > rep->problems.size())
      std::cout << "problem: … and " << rep->problem_count - rep->problems.size()
                << " more not listed\n";
    std::cout.flush();
    throw command_error(exit_failed,
                        "verify failed for '" + dir + "': " + std::to_string(rep->problem_count) +
                          " problem(s) (listed on stdout); run `strata journal repair --data " +
                          dir + "` with no writer running to rebuild the derived tables");
  }
  std::cout << "ok: " << rep->streams << " streams, " << rep->records << " events, last position "
            << rep->last_position << "\n";
  return exit_ok;
}

void print_problems(const char* when, const sp::verify_report& r) {
  std::cout << when << ": " << r.problem_count << " problem(s)\n";
  for (auto& p : r.problems)
    std::cout << "  " << escaped(p.to_string(), false) << "\n";
}

int repair(const args& a) {
  std::string dir = a.require("data");
  if (!fs::exists(fs::path(dir) / "data.mdb"))
    throw command_error(exit_infra,
                        "no journal in '" + dir + "' (no data.mdb there): check --data");
  sp::journal_options o;
  o.env.path = dir;
  o.env.lock_wait_ms = static_cast<std::uint32_t>(a.u64("lock-wait-ms", 5000));
  auto r = sp::journal::repair(o);
  if (!r) fail(r.error(), "repair of '" + dir + "' failed");
  print_problems("before", r->before);
  std::cout << "rebuilt from " << r->records << " log records: " << r->streams << " streams, "
            << r->index_entries << " index entries\n";
  for (auto& s : r->snapshots_remapped)
    std::cout << "snapshot remapped: " << escaped(s, false) << "\n";
  for (auto& s : r->snapshots_dropped)
    std::cout << "snapshot dropped: " << escaped(s, false) << "\n";
  print_problems("after", r->after);
  if (!r->after.ok())
    throw command_error(exit_failed,
                        "the journal in '" + dir + "' still has problems after repair");
  std::cout << "ok: repaired\n";
  return exit_ok;
}

sp::event_data demo_event(std::string type, std::string payload) {
  sp::event_data e;
  e.type = std::move(type);
  e.payload = std::move(payload);
  return e;
}

int demo(const args& a) {
  std::string dir = a.require("data");
  std::cout << "== opening the journal in " << dir << "\n";
  auto j = open_writer(dir);

  // Each stream_write says which head its writer expects. Ask the journal, so the
  // demo also runs on a directory it used before.
  auto head = [&](const std::string& id) {
    auto h = j->highest_seq(id);
    if (!h) fail(h.error(), "reading the head of '" + id + "'");
    return *h;
  };
  auto write = [&](const std::string& id, std::vector<sp::event_data> events) {
    sp::stream_write w;
    w.persistence_id = id;
    w.expected_seq = head(id);
    w.events = std::move(events);
    return w;
  };
  auto append = [&](const std::vector<sp::stream_write>& batch, const char* what) {
    std::cout << "-- append (" << what << "): " << batch.size() << " streams in one transaction\n";
    auto res = j->append(batch);
    if (!res) fail(res.error(), "append");
    for (std::size_t i = 0; i < batch.size(); ++i) {
      auto& r = (*res)[i];
      std::cout << "   " << batch[i].persistence_id << " (expected seq " << batch[i].expected_seq
                << "): ";
      if (r.st.ok())
        std::cout << "seq " << r.first_seq << ".." << r.last_seq << " at positions "
                  << r.first_position << ".." << r.last_position << "\n";
      else
        std::cout << r.st.to_string() << "\n";
    }
  };

  append({write("account-1",
                {demo_event("opened", "owner=alice"), demo_event("deposited", "amount=100")}),
          write("account-2", {demo_event("opened", "owner=bob")})},
         "two new streams");
  append({write("account-1", {demo_event("withdrew", "amount=30")}),
          write("account-2", {demo_event("deposited", "amount=50")}),
          write("account-3", {demo_event("opened", "owner=carol")})},
         "three streams");
  // A stale writer: account-2's head moved on. Only that stream is refused.
  auto stale = write("account-2", {demo_event("deposited", "amount=999")});
  stale.expected_seq = stale.expected_seq > 0 ? stale.expected_seq - 1 : 1;
  append({stale, write("account-3", {demo_event("deposited", "amount=7")})},
         "one stale expected seq");

  std::cout << "== closing and reopening\n";
  if (auto st = j->close(); !st.ok()) fail(st, "closing the journal");
  j.reset();
  j = open_writer(dir);

  auto ids = j->list_streams();
  if (!ids) fail(ids.error(), "listing streams");
  for (auto& id : *ids) {
    std::cout << "-- stream " << id << " (head " << head(id) << ")\n";
    auto st = j->read_stream(id, 1, sp::journal::max_seq, [](const sp::event_record& e) {
      std::cout << "   seq " << e.seq << "  position " << e.position << "  " << e.type << "  "
                << e.payload << "\n";
      return true;
    });
    if (!st.ok()) fail(st, "reading stream '" + id + "'");
  }
  std::cout << "-- global log\n" << dump_header;
  if (auto st = j->read_global(1, ~std::size_t{0},
                               [](const sp::event_record& e) {
                                 print_event(e);
                                 return true;
                               });
      !st.ok())
    fail(st, "reading the log");
  auto st = j->verify();
  if (!st.ok()) fail(st, "verify failed");
  std::cout << "== verify: ok (" << ids->size() << " streams, last position " << j->last_position()
            << ")\n";
  if (auto cst = j->close(); !cst.ok()) fail(cst, "closing the journal");
  return exit_ok;
}

} // namespace

const char* journal_usage() {
  return "usage: strata journal <subcommand> --data DIR [options]\n"
         "\n"
         "  stats   --data DIR      streams, events, last position, envelope bytes, map size,\n"
         "          data file size\n"
         "  dump    --data DIR [--stream ID] [--from N] [--limit N]\n"
         "          one tab-separated line per event: position, stream, seq, time (UTC,\n"
         "          ISO 8601), type, payload bytes. Without --stream: the global log from\n"
         "          position N; with --stream: that stream from seq N. --limit: at most N.\n"
         "  verify  --data DIR      checks every record (checksum, decoding) and the derived\n"
         "          tables (streams, index, meta, snapshots) against the log; prints each\n"
         "          problem (table, key, what) and exits 1 when there is any\n"
         "  repair  --data DIR [--lock-wait-ms N]\n"
         "          rebuilds the derived tables from the log, then verifies (needs the\n"
         "          writer lock: stop the node first)\n"
         "  demo    --data DIR      appends a few events to three streams (one stale write\n"
         "          shows a conflict), closes, reopens, prints them back, verifies\n"
         "\n"
         "DIR is a node's data directory. stats, dump and verify open it read-only and may run\n"
         "while the node writes; demo and repair open it for writing.\n"
         "Exit codes: 0 ok, 1 problem found, 2 usage error, 4 infrastructure error.\n";
}

int journal_main(int argc, char** argv, int first) {
  if (first >= argc) throw usage_error("missing journal subcommand");
  std::string_view sub = argv[first];
  if (sub == "--help" || sub == "-h" || sub == "help") {
    std::cout << journal_usage();
    return exit_ok;
  }
  auto parse = [&](std::initializer_list<std::string_view> with_value) {
    auto a = args::parse(argc, argv, first + 1, with_value);
    if (!a.positional().empty())
      throw usage_error("unexpected argument '" + a.positional().front() + "'");
    return a;
  };
  args a;
  if (sub == "stats" || sub == "verify" || sub == "demo")
    a = parse({"data"});
  else if (sub == "repair")
    a = parse({"data", "lock-wait-ms"});
  else if (sub == "dump")
    a = parse({"data", "stream", "from", "limit"});
  else
    throw usage_error("unknown journal subcommand '" + std::string(sub) + "'");
  if (a.flag("help")) {
    std::cout << journal_usage();
    return exit_ok;
  }
  if (sub == "stats") return stats(a);
  if (sub == "dump") return dump(a);
  if (sub == "verify") return verify(a);
  if (sub == "repair") return repair(a);
  return demo(a);
}

} // namespace strata::cli
