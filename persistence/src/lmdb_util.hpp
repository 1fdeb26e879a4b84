// Internal: LMDB error mapping and big-endian key helpers.
#pragma once

#include "strata/persistence/status.hpp"

#include <lmdb.h>

#include <cstdint>
#include <cstring>
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

/// RAII cursor: closed at scope end (before its transaction ends).
class cursor {
 public:
  cursor(MDB_txn* txn, MDB_dbi dbi, status& st) noexcept {
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
  /// mdb_cursor_get; returns the raw rc (0, MDB_NOTFOUND or an error).
  int get(MDB_val& k, MDB_val& v, MDB_cursor_op op) noexcept {
    return mdb_cursor_get(c_, &k, &v, op);
  }
  MDB_cursor* native() const noexcept { return c_; }

 private:
  MDB_cursor* c_ = nullptr;
};

} // namespace strata::persistence::detail
