// File: tests/fuzz/fuzz_util.hpp — helpers shared by the libFuzzer targets.
//
//   auto args = fuzz::split_args(data, size);   // "deposit\0c-1\0100" -> 3 arguments
//   FUZZ_CHECK(a == b);                          // a failed property aborts: a crash
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

namespace fuzz {

/// A property the target checks on every input; a failure is reported like a crash
/// (abort), so libFuzzer saves the input as crash-<sha1>.
#define FUZZ_CHECK(cond)                                                                           \
  do {                                                                                             \
    if (!(cond)) {                                                                                 \
      std::fprintf(stderr, "%s:%d: property failed: %s\n", __FILE__, __LINE__, #cond);             \
      std::abort();                                                                                \
    }                                                                                              \
  } while (false)

/// At most this many arguments per input: argv-shaped inputs stay small.
constexpr std::size_t max_args = 64;

/// Splits the input at NUL bytes into command-line arguments (as the kernel hands
/// them to main: no argument contains a NUL).
inline std::vector<std::string> split_args(const std::uint8_t* data, std::size_t size) {
  std::vector<std::string> out(1);
  for (std::size_t i = 0; i < size && out.size() <= max_args; ++i) {
    if (data[i] == 0)
      out.emplace_back();
    else
      out.back().push_back(static_cast<char>(data[i]));
  }
  if (out.size() > max_args) out.resize(max_args);
  return out;
}

/// argv pointers into `args` with a program name in front and the trailing null.
inline std::vector<char*> make_argv(std::vector<std::string>& args, std::string& program) {
  std::vector<char*> argv;
  argv.push_back(program.data());
  for (auto& a : args)
    argv.push_back(a.data());
  argv.push_back(nullptr);
  return argv;
}

} // namespace fuzz
