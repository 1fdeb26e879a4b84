// File: strata/runtime/wire.hpp
//
// The bytes an aggregate's commands and replies travel as between nodes: a node that
// does not own an entity's shard forwards the command to the owner, which sends the
// reply back (docs/runtime.md, "Commands and replies on the wire").
//
//   // Generated from $Strata.command / $Strata.reply structs (capnpc-strata):
//   std::string b = bank::account::encode_command(bank::deposit{500});
//   std::optional<bank::account::command> c = bank::account::decode_command(b);
//
//   // A hand-written aggregate whose reply is a number, bool, enum, std::string or
//   // std::monostate (or a generated struct) gets its reply codec by deriving:
//   struct counter : counter_schema, strata::wire::reply_codec<std::int64_t> {
//     using reply = std::int64_t;  ...
//   };
//   static_assert(strata::is_routable_v<counter>);   // aggregate.hpp
//
//   std::string r = strata::wire::encode(std::int64_t{-5});        // 8 bytes
//   std::optional<std::int64_t> v = strata::wire::decode<std::int64_t>(r);
//
// Formats (stable: nodes of different versions exchange them):
// - a command: [length of its name: 1 byte][name][Cap'n Proto message of its struct,
//   standard framing, unpacked]. The name, not the variant index, says which command it
//   is, so commands may be added or reordered without breaking older nodes.
// - a value: integers and enums little-endian with their fixed width; bool one byte
//   0 or 1; float and double their IEEE-754 bits little-endian; std::string its bytes;
//   std::monostate no bytes; a generated struct ($Strata.reply, $Strata.state) the
//   Cap'n Proto message of its struct (through the `wire_encode`/`wire_decode` hooks
//   capnpc-strata generates next to it; a hand-written type may define them too).
//
// Decoding is strict and total: nullopt for a wrong size, trailing bytes, an unknown
// command name, more than `bytes_max` bytes or a malformed message; it never throws
// (Cap'n Proto's exceptions are caught in the generated code, capnp_bytes.hpp).
// Encoding does not check `bytes_max`: a sender compares the size before sending.
//
// Threads: plain functions and values; any thread.
#pragma once

#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <variant>

