// Damaged and full data directories (persistence/src/environment.cpp, data_dir.cpp,
// lmdb_util.hpp): a truncated data.mdb, an LMDB node whose value size was flipped to
// about 1 GiB, damaged meta pages, a table-directory node offset flipped into free space,
// and a disk that fills up under the journal. Each
// damaged open or read runs in a child process, so a signal (SIGBUS, SIGSEGV) fails the
// test instead of killing it: the child must end with errc::corrupt.
#include "strata/persistence/environment.hpp"
#include "strata/persistence/journal.hpp"

#include "test_util.hpp"

#include <sys/mount.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <string>

using namespace strata::persistence;
using namespace strata::persistence::test;

namespace {

constexpr int code_of(errc c) { return static_cast<int>(c); }

env_options env_opts(const std::string& path) {
  env_options o;
  o.path = path;
  o.sync = sync_mode::nosync;
  o.map_size_bytes = 1u << 20;
  return o;
}

/// Runs `fn` in a child; the status it returns is written to DIR/status.txt and its code
/// becomes the exit code. Returns {exit code (128+signal when killed), message}.
std::pair<int, std::string> child_status(const temp_dir& dir, const std::function<status()>& fn) {
  const auto out = dir.sub("status.txt");
  int code = run_in_child([&] {
    auto st = fn();
    write_file(out, st.to_string());
    return code_of(st.code());
  });
  std::string msg = code < 128 && std::filesystem::exists(out) ? read_file(out) : "";
  return {code, msg};
}

/// Opens the environment of DIR/j in a child, as a writer and read-only: both must fail
/// `corrupt` with a message containing the path `data` and each of `expect`.
void check_open_corrupt(const temp_dir& dir, const std::string& data,
                        const std::vector<std::string>& expect) {
  for (bool ro : {false, true}) {
    auto [code, msg] = child_status(dir, [&]() -> status {
      auto o = journal_opts(dir.sub("j"));
      o.env.read_only = ro;
      auto e = environment::open(o.env);
      return e ? status{} : e.error();
    });
    INFO("read_only " << ro << ": exit " << code << ", " << msg);
    CHECK(code == code_of(errc::corrupt));
    for (const auto& e : expect)
      CHECK(msg.find(e) != std::string::npos);
    CHECK(msg.find(data) != std::string::npos);
  }
}

/// Offsets of every occurrence of `needle` in `hay`.
std::vector<std::size_t> find_all(const std::string& hay, const std::string& needle) {
  std::vector<std::size_t> at;
  for (auto p = hay.find(needle); p != std::string::npos; p = hay.find(needle, p + 1))
    at.push_back(p);
  return at;
}

/// Sets bit 14 of the high half (mn_hi) of the data size of every LMDB leaf node whose
/// key is `key` and whose value has `value_size` bytes: the size becomes 1 GiB + size.
/// Node layout (lmdb 0.9): u16 lo, u16 hi, u16 flags, u16 ksize, key, data.
int inflate_value_size(const std::string& data_mdb, const std::string& key,
                       std::size_t value_size) {
  auto bytes = read_file(data_mdb);
  int changed = 0;
  for (auto p : find_all(bytes, key)) {
    if (p < 8) continue;
    auto u16 = [&](std::size_t at) {
      return static_cast<unsigned>(static_cast<unsigned char>(bytes[at])) |
             static_cast<unsigned>(static_cast<unsigned char>(bytes[at + 1])) << 8;
    };
    const auto h = p - 8;
    // flags 0: value in the node; 1 (F_BIGDATA): value on overflow pages.
    if (u16(h) != value_size || u16(h + 2) != 0 || u16(h + 4) > 1 || u16(h + 6) != key.size())
      continue;
    bytes[h + 3] = static_cast<char>(0x40); // mn_hi = 0x4000: size += 2^30
    ++changed;
  }
  write_file(data_mdb, bytes);
  return changed;
}

std::string be64(std::uint64_t v) {
  std::string s(8, '\0');
  for (int i = 7; i >= 0; --i, v >>= 8)
    s[static_cast<std::size_t>(i)] = static_cast<char>(v & 0xFF);
  return s;
}

/// A closed journal of 3 streams × 20 small events (positions 1..60).
void make_journal(const std::string& path) {
  auto j = open_journal(journal_opts(path));
  for (std::uint64_t round = 0; round < 20; ++round)
    append_ok(*j, {make_write("acct-a", round, {"a" + std::to_string(round)}),
                   make_write("acct-b", round, {"b" + std::to_string(round)}),
                   make_write("acct-c", round, {"c" + std::to_string(round)})});
}

/// The size in bytes of the value stored under `key` in table `name`.
std::size_t value_size(const std::string& path, const std::string& name, const std::string& key) {
  auto o = env_opts(path);
  o.read_only = true;
  auto env = environment::open(o);
  STRATA_REQUIRE_VALUE(env);
  auto t = (*env)->open_table(name);
  STRATA_REQUIRE_VALUE(t);
  auto v = read_value(**env, *t, key);
  REQUIRE(v.has_value());
  return v->size();
}

} // namespace

