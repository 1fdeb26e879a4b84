#include "strata/cluster/member.hpp"

namespace strata::cluster {

std::string to_string(const address& a) {
  bool v6 = a.host.find(':') != std::string::npos;
  std::string out = v6 ? "[" + a.host + "]" : a.host;
  return out + ":" + std::to_string(a.port);
}

std::string to_string(const member_id& m) {
  return to_string(m.address) + "#" + std::to_string(m.incarnation);
}

const char* to_string(member_status s) noexcept {
  switch (s) {
    case member_status::joining: return "joining";
    case member_status::up: return "up";
    case member_status::leaving: return "leaving";
    case member_status::exiting: return "exiting";
    case member_status::down: return "down";
    case member_status::removed: return "removed";
  }
  return "unknown";
}

} // namespace strata::cluster
