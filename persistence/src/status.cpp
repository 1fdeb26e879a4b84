#include "strata/persistence/status.hpp"

namespace strata::persistence {

const char* to_string(errc code) noexcept {
  switch (code) {
    case errc::ok: return "ok";
#define STRATA_ERRC_NAME(name, value)                                                              \
  case errc::name: return #name;
      STRATA_PERSISTENCE_ERRC(STRATA_ERRC_NAME)
#undef STRATA_ERRC_NAME
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
