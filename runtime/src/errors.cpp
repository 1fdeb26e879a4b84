#include "strata/runtime/errors.hpp"

#include <caf/message.hpp>
#include <caf/sec.hpp>

namespace strata {

const char* to_string(runtime_errc code) noexcept {
  switch (code) {
#define STRATA_RUNTIME_ERRC_NAME(name, value)                                                      \
  case runtime_errc::name: return #name;
    STRATA_PERSISTENCE_ERRC(STRATA_RUNTIME_ERRC_NAME)
    STRATA_RUNTIME_ERRC(STRATA_RUNTIME_ERRC_NAME)
#undef STRATA_RUNTIME_ERRC_NAME
  }
  return "unknown";
}

caf::error make_runtime_error(runtime_errc code, std::string message) {
  return caf::error{static_cast<std::uint8_t>(code), runtime_category,
                    caf::make_message(std::move(message))};
}

caf::error to_error(const persistence::status& st) {
  if (st.ok()) return caf::error{};
  return make_runtime_error(to_runtime_errc(st.code()), st.message());
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

std::string describe(const persistence::status& st) { return describe(to_error(st)); }

} // namespace strata
