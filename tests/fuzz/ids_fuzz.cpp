// libFuzzer target: entity ids and the escaping of printed text
// (runtime/include/strata/runtime/ids.hpp): `validate_id`, `first_unprintable`,
// `escape_text`.
//
// Properties: no crash, no sanitizer finding; escaped text is printable UTF-8 without
// control bytes (so a printed field is always one line), and without spaces when asked;
// printable text without a backslash escapes to itself; a valid id is printable and
// forms a persistence id of at most 255 bytes.
#include "fuzz_util.hpp"
#include "strata/runtime/ids.hpp"

#include <cstdint>
#include <string>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  for (bool escape_space : {false, true}) {
    auto e = strata::escape_text(text, escape_space);
    for (unsigned char c : e)
      FUZZ_CHECK(c >= 0x20 && c != 0x7F && !(escape_space && c == ' '));
    FUZZ_CHECK(strata::first_unprintable(e).empty());
  }
  bool printable = strata::first_unprintable(text).empty();
  if (printable && text.find('\\') == std::string_view::npos)
    FUZZ_CHECK(strata::escape_text(text) == text);
  if (strata::validate_id("account", text).ok()) {
    FUZZ_CHECK(printable && !text.empty());
    FUZZ_CHECK(strata::make_persistence_id("account", text).size() <=
               strata::persistence_id_max_bytes);
  }
  (void)strata::validate_type_name(text);
  (void)strata::type_of_persistence_id(text);
  return 0;
}