TEST_CASE("damage: a truncated data.mdb is corrupt at open, in both modes, never SIGBUS") {
  temp_dir dir;
  make_journal(dir.sub("j"));
  const auto data = dir.sub("j/data.mdb");
  const auto size = std::filesystem::file_size(data);
  REQUIRE(size > 8192 * 3);
  std::filesystem::resize_file(data, size - 8192); // truncate -s -8192 data.mdb

  for (bool ro : {false, true}) {
    auto [code, msg] = child_status(dir, [&]() -> status {
      auto o = env_opts(dir.sub("j"));
      o.read_only = ro;
      auto e = environment::open(o);
      return e ? status{} : e.error();
    });
    INFO("read_only " << ro << ": exit " << code << ", " << msg);
    CHECK(code == code_of(errc::corrupt));
    CHECK(msg.find("data.mdb is truncated") != std::string::npos);
    CHECK(msg.find(data) != std::string::npos);
  }
  auto [code, msg] = child_status(dir, [&]() -> status {
    auto j = journal::open(journal_opts(dir.sub("j")));
    if (!j) return j.error();
    return (*j)->verify();
  });
  INFO("journal: exit " << code << ", " << msg);
  CHECK(code == code_of(errc::corrupt));
  CHECK(std::filesystem::file_size(data) == size - 8192); // left as it was
}

TEST_CASE("damage: a value size flipped to 1 GiB is corrupt naming table and key") {
  temp_dir dir;
  const std::string key = "needle-key-0001";
  std::string value;
  SUBCASE("a value inside its leaf page") { value.assign(100, 'v'); }
  SUBCASE("a value on overflow pages") { value.assign(9000, 'w'); }
  {
    auto env = environment::open(env_opts(dir.path()));
    STRATA_REQUIRE_VALUE(env);
    auto t = (*env)->open_table("kv");
    STRATA_REQUIRE_VALUE(t);
    STRATA_REQUIRE_OK((*env)->write([&](write_txn& txn) -> status {
      if (auto s = txn.put(*t, "before", "b"); !s.ok()) return s;
      if (auto s = txn.put(*t, key, value); !s.ok()) return s;
      return txn.put(*t, "zafter", "z");
    }));
  }
  REQUIRE(inflate_value_size(dir.sub("data.mdb"), key, value.size()) >= 1);

  for (bool ro : {false, true}) {
    auto read_one = [&](bool scan) {
      return child_status(dir, [&]() -> status {
        auto o = env_opts(dir.path());
        o.read_only = ro;
        auto env = environment::open(o);
        if (!env) return env.error();
        auto t = (*env)->open_table("kv");
        if (!t) return t.error();
        return (*env)->read([&](read_txn& txn) -> status {
          if (scan) {
            std::uint64_t sum = 0;
            return txn.scan(*t, "", [&](std::string_view, std::string_view v) {
              for (char c : v) // touch every byte, as a checksum would
                sum += static_cast<unsigned char>(c);
              return sum != 1; // never stops early
            });
          }
          auto v = txn.get(*t, key);
          if (!v) return v.error();
          std::uint64_t sum = 0;
          for (char c : **v)
            sum += static_cast<unsigned char>(c);
          return sum == 0 ? status{errc::internal, "empty"} : status{};
        });
      });
    };
    for (bool scan : {false, true}) {
      auto [code, msg] = read_one(scan);
      INFO("read_only " << ro << ", scan " << scan << ": exit " << code << ", " << msg);
      CHECK(code == code_of(errc::corrupt));
      CHECK(msg.find("table 'kv'") != std::string::npos);
      CHECK(msg.find(key) != std::string::npos);
      CHECK(msg.find("outside data.mdb") != std::string::npos);
    }
  }
}

