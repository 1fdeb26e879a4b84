#include "strata/runtime/errors.hpp"

#include <caf/message.hpp>
#include <caf/sec.hpp>

namespace strata {

const char* to_string(runtime_errc code) noexcept {
  switch (code) {
    case runtime_errc::conflict: return "conflict";
    case runtime_errc::corrupt: return "corrupt";
    case runtime_errc::not_found: return "not_found";
    case runtime_errc::invalid_argument: return "invalid_argument";
    case runtime_errc::io_error: return "io_error";
    case runtime_errc::map_full: return "map_full";
    case runtime_errc::txn_full: return "txn_full";
    case runtime_errc::readers_full: return "readers_full";
    case runtime_errc::closed: return "closed";
    case runtime_errc::incompatible: return "incompatible";
    case runtime_errc::unavailable: return "unavailable";
    case runtime_errc::internal: return "internal";
    case runtime_errc::locked: return "locked";
    case runtime_errc::stash_full: return "stash_full";
    case runtime_errc::timeout: return "timeout";
    case runtime_errc::shutting_down: return "shutting_down";
    case runtime_errc::no_reply: return "no_reply";
    case runtime_errc::write_failed: return "write_failed";
    case runtime_errc::undelivered: return "undelivered";
    case runtime_errc::not_replicated: return "not_replicated";
    case runtime_errc::read_only: return "read_only";
  }
  return "unknown";
}

caf::error make_runtime_error(runtime_errc code, std::string message) {
  return caf::error{static_cast<std::uint8_t>(code), runtime_category,
                    caf::make_message(std::move(message))};
}

caf::error to_error(const persistence::status& st) {
  if (st.ok()) return caf::error{};
  return make_runtime_error(static_cast<runtime_errc>(st.code()), st.message());
}

namespace {
std::string first_string(const caf::message& ctx, std::size_t i) {
  if (ctx.size() > i && ctx.match_element<std::string>(i)) return ctx.get_as<std::string>(i);
  return {};
}
} // namespace

std::string rejection_detail(const caf::error& err) {
  if (!is_rejection(err)) return {};
  return first_string(err.context(), 2);
}

std::string describe(const caf::error& err) {
  if (!err) return "ok";
  if (err.category() == rejected_category) {
    auto name = first_string(err.context(), 1);
    if (name.empty()) name = std::to_string(static_cast<unsigned>(err.code()));
    auto why = first_string(err.context(), 2);
    return why.empty() ? "rejected: " + name : "rejected: " + name + ": " + why;
  }
  if (err.category() == runtime_category) {
    std::string s = to_string(static_cast<runtime_errc>(err.code()));
    auto msg = first_string(err.context(), 0);
    if (!msg.empty()) s += ": " + msg;
    return s;
  }
  if (err.category() == caf::atom("system"))
    return "caf: " + to_string(static_cast<caf::sec>(err.code())) +
           (err.context().empty() ? std::string{} : " " + to_string(err.context()));
  return to_string(err);
}

} // namespace strata
