#include "strata/runtime/ids.hpp"

#include <cstdint>

namespace strata {

namespace {

using persistence::errc;
using persistence::status;

enum class char_kind : std::uint8_t { printable, control, separator, malformed };

struct scanned {
  std::size_t len = 1;
  char_kind kind = char_kind::malformed;
  std::uint32_t code_point = 0;
};

bool continuation(unsigned char b) noexcept { return (b & 0xC0) == 0x80; }

/// The kind of a code point that decoded well.
char_kind kind_of(std::uint32_t cp) noexcept {
  if (cp < 0x20 || cp == 0x7F || (cp >= 0x80 && cp <= 0x9F)) return char_kind::control;
  if (cp == 0x2028 || cp == 0x2029 || (cp >= 0x202A && cp <= 0x202E) ||
      (cp >= 0x2066 && cp <= 0x2069))
    return char_kind::separator;
  return char_kind::printable;
}

/// Decodes the character at `s[i]` (UTF-8, RFC 3629). A malformed sequence has len 1,
/// so a caller moves on byte by byte.
scanned scan_char(std::string_view s, std::size_t i) noexcept {
  auto b0 = static_cast<unsigned char>(s[i]);
  if (b0 < 0x80) return {1, kind_of(b0), b0};
  std::size_t len = 0;
  std::uint32_t cp = 0;
  unsigned char lo = 0x80, hi = 0xBF; // allowed range of the second byte
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    len = 2;
    cp = b0 & 0x1F;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    len = 3;
    cp = b0 & 0x0F;
    if (b0 == 0xE0) lo = 0xA0; // overlong
    if (b0 == 0xED) hi = 0x9F; // surrogates
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    len = 4;
    cp = b0 & 0x07;
    if (b0 == 0xF0) lo = 0x90; // overlong
    if (b0 == 0xF4) hi = 0x8F; // above U+10FFFF
  } else {
    return {};
  }
  if (i + len > s.size()) return {};
  auto b1 = static_cast<unsigned char>(s[i + 1]);
  if (b1 < lo || b1 > hi) return {};
  cp = (cp << 6) | (b1 & 0x3F);
  for (std::size_t k = 2; k < len; ++k) {
    auto b = static_cast<unsigned char>(s[i + k]);
    if (!continuation(b)) return {};
    cp = (cp << 6) | (b & 0x3F);
  }
  return {len, kind_of(cp), cp};
}

const char* hex_digits = "0123456789ABCDEF";

void append_hex_byte(std::string& out, unsigned char b) {
  out += "\\x";
  out += hex_digits[b >> 4];
  out += hex_digits[b & 0x0F];
}

std::string hex_code_point(std::uint32_t cp) {
  std::string out = "U+";
  int digits = cp > 0xFFFF ? 6 : 4;
  for (int d = digits - 1; d >= 0; --d)
    out += hex_digits[(cp >> (4 * d)) & 0x0F];
  return out;
}

const char* rules = "; ids must be printable UTF-8 without control characters, and "
                    "\"<type>:<id>\" 1..255 bytes (docs/runtime.md)";

} // namespace

std::string first_unprintable(std::string_view text) {
  for (std::size_t i = 0; i < text.size();) {
    auto c = scan_char(text, i);
    switch (c.kind) {
      case char_kind::printable: i += c.len; continue;
      case char_kind::control:
        return "byte " + std::to_string(i) + " is a control character (" +
               hex_code_point(c.code_point) + ")";
      case char_kind::separator:
        return "byte " + std::to_string(i) + " starts a line separator or bidirectional control (" +
               hex_code_point(c.code_point) + ")";
      case char_kind::malformed: return "byte " + std::to_string(i) + " is not well-formed UTF-8";
    }
  }
  return {};
}

status validate_type_name(std::string_view type) {
  if (type.empty()) return {errc::invalid_argument, "empty aggregate type name"};
  auto quoted = "aggregate type name \"" + escape_text(type) + "\"";
  if (auto why = first_unprintable(type); !why.empty())
    return {errc::invalid_argument, "invalid " + quoted + ": " + why + rules};
  if (type.find(':') != std::string_view::npos)
    return {errc::invalid_argument, "invalid " + quoted + ": it must not contain ':'"};
  if (type.size() + 2 > persistence_id_max_bytes)
    return {errc::invalid_argument, "invalid " + quoted + ": " + std::to_string(type.size()) +
                                      " bytes leave no room for an id" + rules};
  return {};
}

status validate_entity_id(std::string_view type, std::string_view id) {
  if (id.empty())
    return {errc::invalid_argument, "empty entity id of type '" + std::string(type) + "'" + rules};
  // The common case (printable ASCII, short) allocates nothing.
  bool plain = true;
  for (char c : id)
    plain = plain && static_cast<unsigned char>(c) >= 0x20 && static_cast<unsigned char>(c) < 0x7F;
  auto pid_bytes = type.size() + 1 + id.size();
  if (plain && pid_bytes <= persistence_id_max_bytes) return {};
  auto quoted = "entity id \"" + escape_text(id.substr(0, 64)) + (id.size() > 64 ? "\"…" : "\"") +
                " of type '" + std::string(type) + "'";
  if (auto why = first_unprintable(id); !why.empty())
    return {errc::invalid_argument, "invalid " + quoted + ": " + why + rules};
  if (pid_bytes > persistence_id_max_bytes)
    return {errc::invalid_argument, "invalid " + quoted + ": the persistence id is " +
                                      std::to_string(pid_bytes) + " bytes, more than " +
                                      std::to_string(persistence_id_max_bytes) + rules};
  return {};
}

status validate_id(std::string_view type, std::string_view id) {
  if (auto st = validate_type_name(type); !st.ok()) return st;
  return validate_entity_id(type, id);
}

std::string escape_text(std::string_view text, bool escape_space) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size();) {
    auto c = scan_char(text, i);
    if (c.kind == char_kind::printable) {
      if (text[i] == '\\')
        out += "\\\\";
      else if (text[i] == ' ' && escape_space)
        out += "\\x20";
      else
        out.append(text.substr(i, c.len));
    } else if (c.code_point == '\n' && c.len == 1 && c.kind == char_kind::control) {
      out += "\\n";
    } else if (c.code_point == '\t' && c.len == 1 && c.kind == char_kind::control) {
      out += "\\t";
    } else if (c.code_point == '\r' && c.len == 1 && c.kind == char_kind::control) {
      out += "\\r";
    } else {
      for (std::size_t k = 0; k < c.len; ++k)
        append_hex_byte(out, static_cast<unsigned char>(text[i + k]));
    }
    i += c.len;
  }
  return out;
}

} // namespace strata
