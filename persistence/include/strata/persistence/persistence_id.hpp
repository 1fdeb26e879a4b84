// File: strata/persistence/persistence_id.hpp
//
// The persistence id of an entity: "<type>:<id>" (e.g. "account:acct-1"), the name of
// its journal stream and its Kafka key. The one place that builds and splits it.
//
//   auto pid = strata::persistence::make_persistence_id("account", "acct-1");
//   auto type = strata::persistence::type_of_persistence_id(pid);   // "account"
//   auto id = strata::persistence::id_of_persistence_id(pid);       // "acct-1"
//
// No validation here (strata/runtime/ids.hpp checks ids at the API boundary).
// Threads: pure functions; any thread.
#pragma once

#include <string>
#include <string_view>

namespace strata::persistence {

/// The separator between type and id.
inline constexpr char persistence_id_separator = ':';

/// "<type>:<id>".
inline std::string make_persistence_id(std::string_view type, std::string_view id) {
  std::string out;
  out.reserve(type.size() + 1 + id.size());
  out.append(type);
  out += persistence_id_separator;
  out.append(id);
  return out;
}

/// The type part of a persistence id: before the first `separator` (all of it without
/// one). The Kafka bridge passes its configured separator.
inline std::string_view type_of_persistence_id(std::string_view pid,
                                               char separator = persistence_id_separator) noexcept {
  auto cut = pid.find(separator);
  return cut == std::string_view::npos ? pid : pid.substr(0, cut);
}

/// The id part of a persistence id: after the first ':' (empty without one).
inline std::string_view id_of_persistence_id(std::string_view pid) noexcept {
  auto cut = pid.find(persistence_id_separator);
  return cut == std::string_view::npos ? std::string_view{} : pid.substr(cut + 1);
}

/// True when `pid` is "<type>:<something>".
inline bool is_persistence_id_of(std::string_view pid, std::string_view type) noexcept {
  return pid.size() > type.size() + 1 && pid.compare(0, type.size(), type) == 0 &&
         pid[type.size()] == persistence_id_separator;
}

} // namespace strata::persistence
