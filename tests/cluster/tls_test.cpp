// Mutual TLS between nodes (strata/cluster/tls.hpp): the loopback rule, the checks of
// the TLS files, and in-process clusters where a node with a certificate of the
// cluster's CA joins while nodes without one, or with another CA's, never get in.
// Certificates are made at test time (strata/test/certs.hpp, scripts/cluster certs).
#include "node_fixture.hpp"
#include "strata/test/certs.hpp"
#include "strata/test/files.hpp"
#include "strata/test/poll.hpp"
#include "strata/test/process.hpp"
#include "strata/test/temp_dir.hpp"

#include <caf/all.hpp>

#include <algorithm>
#include <chrono>

using namespace strata::cluster;
using namespace strata::cluster::test;
using strata::test::eventually;
using clock_type = std::chrono::steady_clock;

namespace {

tls_config tls_of(const strata::test::test_pki& pki, const std::string& name,
                  const std::string& ca_file = {}) {
  return tls_config{pki.cert(name), pki.key(name), ca_file.empty() ? pki.ca() : ca_file, {}};
}

node_config config_with(std::vector<address> seeds, tls_config tls = {}) {
  node_config nc;
  nc.host = "127.0.0.1";
  nc.seeds = std::move(seeds);
  nc.tls = std::move(tls);
  return nc;
}

std::unique_ptr<node> start_node(machine& m, node_config nc, shard_host& host) {
  auto n = node::start(*m.sys, std::move(nc), host);
  if (!n) FAIL("node::start: " << m.sys->render(n.error()));
  return std::move(*n);
}

std::string message_of(const caf::error& e) { return caf::to_string(e); }

/// Whether `v` lists any member at `a` (in any state).
bool lists(const member_view& v, const address& a) {
  for (auto& kv : v.members())
    if (kv.first.address == a) return true;
  return false;
}

/// Received bytes of one channel.
struct inbox {
  std::mutex mu;
  std::vector<std::string> got;
  node::handler handler() {
    return [this](const member_id&, std::string bytes) {
      std::lock_guard<std::mutex> lk(mu);
      got.push_back(std::move(bytes));
    };
  }
  bool has(const std::string& bytes) {
    std::lock_guard<std::mutex> lk(mu);
    return std::find(got.begin(), got.end(), bytes) != got.end();
  }
};

} // namespace

TEST_CASE("is_loopback: 127/8, ::1 and localhost only") {
  for (auto h : {"127.0.0.1", "127.1.2.3", "::1", "localhost"})
    CHECK_MESSAGE(is_loopback(h), h);
  for (auto h : {"0.0.0.0", "::", "10.0.0.5", "192.168.1.1", "example.org", "", "128.0.0.1"})
    CHECK_FALSE_MESSAGE(is_loopback(h), h);
}

TEST_CASE("a node on a non-loopback address without TLS is refused, naming the settings") {
  ownership own;
  fake_host host(0, own);
  machine m;
  for (auto h : {"0.0.0.0", "192.0.2.1", "node-a.example"}) {
    auto nc = config_with({});
    nc.host = h;
    auto n = node::start(*m.sys, nc, host);
    REQUIRE_FALSE(n);
    CHECK(n.error() == caf::sec::invalid_argument);
    auto msg = message_of(n.error());
    CHECK_MESSAGE(msg.find("not a loopback address") != std::string::npos, msg);
    for (auto key : {"cluster-tls-cert", "cluster-tls-key", "cluster-tls-ca"})
      CHECK_MESSAGE(msg.find(key) != std::string::npos, msg);
  }
  // A client binds nothing: it may reach a remote cluster (which then decides).
  auto nc = config_with({{"127.0.0.1", 1}});
  nc.host = "0.0.0.0";
  nc.client = true;
  auto c = node::start(*m.sys, nc, host);
  REQUIRE(c);
  (*c)->stop();
}

