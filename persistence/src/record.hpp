// Internal: the framing of a stored journal record, [CRC32C u32 little-endian][packed
// Cap'n Proto envelope]. Exposed so that tests and the libFuzzer target
// (`unframe` over arbitrary bytes) can call it; nothing here trusts a length read from
// the bytes.
#pragma once

#include "strata/persistence/status.hpp"

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace strata::persistence::detail {

/// Bytes before the packed envelope: its CRC32C, little-endian.
constexpr std::size_t record_header_bytes = 4;

/// Upper bound on an unpacked envelope (segment table included). A record that claims
/// more is corrupt; appends never store one (max_batch_events * payload sizes stay far
/// below it in practice, and the commit path uses 32-bit offsets).
constexpr std::size_t record_max_unpacked_bytes = std::size_t{1} << 30;

/// Checks the framing of the record stored at global position `pos` and unpacks its
/// envelope into `words` (a single-segment Cap'n Proto message: segment table word,
/// then the segment). Bounded: the unpacked size is taken from the segment table only
/// after checking it against `record_max_unpacked_bytes` and the packed bytes present,
/// and unpacking stops at that size. Errors: corrupt, naming the position and (when
/// `pid_hint` is given or the envelope still decodes) the stream. Never throws.
status unframe(std::uint64_t pos, std::string_view value, std::string_view pid_hint,
               std::vector<std::uint64_t>& words);

/// Frames `packed` (a packed envelope) for storage: appends header and bytes to `out`.
void frame(std::string_view packed, std::string& out);

/// What to do about damaged derived tables (streams, stream_names, index, meta).
extern const char* const repair_advice;
/// What to do about a damaged record of the log.
extern const char* const restore_advice;

/// The one shape of an error about a stored event: corrupt, "event at position `pos` of
/// stream '`pid`' `what`; `advice`" (an empty `pid` prints as '<unknown>', escaped).
status event_error(std::uint64_t pos, std::string_view pid, const std::string& what,
                   std::string_view advice = repair_advice);

/// Packs `unpacked` (an unpacked envelope) and frames it for storage, appending header
/// and bytes to `out` (one pass: the checksum is written over the packed bytes in place).
void pack_and_frame(std::string_view unpacked, std::string& out);

/// `s` with every byte outside printable ASCII (and the backslash) written as \xNN, so
/// an id or type printed in a message or a tool's output line cannot forge a line.
std::string escape_bytes(std::string_view s);

} // namespace strata::persistence::detail
