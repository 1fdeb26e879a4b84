#include "record.hpp"

#include "envelope_codec.hpp"
#include "strata/persistence/codec.hpp"

#include <cstdio>

namespace strata::persistence::detail {

namespace {

std::uint32_t get_le32(const char* p) noexcept {
  auto u = reinterpret_cast<const unsigned char*>(p);
  return std::uint32_t{u[0]} | std::uint32_t{u[1]} << 8 | std::uint32_t{u[2]} << 16 |
         std::uint32_t{u[3]} << 24;
}

/// The first unpacked word of `packed` (the segment table of a single-segment
/// message), or false when the bytes end inside it.
bool first_word(std::string_view packed, std::uint64_t& word) noexcept {
  if (packed.empty()) return false;
  auto tag = static_cast<unsigned char>(packed[0]);
  std::size_t at = 1;
  word = 0;
  for (int b = 0; b < 8; ++b)
    if (tag & (1u << b)) {
      if (at >= packed.size()) return false;
      word |= std::uint64_t{static_cast<unsigned char>(packed[at++])} << (8 * b);
    }
  return true;
}

/// The number of unpacked words the segment table in `packed` announces, checked
/// against what the packed bytes can hold and record_max_unpacked_bytes; 0 if unusable.
std::size_t announced_words(std::string_view packed, std::string& why) {
  std::uint64_t w0 = 0;
  if (!first_word(packed, w0)) {
    why = "packed data ends inside the segment table";
    return 0;
  }
  if ((w0 & 0xFFFFFFFFu) != 0) {
    why = "segment table announces " + std::to_string((w0 & 0xFFFFFFFFu) + 1) +
          " segments, a record has 1";
    return 0;
  }
  std::uint64_t words = (w0 >> 32) + 1;
  // Each packed byte unpacks to at most 128 words (a zero tag and a run count of 255:
  // 2 bytes, 256 words), so a larger announced size cannot be backed by these bytes.
  std::uint64_t most = std::uint64_t{packed.size()} * 128 + 1;
  if (words < 2 || words > most || words * 8 > record_max_unpacked_bytes) {
    why = "segment table announces " + std::to_string(words * 8) + " bytes for " +
          std::to_string(packed.size()) + " packed bytes";
    return 0;
  }
  return static_cast<std::size_t>(words);
}

std::string at_position(std::uint64_t pos) { return "position " + std::to_string(pos); }

} // namespace

const char* const repair_advice = "run `strata journal verify --data DIR` to list every problem and"
                                  " `strata journal repair --data DIR` (with no writer running) to"
                                  " rebuild the derived tables from the log";
const char* const restore_advice = "restore the journal from a backup or from Kafka, and run"
                                   " `strata journal verify` to check the whole journal";

status event_error(std::uint64_t pos, std::string_view pid, const std::string& what,
                   std::string_view advice) {
  return {errc::corrupt, "event at position " + std::to_string(pos) + " of stream '" +
                           (pid.empty() ? std::string("<unknown>") : escape_bytes(pid)) + "' " +
                           what + "; " + std::string(advice)};
}

std::string escape_bytes(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (unsigned char c : s) {
    if (c >= 0x20 && c < 0x7F && c != '\\') {
      out.push_back(static_cast<char>(c));
    } else {
      char buf[5];
      std::snprintf(buf, sizeof buf, "\\x%02X", c);
      out += buf;
    }
  }
  return out;
}

/// Writes the CRC32C of the packed bytes after `start + record_header_bytes` into the
/// header at `start`.
void put_checksum(std::string& out, std::size_t start) {
  std::uint32_t crc = crc32c(std::string_view(out).substr(start + record_header_bytes));
  for (int b = 0; b < 4; ++b)
    out[start + b] = static_cast<char>((crc >> (8 * b)) & 0xFF);
}

void frame(std::string_view packed, std::string& out) {
  std::size_t start = out.size();
  out.append(record_header_bytes, '\0');
  out.append(packed);
  put_checksum(out, start);
}

void pack_and_frame(std::string_view unpacked, std::string& out) {
  std::size_t start = out.size();
  out.append(record_header_bytes, '\0');
  pack(unpacked, out);
  put_checksum(out, start);
}

status unframe(std::uint64_t pos, std::string_view value, std::string_view pid_hint,
               std::vector<std::uint64_t>& words) {
  auto unpack_bounded = [&](std::string_view packed, std::string& why) {
    std::size_t n = announced_words(packed, why);
    if (n == 0) return false;
    // The message names the position; built only for a record that fails (rare).
    auto st = unpack(packed, words, {}, n);
    if (!st.ok()) st = unpack(packed, words, at_position(pos), n);
    if (!st.ok()) {
      why = st.message();
      return false;
    }
    if (words.size() != n) {
      why = "unpacked " + std::to_string(words.size() * 8) + " bytes, the segment table says " +
            std::to_string(n * 8);
      return false;
    }
    return true;
  };
  auto fail = [&](const std::string& why) {
    std::string pid(pid_hint);
    std::string ignored;
    if (pid.empty() && value.size() > record_header_bytes &&
        unpack_bounded(value.substr(record_header_bytes), ignored))
      pid = peek_persistence_id({reinterpret_cast<const char*>(words.data()), words.size() * 8});
    words.clear();
    return event_error(pos, pid,
                       "is corrupt (table events, key " + std::to_string(pos) + ": " + why + ")",
                       restore_advice);
  };
  if (value.size() <= record_header_bytes) return fail("record truncated");
  auto packed = value.substr(record_header_bytes);
  if (get_le32(value.data()) != crc32c(packed)) return fail("record checksum mismatch");
  std::string why;
  if (!unpack_bounded(packed, why)) return fail(why);
  return {};
}

} // namespace strata::persistence::detail