TEST_CASE("check_tls and enable_tls refuse incomplete or bad TLS files") {
  strata::test::temp_dir dir("strata-tls-files");
  auto pki = strata::test::make_certs(dir.sub("pki"), {"node-1", "node-2"});
  auto msg = [](const tls_config& t) {
    return message_of(check_tls(t));
  };
  CHECK_FALSE(check_tls(tls_config{}));
  CHECK_FALSE(check_tls(tls_of(pki, "node-1")));

  auto partial = tls_config{pki.cert("node-1"), "", pki.ca(), {}};
  CHECK(check_tls(partial) == caf::sec::invalid_argument);
  CHECK_MESSAGE(msg(partial).find("missing: cluster-tls-key") != std::string::npos, msg(partial));
  auto ca_only = tls_config{"", "", pki.ca(), {}};
  CHECK_MESSAGE(msg(ca_only).find("cluster-tls-cert, cluster-tls-key") != std::string::npos,
                msg(ca_only));

  auto missing = tls_of(pki, "node-1");
  missing.ca_file = dir.sub("no-such-ca.pem");
  CHECK_MESSAGE(msg(missing).find("cluster-tls-ca '" + missing.ca_file + "' cannot be read") !=
                  std::string::npos,
                msg(missing));

  auto mismatch = tls_of(pki, "node-1");
  mismatch.key = pki.key("node-2");
  CHECK_MESSAGE(msg(mismatch).find("is not the key of cluster-tls-cert") != std::string::npos,
                msg(mismatch));

  auto garbage = dir.sub("garbage.pem");
  strata::test::write_file(garbage, "not a certificate\n");
  auto bad_cert = tls_of(pki, "node-1");
  bad_cert.certificate = garbage;
  CHECK_MESSAGE(msg(bad_cert).find("is not a PEM certificate") != std::string::npos, msg(bad_cert));
  auto bad_ca = tls_of(pki, "node-1");
  bad_ca.ca_file = garbage;
  CHECK_MESSAGE(msg(bad_ca).find("holds no PEM CA certificate") != std::string::npos, msg(bad_ca));

  // An encrypted key needs its passphrase (never a prompt on the terminal).
  auto enc = dir.sub("node-1.enc.key");
  auto r = strata::test::run(
    dir.path(), "/usr/bin/openssl",
    {"pkey", "-in", pki.key("node-1"), "-aes256", "-passout", "pass:s3cret", "-out", enc});
  REQUIRE_MESSAGE(r.exit_code == 0, r.err);
  auto encrypted = tls_of(pki, "node-1");
  encrypted.key = enc;
  CHECK_MESSAGE(msg(encrypted).find("needs a passphrase (cluster-tls-passphrase)") !=
                  std::string::npos,
                msg(encrypted));
  encrypted.passphrase = "wrong";
  CHECK_MESSAGE(msg(encrypted).find("needs another passphrase") != std::string::npos,
                msg(encrypted));
  encrypted.passphrase = "s3cret";
  CHECK_FALSE(check_tls(encrypted));

  // enable_tls refuses the same and leaves the config alone.
  caf::actor_system_config cfg;
  cfg.load<caf::io::middleman>();
  CHECK(enable_tls(cfg, mismatch) == caf::sec::invalid_argument);
  CHECK(cfg.openssl_certificate.empty());

  // A node with TLS settings on a system that was not prepared for them is refused.
  ownership own;
  fake_host host(0, own);
  machine plain;
  auto n = node::start(*plain.sys, config_with({}, tls_of(pki, "node-1")), host);
  REQUIRE_FALSE(n);
  CHECK_MESSAGE(message_of(n.error()).find("enable_tls") != std::string::npos,
                message_of(n.error()));
}

