// Internal: LMDB error mapping and big-endian key helpers.
#pragma once

#include "strata/persistence/status.hpp"

#include <lmdb.h>

#include <atomic>
#include <cstdint>
#include <cstring>
#include <map>
#include <mutex>
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

/// RAII cursor: closed at scope end (before its transaction ends). get() checks that the
/// key and value lie inside the mapped file.
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
  /// mdb_cursor_get; returns the raw rc (0, MDB_NOTFOUND or an error). A key or value
  /// outside the mapped file (a damaged node) gives MDB_CORRUPTED; error(rc, …) then
  /// returns the corrupt status naming the table and key.
  int get(MDB_val& k, MDB_val& v, MDB_cursor_op op) {
    int rc = mdb_cursor_get(c_, &k, &v, op);
    if (rc == 0) {
      if (auto st = check_pair(txn_, dbi_, k, v); !st.ok()) {
        bad_ = std::move(st);
        return MDB_CORRUPTED;
      }
    }
    return rc;
  }
  /// The status for a failed get: the bounds error of the last get, else from_mdb.
  status error(int rc, std::string_view what) const {
    if (rc == MDB_CORRUPTED && !bad_.ok()) return bad_;
    return from_mdb(rc, what);
  }
  MDB_cursor* native() const noexcept { return c_; }

 private:
  MDB_txn* txn_;
  MDB_dbi dbi_;
  MDB_cursor* c_ = nullptr;
  status bad_;
};

} // namespace strata::persistence::detail
