// File: strata/persistence/environment.hpp
//
// One LMDB environment = one node's data directory. The journal, the snapshot store,
// the offset store and any projection views live in it, so a consumer can commit its
// view and its offset in ONE write transaction.
//
//   env_options o;
//   o.path = "data";
//   auto env = environment::open(o);                         // result<unique_ptr<…>>
//   auto views = (*env)->open_table("bank.report");
//   auto st = (*env)->write([&](write_txn& txn) {
//     if (auto s = txn.put(*views, "acct-1", "42"); !s.ok()) return s;
//     return journal->offsets().put(txn, "bank.report", position);  // same txn
//   });
//
// A data directory has one writer at a time (an exclusive lock on DIR/strata.lock; a
// second writer gets errc::locked after lock_wait_ms) and any number of read-only
// environments beside it:
//
//   env_options ro;
//   ro.path = "data";
//   ro.read_only = true;                                     // no lock, writes nothing
//   auto reader = environment::open(ro);
//
// Every open checks the directory's identity (DIR/strata.id), data.mdb's meta pages and
// size; every key and value read is checked to lie inside the file (docs/persistence.md).
//
// Threads: read transactions may run on any thread (MDB_NOTLS). Write transactions
// are serialised by LMDB; keep them on as few threads as possible (the journal's
// writer is one thread). A transaction never migrates between threads: `read` and
// `write` run the function on the calling thread and end the transaction before
// they return.
#pragma once

#include "strata/persistence/status.hpp"

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

struct MDB_txn;
struct MDB_env;

namespace strata::persistence {

/// When a commit returns relative to the disk.
enum class sync_mode : std::uint8_t {
  sync,   ///< fsync per commit (default): a committed transaction survives a power cut
  nosync, ///< no fsync: survives a process crash, not an OS crash (tests, benchmarks)
};

/// Parses "sync" / "nosync"; nullopt for anything else.
std::optional<sync_mode> parse_sync_mode(std::string_view text) noexcept;
const char* to_string(sync_mode m) noexcept;

struct env_options {
  std::string path;                                      ///< directory; created if missing
  sync_mode sync = sync_mode::sync;                      ///< config key `durability`: sync | nosync
  std::size_t map_size_bytes = 64u << 20;                ///< initial map size; grows by doubling
  std::size_t map_size_max_bytes = std::size_t{1} << 40; ///< growth stops here → map_full
  unsigned max_readers = 512;                            ///< concurrent read transactions
  unsigned max_tables = 64;                              ///< named databases (journal uses 8)
  /// Open with MDB_RDONLY: creates nothing (no directory, lock file, identity or table),
  /// never grows the map, takes no writer lock. A read-only environment keeps working
  /// while a writer process grows the map. write() fails with invalid_argument.
  bool read_only = false;
  /// How long a writer open waits for another process's writer lock on the directory
  /// before it fails with errc::locked (0: fail at once).
  std::uint32_t lock_wait_ms = 0;
};

/// A named LMDB database inside an environment. A plain value; valid as long as the
/// environment that opened it.
struct table {
  unsigned dbi = 0;
};

/// Read-only view of a transaction. Returned string_views point into the map and are
/// valid only until the transaction ends: copy what you keep.
class read_txn {
 public:
  /// The value under `key`, or nullopt. Errors: io_error, corrupt (LMDB-level).
  result<std::optional<std::string_view>> get(table t, std::string_view key) const;

  /// Calls `fn(key, value)` for every entry with key >= `from` in key order, until it
  /// returns false. Errors: as get.
  status scan(table t, std::string_view from,
              const std::function<bool(std::string_view, std::string_view)>& fn) const;

  /// The last entry of the table (highest key), or nullopt when empty.
  result<std::optional<std::pair<std::string_view, std::string_view>>> last(table t) const;

  MDB_txn* native() const noexcept { return txn_; }