namespace strata::wire {

/// The largest command or reply decode accepts (8 MiB); larger input is nullopt.
inline constexpr std::size_t bytes_max = std::size_t{8} << 20;

/// The first segment (in 8-byte words) of the message builders that encode commands
/// and replies: commands are small, and Cap'n Proto's default (1024 words) costs a
/// zeroed 8 KiB allocation each. A larger message grows into further segments.
inline constexpr unsigned first_segment_words = 64;

/// The tag that selects the type a `wire_decode` hook returns (found by ADL).
template <class T>
struct as {};

namespace detail {

template <class U>
void put_le(std::string& out, U v) {
  static_assert(std::is_unsigned_v<U>);
  for (std::size_t i = 0; i < sizeof(U); ++i)
    out.push_back(static_cast<char>(static_cast<unsigned char>(v >> (8 * i))));
}

template <class U>
U get_le(std::string_view in) {
  U v = 0;
  for (std::size_t i = 0; i < sizeof(U); ++i)
    v = static_cast<U>(v | static_cast<U>(static_cast<unsigned char>(in[i])) << (8 * i));
  return v;
}

template <std::size_t N>
struct uint_of;
template <>
struct uint_of<1> {
  using type = std::uint8_t;
};
template <>
struct uint_of<2> {
  using type = std::uint16_t;
};
template <>
struct uint_of<4> {
  using type = std::uint32_t;
};
template <>
struct uint_of<8> {
  using type = std::uint64_t;
};

/// Numbers and enums of 1, 2, 4 or 8 bytes, but not bool (one byte 0/1 of its own).
template <class T>
constexpr bool is_number_v = std::is_arithmetic_v<T> || std::is_enum_v<T>;
template <class T>
constexpr bool is_fixed_v = is_number_v<T> && !std::is_same_v<T, bool> &&
                            (sizeof(T) == 1 || sizeof(T) == 2 || sizeof(T) == 4 || sizeof(T) == 8);

template <class T, class = void>
struct has_hooks : std::false_type {};
template <class T>
struct has_hooks<
  T,
  std::enable_if_t<std::is_same_v<decltype(wire_encode(std::declval<const T&>())), std::string> &&
                   std::is_same_v<decltype(wire_decode(as<T>{}, std::declval<std::string_view>())),
                                  std::optional<T>>>> : std::true_type {};

} // namespace detail

/// Whether `encode<T>` / `decode<T>` exist for T (see the file comment for the types).
template <class T>
constexpr bool is_encodable_v =
  detail::is_fixed_v<T> || std::is_same_v<T, bool> || std::is_same_v<T, std::string> ||
  std::is_same_v<T, std::monostate> || detail::has_hooks<T>::value;

/// The wire bytes of a value. Errors: none (std::bad_alloc aside).
template <class T>
std::string encode(const T& v) {
  static_assert(is_encodable_v<T>, "strata::wire::encode: T is not a number, bool, enum, "
                                   "std::string, std::monostate or a type with wire_encode / "
                                   "wire_decode hooks (a $Strata.reply or $Strata.state struct)");
  if constexpr (std::is_same_v<T, bool>) {
    return std::string(1, v ? '\1' : '\0');
  } else if constexpr (detail::is_fixed_v<T>) {
    using U = typename detail::uint_of<sizeof(T)>::type;
    U bits;
    std::memcpy(&bits, &v, sizeof(T));
    std::string out;
    detail::put_le(out, bits);
    return out;
  } else if constexpr (std::is_same_v<T, std::string>) {
    return v;
  } else if constexpr (std::is_same_v<T, std::monostate>) {
    return {};
  } else {
    return wire_encode(v);
  }
}

/// The value of wire bytes; nullopt when they are not exactly one value of T (wrong
/// size, a bool byte other than 0/1, more than bytes_max, a malformed message). An enum
/// comes back with whatever number was sent: check it against your enumerators.
/// Never throws.
template <class T>
std::optional<T> decode(std::string_view bytes) noexcept {
  static_assert(is_encodable_v<T>, "strata::wire::decode: T is not encodable (see encode)");
  if (bytes.size() > bytes_max) return std::nullopt;
  if constexpr (std::is_same_v<T, bool>) {
    if (bytes.size() != 1 || static_cast<unsigned char>(bytes[0]) > 1) return std::nullopt;
    return bytes[0] == '\1';
  } else if constexpr (detail::is_fixed_v<T>) {
    if (bytes.size() != sizeof(T)) return std::nullopt;
    auto bits = detail::get_le<typename detail::uint_of<sizeof(T)>::type>(bytes);
    T v;
    std::memcpy(&v, &bits, sizeof(T));
    return v;
  } else if constexpr (std::is_same_v<T, std::string>) {
    try {
      return std::string(bytes);
    } catch (...) { // bad_alloc: "never throws" holds for the caller's loop too
      return std::nullopt;
    }
  } else if constexpr (std::is_same_v<T, std::monostate>) {
    if (!bytes.empty()) return std::nullopt;
    return std::monostate{};
  } else {
    return wire_decode(as<T>{}, bytes);
  }
}

/// encode_reply / decode_reply for an aggregate whose reply is R: derive from it (see the
/// file comment). Generated schemas with a $Strata.reply struct need none.
template <class R>
struct reply_codec {
  static_assert(is_encodable_v<R>, "strata::wire::reply_codec<R>: R is not encodable (see "
                                   "strata::wire::encode)");
  /// The wire bytes of a reply. Errors: none.
  static std::string encode_reply(const R& r) { return encode(r); }
  /// nullopt for bytes that are not one R; never throws.
  static std::optional<R> decode_reply(std::string_view bytes) { return decode<R>(bytes); }
};

/// A command as framed on the wire: its name and the message after it (views into the
/// bytes given to unframe_command).
struct framed_command {
  std::string_view name;
  std::string_view message;
};

/// The bytes before a command's message: the name's length (one byte) and the name.
/// `name` is 1..255 bytes (capnpc-strata refuses longer ones).
inline std::string command_prefix(std::string_view name) {
  std::string out;
  out.push_back(static_cast<char>(static_cast<unsigned char>(name.size())));
  out.append(name);
  return out;
}

/// Splits a command's bytes into its name and message; nullopt when they are empty, more
/// than bytes_max, or shorter than the announced name (the message is checked by the
/// generated decode_command). Never throws.
inline std::optional<framed_command> unframe_command(std::string_view bytes) noexcept {
  if (bytes.empty() || bytes.size() > bytes_max) return std::nullopt;
  std::size_t n = static_cast<unsigned char>(bytes[0]);
  if (n == 0 || bytes.size() < 1 + n) return std::nullopt;
  return framed_command{bytes.substr(1, n), bytes.substr(1 + n)};
}

} // namespace strata::wire
