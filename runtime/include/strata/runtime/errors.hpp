// File: strata/runtime/errors.hpp
//
// How strata's errors travel as caf::error (CONTRIBUTING.md, tiers 1 and 2):
// - a domain rejection: category atom "rejected", code = the aggregate's rejection
//   enum value, context = (aggregate type name, rejection name[, detail]) where the
//   detail is the text the handler gave to `effect::reject(code, detail)`;
// - an infrastructure failure: category atom "strata", code = `runtime_errc` (every
//   persistence::errc, derived from the same list with the same numbers, then the
//   runtime's own codes from 32), context = one message string that says what happened
//   and what to do.
//
// Every fallible call of the runtime API returns `strata::result<T>` (an alias of
// `caf::expected<T>`): `config::from_args`, `config::from_file`, `system::open`,
// `entities<A>::ask`, ... An application prints every error one way, with `describe`:
//
//   auto r = accounts.ask("acct-1", withdraw{500});         // strata::result<reply>
//   if (r) print(*r);
//   else if (strata::rejection_of<account>(r.error()))
//     std::cout << strata::describe(r.error()) << "\n";
//     // "rejected: insufficient_funds: balance 40 is less than 500"   (exit code 3)
//   else
//     std::cerr << strata::describe(r.error()) << "\n";      // "io_error: ..." (exit code 4)
//
// Threads: all functions are pure; any thread.
#pragma once

#include "strata/persistence/status.hpp"

#include <caf/atom.hpp>
#include <caf/error.hpp>
#include <caf/expected.hpp>
#include <caf/make_message.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <type_traits>

