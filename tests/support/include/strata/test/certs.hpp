// File: strata/test/certs.hpp — a throw-away PKI for the TLS tests, made at test time
// by `scripts/cluster certs` (the openssl CLI), so no private key is committed.
//
//   strata::test::temp_dir dir("tls");
//   auto pki = strata::test::make_certs(dir.sub("pki"), {"node-1", "node-2"});
//   pki.cert("node-1"); pki.key("node-1"); pki.ca();      // paths of PEM files
//   auto rogue = strata::test::make_certs(dir.sub("rogue"), {"node-x"});  // another CA
//
// Threads: any; each call runs one child process. Errors: std::runtime_error with the
// script's output when it fails (e.g. no openssl CLI: scripts/install-deps installs it).
#pragma once

#include <string>
#include <vector>

namespace strata::test {

/// A CA and certificates it signed, as files in `dir`.
struct test_pki {
  std::string dir;
  std::string ca() const { return dir + "/ca.pem"; }
  std::string cert(const std::string& name) const { return dir + "/" + name + ".pem"; }
  std::string key(const std::string& name) const { return dir + "/" + name + ".key"; }
};

/// Makes (or reuses) the CA in `dir` and a certificate with its key per name. Each new
/// `dir` gets a CA of its own, whose certificates the CA of another `dir` does not accept.
test_pki make_certs(const std::string& dir, const std::vector<std::string>& names);

} // namespace strata::test
