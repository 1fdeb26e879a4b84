#include "strata/persistence/status.hpp"

namespace strata::persistence {

const char* to_string(errc code) noexcept {
  switch (code) {
    case errc::ok: return "ok";
    case errc::conflict: return "conflict";
    case errc::corrupt: return "corrupt";
    case errc::not_found: return "not_found";
    case errc::invalid_argument: return "invalid_argument";
    case errc::io_error: return "io_error";
    case errc::map_full: return "map_full";
    case errc::txn_full: return "txn_full";
    case errc::readers_full: return "readers_full";
    case errc::closed: return "closed";
    case errc::incompatible: return "incompatible";
    case errc::unavailable: return "unavailable";
    case errc::internal: return "internal";
    case errc::locked: return "locked";
  }
  return "unknown";
}

std::string status::to_string() const {
  std::string s = persistence::to_string(code_);
  if (!message_.empty()) {
    s += ": ";
    s += message_;
  }
  return s;
}

} // namespace strata::persistence