TEST_CASE("damage: an event's size flipped to 1 GiB makes the journal report corrupt") {
  temp_dir dir;
  make_journal(dir.sub("j"));
  const auto data = dir.sub("j/data.mdb");
  SUBCASE("the newest event (read at open)") {
    REQUIRE(inflate_value_size(data, be64(60), value_size(dir.sub("j"), "events", be64(60))) >= 1);
    for (bool ro : {false, true}) {
      auto [code, msg] = child_status(dir, [&]() -> status {
        auto o = journal_opts(dir.sub("j"));
        o.env.read_only = ro;
        auto e = environment::open(o.env);
        if (!e) return e.error();
        e->reset();
        if (ro) return status{}; // journal::open_read_only is another helper's part
        auto j = journal::open(o);
        return j ? status{} : j.error();
      });
      INFO("read_only " << ro << ": exit " << code << ", " << msg);
      if (ro)
        CHECK(code == 0); // the environment itself opens; the damage is in a value
      else {
        CHECK(code == code_of(errc::corrupt));
        CHECK(msg.find("events") != std::string::npos);
      }
    }
  }
  SUBCASE("an event in the middle (read by read_global, load_stream and verify)") {
    REQUIRE(inflate_value_size(data, be64(31), value_size(dir.sub("j"), "events", be64(31))) >= 1);
    auto run = [&](int which) {
      return child_status(dir, [&]() -> status {
        auto j = journal::open(journal_opts(dir.sub("j")));
        if (!j) return j.error();
        if (which == 0) {
          std::uint64_t n = 0;
          return (*j)->read_global(1, ~std::size_t{0}, [&](const event_record& e) {
            n += e.payload.size();
            return true;
          });
        }
        if (which == 1) {
          for (auto pid : {"acct-a", "acct-b", "acct-c"})
            if (auto r = (*j)->load_stream(pid); !r) return r.error();
          return status{};
        }
        return (*j)->verify();
      });
    };
    for (int which : {0, 1, 2}) {
      auto [code, msg] = run(which);
      INFO("operation " << which << ": exit " << code << ", " << msg);
      CHECK(code == code_of(errc::corrupt));
    }
  }
}

TEST_CASE("damage: damaged meta pages are corrupt at open, not an older state") {
  temp_dir dir;
  make_journal(dir.sub("j"));
  const auto data = dir.sub("j/data.mdb");
  auto bytes = read_file(data);
  std::uint32_t psize = 0;
  std::memcpy(&psize, bytes.data() + 16 + 24, 4);
  REQUIRE(psize == static_cast<std::uint32_t>(::sysconf(_SC_PAGESIZE)));
  auto txnid_at = [&](int meta) {
    return static_cast<std::size_t>(meta) * psize + 16 + 128;
  };
  std::uint64_t t0 = 0, t1 = 0;
  std::memcpy(&t0, bytes.data() + txnid_at(0), 8);
  std::memcpy(&t1, bytes.data() + txnid_at(1), 8);
  REQUIRE((t0 > t1 ? t0 - t1 : t1 - t0) == 1);
  std::string expect;
  SUBCASE("the older meta page's txnid raised above the newer one") {
    int older = t0 < t1 ? 0 : 1;
    std::uint64_t raised = std::max(t0, t1) + 3; // same parity as the older one
    std::memcpy(bytes.data() + txnid_at(older), &raised, 8);
    expect = "not consecutive";
  }
  SUBCASE("a flipped bit in the magic of meta page 1") {
    bytes[psize + 16 + 1] = static_cast<char>(bytes[psize + 16 + 1] ^ 0x10);
    expect = "meta page 1 has a wrong magic number";
  }
  write_file(data, bytes);
  check_open_corrupt(dir, data, {expect});
}

