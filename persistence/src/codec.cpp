#include "strata/persistence/codec.hpp"

#include "envelope_codec.hpp"
#include "strata/schema/envelope.capnp.h"

#include <capnp/message.h>
#include <capnp/serialize.h>
#include <kj/exception.h>

#include <array>
#include <cstring>

namespace strata::persistence {

namespace {

constexpr std::size_t words_for_text(std::size_t n) { return (n + 1 + 7) / 8; }
constexpr std::size_t words_for_data(std::size_t n) { return (n + 7) / 8; }

/// Appends the message in standard flat framing: segment count - 1, segment sizes
/// (u32 little-endian, padded to a word), then the segments.
void append_flat(capnp::MessageBuilder& b, std::string& out) {
  auto segs = b.getSegmentsForOutput();
  std::size_t header_words = (segs.size() + 2) / 2;
  std::size_t total = header_words;
  for (auto& s : segs)
    total += s.size();
  std::size_t start = out.size();
  out.resize(start + total * sizeof(capnp::word));
  char* p = out.data() + start;
  std::memset(p, 0, header_words * sizeof(capnp::word));
  auto put32 = [&](std::size_t idx, std::uint32_t v) {
    unsigned char b4[4] = {static_cast<unsigned char>(v), static_cast<unsigned char>(v >> 8),
                           static_cast<unsigned char>(v >> 16),
                           static_cast<unsigned char>(v >> 24)};
    std::memcpy(p + idx * 4, b4, 4);
  };
  put32(0, static_cast<std::uint32_t>(segs.size() - 1));
  for (std::size_t i = 0; i < segs.size(); ++i)
    put32(i + 1, static_cast<std::uint32_t>(segs[i].size()));
  p += header_words * sizeof(capnp::word);
  for (auto& s : segs) {
    std::memcpy(p, s.begin(), s.size() * sizeof(capnp::word));
    p += s.size() * sizeof(capnp::word);
  }
}

kj::ArrayPtr<const kj::byte> bytes_of(std::string_view s) {
  return {reinterpret_cast<const kj::byte*>(s.data()), s.size()};
}

std::string_view view_of(capnp::Data::Reader d) {
  return {reinterpret_cast<const char*>(d.begin()), d.size()};
}

std::string_view view_of(capnp::Text::Reader t) { return {t.cStr(), t.size()}; }

/// " at <where>", or nothing when `where` is empty.
std::string at(std::string_view where) {
  return where.empty() ? std::string{} : " at " + std::string(where);
}

status corrupt_record(std::string_view where, const std::string& why) {
  return {errc::corrupt, "record" + at(where) + " does not decode (" + why +
                           "); the data is damaged: restore it from a backup or from Kafka,"
                           " and run `strata journal verify` to check the whole journal"};
}

/// A payload whose CRC32C differs from the stored checksum.
status checksum_mismatch(const char* what, std::string_view pid, std::uint64_t seq,
                         std::string_view where, const char* advice) {
  return {errc::corrupt, std::string(what) + " of stream '" + std::string(pid) + "' seq " +
                           std::to_string(seq) + at(where) + ": payload checksum mismatch; " +
                           advice};
}

/// Runs `fn(reader)` over `n` aligned words; turns every decoding failure into a
/// `corrupt` status naming `where`.
template <class Fn>
status with_reader_words(const std::uint64_t* p, std::size_t n, std::string_view where, Fn&& fn) {
  if (n == 0) return corrupt_record(where, "empty message");
  try {
    capnp::ReaderOptions opts;
    opts.traversalLimitInWords = n * 4 + 64;
    opts.nestingLimit = 16;
    kj::ArrayPtr<const capnp::word> words(reinterpret_cast<const capnp::word*>(p), n);
    capnp::FlatArrayMessageReader reader(words, opts);
    if (reader.getEnd() != words.end())
      return corrupt_record(where, "trailing bytes after the message");
    return fn(reader);
  } catch (const kj::Exception& e) {
    return corrupt_record(where, e.getDescription().cStr());
  } catch (const std::exception& e) {
    return corrupt_record(where, e.what());
  }
}

/// Copies `bytes` into this thread's word buffer `buf` (aligned). Errors: corrupt (not
/// a whole number of words).
status copy_to_words(std::string_view bytes, std::string_view where,
                     std::vector<std::uint64_t>& buf) {
  if (bytes.size() < sizeof(capnp::word) || bytes.size() % sizeof(capnp::word) != 0)
    return corrupt_record(where, "size " + std::to_string(bytes.size()) +
                                   " is not a whole number of words");
  buf.resize(bytes.size() / 8);
  std::memcpy(buf.data(), bytes.data(), bytes.size());
  return {};
}

/// The same over an aligned copy of `bytes`.
template <class Fn>
status with_reader(std::string_view bytes, std::string_view where, Fn&& fn) {
  thread_local std::vector<std::uint64_t> buf;
  if (auto st = copy_to_words(bytes, where, buf); !st.ok()) return st;
  return with_reader_words(buf.data(), buf.size(), where, std::forward<Fn>(fn));
}

// ---- the envelope in wire format ------------------------------------------------------

/// Where each field of the envelope lies in its Cap'n Proto wire form: the one table
/// that the encoder and the fast decoder share (checked against the compiled schema).
struct envelope_layout {
  static constexpr std::size_t data_words = 5;
  static constexpr std::size_t ptr_words = 7;
  // Byte offsets in the data section.
  static constexpr std::size_t seq = 0, position = 8, timestamp_ns = 16, schema_version = 24,
                               checksum = 28, shard_epoch = 32;
  // Pointer indexes.
  enum ptr : std::size_t {
    persistence_id,
    type,
    payload,
    tags,
    correlation_id,
    causation_id,
    writer_node
  };
  /// The root pointer the encoder writes: a struct at offset 0 of this shape.
  static constexpr std::uint64_t root =
    (std::uint64_t{data_words} << 32) | (std::uint64_t{ptr_words} << 48);
  /// Message words before the first blob: root pointer, data section, pointers.
  static constexpr std::size_t fixed_words = 1 + data_words + ptr_words;
};
static_assert(schema::Envelope::_capnpPrivate::dataWordSize == envelope_layout::data_words);
static_assert(schema::Envelope::_capnpPrivate::pointerCount == envelope_layout::ptr_words);

void put_le32(char* p, std::uint32_t v) {
  for (int i = 0; i < 4; ++i)
    p[i] = static_cast<char>((v >> (8 * i)) & 0xFF);
}
void put_le64(char* p, std::uint64_t v) {
  for (int i = 0; i < 8; ++i)
    p[i] = static_cast<char>((v >> (8 * i)) & 0xFF);
}

/// A list pointer at word `at` to a list starting at word `target`.
std::uint64_t list_ptr(std::size_t at, std::size_t target, unsigned elem_size, std::size_t count) {
  auto offset = static_cast<std::uint64_t>(target - (at + 1));
  return 1u | (offset << 2) | (std::uint64_t{elem_size} << 32) | (std::uint64_t(count) << 35);
}

constexpr unsigned elem_byte = 2;
constexpr unsigned elem_pointer = 6;

/// Message words the envelope of `f` takes (root pointer included).
std::size_t envelope_words(const detail::envelope_fields& f) {
  auto text_words = [](std::string_view t) {
    return t.empty() ? 0 : words_for_text(t.size());
  };
  std::size_t tags_words = f.tags.size();
  for (auto& t : f.tags)
    tags_words += words_for_text(t.size());
  return envelope_layout::fixed_words + text_words(f.persistence_id) + text_words(f.type) +
         words_for_data(f.payload.size()) + tags_words + text_words(f.correlation_id) +
         text_words(f.causation_id) + text_words(f.writer_node);
}

/// Writes the blobs and lists of an envelope after its pointers (`m`: message word 0).
class blob_writer {
 public:
  explicit blob_writer(char* m) : m_(m) {}
  void blob(std::size_t ptr, std::string_view bytes, bool text) {
    if (bytes.empty() && text) return; // null pointer reads as ""
    std::size_t at = ptr_word(ptr);
    std::size_t count = bytes.size() + (text ? 1 : 0);
    put_le64(m_ + at * 8, list_ptr(at, next_, elem_byte, count));
    std::memcpy(m_ + next_ * 8, bytes.data(), bytes.size());
    next_ += (count + 7) / 8;
  }
  void texts(std::size_t ptr, const std::vector<std::string_view>& list) {
    if (list.empty()) return;
    std::size_t at = ptr_word(ptr), first = next_;
    put_le64(m_ + at * 8, list_ptr(at, first, elem_pointer, list.size()));
    next_ += list.size();
    for (std::size_t i = 0; i < list.size(); ++i) {
      put_le64(m_ + (first + i) * 8, list_ptr(first + i, next_, elem_byte, list[i].size() + 1));
      std::memcpy(m_ + next_ * 8, list[i].data(), list[i].size());
      next_ += words_for_text(list[i].size());
    }
  }

