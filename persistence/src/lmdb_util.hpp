// Internal: LMDB error mapping and big-endian key helpers.
#pragma once

#include "strata/persistence/status.hpp"

#include <lmdb.h>

#include <atomic>
#include <cstdint>
#include <cstring>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

namespace strata::persistence::detail {

/// Maps an LMDB return code to a status whose message says what failed (`what`) and
/// what to do about it.
status from_mdb(int rc, std::string_view what);

inline MDB_val to_val(std::string_view s) noexcept {
  return MDB_val{s.size(), const_cast<char*>(s.data())};
}
inline std::string_view to_view(const MDB_val& v) noexcept {
  return {static_cast<const char*>(v.mv_data), v.mv_size};
}

inline void put_be64(char* p, std::uint64_t v) noexcept {
  for (int i = 7; i >= 0; --i) {
    p[i] = static_cast<char>(v & 0xFF);
    v >>= 8;
  }
}
inline std::uint64_t get_be64(const char* p) noexcept {
  std::uint64_t v = 0;
  for (int i = 0; i < 8; ++i)
    v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}

/// An 8-byte big-endian key: cursor order is numeric order.
struct key64 {
  char bytes[8];
  explicit key64(std::uint64_t v) noexcept { put_be64(bytes, v); }
  std::string_view view() const noexcept { return {bytes, 8}; }
};

/// A 16-byte (a, b) big-endian key.
struct key128 {
  char bytes[16];
  key128(std::uint64_t a, std::uint64_t b) noexcept {
    put_be64(bytes, a);
    put_be64(bytes + 8, b);
  }
  std::string_view view() const noexcept { return {bytes, 16}; }
};

/// Where the data file is mapped, so that every key and value LMDB hands out can be
/// checked to lie inside the file before anyone reads its bytes: a damaged node size
/// would otherwise point past the end of data.mdb and kill the process with SIGBUS.
/// One per environment, reachable from any transaction through mdb_env_get_userctx.
struct map_bounds {
  int fd = -1;                              ///< data.mdb (re-read with fstat)
  std::atomic<std::uintptr_t> begin{0};     ///< the map; 0 while unknown (no check)
  std::atomic<std::size_t> length{0};       ///< map length in bytes
  std::atomic<std::size_t> file_bytes{0};   ///< data.mdb size when last looked at
  std::atomic<MDB_txn*> write_txn{nullptr}; ///< this process's open write transaction
  mutable std::mutex names_mu;
  std::map<unsigned, std::string> names; ///< table names by dbi, for messages

  /// True when [p, p+n) lies inside the mapped file, or outside the map where LMDB may
  /// legitimately hand out memory: caller memory for keys (`value` false), a page this
  /// process's write transaction `txn` made dirty (heap memory) for values.
  bool contains(MDB_txn* txn, const void* p, std::size_t n, bool value) noexcept;
  std::string table_name(unsigned dbi) const;
};

/// The bounds registered for txn's environment, or nullptr.
inline map_bounds* bounds_of(MDB_txn* txn) noexcept {
  return txn ? static_cast<map_bounds*>(mdb_env_get_userctx(mdb_txn_env(txn))) : nullptr;
}

/// Checks a key/value pair returned by LMDB (mdb_get, mdb_cursor_get). Ok or corrupt
/// naming the table and key.
status check_pair(MDB_txn* txn, MDB_dbi dbi, const MDB_val& k, const MDB_val& v);

/// One key/value pair read through a cursor. The views point into the map (or into a
/// dirty page of this process's write transaction): valid until the transaction ends.
struct entry {
  std::string_view key;
  std::string_view value;
};

/// RAII cursor over one table: closed at scope end (before its transaction ends). Every
/// read checks that the key and value lie inside the mapped file. The typed reads
/// return the raw rc: 0, MDB_NOTFOUND, or an error (a key or value outside the mapped
/// file, i.e. a damaged node, gives MDB_CORRUPTED); error(rc, …) turns it into a status.
class cursor {
 public:
  cursor(MDB_txn* txn, MDB_dbi dbi, status& st) noexcept : txn_(txn), dbi_(dbi) {
    if (int rc = mdb_cursor_open(txn, dbi, &c_); rc != 0) {
      st = from_mdb(rc, "opening a cursor");
      c_ = nullptr;
    }
  }
  ~cursor() {
    if (c_) mdb_cursor_close(c_);
  }
  cursor(const cursor&) = delete;
  cursor& operator=(const cursor&) = delete;
  explicit operator bool() const noexcept { return c_ != nullptr; }

  /// The first entry whose key is >= `key` (MDB_SET_RANGE).
  int seek(std::string_view key, entry& out) { return get(key, out, MDB_SET_RANGE); }
  /// The entry whose key is `key` (MDB_SET_KEY).
  int find(std::string_view key, entry& out) { return get(key, out, MDB_SET_KEY); }
  int first(entry& out) { return get({}, out, MDB_FIRST); }
  int last(entry& out) { return get({}, out, MDB_LAST); }
  int next(entry& out) { return get({}, out, MDB_NEXT); }
  int prev(entry& out) { return get({}, out, MDB_PREV); }

  /// Positions the cursor on the last entry whose key is <= `key` and reads it into
  /// `out` (MDB_NOTFOUND: no such entry). `after` (when given) receives the first entry
  /// whose key is > `key`, or stays empty at the end of the table: a damaged key sits
  /// where a search ends, so callers check both neighbours of a key that is missing.
  int seek_at_or_before(std::string_view key, entry& out, std::optional<entry>* after = nullptr) {
    entry at;
    int rc = seek(key, at);
    if (rc != 0 && rc != MDB_NOTFOUND) return rc;
    if (rc == 0 && at.key == key) {
      out = at;
      return 0;
    }
    if (after && rc == 0) *after = at;
    return rc == 0 ? prev(out) : last(out);
  }

  /// The status for a failed read: the bounds error of the last read, else from_mdb.
  status error(int rc, std::string_view what) const {
    if (rc == MDB_CORRUPTED && !bad_.ok()) return bad_;
    return from_mdb(rc, what);
  }
  MDB_cursor* native() const noexcept { return c_; }

 private:
  int get(std::string_view key, entry& out, MDB_cursor_op op) {
    MDB_val k = to_val(key), v{};
    int rc = mdb_cursor_get(c_, &k, &v, op);
    if (rc != 0) return rc;
    if (auto st = check_pair(txn_, dbi_, k, v); !st.ok()) {
      bad_ = std::move(st);
      return MDB_CORRUPTED;
    }
    out = {to_view(k), to_view(v)};
    return 0;
  }

  MDB_txn* txn_;
  MDB_dbi dbi_;
  MDB_cursor* c_ = nullptr;
  status bad_;
};

} // namespace strata::persistence::detail
