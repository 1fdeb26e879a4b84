// File: strata/runtime/timestamp.hpp
//
// ISO-8601 UTC timestamps with nanoseconds, for event times (`timestamp_ns`) in
// applications: strata::format_iso8601(ns) and strata::parse_iso8601(text). They live in
// strata::persistence (CAF-free; see strata/persistence/timestamp.hpp for the exact
// forms) and are brought into `strata` there; this header is the runtime's name for it.
//
//   std::cout << strata::format_iso8601(h.timestamp_ns);   // 2026-11-22T06:40:00.123456789Z
//   if (auto t = strata::parse_iso8601(arg)) as_of = *t;   // nullopt: not a UTC time
#pragma once

#include "strata/persistence/timestamp.hpp"
