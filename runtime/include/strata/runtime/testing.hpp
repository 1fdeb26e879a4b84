// File: strata/runtime/testing.hpp
//
// Fault injection for tests — not part of the production API. A system opened with
// open_with_faults runs the same code as one opened with system::open, except that its
// group commit's append function is wrapped by a fault-injecting one (in the style of
// RocksDB's FaultInjection env) and recoveries call a hook first; a system opened with
// system::open pays nothing for either.
//
//   strata::testing::faults f;
//   f.append = [](strata::testing::append_phase p, const std::vector<stream_write>& ws) {
//     return p == strata::testing::append_phase::before
//              ? strata::persistence::status{strata::persistence::errc::io_error, "injected"}
//              : strata::persistence::status{};
//   };
//   auto sys = strata::testing::open_with_faults(cfg, std::move(f));
//
// Threads: as system::open. `append` runs on the group commit's thread (before) and on
// the journal's commit thread (after); `before_recover` on the recovering entity's
// actor thread (it may block there to hold a recovery permit).
#pragma once

#include "strata/persistence/event.hpp"
#include "strata/persistence/status.hpp"
#include "strata/runtime/config.hpp"
#include "strata/runtime/errors.hpp"
#include "strata/runtime/system.hpp"

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace strata::testing {

/// Where the append fault is called.
enum class append_phase : std::uint8_t {
  before, ///< before journal::append_async: a non-ok status fails the whole batch, unwritten
  after,  ///< after a successful commit: a non-ok status is reported to every writer of
          ///< the batch although the events ARE stored ("outcome unknown")
};

struct faults {
  /// Called around each group commit's append; a non-ok status fails it (see append_phase).
  std::function<persistence::status(append_phase, const std::vector<persistence::stream_write>&)>
    append;
  /// Called right before an entity reads its stream to recover.
  std::function<void(const std::string& persistence_id)> before_recover;
  /// The cluster node the system routes through (detail::attach_cluster): in tests a
  /// fake one delivering bytes between systems of one process. It must outlive the
  /// system's shutdown. nullptr: a single node.
  cluster::node* node = nullptr;
};

/// system::open with `f` installed. Errors: those of system::open.
result<std::unique_ptr<system>> open_with_faults(config cfg, faults f);

} // namespace strata::testing
