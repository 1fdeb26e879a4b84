// File: strata/test/files.hpp — whole files in and out of a string (binary-safe).
//
//   auto bytes = strata::test::read_file(dir.sub("data.mdb"));   // throws if unreadable
//   strata::test::write_file(dir.sub("data.mdb"), damaged);
//   auto text = strata::test::slurp(proc_err_path);              // "" when missing
//
// Threads: any.
#pragma once

#include <string>

namespace strata::test {

/// The bytes of `path`; empty when it cannot be opened (e.g. a process has not
/// written its output file yet).
std::string slurp(const std::string& path);

/// The bytes of `path`. Throws std::runtime_error naming the path when it cannot be read.
std::string read_file(const std::string& path);

/// Replaces `path` by `bytes`. Throws std::runtime_error naming the path on failure.
void write_file(const std::string& path, const std::string& bytes);

} // namespace strata::test
