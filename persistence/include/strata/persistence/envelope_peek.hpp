// Private: reads the few envelope fields the Kafka bridge needs (key, headers) straight
// from the Cap'n Proto bytes, without copying the payload.
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
