// File: strata/cluster/tls.hpp
//
// Mutual TLS between cluster nodes (docs/cluster.md, "Security"): every node and every
// client presents a certificate signed by the cluster's CA and accepts only peers that
// do. CAF's OpenSSL module carries it; its settings belong to the whole actor_system,
// so they are installed into the actor_system_config before the system exists:
//
//   strata::cluster::tls_config tls{"node-1.pem", "node-1.key", "ca.pem"};
//   caf::actor_system_config cfg;
//   cfg.load<caf::io::middleman>();                      // first: the module needs it
//   if (auto err = strata::cluster::enable_tls(cfg, tls)) // checks the files, loads it
//     ...;                                               // names the file and the problem
//   caf::actor_system sys{cfg};
//   node_config nc; nc.tls = tls; nc.host = "10.0.0.5";   // non-loopback: TLS required
//   auto n = strata::cluster::node::start(sys, nc, host);
//
// Threads: plain functions of their arguments; call them before the actor_system exists.
#pragma once

#include <caf/error.hpp>
#include <caf/fwd.hpp>

#include <string>
#include <string_view>

namespace strata::cluster {

/// The TLS material of a node (strata::config keys cluster-tls-cert, cluster-tls-key,
/// cluster-tls-ca, cluster-tls-passphrase). All three files or none.
struct tls_config {
  std::string certificate; ///< PEM: this node's certificate (chain), signed by the CA
  std::string key;         ///< PEM: its private key
  std::string ca_file;     ///< PEM: the cluster's CA; peers must present a certificate it signed
  std::string passphrase;  ///< of an encrypted key; empty for an unencrypted one
  /// Whether any file is set (then all three must be: check_tls).
  bool enabled() const noexcept { return !certificate.empty() || !key.empty() || !ca_file.empty(); }
};

/// Whether `host` names this machine's loopback interface only: "localhost", an IPv4
/// address in 127.0.0.0/8 or "::1". Anything else (a name, 0.0.0.0, "::", another
/// address) may be reachable from other machines, so a node bound there needs TLS.
bool is_loopback(std::string_view host) noexcept;

/// Checks the files the way the OpenSSL module will use them, so that a bad file fails
/// the start instead of a later connection (CAF reads them per connection and ends the
/// process on an error there). Errors (caf::sec::invalid_argument, the message naming
/// the setting and the file): only some of certificate / key / CA given; a file missing
/// or unreadable; a certificate or CA that is not PEM; a key that is not PEM, needs
/// another passphrase or does not belong to the certificate. caf::none when all is well
/// or when TLS is off (nothing set).
caf::error check_tls(const tls_config& tls);

/// check_tls, then loads CAF's OpenSSL module into `cfg` and sets its openssl.* settings
/// from `tls` (which turns on peer verification in both directions). `cfg` must have
/// loaded caf::io::middleman already. Does nothing and returns caf::none when TLS is off.
/// Errors: those of check_tls (then `cfg` is unchanged).
caf::error enable_tls(caf::actor_system_config& cfg, const tls_config& tls);

} // namespace strata::cluster