namespace strata {

/// The result of every fallible call of the runtime API (config, system, entities): a
/// value, or a caf::error in one of strata's categories (or CAF's own). Print the error
/// with `strata::describe`.
template <class T>
using result = caf::expected<T>;

/// Category of domain rejections.
constexpr caf::atom_value rejected_category = caf::atom("rejected");
/// Category of infrastructure failures.
constexpr caf::atom_value runtime_category = caf::atom("strata");

/// The runtime's own infrastructure codes, `X(name, value)` entries from
/// `persistence::errc_end` (32) up. Each entry's comment says when it is returned.
#define STRATA_RUNTIME_ERRC(X)                                                                     \
  X(stash_full, 32)     /* the entity's bounded stash is full: retry later */                      \
  X(timeout, 33)        /* a blocking ask, or a command/read forwarded to another node     */      \
                        /* (cluster-forward-timeout-ms), did not complete in time (it may  */      \
                        /* still complete)                                                   */    \
  X(shutting_down, 34)  /* the system is stopping; the command was not handled */                  \
  X(no_reply, 35)       /* the command was handled (events durable) but replies nothing */         \
  X(write_failed, 36)   /* an earlier write of this entity failed; this command was      */        \
                        /* decided on top of it and was not stored                        */       \
  X(undelivered, 37)    /* the command could not be delivered after several attempts */            \
  X(not_replicated, 38) /* `replicated` durability: the events ARE stored locally (the  */         \
                        /* message names the seq and the stream) but Kafka did not       */        \
                        /* acknowledge them within `replication-timeout-ms`; the bridge  */        \
                        /* keeps publishing them (lag, not loss). Do not retry.          */        \
  X(read_only, 39)      /* the system was opened read-only (config::read_only): no commands */     \
  X(not_reachable, 40)  /* cluster: no connection to the member owning the shard; nothing */       \
                        /* was sent. Retry later                                           */      \
  X(shard_moving, 41)   /* cluster: the shard is moving or has no owner and its bounded    */      \
                        /* buffer (cluster-buffer-max) is full. Retry later                */

/// Infrastructure error codes: every persistence code (STRATA_PERSISTENCE_ERRC in
/// strata/persistence/status.hpp, same names and numbers, so `to_error` keeps the code
/// of any status), then the runtime's own (STRATA_RUNTIME_ERRC). What the persistence
/// codes mean for a command: conflict — the stream's head moved (another writer, or a
/// failed write); io_error — the journal could not write or sync (the outcome may be
/// unknown); closed — the journal is closed; locked — another process holds the data
/// directory's writer lock (the message names its pid, host and since when).
// clang-format off
enum class runtime_errc : std::uint8_t {
#define STRATA_RUNTIME_ERRC_ENUMERATOR(name, value) name = value,
  STRATA_PERSISTENCE_ERRC(STRATA_RUNTIME_ERRC_ENUMERATOR)
  STRATA_RUNTIME_ERRC(STRATA_RUNTIME_ERRC_ENUMERATOR)
#undef STRATA_RUNTIME_ERRC_ENUMERATOR
};
// clang-format on

#define STRATA_RUNTIME_ERRC_ABOVE_PERSISTENCE(name, value)                                         \
  static_assert(value >= persistence::errc_end,                                                    \
                "runtime code '" #name "' collides with the persistence codes (below 32)");
STRATA_RUNTIME_ERRC(STRATA_RUNTIME_ERRC_ABOVE_PERSISTENCE)
#undef STRATA_RUNTIME_ERRC_ABOVE_PERSISTENCE

/// The runtime code of a persistence code (same number and name); `ok` has none.
constexpr runtime_errc to_runtime_errc(persistence::errc code) noexcept {
  return static_cast<runtime_errc>(code);
}

/// "stash_full", "conflict", ... (stable names).
const char* to_string(runtime_errc code) noexcept;

/// An infrastructure error with a message for the operator.
caf::error make_runtime_error(runtime_errc code, std::string message);

/// Maps a persistence status (not ok) to the runtime category, keeping its code
/// (`to_runtime_errc`) and its message; an ok status gives an empty caf::error.
caf::error to_error(const persistence::status& st);

/// Renders any error without an actor system:
/// - a rejection: "rejected: <name>: <detail>", or "rejected: <name>" without a detail
///   (the name is the aggregate's `to_string(rejection)`);
/// - an infrastructure failure: "<code name>: <message>", e.g. "io_error: ...";
/// - a CAF error (`sec`): "caf: <name> <context>".
std::string describe(const caf::error& err);

/// Renders a persistence status (from a persistence-level call such as
/// `journal::append` or `config::set`) exactly as `describe(to_error(st))`:
/// "<code name>: <message>", or "ok".
std::string describe(const persistence::status& st);

/// The detail of a rejection (`effect::reject(code, detail)`); empty when `err` is not
/// a rejection or the handler gave none.
std::string rejection_detail(const caf::error& err);

/// Whether `err` is a domain rejection (of any aggregate).
inline bool is_rejection(const caf::error& err) noexcept {
  return err.category() == rejected_category && err.code() != 0;
}

/// The infrastructure code of `err`, or nullopt when it is not in the runtime category.
inline std::optional<runtime_errc> runtime_error_of(const caf::error& err) noexcept {
  if (err.category() != runtime_category || err.code() == 0) return std::nullopt;
  return static_cast<runtime_errc>(err.code());
}

namespace detail {
/// The rejection's name via ADL `to_string(rejection)` (check_aggregate requires the
/// aggregate to provide one); its number otherwise.
template <class R>
auto rejection_name(R r, int) -> decltype(std::string(to_string(r))) {
  return std::string(to_string(r));
}
template <class R>
std::string rejection_name(R r, long) {
  return std::to_string(static_cast<unsigned>(static_cast<std::underlying_type_t<R>>(r)));
}
} // namespace detail

/// Builds the caf::error for a rejection of aggregate `A` (what the runtime sends),
/// with the handler's `detail` when it gave one.
template <class A>
caf::error make_rejection(typename A::rejection r, const std::string& detail = {}) {
  auto code = static_cast<std::uint8_t>(r);
  if (detail.empty())
    return caf::error{code, rejected_category,
                      caf::make_message(std::string(A::type_name), detail::rejection_name(r, 0))};
  return caf::error{
    code, rejected_category,
    caf::make_message(std::string(A::type_name), detail::rejection_name(r, 0), detail)};
}

/// The rejection carried by `err`, if `err` is a rejection of aggregate `A`.
template <class A>
std::optional<typename A::rejection> rejection_of(const caf::error& err) {
  if (!is_rejection(err)) return std::nullopt;
  const auto& ctx = err.context();
  if (ctx.size() >= 1 && ctx.match_element<std::string>(0) &&
      ctx.get_as<std::string>(0) != A::type_name)
    return std::nullopt;
  return static_cast<typename A::rejection>(err.code());
}

} // namespace strata
