// libFuzzer target: a stored journal record, [CRC32C][packed Cap'n Proto envelope].
// The input is the packed envelope; the target runs
//   - `detail::unframe` (record.hpp) on the input as a whole record (so the checksum
//     mostly fails) and on the input framed with its correct checksum (so the fuzzer
//     reaches the segment-table bound and the unpacking behind it);
//   - `detail::unpack` and the envelope decode the journal runs on the unpacked words;
//   - `detail::pack` on those words (pack, then unpack, gives the same words).
// Until record.hpp exists (it comes with the journal's bounded unframing), only the
// unpack and decode parts are built.
//
// Properties: no crash, no sanitizer finding, every failure is `corrupt`; unframe's
// words are exactly what unpack gives for the size the segment table announces; a
// decoded record re-encodes to itself (decode(encode(r)) == r) and is what Cap'n Proto's
// reader decodes too; escape_bytes leaves only printable ASCII.
#include "envelope_codec.hpp"
#include "fuzz_util.hpp"
#include "strata/persistence/codec.hpp"

#include <cstdint>
#include <limits>
#include <string>
#include <string_view>
#include <vector>

#if __has_include("record.hpp")
#include "record.hpp"
#define STRATA_FUZZ_UNFRAME 1
#else
#define STRATA_FUZZ_UNFRAME 0
#endif

using namespace strata::persistence;

namespace {

/// detail::unpack without a bound (the bounded signature came with record.hpp).
status unpack_all(std::string_view packed, std::vector<std::uint64_t>& words) {
#if STRATA_FUZZ_UNFRAME
  return detail::unpack(packed, words, "position 1", std::numeric_limits<std::size_t>::max());
#else
  return detail::unpack(packed, words, "position 1");
#endif
}

#if STRATA_FUZZ_UNFRAME
void check_unframe(std::string_view packed, const std::vector<std::uint64_t>* unpacked) {
  std::vector<std::uint64_t> words;
  // The raw input as a stored record: its first four bytes are the checksum.
  auto raw = detail::unframe(7, packed, {}, words);
  FUZZ_CHECK(raw.ok() || raw.code() == errc::corrupt);
  // The input framed correctly: only the envelope's own structure decides.
  std::string framed;
  detail::frame(packed, framed);
  auto st = detail::unframe(7, framed, {}, words);
  if (!st.ok()) {
    FUZZ_CHECK(st.code() == errc::corrupt);
    FUZZ_CHECK(words.empty());
    return;
  }
  FUZZ_CHECK(words.size() >= 2 && words.size() * 8 <= detail::record_max_unpacked_bytes);
  FUZZ_CHECK((words[0] & 0xFFFFFFFFu) == 0 && (words[0] >> 32) + 1 == words.size());
  FUZZ_CHECK(unpacked != nullptr && *unpacked == words);
  for (unsigned char c : detail::escape_bytes(packed))
    FUZZ_CHECK(c >= 0x20 && c < 0x7F);
}
#endif

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view packed(reinterpret_cast<const char*>(data), size);
  std::vector<std::uint64_t> words;
  auto st = unpack_all(packed, words);
#if STRATA_FUZZ_UNFRAME
  check_unframe(packed, st.ok() ? &words : nullptr);
#endif
  if (!st.ok()) {
    FUZZ_CHECK(st.code() == errc::corrupt);
    return 0;
  }
  // Unpacking is bounded: each input byte yields at most 128 words (a zero run).
  FUZZ_CHECK(words.size() <= size * 128 + 1);
  std::string repacked;
  detail::pack({reinterpret_cast<const char*>(words.data()), words.size() * 8}, repacked);
  std::vector<std::uint64_t> words2;
  FUZZ_CHECK(unpack_all(repacked, words2).ok());
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
  // The fast decoder of the canonical form agrees with Cap'n Proto's reader.
  event_view ref;
  FUZZ_CHECK(detail::decode_envelope_reference(words.data(), words.size(), "position 1", ref).ok());
  FUZZ_CHECK(ref.to_record() == *dr);
  auto again = decode_envelope(encode_envelope(*dr), "re-encoded");
  FUZZ_CHECK(again.has_value());
  FUZZ_CHECK(*again == *dr);
  return 0;
}
