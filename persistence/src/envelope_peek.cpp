#include "strata/persistence/envelope_peek.hpp"

#include "envelope_codec.hpp"

namespace strata::persistence {

status peek_envelope(std::string_view bytes, event_view& out, std::vector<std::uint64_t>& scratch) {
  return detail::peek_envelope(bytes, scratch, "envelope", out);
}

} // namespace strata::persistence