TEST_CASE("a TLS cluster admits nodes with a certificate of its CA and no others") {
  strata::test::temp_dir dir("strata-tls-cluster");
  auto pki = strata::test::make_certs(dir.sub("pki"), {"node-1", "node-2", "node-3"});
  auto rogue = strata::test::make_certs(dir.sub("rogue"), {"rogue"}); // another CA
  ownership own;
  std::vector<std::unique_ptr<fake_host>> hosts;
  for (int i = 0; i < 6; ++i)
    hosts.push_back(std::make_unique<fake_host>(i, own));

  // node-2's key is encrypted: CAF's module gets the passphrase from enable_tls.
  auto tls2 = tls_of(pki, "node-2");
  tls2.key = dir.sub("node-2.enc.key");
  tls2.passphrase = "s3cret";
  auto r = strata::test::run(
    dir.path(), "/usr/bin/openssl",
    {"pkey", "-in", pki.key("node-2"), "-aes256", "-passout", "pass:s3cret", "-out", tls2.key});
  REQUIRE_MESSAGE(r.exit_code == 0, r.err);
  machine m1{tls_of(pki, "node-1")};
  machine m2{tls2};
  auto n1 = start_node(m1, config_with({}, tls_of(pki, "node-1")), *hosts[0]);
  auto seed = n1->self().address;
  auto n2 = start_node(m2, config_with({seed}, tls2), *hosts[1]);
  REQUIRE(eventually([&] {
    return converged({n1.get(), n2.get()});
  }));

  // Bytes (a command batch, for the router) travel between authenticated members.
  inbox at1;
  n1->on_receive(channel::commands, at1.handler());
  REQUIRE(n2->send(n1->self(), channel::commands, "deposit through TLS"));
  REQUIRE(eventually([&] {
    return at1.has("deposit through TLS");
  }));

  // Three nodes that must not get in: no certificate at all (plain BASP), a certificate
  // of another CA (which trusts only its own CA), and a certificate of another CA that
  // trusts the cluster's CA (so only the cluster's check can stop it).
  machine m_plain;
  machine m_rogue{tls_of(rogue, "rogue")};
  machine m_sly{tls_of(rogue, "rogue", pki.ca())};
  auto t0 = clock_type::now();
  auto plain = start_node(m_plain, config_with({seed}), *hosts[2]);
  auto bad = start_node(m_rogue, config_with({seed}, tls_of(rogue, "rogue")), *hosts[3]);
  auto sly = start_node(m_sly, config_with({seed}, tls_of(rogue, "rogue", pki.ca())), *hosts[4]);
  std::vector<node*> outsiders{plain.get(), bad.get(), sly.get()};
  REQUIRE(eventually([&] {
    for (auto* o : outsiders)
      if (o->failed_connects() < 3) return false;
    return true;
  }));
  MESSAGE("3 refused connection attempts each of 3 outsiders within "
          << std::chrono::duration<double, std::milli>(clock_type::now() - t0).count() << " ms");
  for (auto* o : outsiders) {
    auto why = o->last_connect_error();
    CHECK_MESSAGE(why.find("cannot connect to " + to_string(seed)) != std::string::npos, why);
    for (auto* member : {n1.get(), n2.get()})
      CHECK_FALSE(lists(member->view(), o->self().address));
    CHECK_FALSE(lists(o->view(), seed)); // nor did it learn anything of the cluster
    // It cannot send commands either: it has no connection to any member.
    CHECK_FALSE(o->send(n1->self(), channel::commands, "forged"));
  }
  CHECK(bad->last_connect_error().find("TLS") != std::string::npos);
  CHECK(converged({n1.get(), n2.get()}));
  CHECK_FALSE(at1.has("forged"));

  // The cluster kept serving through the refused handshakes: a third valid node joins.
  machine m3{tls_of(pki, "node-3")};
  auto n3 = start_node(m3, config_with({seed}, tls_of(pki, "node-3")), *hosts[5]);
  REQUIRE(eventually([&] {
    return converged({n1.get(), n2.get(), n3.get()});
  }));
  REQUIRE(n3->send(n1->self(), channel::commands, "from the third"));
  REQUIRE(eventually([&] {
    return at1.has("from the third");
  }));
  CHECK(n3->failed_connects() == 0);
  for (auto* o : outsiders)
    CHECK_FALSE(lists(n3->view(), o->self().address));

  for (auto* o : outsiders)
    o->stop();
  n3->stop();
  n2->stop();
  n1->stop();
}
