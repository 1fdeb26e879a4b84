// libFuzzer target: an envelope as Kafka consumers and `decode_envelope` see it
// (standard Cap'n Proto flat framing, unpacked), and a snapshot record: the public
// decoders, the journal's word decoder and the Kafka bridge's peek.
//
// Properties: no crash, no sanitizer finding, every failure is `corrupt`; the decoders
// agree with each other; whatever decodes re-encodes to itself.
#include "envelope_codec.hpp"
#include "fuzz_util.hpp"
#include "strata/persistence/codec.hpp"
#include "strata/persistence/envelope_peek.hpp"

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

using namespace strata::persistence;

namespace {

void check_envelope(std::string_view bytes) {
  auto r = decode_envelope(bytes, "fuzz input");
  std::vector<std::uint64_t> scratch;
  event_view peeked;
  auto peek = peek_envelope(bytes, peeked, scratch);
  (void)detail::peek_persistence_id(bytes);
  if (!r.has_value()) {
    FUZZ_CHECK(r.error().code() == errc::corrupt);
    return;
  }
  // Whatever the journal's decoder accepts, the Kafka bridge reads the same way.
  FUZZ_CHECK(peek.ok());
  FUZZ_CHECK(peeked.persistence_id == r->persistence_id && peeked.seq == r->seq &&
             peeked.position == r->position && peeked.type == r->type);
  auto again = decode_envelope(encode_envelope(*r), "re-encoded");
  FUZZ_CHECK(again.has_value());
  FUZZ_CHECK(*again == *r);
  // The word decoder the journal uses agrees when the message is one segment.
  std::vector<std::uint64_t> words(bytes.size() / 8);
  std::memcpy(words.data(), bytes.data(), words.size() * 8);
  auto w = detail::decode_envelope_words(words.data(), words.size(), "fuzz input");
  if (w.has_value()) FUZZ_CHECK(*w == *r);
}

void check_snapshot(std::string_view bytes) {
  auto s = decode_snapshot(bytes, "fuzz input");
  if (!s.has_value()) {
    FUZZ_CHECK(s.error().code() == errc::corrupt);
    return;
  }
  auto again = decode_snapshot(encode_snapshot(*s), "re-encoded");
  FUZZ_CHECK(again.has_value());
  FUZZ_CHECK(again->persistence_id == s->persistence_id && again->seq == s->seq &&
             again->timestamp_ns == s->timestamp_ns && again->type == s->type &&
             again->schema_version == s->schema_version && again->payload == s->payload &&
             again->checksum == s->checksum);
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view bytes(reinterpret_cast<const char*>(data), size);
  check_envelope(bytes);
  check_snapshot(bytes);
  // Misaligned input: the decoders copy or read it byte-wise, never fault.
  if (size > 0) {
    std::string shifted(1, '\0');
    shifted.append(bytes);
    check_envelope(std::string_view(shifted).substr(1));
  }
  return 0;
}
