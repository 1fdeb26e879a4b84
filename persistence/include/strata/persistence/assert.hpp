// File: strata/persistence/assert.hpp
//
// STRATA_ASSERT: the third tier of strata's errors (CONTRIBUTING.md, "Errors") — a
// broken invariant, i.e. a bug in strata, not bad input. Unlike assert() it never
// compiles out (NDEBUG has no effect): a program whose invariants no longer hold must
// not go on writing a journal.
//
//   STRATA_ASSERT(it->second.first == agg, "aggregate type registered twice");
//
// On failure it prints "strata: invariant violated at FILE:LINE: EXPR (MESSAGE)" to
// stderr and calls std::abort(). Bad input (a damaged file, a wrong argument, an
// unreachable broker) is never asserted: it is a status / caf::error with a message.
#pragma once

namespace strata::detail {

/// Prints the failed invariant and aborts. Out of line, so a check costs one branch.
[[noreturn]] void assertion_failed(const char* expr, const char* file, int line,
                                   const char* message) noexcept;

} // namespace strata::detail

#define STRATA_ASSERT(cond, message)                                                               \
  do {                                                                                             \
    if (__builtin_expect(!(cond), 0))                                                              \
      ::strata::detail::assertion_failed(#cond, __FILE__, __LINE__, message);                      \
  } while (false)
