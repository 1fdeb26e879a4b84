// libFuzzer target: a stored journal record after its CRC32C header, i.e. what
// journal.cpp's `unframe` does once the checksum matched (a damaged record whose CRC
// still matches, or a record written by a buggy writer): Cap'n Proto unpacking, then
// the envelope decode the journal runs on the unpacked words.
//
// Properties: no crash, no sanitizer finding, every failure is `corrupt`; pack(unpack(x))
// unpacks to the same words; a decoded record re-encodes to itself (decode(encode(r)) == r).
#include "envelope_codec.hpp"
#include "fuzz_util.hpp"
#include "strata/persistence/codec.hpp"

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

using namespace strata::persistence;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view packed(reinterpret_cast<const char*>(data), size);
  std::vector<std::uint64_t> words;
  auto st = detail::unpack(packed, words, "position 1");
  if (!st.ok()) {
    FUZZ_CHECK(st.code() == errc::corrupt);
    return 0;
  }
  // Unpacking is bounded: each input byte yields at most 256 words (a zero run).
  FUZZ_CHECK(words.size() <= size * 256);
  // pack is the journal's own (word-at-a-time) packer: packing the words again and
  // unpacking the result gives the same words.
  std::string repacked;
  detail::pack({reinterpret_cast<const char*>(words.data()), words.size() * 8}, repacked);
  std::vector<std::uint64_t> words2;
  FUZZ_CHECK(detail::unpack(repacked, words2, "repacked").ok());
  FUZZ_CHECK(words2 == words);
  event_view view;
  auto dv = detail::decode_envelope_view(words.data(), words.size(), "position 1", view);
  auto dr = detail::decode_envelope_words(words.data(), words.size(), "position 1");
  FUZZ_CHECK(dv.ok() == dr.has_value());
  if (!dr.has_value()) {
    FUZZ_CHECK(dr.error().code() == errc::corrupt);
    return 0;
  }
  FUZZ_CHECK(view.to_record() == *dr);
  auto again = decode_envelope(encode_envelope(*dr), "re-encoded");
  FUZZ_CHECK(again.has_value());
  FUZZ_CHECK(*again == *dr);
  return 0;
}