// bank_torture_test_long, seed 9874586778063167147, mutation 607: bit 3 of byte 17 of
// the main table's root page (the high byte of its first node offset) flipped, so the
// offset points 2048 bytes lower, into the page's free gap, at a stale node whose flags
// say F_DUPDATA. LMDB's first cursor read at open followed that flag into a sub-cursor
// the main table does not have: SIGSEGV inside mdb_cursor_get, before the map was known.
TEST_CASE("damage: a table-directory node offset flipped into free space is corrupt at open") {
  temp_dir dir;
  make_journal(dir.sub("j"));
  const auto data = dir.sub("j/data.mdb");
  auto bytes = read_file(data);
  auto u16_at = [&](std::size_t at) {
    std::uint16_t v = 0;
    std::memcpy(&v, bytes.data() + at, 2);
    return std::size_t{v};
  };
  auto u64_at = [&](std::size_t at) {
    std::uint64_t v = 0;
    std::memcpy(&v, bytes.data() + at, 8);
    return v;
  };
  const std::size_t psize = u16_at(16 + 24) | u16_at(16 + 26) << 16;
  // The newer meta page's main table root (MDB_meta: mm_dbs[1].md_root at 112, mm_txnid
  // at 128, after the 16-byte page header).
  const std::size_t meta = u64_at(16 + 128) > u64_at(psize + 16 + 128) ? 0 : psize;
  const std::size_t root = u64_at(meta + 16 + 112) * psize;
  REQUIRE(root >= 2 * psize);
  REQUIRE(root + psize <= bytes.size());
  REQUIRE((u16_at(root + 10) & 0x02) != 0); // a leaf: the table records
  const std::size_t lower = u16_at(root + 12), upper = u16_at(root + 14);
  bytes[root + 17] = static_cast<char>(bytes[root + 17] ^ 0x08); // the torture run's flip
  const std::size_t moved = u16_at(root + 16);
  INFO("node 0 moved to offset " << moved << ", free gap [" << lower << ", " << upper << ")");
  REQUIRE(moved >= lower);
  REQUIRE(moved + 16 <= upper);
  // What the gap held there in the torture run: mn_lo 0x6163, mn_hi 0x6c, flags 0x57
  // (F_BIGDATA | F_SUBDATA | F_DUPDATA | ...), ksize 0, data 0x80000.
  const unsigned char stale[16] = {0x63, 0x61, 0x6c, 0x00, 0x57, 0x00, 0x00, 0x00,
                                   0x00, 0x00, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00};
  std::memcpy(bytes.data() + root + moved, stale, sizeof stale);
  write_file(data, bytes);
  const auto page = std::to_string(root / psize);
  check_open_corrupt(dir, data,
                     {"'" + data + "' is damaged: page " + page + " of the table directory",
                      "node 0 at offset " + std::to_string(moved),
                      "restore the data directory from a backup"});
}

