// Scenarios `baseline-lmdb` and `baseline-scan`: what raw LMDB does on this disk with
// the journal's record count, record size, batch size and sync setting. The physical
// limit the journal is compared with.
#include "scenario.hpp"

#include <lmdb.h>

#include <algorithm>
#include <string>

namespace strata::bench {
namespace {

void check(int rc, const char* what) {
  if (rc != MDB_SUCCESS) fail(std::string(what) + ": " + mdb_strerror(rc));
}

struct env_guard {
  MDB_env* env = nullptr;
  ~env_guard() {
    if (env) mdb_env_close(env);
  }
};

struct txn_guard {
  MDB_txn* txn = nullptr;
  ~txn_guard() {
    if (txn) mdb_txn_abort(txn);
  }
  void commit(const char* what) {
    int rc = mdb_txn_commit(txn);
    txn = nullptr;
    check(rc, what);
  }
};

void open_env(env_guard& g, const std::filesystem::path& dir, const options& o) {
  check(mdb_env_create(&g.env), "mdb_env_create");
  check(mdb_env_set_mapsize(g.env, map_size_for(o)), "mdb_env_set_mapsize");
  unsigned flags = o.nosync ? MDB_NOSYNC : 0;
  check(mdb_env_open(g.env, dir.c_str(), flags, 0644), "mdb_env_open");
}

/// Writes `o.events` records (u64 BE key → payload) with MDB_APPEND in batches of
/// `o.batch_events`, one commit (one fsync) per batch. Returns append seconds.
result write_baseline(const std::filesystem::path& dir, const options& o) {
  result r;
  env_guard g;
  open_env(g, dir, o);
  std::string value;
  unsigned char key_bytes[8];
  stopwatch sw;
  MDB_dbi dbi = 0;
  std::uint64_t i = 0;
  while (i < o.events) {
    txn_guard t;
    check(mdb_txn_begin(g.env, nullptr, 0, &t.txn), "mdb_txn_begin");
    if (i == 0) check(mdb_dbi_open(t.txn, nullptr, 0, &dbi), "mdb_dbi_open");
    std::uint64_t end = std::min(o.events, i + o.batch_events);
    for (; i < end; ++i) {
      fill_payload(value, i, o.payload_bytes);
      put_be64(key_bytes, i + 1);
      MDB_val k{sizeof key_bytes, key_bytes};
      MDB_val v{value.size(), value.data()};
      check(mdb_put(t.txn, dbi, &k, &v, MDB_APPEND), "mdb_put");
    }
    t.commit("mdb_txn_commit");
  }
  mdb_env_close(g.env);
  g.env = nullptr;
  r.seconds = sw.seconds();
  r.events = o.events;
  r.add("record_bytes", static_cast<std::uint64_t>(o.payload_bytes))
    .add("batch", o.batch_events)
    .add("sync", o.nosync ? "nosync" : "fsync")
    .add("db_bytes", data_file_bytes(dir));
  return r;
}

result run_baseline_lmdb(context& ctx) {
  auto dir = ctx.fresh_dir("baseline-lmdb");
  result r = write_baseline(dir, ctx.opts());
  ctx.put_artifact("baseline-lmdb", dir);
  return r;
}

result run_baseline_scan(context& ctx) {
  const options& o = ctx.opts();
  auto dir = ctx.artifact("baseline-lmdb");
  if (!dir) {
    progress("baseline-scan: writing the baseline data first (not timed)");
    dir = ctx.fresh_dir("baseline-lmdb");
    write_baseline(*dir, o);
    ctx.put_artifact("baseline-lmdb", *dir);
  }
  env_guard g;
  open_env(g, *dir, o);
  stopwatch sw;
  txn_guard t;
  check(mdb_txn_begin(g.env, nullptr, MDB_RDONLY, &t.txn), "mdb_txn_begin");
  MDB_dbi dbi = 0;
  check(mdb_dbi_open(t.txn, nullptr, 0, &dbi), "mdb_dbi_open");
  MDB_cursor* cur = nullptr;
  check(mdb_cursor_open(t.txn, dbi, &cur), "mdb_cursor_open");
  MDB_val k, v;
  std::uint64_t n = 0, sum = 0;
  int rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
  while (rc == MDB_SUCCESS) {
    // Touch every byte so the value pages are really read.
    auto* p = static_cast<const unsigned char*>(v.mv_data);
    for (std::size_t b = 0; b < v.mv_size; ++b)
      sum += p[b];
    ++n;
    rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
  }
  mdb_cursor_close(cur);
  if (rc != MDB_NOTFOUND) check(rc, "mdb_cursor_get");
  double secs = sw.seconds();
  if (n != o.events)
    fail("baseline-scan read " + std::to_string(n) + " records, expected " +
         std::to_string(o.events));
  result r;
  r.events = n;
  r.seconds = secs;
  r.add("checksum", sum % 1000003);
  return r;
}

const registrar reg_write{{"baseline-lmdb",
                           "raw LMDB: N 100-byte records, u64 BE keys, MDB_APPEND, batches of "
                           "1000 per txn, fsync per commit (the physical limit)",
                           10, "", true, run_baseline_lmdb}};
const registrar reg_scan{{"baseline-scan",
                          "raw LMDB cursor scan of baseline-lmdb's database, touching every byte",
                          30, "", true, run_baseline_scan}};

} // namespace
} // namespace strata::bench
