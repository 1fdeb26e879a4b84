// File: strata/runtime/overload.hpp
//
// `strata::overload` merges lambdas into one visitor, so `std::visit` over an
// aggregate's event or command variant is total: a missing case fails to compile.
//
//   std::visit(strata::overload{
//       [&](const opened& e) { s.owner = e.owner; },
//       [&](const deposited& e) { s.balance += e.cents; }}, event);
//
// For the command variant in `handle`, prefer `strata::handle_with(command,
// strata::overload{...})` (effect.hpp): a missing case is then one static_assert that
// names the command type instead of a page of <variant> errors.
#pragma once

namespace strata {

/// A visitor made of several callables (C++17 aggregate + deduction guide).
template <class... Fs>
struct overload : Fs... {
  using Fs::operator()...;
};

template <class... Fs>
overload(Fs...) -> overload<Fs...>;

} // namespace strata
