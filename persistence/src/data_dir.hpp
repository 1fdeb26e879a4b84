// Internal: the files strata keeps beside LMDB's in a data directory, and the checks of
// data.mdb that run before LMDB maps it.
//
//   DIR/strata.lock  exclusive flock of the one writer process; holds "pid host since"
//   DIR/strata.id    identity of the journal (format, random 128-bit id, creation time);
//                    the same id is stored in LMDB (table `strata.identity`)
#pragma once

#include "strata/persistence/status.hpp"

#include <cstdint>
#include <optional>
#include <string>

namespace strata::persistence::detail {

/// The writer lock of a data directory: an exclusive flock on DIR/strata.lock, held until
/// this object is destroyed (or the process dies: a stale file never blocks). Move-only.
class dir_lock {
 public:
  dir_lock() noexcept = default;
  dir_lock(dir_lock&& other) noexcept;
  dir_lock& operator=(dir_lock&& other) noexcept;
  ~dir_lock();

  /// Takes the lock on `dir` (which must exist), polling for up to `wait_ms`, then
  /// writes this process's pid, host and the time into the file. Errors: locked (the
  /// message names the holder), io_error (cannot create or lock the file).
  static result<dir_lock> acquire(const std::string& dir, std::uint32_t wait_ms);

 private:
  int fd_ = -1;
};

/// The identity of a data directory.
struct dir_identity {
  static constexpr int current_format = 1;
  int format = current_format;
  std::string id;      ///< 32 lowercase hex digits (128 random bits)
  std::string created; ///< ISO-8601 UTC, e.g. 2026-12-01T00:15:34Z

  /// A fresh identity: random id, created now.
  static dir_identity make();
  /// The text stored in DIR/strata.id.
  std::string encode() const;
  /// Parses `encode()`'s text; nullopt when it is not one.
  static std::optional<dir_identity> parse(const std::string& text);
};

/// The file names inside a data directory.
std::string identity_path(const std::string& dir);
std::string data_path(const std::string& dir);

/// DIR/strata.id, or nullopt when the file does not exist. Errors: corrupt (the file
/// exists but does not parse), io_error.
result<std::optional<dir_identity>> read_identity_file(const std::string& dir);

/// Writes DIR/strata.id durably: temporary file, fsync, rename, fsync of the directory.
/// Errors: io_error.
status write_identity_file(const std::string& dir, const dir_identity& id);

/// True when `dir` has no entries except strata's own lock and temporary files, LMDB's
/// lock.mdb and an empty data.mdb (a creation that died at once), or does not exist:
/// the only kind of directory that is initialised as a new journal.
bool is_fresh_dir(const std::string& dir);

/// Reads both LMDB meta pages of `data_mdb` with pread and checks magic, version, page
/// size and that their transaction ids are consecutive (page i holds an id of parity i),
/// so a damaged meta page cannot make LMDB serve an older state or map garbage; then
/// walks the newer meta page's table directory (LMDB's main table) the same way and checks
/// every page header and node (offsets, sizes, flags, child pages), because LMDB reads it
/// at open and a damaged node there makes LMDB itself fault (e.g. a null sub-cursor).
/// Errors: corrupt (the message names the file and what is wrong), io_error.
status check_meta_pages(const std::string& data_mdb);

/// The current time as ISO-8601 UTC with seconds ("2026-12-01T00:15:34Z").
std::string utc_now_iso();

} // namespace strata::persistence::detail