 private:
  static std::size_t ptr_word(std::size_t ptr) { return 1 + envelope_layout::data_words + ptr; }
  char* m_;
  std::size_t next_ = envelope_layout::fixed_words;
};

// ---- the fast decoder ------------------------------------------------------------------

std::uint64_t get_le64(const std::uint64_t* w) noexcept { return *w; } // little-endian host

/// A blob (Text or Data) read from pointer word `at` of a segment of `size` words.
/// False when the pointer is not a plain in-segment byte list (the caller then asks
/// Cap'n Proto's reader, which knows every legal encoding and names what is wrong).
bool read_blob(const std::uint64_t* seg, std::size_t size, std::size_t at, bool text,
               std::string_view& out) {
  std::uint64_t p = get_le64(seg + at);
  if (p == 0) {
    out = {};
    return true;
  }
  if ((p & 3) != 1 || ((p >> 32) & 7) != elem_byte) return false;
  auto offset = static_cast<std::int64_t>(static_cast<std::int32_t>(p & 0xFFFFFFFFu) >> 2);
  auto count = static_cast<std::size_t>(p >> 35);
  auto target = static_cast<std::int64_t>(at) + 1 + offset;
  if (target < 0 || static_cast<std::uint64_t>(target) > size ||
      (count + 7) / 8 > size - static_cast<std::size_t>(target))
    return false;
  const char* bytes = reinterpret_cast<const char*>(seg + target);
  if (text) {
    if (count == 0 || bytes[count - 1] != '\0') return false;
    --count;
  }
  out = {bytes, count};
  return true;
}

/// The envelope in the canonical form the encoder writes, read without Cap'n Proto's
/// reader (which costs more than the rest of a stream read). False: not that form.
bool read_canonical(const std::uint64_t* seg, std::size_t size, event_view& r) {
  using L = envelope_layout;
  if (size < L::fixed_words || get_le64(seg) != L::root) return false;
  const char* data = reinterpret_cast<const char*>(seg + 1);
  auto u64 = [&](std::size_t off) {
    std::uint64_t v;
    std::memcpy(&v, data + off, 8);
    return v;
  };
  auto u32 = [&](std::size_t off) {
    std::uint32_t v;
    std::memcpy(&v, data + off, 4);
    return v;
  };
  r.seq = u64(L::seq);
  r.position = u64(L::position);
  r.timestamp_ns = static_cast<std::int64_t>(u64(L::timestamp_ns));
  r.schema_version = u32(L::schema_version);
  r.checksum = u32(L::checksum);
  r.shard_epoch = u64(L::shard_epoch);
  const std::size_t p0 = 1 + L::data_words;
  r.tags.clear();
  if (get_le64(seg + p0 + L::tags) != 0) return false; // lists of texts: the reader's job
  return read_blob(seg, size, p0 + L::persistence_id, true, r.persistence_id) &&
         read_blob(seg, size, p0 + L::type, true, r.type) &&
         read_blob(seg, size, p0 + L::payload, false, r.payload) &&
         read_blob(seg, size, p0 + L::correlation_id, true, r.correlation_id) &&
         read_blob(seg, size, p0 + L::causation_id, true, r.causation_id) &&
         read_blob(seg, size, p0 + L::writer_node, true, r.writer_node);
}

} // namespace

namespace detail {

void encode_envelope(const envelope_fields& f, std::string& out) {
  using L = envelope_layout;
  std::size_t body = envelope_words(f);
  std::size_t start = out.size();
  out.resize(start + (1 + body) * 8, '\0');
  char* w = out.data() + start; // word 0 = segment table; message words follow
  put_le32(w, 0);
  put_le32(w + 4, static_cast<std::uint32_t>(body));
  char* m = w + 8;
  put_le64(m, L::root);
  char* data = m + 8;
  put_le64(data + L::seq, f.seq);
  put_le64(data + L::position, f.position);
  put_le64(data + L::timestamp_ns, static_cast<std::uint64_t>(f.timestamp_ns));
  put_le32(data + L::schema_version, f.schema_version);
  put_le32(data + L::checksum, crc32c(f.payload));
  put_le64(data + L::shard_epoch, f.shard_epoch);
  blob_writer b(m);
  b.blob(L::persistence_id, f.persistence_id, true);
  b.blob(L::type, f.type, true);
  b.blob(L::payload, f.payload, false);
  b.texts(L::tags, f.tags);
  b.blob(L::correlation_id, f.correlation_id, true);
  b.blob(L::causation_id, f.causation_id, true);
  b.blob(L::writer_node, f.writer_node, true);
}

namespace {
/// Bit b of the result is set when byte b of `w` is non-zero.
inline unsigned nonzero_bytes(std::uint64_t w) noexcept {
  std::uint64_t t = w | (w >> 4);
  t |= t >> 2;
  t |= t >> 1;
  t &= 0x0101010101010101ull;
  return static_cast<unsigned>((t * 0x0102040810204080ull) >> 56);
}
inline std::uint64_t load64(const char* p) noexcept {
  std::uint64_t w;
  std::memcpy(&w, p, 8);
  return w; // little-endian host (x86-64, aarch64): Cap'n Proto's byte order
}
} // namespace

void pack(std::string_view in, std::string& out) {
  static_assert(sizeof(std::uint64_t) == 8);
  const char* p = in.data();
  const std::size_t n = in.size() / 8;
  std::size_t start = out.size();
  // Worst case: tag + 8 bytes + run count per word. The string keeps its capacity
  // between calls (callers reuse it), so this resize rarely allocates.
  out.resize(start + n * 10 + 2);
  char* o = out.data() + start;
  std::size_t i = 0;
  while (i < n) {
    std::uint64_t w = load64(p + i * 8);
    unsigned tag = nonzero_bytes(w);
    *o++ = static_cast<char>(tag);
    ++i;
    if (tag == 0) {
      std::size_t run = 0;
      while (i < n && run < 255 && load64(p + i * 8) == 0) {
        ++run;
        ++i;
      }
      *o++ = static_cast<char>(run);
    } else if (tag == 0xFF) {
      std::memcpy(o, &w, 8);
      o += 8;
      // Following words with at most one zero byte are copied raw.
      std::size_t run = 0;
      auto at_most_one_zero = [](unsigned t) {
        unsigned z = ~t & 0xFFu;
        return (z & (z - 1)) == 0;
      };
      while (i + run < n && run < 255 && at_most_one_zero(nonzero_bytes(load64(p + (i + run) * 8))))
        ++run;
      *o++ = static_cast<char>(run);
      std::memcpy(o, p + i * 8, run * 8);
      o += run * 8;
      i += run;
    } else {
      for (unsigned b = 0; b < 8; ++b) { // branch-free: store always, advance if non-zero
        auto byte = static_cast<unsigned char>((w >> (8 * b)) & 0xFF);
        *o = static_cast<char>(byte);
        o += byte != 0;
      }
    }
  }
  out.resize(static_cast<std::size_t>(o - out.data()));
}

/// The number of set bits of each byte value: the bytes a packed word's tag announces.
constexpr std::array<unsigned char, 256> bytes_in_tag = [] {
  std::array<unsigned char, 256> t{};
  for (unsigned v = 0; v < 256; ++v)
    for (unsigned b = 0; b < 8; ++b)
      t[v] = static_cast<unsigned char>(t[v] + ((v >> b) & 1u));
  return t;
}();

/// For each tag: where byte b of the word comes from among the packed bytes that follow
/// (shift[b] / 8), and which bytes of the word are present (mask).
struct tag_shape {
  unsigned char shift[8];
  std::uint64_t mask;
};
constexpr std::array<tag_shape, 256> tag_shapes = [] {
  std::array<tag_shape, 256> t{};
  for (unsigned v = 0; v < 256; ++v) {
    unsigned taken = 0;
    for (unsigned b = 0; b < 8; ++b) {
      t[v].shift[b] = static_cast<unsigned char>(8 * taken);
      if ((v >> b) & 1u) {
        t[v].mask |= std::uint64_t{0xFF} << (8 * b);
        ++taken;
      }
    }
  }
  return t;
}();

/// The word of tag `tag` from the packed bytes at `p` (`avail` of them, at least as many
/// as the tag announces). Branch-free; reads 8 bytes at once when 8 are there.
inline std::uint64_t expand_word(unsigned tag, const unsigned char* p, std::size_t avail) {
  std::uint64_t raw = 0;
  if (avail >= 8)
    std::memcpy(&raw, p, 8); // little-endian host: byte k of `raw` is p[k]
  else
    for (std::size_t k = 0; k < avail; ++k)
      raw |= std::uint64_t{p[k]} << (8 * k);
  const auto& shape = tag_shapes[tag];
  std::uint64_t word = 0;
#pragma GCC unroll 8
  for (unsigned b = 0; b < 8; ++b)
    word |= ((raw >> shape.shift[b]) & 0xFF) << (8 * b);
  return word & shape.mask;
}

status unpack(std::string_view packed, std::vector<std::uint64_t>& out, std::string_view where,
              std::size_t max_words) {
  // Each packed byte unpacks to at most 128 words: the output is sized once and
  // written through a pointer, then trimmed.
  out.resize(std::min(max_words, packed.size() * 128));
  std::uint64_t* o = out.data();
  std::uint64_t* const o_end = o + out.size();
  const auto* p = reinterpret_cast<const unsigned char*>(packed.data());
  const auto* end = p + packed.size();
  auto bad = [&](const char* why) {
    out.clear();
    return corrupt_record(where, why);
  };
  while (p < end) {
    unsigned tag = *p++;
    const unsigned present = bytes_in_tag[tag];
    if (static_cast<std::size_t>(end - p) < present) return bad("packed data ends inside a word");
    if (o == o_end) return bad("unpacked data exceeds its announced size");
    if (tag == 0xFF) {
      std::memcpy(o++, p, 8);
      p += 8;
      if (p == end) return bad("packed data ends before a raw-run count");
      std::size_t run = *p++;
      if (static_cast<std::size_t>(end - p) < run * 8)
        return bad("packed data ends inside a raw run");
      if (run > static_cast<std::size_t>(o_end - o))
        return bad("a raw run exceeds the announced size");
      std::memcpy(o, p, run * 8);
      o += run;
      p += run * 8;
      continue;
    }
    *o++ = expand_word(tag, p, static_cast<std::size_t>(end - p));
    p += present;
    if (tag == 0) {
      if (p == end) return bad("packed data ends before a zero-run count");
      std::size_t run = *p++;
      if (run > static_cast<std::size_t>(o_end - o))
        return bad("a zero run exceeds the announced size");
      std::memset(o, 0, run * 8);
      o += run;
    }
  }
  out.resize(static_cast<std::size_t>(o - out.data()));
  return {};
}

namespace {
/// Decodes an Envelope from a reader into `r`, checking the payload checksum.
status check_payload(const event_view& r, std::string_view where) {
  if (crc32c(r.payload) == r.checksum) return {};
  return checksum_mismatch("event", r.persistence_id, r.seq, where,
                           "the data is damaged: restore it from a backup or from Kafka");
}

status read_envelope(capnp::MessageReader& reader, std::string_view where, event_view& r) {
  auto e = reader.getRoot<schema::Envelope>();
  r.persistence_id = view_of(e.getPersistenceId());
  r.seq = e.getSeq();
  r.position = e.getPosition();
  r.timestamp_ns = e.getTimestampNs();
  r.type = view_of(e.getEventType());
  r.schema_version = e.getSchemaVersion();
  r.payload = view_of(e.getPayload());
  r.tags.clear();
  if (e.hasTags())
    for (auto t : e.getTags())
      r.tags.push_back(view_of(t));
  r.correlation_id = view_of(e.getCorrelationId());
  r.causation_id = view_of(e.getCausationId());
  r.writer_node = view_of(e.getWriterNode());
  r.shard_epoch = e.getShardEpoch();
  r.checksum = e.getChecksum();
  return check_payload(r, where);
}

bool single_segment(const std::uint64_t* words, std::size_t n) {
  return n >= 2 && (words[0] & 0xFFFFFFFFu) == 0 && (words[0] >> 32) == n - 1;
}

/// Decodes an envelope in aligned words: the canonical form directly, any other form
/// through Cap'n Proto's reader.
status decode_words(const std::uint64_t* words, std::size_t n, std::string_view where,
                    event_view& out) {
  if (!single_segment(words, n))
    return corrupt_record(where, "not a single-segment message of the stored size");
  if (read_canonical(words + 1, n - 1, out)) return check_payload(out, where);
  return with_reader_words(words, n, where, [&](capnp::MessageReader& rd) {
    return read_envelope(rd, where, out);
  });
}

} // namespace

status decode_envelope_view(const std::uint64_t* words, std::size_t n, std::string_view where,
                            event_view& out) {
  return decode_words(words, n, where, out);
}

status peek_envelope(std::string_view bytes, std::vector<std::uint64_t>& scratch,
                     std::string_view where, event_view& out) {
  if (bytes.size() < sizeof(capnp::word) || bytes.size() % sizeof(capnp::word) != 0)
    return corrupt_record(where, "size " + std::to_string(bytes.size()) +
                                   " is not a whole number of words");
  const auto* words = reinterpret_cast<const std::uint64_t*>(bytes.data());
  if (reinterpret_cast<std::uintptr_t>(bytes.data()) % alignof(std::uint64_t) != 0) {
    scratch.resize(bytes.size() / 8);
    std::memcpy(scratch.data(), bytes.data(), bytes.size());
    words = scratch.data();
  }
  return decode_words(words, bytes.size() / 8, where, out);
}

status decode_envelope_reference(const std::uint64_t* words, std::size_t n, std::string_view where,
                                 event_view& out) {
  if (!single_segment(words, n))
    return corrupt_record(where, "not a single-segment message of the stored size");
  return with_reader_words(words, n, where, [&](capnp::MessageReader& rd) {
    return read_envelope(rd, where, out);
  });
}

result<event_record> decode_envelope_words(const std::uint64_t* words, std::size_t n,
                                           std::string_view where) {
  thread_local event_view v;
  if (auto st = decode_words(words, n, where, v); !st.ok()) return st;
  return v.to_record();
}

result<event_record> decode_envelope(std::string_view bytes, std::string_view where) {
  thread_local std::vector<std::uint64_t> buf;
  if (auto st = copy_to_words(bytes, where, buf); !st.ok()) return st;
  if (single_segment(buf.data(), buf.size()))
    return decode_envelope_words(buf.data(), buf.size(), where);
  thread_local event_view v; // another writer's framing (several segments): the reader's job
  auto st = with_reader_words(buf.data(), buf.size(), where, [&](capnp::MessageReader& rd) {
    return read_envelope(rd, where, v);
  });
  if (!st.ok()) return st;
  return v.to_record();
}

std::string peek_persistence_id(std::string_view bytes) noexcept {
  std::string pid;
  try {
    auto st = with_reader(bytes, {}, [&](capnp::MessageReader& reader) -> status {
      pid = view_of(reader.getRoot<schema::Envelope>().getPersistenceId());
      return {};
    });
    (void)st;
  } catch (...) {
    pid.clear();
  }
  return pid;
}

} // namespace detail

std::string encode_envelope(const event_record& r) {
  std::string out;
  detail::encode_envelope(event_view::of(r), out);
  return out;
}

result<event_record> decode_envelope(std::string_view bytes, std::string_view where) {
  return detail::decode_envelope(bytes, where);
}

std::string encode_snapshot(const snapshot_record& s) {
  std::size_t hint = 16 + words_for_text(s.persistence_id.size()) + words_for_text(s.type.size()) +
                     words_for_data(s.payload.size());
  capnp::MallocMessageBuilder b(static_cast<unsigned>(hint), capnp::AllocationStrategy::FIXED_SIZE);
  auto m = b.initRoot<schema::Snapshot>();
  m.setPersistenceId(capnp::Text::Reader(s.persistence_id.data(), s.persistence_id.size()));
  m.setSeq(s.seq);
  m.setTimestampNs(s.timestamp_ns);
  m.setStateType(capnp::Text::Reader(s.type.data(), s.type.size()));
  m.setSchemaVersion(s.schema_version);
  m.setPayload(bytes_of(s.payload));
  m.setChecksum(crc32c(s.payload));
  std::string out;
  append_flat(b, out);
  return out;
}

result<snapshot_record> decode_snapshot(std::string_view bytes, std::string_view where) {
  snapshot_record r;
  auto st = with_reader(bytes, where, [&](capnp::MessageReader& reader) -> status {
    auto m = reader.getRoot<schema::Snapshot>();
    r.persistence_id = view_of(m.getPersistenceId());
    r.seq = m.getSeq();
    r.timestamp_ns = m.getTimestampNs();
    r.type = view_of(m.getStateType());
    r.schema_version = m.getSchemaVersion();
    r.payload = view_of(m.getPayload());
    r.checksum = m.getChecksum();
    if (crc32c(r.payload) != r.checksum)
      return checksum_mismatch("snapshot", r.persistence_id, r.seq, where,
                               "delete the snapshot (recovery then replays the events)");
    return {};
  });
  if (!st.ok()) return st;
  return r;
}

} // namespace strata::persistence
