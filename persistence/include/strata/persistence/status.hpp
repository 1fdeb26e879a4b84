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

/// What went wrong. Stable numeric values: they travel inside caf::error codes.
enum class errc : std::uint8_t {
  ok = 0,
  conflict = 1,         ///< expected sequence number did not match the stream's head
  corrupt = 2,          ///< a stored record failed its checksum or did not decode
  not_found = 3,        ///< the named item does not exist
  invalid_argument = 4, ///< the caller passed something unusable
  io_error = 5,         ///< the OS or LMDB failed to read/write/sync
  map_full = 6,         ///< the LMDB map reached its configured maximum size
  txn_full = 7,         ///< one batch touched too many pages for one transaction
  readers_full = 8,     ///< too many concurrent read transactions
  closed = 9,           ///< the object was closed or the writer stopped
  incompatible = 10,    ///< the data directory was written by an incompatible version
  unavailable = 11,     ///< a dependency (e.g. Kafka) is not reachable right now
  internal = 12,        ///< a bug: an invariant did not hold
  locked = 13,          ///< another process holds the data directory's writer lock
};

/// Human-readable name of an error code, e.g. "conflict".
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
