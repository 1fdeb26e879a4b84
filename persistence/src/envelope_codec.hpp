// Internal: the envelope codec's allocation-light entry points used by the journal.
#pragma once

#include "strata/persistence/event.hpp"
#include "strata/persistence/status.hpp"

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace strata::persistence::detail {

/// The envelope's fields, borrowed (no copies): the one list that encode, decode and
/// peek use. `checksum` is computed by encode (whatever it says) and checked by decode.
using envelope_fields = event_view;

/// Appends the serialised envelope (standard Cap'n Proto framing, unpacked, one
/// segment) to `out`. Written directly in the wire format (no MessageBuilder, no
/// allocation); codec_test checks it against Cap'n Proto's own reader.
void encode_envelope(const envelope_fields& f, std::string& out);

/// Appends the Cap'n Proto packed encoding of `unpacked` (a whole number of words).
void pack(std::string_view unpacked, std::string& out);

/// Unpacks a packed message into `out` (word-aligned), at most `max_words` words (the
/// caller's bound, e.g. from the segment table: see record.hpp). Errors: corrupt
/// (malformed, or more than max_words words).
status unpack(std::string_view packed, std::vector<std::uint64_t>& out, std::string_view where,
              std::size_t max_words);

/// Decodes an unpacked envelope.
result<event_record> decode_envelope(std::string_view bytes, std::string_view where);

/// Decodes an envelope in aligned words into a view whose strings point into `words`.
/// The canonical form (what encode_envelope writes, without tags) is read directly;
/// any other form goes through Cap'n Proto's reader. Errors: corrupt.
status decode_envelope_view(const std::uint64_t* words, std::size_t n, std::string_view where,
                            event_view& out);

/// Decodes an unpacked single-segment envelope (what read_global_raw hands out and the
/// Kafka bridge publishes) anywhere in memory: the
/// views point into `bytes`, or into `scratch` when `bytes` is not word-aligned (then
/// copied there). Errors: corrupt (`where` names the source in the message).
status peek_envelope(std::string_view bytes, std::vector<std::uint64_t>& scratch,
                     std::string_view where, event_view& out);

/// decode_envelope_view through Cap'n Proto's reader only, never the fast decoder of
/// the canonical form: the reference the tests and the fuzz target compare it with.
status decode_envelope_reference(const std::uint64_t* words, std::size_t n, std::string_view where,
                                 event_view& out);

/// Decodes an envelope already in aligned words (e.g. just unpacked).
result<event_record> decode_envelope_words(const std::uint64_t* words, std::size_t n,
                                           std::string_view where);

/// The persistence id of an unpacked envelope, or empty if it does not decode (used
/// to name the stream in error messages about a corrupt record).
std::string peek_persistence_id(std::string_view bytes) noexcept;

} // namespace strata::persistence::detail
