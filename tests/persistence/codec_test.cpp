// Tests of the codec (persistence/src/codec.cpp, crc32c.cpp): CRC32C against published
// vectors and a bitwise reference, envelope and snapshot round trips, checksum checks.
#include "strata/persistence/codec.hpp"

#include "test_util.hpp"

#include <rapidcheck.h>

#include <random>
#include <string>

using namespace strata::persistence;
using namespace strata::persistence::test;

namespace {

/// Bit-at-a-time CRC32C (reflected polynomial 0x82F63B78): slow and obviously right.
std::uint32_t crc32c_reference(std::string_view data, std::uint32_t seed = 0) {
  std::uint32_t crc = ~seed;
  for (unsigned char c : data) {
    crc ^= c;
    for (int k = 0; k < 8; ++k)
      crc = (crc >> 1) ^ (0x82F63B78u & (0u - (crc & 1u)));
  }
  return ~crc;
}

/// Flips one byte inside `needle` within `bytes`.
std::string flip_inside(std::string bytes, const std::string& needle, std::size_t offset) {
  auto at = bytes.find(needle);
  REQUIRE(at != std::string::npos);
  bytes[at + offset] = static_cast<char>(bytes[at + offset] ^ 0x01);
  return bytes;
}

snapshot_record sample_snapshot(std::string payload) {
  snapshot_record s;
  s.persistence_id = "cart-9";
  s.seq = 88;
  s.timestamp_ns = -5; // before the epoch is representable
  s.type = "cart.state";
  s.schema_version = 12;
  s.payload = std::move(payload);
  s.checksum = crc32c(s.payload);
  return s;
}

bool same(const snapshot_record& a, const snapshot_record& b) {
  return a.persistence_id == b.persistence_id && a.seq == b.seq &&
         a.timestamp_ns == b.timestamp_ns && a.type == b.type &&
         a.schema_version == b.schema_version && a.payload == b.payload && a.checksum == b.checksum;
}

} // namespace

TEST_CASE("codec: crc32c matches published vectors") {
  CHECK(crc32c("123456789") == 0xE3069283u);
  CHECK(crc32c("") == 0u);
  // RFC 3720 (iSCSI) B.4 test vectors.
  CHECK(crc32c(std::string(32, '\0')) == 0x8A9136AAu);
  CHECK(crc32c(std::string(32, '\xff')) == 0x62A8AB43u);
  std::string ascending, descending;
  for (int i = 0; i < 32; ++i) {
    ascending.push_back(static_cast<char>(i));
    descending.push_back(static_cast<char>(31 - i));
  }
  CHECK(crc32c(ascending) == 0x46DD794Eu);
  CHECK(crc32c(descending) == 0x113FDB5Cu);
}

TEST_CASE("codec: crc32c equals the bitwise reference at every length and alignment") {
  STRATA_TEST_SEED(seed);
  std::mt19937_64 rng(seed);
  const std::string buf = random_bytes(rng, 4096 + 64);
  for (std::size_t offset = 0; offset < 16; ++offset)
    for (std::size_t n :
         {0u, 1u, 3u, 7u, 8u, 9u, 15u, 16u, 31u, 63u, 64u, 65u, 255u, 1000u, 4096u}) {
      auto piece = std::string_view(buf).substr(offset, n);
      INFO("offset " << offset << " length " << n);
      CHECK(crc32c(piece) == crc32c_reference(piece));
    }
  // The seed continues a checksum over split input.
  auto whole = std::string_view(buf).substr(0, 1000);
  for (std::size_t cut : {0u, 1u, 5u, 8u, 500u, 999u, 1000u})
    CHECK(crc32c(whole.substr(cut), crc32c(whole.substr(0, cut))) == crc32c(whole));
}

