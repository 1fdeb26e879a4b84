// detail::unframe (persistence/src/record.hpp): the framing check of a stored record
// trusts no length read from the bytes (issue 7, finding 4).
#include "envelope_codec.hpp"
#include "record.hpp"
#include "strata/persistence/codec.hpp"

#include "test_util.hpp"

#include <cstring>
#include <random>
#include <string>
#include <vector>

using namespace strata::persistence;
using namespace strata::persistence::test;

namespace {

/// A stored record of `e`: header + packed envelope.
std::string stored_record(const event_record& e) {
  auto unpacked = encode_envelope(e);
  std::string packed, out;
  detail::pack(unpacked, packed);
  detail::frame(packed, out);
  return out;
}

/// A record whose packed bytes are `packed` verbatim, with a correct checksum.
std::string framed(const std::string& packed) {
  std::string out;
  detail::frame(packed, out);
  return out;
}

bool mentions(const status& st, const std::string& what) {
  return st.message().find(what) != std::string::npos;
}

} // namespace

TEST_CASE("record: a stored record unframes and decodes to the event") {
  auto e = sample_record("payload");
  e.position = 42;
  std::vector<std::uint64_t> words;
  STRATA_REQUIRE_OK(detail::unframe(42, stored_record(e), {}, words));
  auto back = detail::decode_envelope_words(words.data(), words.size(), "position 42");
  STRATA_REQUIRE_VALUE(back);
  CHECK(*back == e);
}

TEST_CASE("record: segment tables that announce more than the bytes hold are corrupt") {
  std::vector<std::uint64_t> words;
  // Segment count 1, size 0x7FFFFFFF words (16 GiB): tag 0xF0 = bytes 4..7 present.
  std::string huge = std::string("\xF0\xFF\xFF\xFF\x7F", 5) + std::string("\x00\xFF", 2);
  auto st = detail::unframe(7, framed(huge), "s", words);
  CHECK(st.code() == errc::corrupt);
  CHECK(mentions(st, "segment table announces"));
  CHECK(mentions(st, "position 7"));
  CHECK(words.empty());
  // 1000 words announced, a zero run that would produce 256: unpacks short.
  std::string shorter = std::string("\x30\xE8\x03", 3) + std::string("\x00\xFF", 2);
  st = detail::unframe(8, framed(shorter), "s", words);
  CHECK(st.code() == errc::corrupt);
  // 3 words announced, zero runs that would produce 512: stopped at the bound.
  std::string longer = std::string("\x10\x02", 2) + std::string("\x00\xFF\x00\xFF", 4);
  st = detail::unframe(9, framed(longer), "s", words);
  CHECK(st.code() == errc::corrupt);
  CHECK(mentions(st, "announced size"));
  // Two segments.
  std::string two = std::string("\x11\x01\x01", 3) + std::string("\x00\x05", 2);
  st = detail::unframe(10, framed(two), "s", words);
  CHECK(st.code() == errc::corrupt);
  CHECK(mentions(st, "segments"));
}

TEST_CASE("record: every truncation and single-bit flip of a record is corrupt or the "
          "same event") {
  STRATA_TEST_SEED(seed);
  std::mt19937_64 rng(seed);
  auto e = sample_record(random_bytes(rng, 300));
  e.position = 5;
  auto rec = stored_record(e);
  std::vector<std::uint64_t> words;
  for (std::size_t n = 0; n < rec.size(); ++n) {
    auto st = detail::unframe(5, rec.substr(0, n), {}, words);
    CHECK(st.code() == errc::corrupt);
  }
  for (std::size_t bit = 0; bit < rec.size() * 8; ++bit) {
    auto bad = rec;
    bad[bit / 8] = static_cast<char>(bad[bit / 8] ^ (1 << (bit % 8)));
    auto st = detail::unframe(5, bad, {}, words);
    // CRC32C detects every single-bit error.
    CHECK(st.code() == errc::corrupt);
  }
}

TEST_CASE("record: the fast envelope decoder agrees with Cap'n Proto's reader on every "
          "single-bit flip") {
  // decode_envelope_view reads the canonical form itself; any disagreement with the
  // reference (a value, or ok versus corrupt) is a bug in that fast path.
  event_record e;
  e.persistence_id = "account:acct-42";
  e.seq = 7;
  e.position = 1234;
  e.timestamp_ns = 99;
  e.type = "deposited";
  e.payload = std::string("\x01\x00\x02payload", 10);
  e.correlation_id = "c";
  e.writer_node = "local";
  e.shard_epoch = 3;
  auto bytes = encode_envelope(e);
  REQUIRE(bytes.size() % 8 == 0);
  std::vector<std::uint64_t> words(bytes.size() / 8);
  std::size_t agreed_ok = 0;
  for (std::size_t bit = 0; bit <= bytes.size() * 8; ++bit) {
    std::memcpy(words.data(), bytes.data(), bytes.size());
    if (bit < bytes.size() * 8)
      reinterpret_cast<unsigned char*>(words.data())[bit / 8] ^= 1u << (bit % 8);
    event_view fast, ref;
    auto a = detail::decode_envelope_view(words.data(), words.size(), "test", fast);
    auto b = detail::decode_envelope_reference(words.data(), words.size(), "test", ref);
    INFO("bit " << bit);
    REQUIRE(a.code() == b.code());
    if (!a.ok()) continue;
    ++agreed_ok;
    CHECK(fast.to_record() == ref.to_record());
  }
  CHECK(agreed_ok > 1); // the unflipped envelope, and flips of fields without a checksum
}

TEST_CASE("record: peek_envelope reads an envelope at any alignment") {
  auto e = sample_record("payload");
  e.position = 9;
  auto bytes = encode_envelope(e);
  std::string shifted = "x" + bytes; // a misaligned copy, as a Kafka client may hand out
  std::vector<std::uint64_t> scratch;
  event_view v;
  REQUIRE(detail::peek_envelope(std::string_view(shifted).substr(1), scratch, "test", v).ok());
  CHECK(v.to_record() == e);
  CHECK(detail::peek_envelope(std::string_view(shifted).substr(1, 12), scratch, "test", v).code() ==
        errc::corrupt);
}

TEST_CASE("record: pack then unpack gives back any words, at every length") {
  // Words drawn to hit every tag shape: zero runs, raw runs, single bytes, sparse words.
  STRATA_TEST_SEED(seed);
  std::mt19937_64 rng(seed);
  for (int round = 0; round < 300; ++round) {
    std::vector<std::uint64_t> words(1 + rng() % 70);
    for (auto& w : words) {
      switch (rng() % 4) {
        case 0: w = 0; break;
        case 1: w = rng(); break;
        case 2: w = (rng() & 0xFF) << (8 * (rng() % 8)); break;
        default: w = rng() & rng() & rng(); break;
      }
    }
    std::string_view unpacked(reinterpret_cast<const char*>(words.data()), words.size() * 8);
    std::string packed;
    detail::pack(unpacked, packed);
    std::vector<std::uint64_t> back;
    REQUIRE(detail::unpack(packed, back, "test", words.size()).ok());
    CHECK(back == words);
    // One word fewer than the data holds is refused.
    CHECK(detail::unpack(packed, back, "test", words.size() - 1).code() == errc::corrupt);
  }
}
