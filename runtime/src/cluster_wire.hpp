// Private: the byte format of the router's batches between nodes (channels commands,
// reads and replies of strata::cluster::node). Little-endian fixed-width integers and
// length-prefixed strings; every read is bounds-checked, so a malformed batch is
// reported (and dropped by the receiver), never read past its end.
//
//   frame   = u8 version (1), u32 count, count × item
//   command = u64 request, u8 hops, str type, str entity id, str command bytes
//   read    = u64 request, u8 hops, u8 op, str persistence id, u64 from_seq, u64 to_seq,
//             u8 use_snapshot
//   reply   = u64 request, u8 status (0 ok: str bytes; 1 error: see put_error)
#pragma once

#include "strata/runtime/detail/routing.hpp"
#include "strata/runtime/errors.hpp"

#include <caf/error.hpp>
#include <caf/message.hpp>

#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>

namespace strata::detail::wire {

inline constexpr std::uint8_t version = 1;
inline constexpr std::size_t header_bytes = 5; // version + count

inline void put_u8(std::string& out, std::uint8_t v) { out.push_back(static_cast<char>(v)); }
inline void put_u32(std::string& out, std::uint32_t v) {
  char b[4];
  for (int i = 0; i < 4; ++i)
    b[i] = static_cast<char>((v >> (8 * i)) & 0xff);
  out.append(b, 4);
}
inline void put_u64(std::string& out, std::uint64_t v) {
  char b[8];
  for (int i = 0; i < 8; ++i)
    b[i] = static_cast<char>((v >> (8 * i)) & 0xff);
  out.append(b, 8);
}
inline void put_str(std::string& out, std::string_view s) {
  put_u32(out, static_cast<std::uint32_t>(s.size()));
  out.append(s.data(), s.size());
}

/// A frame under construction: the header is written when it is taken.
inline void start_frame(std::string& out) { out.assign(header_bytes, '\0'); }
inline void finish_frame(std::string& out, std::uint32_t count) {
  out[0] = static_cast<char>(version);
  for (int i = 0; i < 4; ++i)
    out[1 + i] = static_cast<char>((count >> (8 * i)) & 0xff);
}

/// Bounds-checked reading; `ok()` turns false at the first read past the end.
class reader {
 public:
  explicit reader(std::string_view b) : b_(b) {}
  bool ok() const noexcept { return ok_; }
  bool at_end() const noexcept { return pos_ == b_.size(); }
  std::uint8_t u8() {
    if (!need(1)) return 0;
    return static_cast<std::uint8_t>(b_[pos_++]);
  }
  std::uint32_t u32() { return static_cast<std::uint32_t>(uint(4)); }
  std::uint64_t u64() { return uint(8); }
  std::string_view str() {
    auto n = u32();
    if (!need(n)) return {};
    auto s = b_.substr(pos_, n);
    pos_ += n;
    return s;
  }

 private:
  bool need(std::size_t n) {
    if (!ok_ || b_.size() - pos_ < n) ok_ = false;
    return ok_;
  }
  std::uint64_t uint(int n) {
    if (!need(static_cast<std::size_t>(n))) return 0;
    std::uint64_t v = 0;
    for (int i = 0; i < n; ++i)
      v |= std::uint64_t{static_cast<unsigned char>(b_[pos_ + i])} << (8 * i);
    pos_ += static_cast<std::size_t>(n);
    return v;
  }
  std::string_view b_;
  std::size_t pos_ = 0;
  bool ok_ = true;
};

/// The item count of a frame, or nullopt when its header is bad.
inline std::optional<std::uint32_t> open_frame(reader& r) {
  auto v = r.u8();
  auto n = r.u32();
  if (!r.ok() || v != version) return std::nullopt;
  return n;
}

// -- errors: u8 kind (0 rejection, 1 runtime, 2 other), u8 code, u64 category,
//    u8 n, n × str context (the string elements of the context; other categories: its
//    rendering) -------------------------------------------------------------------

inline void put_error(std::string& out, const caf::error& err) {
  std::uint8_t kind = err.category() == rejected_category  ? 0
                      : err.category() == runtime_category ? 1
                                                           : 2;
  put_u8(out, kind);
  put_u8(out, err.code());
  put_u64(out, static_cast<std::uint64_t>(err.category()));
  const auto& ctx = err.context();
  if (kind == 2) {
    put_u8(out, ctx.empty() ? 0 : 1);
    if (!ctx.empty()) put_str(out, to_string(ctx));
    return;
  }
  std::uint8_t n = 0;
  while (n < 3 && n < ctx.size() && ctx.match_element<std::string>(n))
    ++n;
  put_u8(out, n);
  for (std::uint8_t i = 0; i < n; ++i)
    put_str(out, ctx.get_as<std::string>(i));
}

/// The error as it was on the sending node (same category, code and context strings).
inline caf::error get_error(reader& r) {
  r.u8(); // kind: the category says it all
  auto code = r.u8();
  auto cat = static_cast<caf::atom_value>(r.u64());
  auto n = r.u8();
  std::string s[3];
  for (std::uint8_t i = 0; i < n && i < 3; ++i)
    s[i] = std::string(r.str());
  if (!r.ok()) return make_runtime_error(runtime_errc::corrupt, "a malformed error in a reply");
  switch (n) {
    case 0: return caf::error{code, cat};
    case 1: return caf::error{code, cat, caf::make_message(std::move(s[0]))};
    case 2: return caf::error{code, cat, caf::make_message(std::move(s[0]), std::move(s[1]))};
    default:
      return caf::error{code, cat,
                        caf::make_message(std::move(s[0]), std::move(s[1]), std::move(s[2]))};
  }
}

// -- raw reads --------------------------------------------------------------------

inline std::string encode_raw_read(const raw_read& r) {
  std::string out;
  put_u8(out, r.snapshot ? 1 : 0);
  if (r.snapshot) {
    put_u64(out, r.snapshot->seq);
    put_u32(out, r.snapshot->schema_version);
    put_str(out, r.snapshot->payload);
  }
  put_u32(out, static_cast<std::uint32_t>(r.events.size()));
  for (const auto& e : r.events) {
    put_u64(out, e.seq);
    put_u64(out, static_cast<std::uint64_t>(e.timestamp_ns));
    put_str(out, e.type);
    put_u32(out, e.schema_version);
    put_str(out, e.payload);
  }
  return out;
}

inline std::optional<raw_read> decode_raw_read(std::string_view bytes) {
  reader r{bytes};
  raw_read out;
  if (r.u8() == 1) {
    raw_snapshot s;
    s.seq = r.u64();
    s.schema_version = r.u32();
    s.payload = std::string(r.str());
    out.snapshot = std::move(s);
  }
  auto n = r.u32();
  for (std::uint32_t i = 0; i < n && r.ok(); ++i) {
    raw_event e;
    e.seq = r.u64();
    e.timestamp_ns = static_cast<std::int64_t>(r.u64());
    e.type = std::string(r.str());
    e.schema_version = r.u32();
    e.payload = std::string(r.str());
    out.events.push_back(std::move(e));
  }
  if (!r.ok() || !r.at_end()) return std::nullopt;
  return out;
}

} // namespace strata::detail::wire
