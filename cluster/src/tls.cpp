#include "strata/cluster/tls.hpp"

#include <caf/actor_system_config.hpp>
#include <caf/openssl/manager.hpp>
#include <caf/sec.hpp>

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include <cstring>
#include <fstream>
#include <memory>

namespace strata::cluster {

namespace {

caf::error bad(std::string why) {
  return caf::make_error(caf::sec::invalid_argument, std::move(why));
}

/// OpenSSL's reason for the last failure (and clears its queue for the next check).
std::string openssl_reason() {
  std::string out;
  while (auto e = ERR_get_error()) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    out = buf; // the last one is the closest to the call that failed
  }
  return out.empty() ? std::string("no detail from OpenSSL") : out;
}

/// Hands OpenSSL the configured passphrase, and an empty answer when there is none:
/// OpenSSL's default would prompt on the terminal, which a node must never do.
int passphrase_cb(char* buf, int size, int /*rwflag*/, void* user) {
  const auto* pass = static_cast<const std::string*>(user);
  if (pass == nullptr || pass->empty() || static_cast<int>(pass->size()) >= size) return 0;
  std::memcpy(buf, pass->data(), pass->size());
  return static_cast<int>(pass->size());
}

caf::error check_readable(const char* setting, const std::string& path) {
  std::ifstream in(path);
  if (!in)
    return bad("cluster TLS: " + std::string(setting) + " '" + path +
               "' cannot be read (missing, or no permission)");
  return caf::none;
}

} // namespace

bool is_loopback(std::string_view host) noexcept {
  if (host == "localhost") return true;
  std::string h(host);
  in_addr v4{};
  if (inet_pton(AF_INET, h.c_str(), &v4) == 1) return (ntohl(v4.s_addr) >> 24) == 127;
  in6_addr v6{};
  if (inet_pton(AF_INET6, h.c_str(), &v6) == 1) return IN6_IS_ADDR_LOOPBACK(&v6);
  return false;
}

caf::error check_tls(const tls_config& tls) {
  if (!tls.enabled()) return caf::none;
  if (tls.certificate.empty() || tls.key.empty() || tls.ca_file.empty()) {
    std::string missing;
    for (auto [name, value] :
         {std::pair{"cluster-tls-cert", &tls.certificate}, std::pair{"cluster-tls-key", &tls.key},
          std::pair{"cluster-tls-ca", &tls.ca_file}})
      if (value->empty()) missing += (missing.empty() ? "" : ", ") + std::string(name);
    return bad("cluster TLS needs a certificate, its key and the cluster's CA together; "
               "missing: " +
               missing);
  }
  for (auto [name, value] :
       {std::pair{"cluster-tls-cert", &tls.certificate}, std::pair{"cluster-tls-key", &tls.key},
        std::pair{"cluster-tls-ca", &tls.ca_file}})
    if (auto err = check_readable(name, *value)) return err;
  ERR_clear_error();
  std::unique_ptr<SSL_CTX, decltype(&SSL_CTX_free)> ctx(SSL_CTX_new(TLS_method()), SSL_CTX_free);
  if (!ctx) return bad("cluster TLS: OpenSSL cannot create a context: " + openssl_reason());
  SSL_CTX_set_default_passwd_cb(ctx.get(), passphrase_cb);
  SSL_CTX_set_default_passwd_cb_userdata(ctx.get(), const_cast<std::string*>(&tls.passphrase));
  // The key first: loading a certificate that does not match drops the key instead of
  // failing, so the mismatch shows in the check below with its own message.
  if (SSL_CTX_use_PrivateKey_file(ctx.get(), tls.key.c_str(), SSL_FILETYPE_PEM) != 1)
    return bad(
      "cluster TLS: cluster-tls-key '" + tls.key + "' is not a PEM private key, or needs " +
      (tls.passphrase.empty() ? "a passphrase (cluster-tls-passphrase)" : "another passphrase") +
      ": " + openssl_reason());
  if (SSL_CTX_use_certificate_chain_file(ctx.get(), tls.certificate.c_str()) != 1)
    return bad("cluster TLS: cluster-tls-cert '" + tls.certificate +
               "' is not a PEM certificate: " + openssl_reason());
  if (SSL_CTX_check_private_key(ctx.get()) != 1)
    return bad("cluster TLS: cluster-tls-key '" + tls.key +
               "' is not the key of cluster-tls-cert '" + tls.certificate +
               "': " + openssl_reason());
  if (SSL_CTX_load_verify_locations(ctx.get(), tls.ca_file.c_str(), nullptr) != 1)
    return bad("cluster TLS: cluster-tls-ca '" + tls.ca_file +
               "' holds no PEM CA certificate: " + openssl_reason());
  return caf::none;
}

caf::error enable_tls(caf::actor_system_config& cfg, const tls_config& tls) {
  if (!tls.enabled()) return caf::none;
  if (auto err = check_tls(tls)) return err;
  cfg.load<caf::openssl::manager>();
  // Any of these set switches the module from anonymous TLS (anyone admitted) to
  // verifying the peer's certificate against the CA in both directions.
  cfg.openssl_certificate = tls.certificate;
  cfg.openssl_key = tls.key;
  cfg.openssl_passphrase = tls.passphrase;
  cfg.openssl_cafile = tls.ca_file;
  return caf::none;
}

} // namespace strata::cluster
