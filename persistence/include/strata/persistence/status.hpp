// File: strata/persistence/status.hpp
//
// The error type of strata::persistence (tier 2 of CONTRIBUTING.md: infrastructure
// failures). persistence does not depend on CAF; the runtime turns a `status` into a
// `caf::error` at its edge.
//
//   strata::persistence::result<std::uint64_t> r = j->highest_seq("account-1");
//   if (!r) std::cerr << r.error().message() << "\n";   // says what happened and what to do
//   else use(*r);
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <variant>

namespace strata::persistence {

/// The persistence error codes, one `X(name, value)` entry each: `errc` below, the
/// runtime's `strata::runtime_errc` (strata/runtime/errors.hpp) and both `to_string`s
/// expand this one list, so a code added here exists in the runtime too, with the same
/// number and name. Values are stable (they travel inside caf::error codes) and stay
/// below 32, where the runtime's own codes start.
#define STRATA_PERSISTENCE_ERRC(X)                                                                 \
  X(conflict, 1)         /* expected sequence number did not match the stream's head */            \
  X(corrupt, 2)          /* a stored record failed its checksum or did not decode */               \
  X(not_found, 3)        /* the named item does not exist */                                       \
  X(invalid_argument, 4) /* the caller passed something unusable */                                \
  X(io_error, 5)         /* the OS or LMDB failed to read/write/sync */                            \
  X(map_full, 6)         /* the LMDB map reached its configured maximum size */                    \
  X(txn_full, 7)         /* one batch touched too many pages for one transaction */                \
  X(readers_full, 8)     /* too many concurrent read transactions */                               \
  X(closed, 9)           /* the object was closed or the writer stopped */                         \
  X(incompatible, 10)    /* the data directory was written by an incompatible version */           \
  X(unavailable, 11)     /* a dependency (e.g. Kafka) is not reachable right now */                \
  X(internal, 12)        /* a bug: an invariant did not hold */                                    \
  X(locked, 13)          /* another process holds the data directory's writer lock */              \
  X(fenced, 14)          /* a newer shard owner's claim precedes the write in its Kafka   */       \
                         /* partition: the write is invalid there and is not acknowledged */       \
                         /* (names shard, epoch, the newer claim); this node lost the shard */

/// What went wrong: `ok`, or one of STRATA_PERSISTENCE_ERRC (see there for each code).
enum class errc : std::uint8_t {
  ok = 0,
#define STRATA_ERRC_ENUMERATOR(name, value) name = value,
  STRATA_PERSISTENCE_ERRC(STRATA_ERRC_ENUMERATOR)
#undef STRATA_ERRC_ENUMERATOR
};

/// Every error code (all but `ok`), in the order of STRATA_PERSISTENCE_ERRC.
inline constexpr errc all_error_codes[] = {
#define STRATA_ERRC_ELEMENT(name, value) errc::name,
  STRATA_PERSISTENCE_ERRC(STRATA_ERRC_ELEMENT)
#undef STRATA_ERRC_ELEMENT
};

/// The first value that is not a persistence code: the runtime's own codes start here.
inline constexpr std::uint8_t errc_end = 32;

#define STRATA_ERRC_BELOW_END(name, value)                                                         \
  static_assert(value > 0 && value < errc_end,                                                     \
                "persistence code '" #name "' must lie in 1..31 (the runtime's start at 32)");
STRATA_PERSISTENCE_ERRC(STRATA_ERRC_BELOW_END)
#undef STRATA_ERRC_BELOW_END

/// Human-readable name of an error code: its enumerator's name, e.g. "conflict".
const char* to_string(errc code) noexcept;

/// The outcome of an operation: ok, or an error code with a message that names the
/// object concerned (stream, position, path) and what to do about it.
class [[nodiscard]] status {
 public:
  status() noexcept = default;
  status(errc code, std::string message) : code_(code), message_(std::move(message)) {}

  static status success() noexcept { return {}; }

  bool ok() const noexcept { return code_ == errc::ok; }
  errc code() const noexcept { return code_; }
  const std::string& message() const noexcept { return message_; }

  /// "conflict: stream 'account-1' expected seq 4 but its head is 5".
  std::string to_string() const;

  friend bool operator==(const status& a, const status& b) noexcept { return a.code_ == b.code_; }
  friend bool operator!=(const status& a, const status& b) noexcept { return !(a == b); }

 private:
  errc code_ = errc::ok;
  std::string message_;
};

/// A value or an error status (like std::expected). `operator bool` is true when a
/// value is present.
template <class T>
class [[nodiscard]] result {
 public:
  result(T value) : v_(std::in_place_index<0>, std::move(value)) {}
  result(status err) : v_(std::in_place_index<1>, std::move(err)) {}
  result(errc code, std::string message)
    : v_(std::in_place_index<1>, status{code, std::move(message)}) {}

  bool has_value() const noexcept { return v_.index() == 0; }
  explicit operator bool() const noexcept { return has_value(); }

  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T&& operator*() && { return std::move(*this).value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

  /// The error; `status::success()` when a value is present.
  status error() const { return has_value() ? status{} : std::get<1>(v_); }

 private:
  std::variant<T, status> v_;
};

} // namespace strata::persistence
