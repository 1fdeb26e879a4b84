// File: strata/runtime/all.hpp — the one include of the strata runtime.
//
//   #include <strata/runtime/all.hpp>
//   auto sys = strata::system::open(strata::config{});
//   auto accounts = (*sys)->entities<bank::account>();
//   auto r = accounts.ask("acct-1", bank::deposit{100});
//
// Brings in CAF (slow to compile): include it in .cpp files that use the system, and
// only aggregate.hpp / effect.hpp in the aggregate's own header.
#pragma once

#include "strata/runtime/aggregate.hpp"
#include "strata/runtime/config.hpp"
#include "strata/runtime/effect.hpp"
#include "strata/runtime/entities.hpp"
#include "strata/runtime/errors.hpp"
#include "strata/runtime/overload.hpp"
#include "strata/runtime/system.hpp"
#include "strata/runtime/timestamp.hpp"
