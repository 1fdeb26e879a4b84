#include "strata/persistence/codec.hpp"

#include "envelope_codec.hpp"
#include "strata/schema/envelope.capnp.h"

#include <capnp/message.h>
#include <capnp/serialize.h>
#include <kj/exception.h>

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

/// The same over an aligned copy of `bytes`.
template <class Fn>
status with_reader(std::string_view bytes, std::string_view where, Fn&& fn) {
  if (bytes.size() < sizeof(capnp::word) || bytes.size() % sizeof(capnp::word) != 0)
    return corrupt_record(where, "size " + std::to_string(bytes.size()) +
                                   " is not a whole number of words");
  thread_local std::vector<std::uint64_t> buf;
  buf.resize(bytes.size() / 8);
  std::memcpy(buf.data(), bytes.data(), bytes.size());
  return with_reader_words(buf.data(), buf.size(), where, std::forward<Fn>(fn));
}

// ---- the envelope in wire format ------------------------------------------------------
// Layout of Envelope (from the compiled schema): data section 5 words, 7 pointers.
// seq @ byte 0, position @ 8, timestampNs @ 16, schemaVersion @ 24 (u32), checksum @ 28
// (u32), shardEpoch @ 32. Pointers: persistenceId 0, eventType 1, payload 2, tags 3,
// correlationId 4, causationId 5, writerNode 6.
constexpr std::size_t env_data_words = 5;
constexpr std::size_t env_ptr_words = 7;

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

} // namespace

namespace detail {

void encode_envelope(const envelope_fields& f, std::string& out) {
  auto text_words = [](std::string_view t) {
    return t.empty() ? 0 : words_for_text(t.size());
  };
  std::size_t ntags = f.tags.size();
  std::size_t tags_words = ntags;
  for (auto& t : f.tags)
    tags_words += words_for_text(t.size());
  std::size_t body = 1 + env_data_words + env_ptr_words + text_words(f.persistence_id) +
                     text_words(f.type) + words_for_data(f.payload.size()) + tags_words +
                     text_words(f.correlation_id) + text_words(f.causation_id) +
                     text_words(f.writer_node);
  std::size_t start = out.size();
  out.resize(start + (1 + body) * 8, '\0');
  char* w = out.data() + start; // word 0 = segment table; message words follow
  put_le32(w, 0);
  put_le32(w + 4, static_cast<std::uint32_t>(body));
  char* m = w + 8;
  // Root struct pointer at message word 0: offset 0, 5 data words, 7 pointers.
  put_le64(m, (std::uint64_t{env_data_words} << 32) | (std::uint64_t{env_ptr_words} << 48));
  char* data = m + 8;
  put_le64(data + 0, f.seq);
  put_le64(data + 8, f.position);
  put_le64(data + 16, static_cast<std::uint64_t>(f.timestamp_ns));
  put_le32(data + 24, f.schema_version);
  put_le32(data + 28, crc32c(f.payload));
  put_le64(data + 32, f.shard_epoch);
  const std::size_t ptr0 = 1 + env_data_words; // word index of pointer 0
  std::size_t next = ptr0 + env_ptr_words;     // next free word
  auto blob = [&](std::size_t ptr_word, std::string_view bytes, bool text) {
    if (bytes.empty() && text) return; // null pointer reads as ""
    std::size_t count = bytes.size() + (text ? 1 : 0);
    put_le64(m + ptr_word * 8, list_ptr(ptr_word, next, elem_byte, count));
    std::memcpy(m + next * 8, bytes.data(), bytes.size());
    next += (count + 7) / 8;
  };
  blob(ptr0 + 0, f.persistence_id, true);
  blob(ptr0 + 1, f.type, true);
  blob(ptr0 + 2, f.payload, false);
  if (ntags) {
    std::size_t list = next;
    put_le64(m + (ptr0 + 3) * 8, list_ptr(ptr0 + 3, list, elem_pointer, ntags));
    next += ntags;
    for (std::size_t i = 0; i < ntags; ++i) {
      auto& t = f.tags[i];
      put_le64(m + (list + i) * 8, list_ptr(list + i, next, elem_byte, t.size() + 1));
      std::memcpy(m + next * 8, t.data(), t.size());
      next += words_for_text(t.size());
    }
  }
  blob(ptr0 + 4, f.correlation_id, true);
  blob(ptr0 + 5, f.causation_id, true);
  blob(ptr0 + 6, f.writer_node, true);
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

status unpack(std::string_view packed, std::vector<std::uint64_t>& out, std::string_view where,
              std::size_t max_words) {
  out.clear();
  const auto* p = reinterpret_cast<const unsigned char*>(packed.data());
  const auto* end = p + packed.size();
  auto bad = [&](const char* why) {
    return corrupt_record(where, why);
  };
  while (p < end) {
    unsigned char tag = *p++;
    std::uint64_t word = 0;
    for (int b = 0; b < 8; ++b)
      if (tag & (1u << b)) {
        if (p == end) return bad("packed data ends inside a word");
        word |= std::uint64_t{*p++} << (8 * b);
      }
    if (out.size() >= max_words) return bad("unpacked data exceeds its announced size");
    out.push_back(word);
    if (tag == 0) {
      if (p == end) return bad("packed data ends before a zero-run count");
      std::size_t run = *p++;
      if (run > max_words - out.size()) return bad("a zero run exceeds the announced size");
      out.resize(out.size() + run, 0);
    } else if (tag == 0xFF) {
      if (p == end) return bad("packed data ends before a raw-run count");
      std::size_t run = *p++;
      if (static_cast<std::size_t>(end - p) < run * 8)
        return bad("packed data ends inside a raw run");
      if (run > max_words - out.size()) return bad("a raw run exceeds the announced size");
      std::size_t at = out.size();
      out.resize(at + run);
      std::memcpy(out.data() + at, p, run * 8);
      p += run * 8;
    }
  }
  return {};
}

namespace {
/// Decodes an Envelope from a reader into `r`, checking the payload checksum.
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
  if (crc32c(r.payload) != r.checksum)
    return checksum_mismatch("event", r.persistence_id, r.seq, where,
                             "the data is damaged: restore it from a backup or from Kafka");
  return {};
}

status read_envelope(capnp::MessageReader& reader, std::string_view where, event_record& r) {
  thread_local event_view v;
  auto st = read_envelope(reader, where, v);
  if (st.ok()) r = v.to_record();
  return st;
}

bool single_segment(const std::uint64_t* words, std::size_t n) {
  return n >= 2 && (words[0] & 0xFFFFFFFFu) == 0 && (words[0] >> 32) == n - 1;
}
} // namespace

status decode_envelope_view(const std::uint64_t* words, std::size_t n, std::string_view where,
                            event_view& out) {
  if (!single_segment(words, n))
    return corrupt_record(where, "not a single-segment message of the stored size");
  return with_reader_words(words, n, where, [&](capnp::MessageReader& rd) {
    return read_envelope(rd, where, out);
  });
}

result<event_record> decode_envelope(std::string_view bytes, std::string_view where) {
  event_record r;
  auto st = with_reader(bytes, where, [&](capnp::MessageReader& rd) {
    return read_envelope(rd, where, r);
  });
  if (!st.ok()) return st;
  return r;
}

result<event_record> decode_envelope_words(const std::uint64_t* words, std::size_t n,
                                           std::string_view where) {
  event_record r;
  if (!single_segment(words, n))
    return corrupt_record(where, "not a single-segment message of the stored size");
  auto st = with_reader_words(words, n, where, [&](capnp::MessageReader& rd) {
    return read_envelope(rd, where, r);
  });
  if (!st.ok()) return st;
  return r;
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
