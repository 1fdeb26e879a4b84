// The child process of crash_test: appends random batches to a journal in a loop and,
// after each committed batch, prints one line (crash_protocol.hpp) to stdout. The
// parent kills it with SIGKILL at a random moment and checks that every printed batch
// survived.
//
//   persistence_crash_child <dir> <seed> <index_flush_events> <sync|nosync>
#include "crash_protocol.hpp"

#include "strata/persistence/journal.hpp"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <map>
#include <random>
#include <string>
#include <vector>

using namespace strata::persistence;

namespace {

/// Writes the whole line with write(2): a line is one small write, so the parent never
/// sees a torn line from a killed child except possibly at the very end.
void emit(const std::string& line) {
  std::size_t done = 0;
  while (done < line.size()) {
    auto n = ::write(STDOUT_FILENO, line.data() + done, line.size() - done);
    if (n <= 0) std::_Exit(4); // the parent went away
    done += static_cast<std::size_t>(n);
  }
}

[[noreturn]] void fail(const std::string& what) {
  emit("E " + what + "\n");
  std::_Exit(3);
}

} // namespace

int main(int argc, char** argv) {
  if (argc != 5) {
    std::fprintf(stderr, "usage: %s <dir> <seed> <index_flush_events> <sync|nosync>\n", argv[0]);
    return 2;
  }
  journal_options o;
  o.env.path = argv[1];
  std::mt19937_64 rng(std::strtoull(argv[2], nullptr, 10));
  o.index_flush_events = std::strtoull(argv[3], nullptr, 10);
  auto mode = parse_sync_mode(argv[4]);
  if (!mode) fail(std::string("bad sync mode ") + argv[4]);
  o.env.sync = *mode;
  o.env.map_size_bytes = 256u << 10; // grow while being killed, too
  o.writer_node = "crash-child";

  auto j = journal::open(o);
  if (!j) fail("open: " + j.error().to_string());
  std::map<std::string, std::uint64_t> heads;
  for (int i = 0; i < crash::stream_count; ++i) {
    auto pid = crash::stream_name(i);
    auto h = (*j)->highest_seq(pid);
    if (!h) fail("highest_seq: " + h.error().to_string());
    heads[pid] = *h;
  }

  std::uniform_int_distribution<int> stream(0, crash::stream_count - 1), writes(1, 8), events(1, 4);
  for (;;) {
    std::vector<stream_write> batch;
    std::map<std::string, std::uint64_t> batch_heads;
    for (int w = writes(rng); w > 0; --w) {
      stream_write sw;
      sw.persistence_id = crash::stream_name(stream(rng));
      auto& h = heads[sw.persistence_id];
      sw.expected_seq = h;
      for (int e = events(rng); e > 0; --e) {
        event_data ev;
        ev.type = "crash.event";
        ev.payload = crash::payload_for(sw.persistence_id, ++h);
        sw.events.push_back(std::move(ev));
      }
      batch_heads[sw.persistence_id] = h;
      batch.push_back(std::move(sw));
    }
    auto r = (*j)->append(batch);
    if (!r) fail("append: " + r.error().to_string());
    std::uint64_t last_position = 0;
    for (auto& res : *r) {
      if (!res.st.ok()) fail("append write: " + res.st.to_string());
      last_position = std::max(last_position, res.last_position);
    }
    std::string line = "B " + std::to_string(last_position);
    for (auto& [pid, h] : batch_heads)
      line += " " + pid + "=" + std::to_string(h);
    emit(line + "\n");
  }
}
