// File: strata/runtime/ids.hpp
//
// Entity identifiers at strata's API boundary, and the one escaping rule for printing
// any stored text (ids, user-typed fields) as part of a line of output.
//
//   if (auto st = strata::validate_id("account", id); !st.ok())
//     std::cerr << st.to_string() << "\n";     // invalid_argument: what is wrong, where
//   auto pid = strata::make_persistence_id("account", "acct-1");   // "account:acct-1"
//   std::cout << strata::escape_text(owner) << "\n";               // always one line
//
// The rules (docs/runtime.md, "Identifiers"):
// - a type name is 1.. bytes of printable UTF-8 without ':';
// - an entity id is 1.. bytes of printable UTF-8 (':' allowed);
// - the persistence id "<type>:<id>" is at most persistence_id_max_bytes (255) bytes;
// - printable UTF-8 = well-formed UTF-8 (no overlong forms, surrogates or code points
//   above U+10FFFF) without control characters (C0 U+0000..U+001F, DEL U+007F, C1
//   U+0080..U+009F), line/paragraph separators (U+2028, U+2029) or bidirectional
//   controls (U+202A..U+202E, U+2066..U+2069), which could split or reorder a line of
//   output. Spaces are allowed.
//
// Threads: pure functions; any thread.
#pragma once

#include "strata/persistence/persistence_id.hpp"
#include "strata/persistence/status.hpp"

#include <cstddef>
#include <string>
#include <string_view>

namespace strata {

/// The longest persistence id "<type>:<id>", in bytes.
inline constexpr std::size_t persistence_id_max_bytes = 255;

/// Checks an aggregate type name (see the rules above). Errors: invalid_argument saying
/// what is wrong (empty, contains ':', which byte is not printable UTF-8, too long).
persistence::status validate_type_name(std::string_view type);

/// Checks the entity id `id` of aggregate type `type`, and the persistence id they
/// form. Errors: invalid_argument naming the id (escaped) and what is wrong: empty,
/// the offset and kind of the first byte that is not printable UTF-8, or the length of
/// "<type>:<id>" beyond persistence_id_max_bytes; or those of validate_type_name.
persistence::status validate_id(std::string_view type, std::string_view id);

/// validate_id for a type name already checked (validate_type_name): the id and the
/// length of the persistence id only. Allocates nothing when the id is valid.
persistence::status validate_entity_id(std::string_view type, std::string_view id);

/// Empty when `text` is printable UTF-8 (the rules above); otherwise what is wrong with
/// its first bad byte, e.g. "byte 3 is a control character (U+000A)". For checking
/// other user-typed text (names, labels) by the same rule.
std::string first_unprintable(std::string_view text);

/// "<type>:<id>" — the journal stream and Kafka key of an entity (no validation), and
/// its type part: the helpers of strata/persistence/persistence_id.hpp.
using persistence::make_persistence_id;
using persistence::type_of_persistence_id;

/// `text` made safe to print inside one line of output: `\` → `\\`, newline → `\n`,
/// tab → `\t`, carriage return → `\r`, every other byte of a control character, of a
/// line/paragraph separator or bidirectional control, and every byte that is not part
/// of well-formed UTF-8 → `\xNN` (two upper-case hex digits); with `escape_space`, a
/// space → `\x20` too (for a field that ends at the next space). Everything else (printable
/// ASCII and UTF-8) is copied. The result never contains a byte below 0x20 or 0x7F.
std::string escape_text(std::string_view text, bool escape_space = false);

} // namespace strata
