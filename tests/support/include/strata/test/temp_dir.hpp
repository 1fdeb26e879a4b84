// File: strata/test/temp_dir.hpp — a fresh directory per test, removed at scope exit.
//
//   strata::test::temp_dir dir{"strata-journal"};   // $TMPDIR/strata-journal-XXXXXX
//   auto o = journal_opts(dir.sub("env"));            // a path inside it (not created)
//   dir.keep();                                       // leave it there (to look at a failure)
//
// Threads: one owner.
#pragma once

#include <string>

namespace strata::test {

/// A fresh directory under $TMPDIR (or /tmp), removed with everything in it when the
/// object goes, unless keep() was called.
class temp_dir {
 public:
  /// Creates `<tmp>/<tag>-XXXXXX`. Throws std::runtime_error when mkdtemp fails.
  explicit temp_dir(const std::string& tag = "strata-test");
  ~temp_dir();
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;

  /// The directory's path (no trailing slash).
  const std::string& path() const noexcept { return path_; }
  /// A path inside the directory (not created).
  std::string sub(const std::string& name) const { return path_ + "/" + name; }
  /// Leaves the directory in place at destruction.
  void keep() noexcept { keep_ = true; }

 private:
  std::string path_;
  bool keep_ = false;
};

} // namespace strata::test
