// File: strata/cluster/clock.hpp
//
// The time the cluster's decision core is given. The core never reads a clock: the
// caller passes "now", so a unit test or a simulator of many nodes can drive it with a
// clock of its own.
//
//   strata::cluster::time_point t0{};               // any origin; only differences count
//   auto t1 = t0 + std::chrono::milliseconds{200};
//   detector.heartbeat(t1);                         // failure_detector.hpp
//
// A node passes std::chrono::steady_clock::now() (monotonic: never jumps with the wall
// clock). Threads: types only.
#pragma once

#include <chrono>

namespace strata::cluster {

/// A point in time on a monotonic clock; only differences between two of them count.
using time_point = std::chrono::steady_clock::time_point;

/// The durations of the core's configurations: whole milliseconds.
using milliseconds = std::chrono::milliseconds;

} // namespace strata::cluster
