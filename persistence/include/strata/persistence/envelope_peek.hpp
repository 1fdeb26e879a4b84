// File: strata/persistence/envelope_peek.hpp
//
// Reads an envelope's identifying fields (persistence id, seq, position, time, type,
// schema version) straight from its Cap'n Proto bytes (encode_envelope's format, what
// journal::read_global_raw hands out), without copying or checking the payload. The
// Kafka bridge builds a record's key and headers with it.
//
//   envelope_fields f;
//   std::vector<std::uint64_t> scratch;                 // reused between calls
//   if (auto st = peek_envelope(bytes, f, scratch); st.ok()) use(f.persistence_id, f.seq);
//
// Threads: a pure function; `scratch` belongs to the caller's thread.
#pragma once

#include "strata/persistence/status.hpp"

#include <cstdint>
#include <string_view>
#include <vector>

namespace strata::persistence {

struct envelope_fields {
  std::string_view persistence_id; ///< points into the bytes (or the scratch copy)
  std::uint64_t seq = 0;
  std::uint64_t position = 0;
  std::int64_t timestamp_ns = 0;
  std::string_view event_type;
  std::uint32_t schema_version = 0;
};

/// Fills `out` from an envelope. The views stay valid while `bytes` and `scratch` are
/// unchanged (`scratch` receives a word-aligned copy when `bytes` is misaligned).
/// Errors: corrupt (not a decodable envelope).
status peek_envelope(std::string_view bytes, envelope_fields& out,
                     std::vector<std::uint64_t>& scratch);

} // namespace strata::persistence
