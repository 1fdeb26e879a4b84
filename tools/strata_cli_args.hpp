// File: tools/strata_cli_args.hpp
//
// A tiny command-line parser for the strata CLI (no dependencies):
//
//   auto a = args::parse(argc, argv, 3, {"data", "stream", "from", "limit"}, {"help"});
//   std::string dir = a.require("data");                     // throws usage_error
//   std::uint64_t limit = a.u64("limit", 100);                 // throws usage_error
//
// Options are `--name value` or `--name=value`; flags are `--name`; anything else is
// positional. An unknown option, a missing value or a malformed number is a
// usage_error (the CLI exits with 2 and prints the usage text).
#pragma once

#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <initializer_list>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace strata::cli {

/// The user asked for something the CLI cannot parse: exit code 2.
struct usage_error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

/// u64 in decimal; false for anything else (sign, junk, overflow).
inline bool parse_u64(std::string_view text, std::uint64_t& out) {
  if (text.empty() || text.size() > 20) return false;
  std::uint64_t v = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return false;
    std::uint64_t d = static_cast<std::uint64_t>(c - '0');
    if (v > (~std::uint64_t{0} - d) / 10) return false;
    v = v * 10 + d;
  }
  out = v;
  return true;
}

class args {
 public:
  /// Parses argv[first..argc). `with_value`: option names taking a value; `flags`:
  /// option names without one (names without the leading "--").
  static args parse(int argc, char** argv, int first,
                    std::initializer_list<std::string_view> with_value,
                    std::initializer_list<std::string_view> flags = {}) {
    auto known = [](std::initializer_list<std::string_view> names, std::string_view n) {
      for (auto k : names)
        if (k == n) return true;
      return false;
    };
    args a;
    for (int i = first; i < argc; ++i) {
      std::string_view s = argv[i];
      if (s.size() < 2 || s.substr(0, 2) != "--") {
        if (s == "-h") {
          a.flags_["help"] = true;
          continue;
        }
        a.positional_.emplace_back(s);
        continue;
      }
      std::string_view name = s.substr(2);
      std::optional<std::string_view> inline_value;
      if (auto eq = name.find('='); eq != std::string_view::npos) {
        inline_value = name.substr(eq + 1);
        name = name.substr(0, eq);
      }
      if (known(with_value, name)) {
        if (inline_value) {
          a.values_[std::string(name)] = std::string(*inline_value);
        } else if (i + 1 < argc) {
          a.values_[std::string(name)] = argv[++i];
        } else {
          throw usage_error("option --" + std::string(name) + " needs a value");
        }
      } else if (known(flags, name) || name == "help") {
        if (inline_value) throw usage_error("option --" + std::string(name) + " takes no value");
        a.flags_[std::string(name)] = true;
      } else {
        throw usage_error("unknown option --" + std::string(name));
      }
    }
    return a;
  }

  bool flag(std::string_view name) const { return flags_.count(std::string(name)) > 0; }

  std::optional<std::string> get(std::string_view name) const {
    auto i = values_.find(std::string(name));
    if (i == values_.end()) return std::nullopt;
    return i->second;
  }

  /// The option's value; usage_error when it is missing or empty.
  std::string require(std::string_view name) const {
    auto v = get(name);
    if (!v || v->empty()) throw usage_error("missing --" + std::string(name));
    return *v;
  }

  /// The option as a u64, or `fallback` when absent; usage_error when malformed.
  std::uint64_t u64(std::string_view name, std::uint64_t fallback) const {
    auto v = get(name);
    if (!v) return fallback;
    std::uint64_t out = 0;
    if (!parse_u64(*v, out))
      throw usage_error("--" + std::string(name) + " needs a non-negative integer, got '" + *v +
                        "'");
    return out;
  }

  const std::vector<std::string>& positional() const { return positional_; }

 private:
  std::map<std::string, std::string> values_;
  std::map<std::string, bool> flags_;
  std::vector<std::string> positional_;
};

} // namespace strata::cli