TEST_CASE("codec: envelopes round trip with every field") {
  STRATA_TEST_SEED(seed);
  std::mt19937_64 rng(seed);
  for (std::size_t n : {0u, 1u, 100u, 4093u, 1u << 20}) {
    auto rec = sample_record(random_bytes(rng, n));
    auto in = rec;
    in.checksum = 0xdeadbeef; // ignored: encode computes it from the payload
    auto bytes = encode_envelope(in);
    CHECK(bytes.size() % 8 == 0);
    auto back = decode_envelope(bytes);
    STRATA_REQUIRE_VALUE(back);
    CHECK(*back == rec);
    CHECK(back->checksum == crc32c(rec.payload));
  }
  // Defaults and empty strings survive too.
  event_record empty;
  empty.checksum = crc32c("");
  auto back = decode_envelope(encode_envelope(empty));
  STRATA_REQUIRE_VALUE(back);
  CHECK(*back == empty);
}

TEST_CASE("codec: snapshots round trip") {
  for (std::string payload :
       {std::string(), std::string("\0state\xff", 7), std::string(9000, 's')}) {
    auto s = sample_snapshot(payload);
    auto in = s;
    in.checksum = 1;
    auto back = decode_snapshot(encode_snapshot(in));
    STRATA_REQUIRE_VALUE(back);
    CHECK(same(*back, s));
  }
}

TEST_CASE("codec: a payload that does not match its checksum is corrupt") {
  auto rec = sample_record("the-payload-of-a-deposit-event");
  auto bad = flip_inside(encode_envelope(rec), rec.payload, 5);
  {
    auto r = decode_envelope(bad, "kafka partition 3 offset 17");
    REQUIRE(!r.has_value());
    INFO("error: " << r.error().to_string());
    CHECK(r.error().code() == errc::corrupt);
    CHECK(r.error().message().find("kafka partition 3 offset 17") != std::string::npos);
  }
  {
    auto snap = sample_snapshot("the-state-of-a-shopping-cart");
    auto sbad = flip_inside(encode_snapshot(snap), snap.payload, 3);
    auto s = decode_snapshot(sbad, "restore file cart.snap");
    REQUIRE(!s.has_value());
    INFO("error: " << s.error().to_string());
    CHECK(s.error().code() == errc::corrupt);
    CHECK(s.error().message().find("restore file cart.snap") != std::string::npos);
  }

  // Damage to the stored checksum itself is detected too.
  auto good = encode_envelope(rec);
  std::string sum(4, '\0');
  for (int i = 0; i < 4; ++i)
    sum[static_cast<std::size_t>(i)] = static_cast<char>((rec.checksum >> (8 * i)) & 0xff);
  auto at = good.find(sum);
  if (at != std::string::npos) { // little-endian u32 in the data section
    good[at] = static_cast<char>(good[at] ^ 0x80);
    CHECK(decode_envelope(good).error().code() == errc::corrupt);
  }
}

TEST_CASE("codec: property: any event record round trips through its envelope") {
  const bool ok = rc::check("decode(encode(e)) == e", [] {
    event_record e;
    e.persistence_id = *rc::gen::arbitrary<std::string>();
    e.seq = *rc::gen::arbitrary<std::uint64_t>();
    e.position = *rc::gen::arbitrary<std::uint64_t>();
    e.timestamp_ns = *rc::gen::arbitrary<std::int64_t>();
    e.type = *rc::gen::arbitrary<std::string>();
    e.schema_version = *rc::gen::arbitrary<std::uint32_t>();
    e.payload = *rc::gen::container<std::string>(rc::gen::arbitrary<char>());
    e.tags = *rc::gen::arbitrary<std::vector<std::string>>();
    e.correlation_id = *rc::gen::arbitrary<std::string>();
    e.causation_id = *rc::gen::arbitrary<std::string>();
    e.writer_node = *rc::gen::arbitrary<std::string>();
    e.shard_epoch = *rc::gen::arbitrary<std::uint64_t>();
    e.checksum = crc32c(e.payload);
    auto back = decode_envelope(encode_envelope(e));
    RC_ASSERT(back.has_value());
    RC_ASSERT(*back == e);
  });
  CHECK(ok);
}
