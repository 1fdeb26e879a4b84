// File: strata/test/net.hpp — loopback ports for tests that start nodes.
//
//   auto port = strata::test::free_port();   // nothing listens there right now
//
// Threads: any. Errors: std::runtime_error when no socket can be bound.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>
#include <stdexcept>

namespace strata::test {

/// A 127.0.0.1 port nothing listens on right now: bound to port 0 and released, so
/// another process may take it before the caller does (tests start nodes right away).
inline std::uint16_t free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) throw std::runtime_error("free_port: socket() failed");
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
            ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0;
  ::close(fd);
  if (!ok) throw std::runtime_error("free_port: cannot bind a loopback port");
  return ntohs(a.sin_port);
}

} // namespace strata::test
