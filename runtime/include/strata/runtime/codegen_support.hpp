// File: strata/runtime/codegen_support.hpp
//
// Helpers for the code capnpc-strata generates (`<stem>.strata.cpp`, see
// docs/runtime.md "Declaring events in Cap'n Proto"). Not meant for hand-written code,
// but harmless there:
//
//   std::ostringstream os;
//   strata::codegen::print(os, std::string("a\"b"));   // "a\"b"
//   strata::codegen::print(os, std::vector<std::int8_t>{1, 2});   // [1, 2]
//
// Threads: plain functions; any thread. Errors: none (to_string copies the bytes).
#pragma once

#include <capnp/blob.h>

#include <cstdint>
#include <ostream>
#include <string>
#include <type_traits>
#include <vector>

namespace strata::codegen {

/// Copies a Cap'n Proto Text into a std::string.
inline std::string to_string(capnp::Text::Reader t) { return std::string(t.cStr(), t.size()); }

/// Copies Cap'n Proto Data into a std::string (bytes).
inline std::string to_string(capnp::Data::Reader d) {
  return std::string(reinterpret_cast<const char*>(d.begin()), d.size());
}

/// A Text view of a std::string (valid while `s` lives).
inline capnp::Text::Reader text_of(const std::string& s) {
  return capnp::Text::Reader(s.data(), s.size());
}

/// A Data view of a std::string (valid while `s` lives).
inline capnp::Data::Reader data_of(const std::string& s) {
  return capnp::Data::Reader(reinterpret_cast<const capnp::byte*>(s.data()), s.size());
}

/// Prints a string quoted, with C escapes for quotes, backslashes and control bytes.
inline void print(std::ostream& os, const std::string& s) {
  static const char* hex = "0123456789abcdef";
  os << '"';
  for (unsigned char c : s) {
    if (c == '"' || c == '\\')
      os << '\\' << static_cast<char>(c);
    else if (c == '\n')
      os << "\\n";
    else if (c < 0x20 || c == 0x7f)
      os << "\\x" << hex[c >> 4] << hex[c & 15];
    else
      os << static_cast<char>(c);
  }
  os << '"';
}

inline void print(std::ostream& os, bool b) { os << (b ? "true" : "false"); }

/// Numbers (1-byte integers as numbers, not characters), enums and generated structs
/// (through their operator<<).
template <class T>
void print(std::ostream& os, const T& v) {
  if constexpr (std::is_integral_v<T> && sizeof(T) == 1)
    os << static_cast<int>(v);
  else
    os << v;
}

template <class T>
void print(std::ostream& os, const std::vector<T>& v) {
  os << '[';
  for (std::size_t i = 0; i < v.size(); ++i) {
    if (i > 0) os << ", ";
    print(os, v[i]);
  }
  os << ']';
}

/// print(os, std::vector<bool>) element by element (vector<bool> is special).
inline void print(std::ostream& os, const std::vector<bool>& v) {
  os << '[';
  for (std::size_t i = 0; i < v.size(); ++i) {
    if (i > 0) os << ", ";
    print(os, static_cast<bool>(v[i]));
  }
  os << ']';
}

} // namespace strata::codegen