 protected:
  explicit read_txn(MDB_txn* txn) noexcept : txn_(txn) {}
  MDB_txn* txn_;
  friend class environment;
};

/// A write transaction, handed to the function passed to environment::write. It
/// commits when that function returns ok, and aborts otherwise.
class write_txn : public read_txn {
 public:
  /// Inserts or replaces. Errors: map_full is handled by environment::write (it grows
  /// the map and calls the function again); txn_full, io_error.
  status put(table t, std::string_view key, std::string_view value);
  /// Removes `key`; removing a missing key is ok.
  status del(table t, std::string_view key);

 private:
  using read_txn::read_txn;
  friend class environment;
};

/// An open LMDB environment. Resource type: owned by one unique_ptr.
class environment {
 public:
  /// Opens (creating if needed) the environment in `opts.path`, clears stale reader
  /// slots left by crashed processes. A writer open (read_only=false) holds an
  /// exclusive lock on `DIR/strata.lock` until the environment is destroyed.
  /// Errors: invalid_argument (bad path/options), io_error (permissions, disk),
  /// incompatible (not an LMDB environment / not a strata data directory), locked
  /// (another process holds the writer lock for longer than lock_wait_ms; the message
  /// names it), not_found (read-only open of a directory without a journal), corrupt
  /// (identity missing or mismatched, data.mdb empty, truncated or with damaged meta
  /// pages).
  static result<std::unique_ptr<environment>> open(const env_options& opts);

  ~environment();
  environment(const environment&) = delete;
  environment& operator=(const environment&) = delete;

  /// Opens or creates a named database. Errors: invalid_argument (too many tables),
  /// not_found (read-only environment and the table does not exist).
  result<table> open_table(std::string_view name);

  /// Runs `fn` in a write transaction on the calling thread and commits it when `fn`
  /// returns ok. On MDB_MAP_FULL the transaction is aborted, the map is doubled (no
  /// transaction of this process is open then) and `fn` runs again, so `fn` must not
  /// have side effects outside the transaction until it returns. Returns fn's error, or
  /// the commit's: map_full when the maximum size is reached, io_error on sync failure,
  /// invalid_argument ("opened read-only") in a read-only environment.
  status write(const std::function<status(write_txn&)>& fn);

  /// Runs `fn` in a read transaction (a consistent snapshot) on the calling thread.
  status read(const std::function<status(read_txn&)>& fn) const;

  const env_options& options() const noexcept;
  /// Current map size in bytes (grows on demand).
  std::size_t map_size_bytes() const noexcept;
  /// Flushes the OS buffers to disk (useful after nosync writes); a no-op when read-only.
  /// Errors: io_error.
  status sync();

  MDB_env* native() const noexcept;

 private:
  struct impl;
  explicit environment(std::unique_ptr<impl> p);
  status open_table_read_only(const std::string& name, unsigned& dbi);
  std::unique_ptr<impl> impl_;
};

/// Last resort for a program (a CLI, a node) against damage that the checks at open and
/// on every read cannot see, e.g. a node offset inside an LMDB page that makes LMDB
/// itself read past the end of data.mdb. Installs handlers for SIGBUS and SIGSEGV: a
/// fault at an address inside (or up to 64 KiB past) the map of an open environment
/// writes "corrupt: '<dir>/data.mdb' is damaged: a read at byte N of its map faulted
/// (SIGBUS); restore the data directory from a backup" to stderr and ends the process
/// with `_exit(exit_code)`. A fault outside every map while an environment is open
/// (LMDB following a pointer computed from a damaged page) and LMDB's own consistency
/// assertions (mdb_assert on a damaged page) end the same way, with a message that says
/// so; with no environment open, a fault keeps its default action. Call once, early,
/// from the main thread; it replaces earlier handlers of those signals (so do not call
/// it under a sanitizer that needs them). Nothing committed is lost: the process only
/// reads when it faults, or its open write transaction is discarded by LMDB.
void install_fault_guard(int exit_code) noexcept;

} // namespace strata::persistence
