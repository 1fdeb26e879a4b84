// File: strata/persistence/envelope_peek.hpp
//
// Reads an envelope (what journal::read_global_raw hands out and the Kafka bridge
// publishes) straight from its unpacked Cap'n Proto bytes, at any alignment, into the
// one list of the envelope's fields, `event_view` (strata/persistence/event.hpp). The
// journal's own decoder does the work; the payload checksum is checked. The Kafka bridge
// builds a record's key and headers with it.
//
//   event_view f;
//   std::vector<std::uint64_t> scratch;                 // reused between calls
//   if (auto st = peek_envelope(bytes, f, scratch); st.ok()) use(f.persistence_id, f.seq);
//
// Threads: a pure function; `scratch` belongs to the caller's thread.
#pragma once

#include "strata/persistence/event.hpp"
#include "strata/persistence/status.hpp"

#include <cstdint>
#include <string_view>
#include <vector>

namespace strata::persistence {

/// Fills `out` from an unpacked single-segment envelope. The views stay valid while
/// `bytes` and `scratch` are unchanged (`scratch` receives a word-aligned copy when
/// `bytes` is misaligned). Errors: corrupt (not a decodable envelope, or its payload
/// fails its checksum).
status peek_envelope(std::string_view bytes, event_view& out, std::vector<std::uint64_t>& scratch);

} // namespace strata::persistence