TEST_CASE("damage: a full disk gives a clear error, loses nothing acknowledged, reopens") {
  temp_dir dir;
  const auto mnt = dir.sub("tmpfs");
  std::filesystem::create_directory(mnt);
  if (::mount("tmpfs", mnt.c_str(), "tmpfs", 0, "size=8m") != 0) {
    MESSAGE("cannot mount a tmpfs (" << std::strerror(errno) << "): test skipped");
    return;
  }
  struct unmount {
    std::string path;
    ~unmount() { ::umount2(path.c_str(), MNT_DETACH); }
  } guard{mnt};
  const auto path = mnt + "/journal";
  auto o = journal_opts(path);
  o.env.sync = sync_mode::sync; // the error must show at commit, not later
  std::map<std::string, std::vector<std::string>> acked;
  status failure;
  {
    auto j = open_journal(o);
    const std::string pad(900, 'p');
    for (int batch = 0; batch < 2000 && failure.ok(); ++batch) {
      std::vector<stream_write> ws;
      for (int s = 0; s < 4; ++s) {
        auto pid = "acct-" + std::to_string(s);
        std::vector<std::string> payloads;
        for (int e = 0; e < 10; ++e)
          payloads.push_back(std::to_string(batch) + "/" + std::to_string(e) + pad);
        ws.push_back(make_write(pid, acked[pid].size(), payloads));
      }
      auto r = j->append(ws);
      if (!r) {
        failure = r.error();
        break;
      }
      for (std::size_t i = 0; i < ws.size(); ++i) {
        if (!(*r)[i].st.ok()) {
          failure = (*r)[i].st;
          break;
        }
        for (auto& e : ws[i].events)
          acked[ws[i].persistence_id].push_back(e.payload);
      }
    }
  }
  INFO("failure: " << failure.to_string());
  REQUIRE(!failure.ok());
  CHECK((failure.code() == errc::io_error || failure.code() == errc::map_full));
  CHECK((failure.message().find("disk is full") != std::string::npos ||
         failure.message().find("map") != std::string::npos));
  REQUIRE(acked["acct-0"].size() > 100);

  // The directory opens again (in both modes) and holds everything acknowledged.
  for (bool ro : {true, false}) {
    auto again = o;
    again.env.read_only = ro;
    if (ro) {
      auto e = environment::open(again.env);
      STRATA_REQUIRE_VALUE(e);
      continue;
    }
    auto j = open_journal(again);
    for (auto& [pid, payloads] : acked)
      CHECK(payloads_of(load_all(*j, pid)) == payloads);
    STRATA_CHECK_OK(j->verify());
  }
}

TEST_CASE("damage: install_fault_guard turns a fault inside the map into a corrupt exit") {
  temp_dir dir;
  const std::string value(3000, 'v');
  {
    auto env = environment::open(env_opts(dir.path()));
    STRATA_REQUIRE_VALUE(env);
    auto t = (*env)->open_table("kv");
    STRATA_REQUIRE_VALUE(t);
    for (int i = 0; i < 64; ++i)
      STRATA_REQUIRE_OK((*env)->write([&](write_txn& txn) {
        return txn.put(*t, "k" + std::to_string(100 + i), value);
      }));
  }
  const auto err = dir.sub("stderr.txt");
  int code = run_in_child([&] {
    install_fault_guard(42);
    auto env = environment::open(env_opts(dir.path()));
    if (!env) return 1;
    auto t = (*env)->open_table("kv");
    if (!t) return 2;
    // The file shrinks under the open environment (what no check at open can see): the
    // next read of a page past the new end faults.
    std::filesystem::resize_file(dir.sub("data.mdb"), 4 * 4096);
    if (!std::freopen(err.c_str(), "w", stderr)) return 3;
    std::uint64_t sum = 0;
    auto st = (*env)->read([&](read_txn& txn) {
      return txn.scan(*t, "", [&](std::string_view, std::string_view v) {
        for (char c : v)
          sum += static_cast<unsigned char>(c);
        return true;
      });
    });
    return st.ok() ? 0 : 4;
  });
  CHECK(code == 42);
  auto text = std::filesystem::exists(err) ? read_file(err) : "";
  CHECK(text.find("corrupt: '" + dir.sub("data.mdb") + "' is damaged") != std::string::npos);
}
