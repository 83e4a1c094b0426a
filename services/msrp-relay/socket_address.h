// Numeric socket addresses for the relay's TCP: what it listens on and connects to, IPv4 or
// IPv6 (carrier cores are often IPv6-only), and how a peer is named in logs. No DNS: the relay
// must not block its event loops on a resolver.
#pragma once

#include <sys/socket.h>

#include <cstdint>
#include <optional>
#include <string>

namespace dims::relay {

struct SocketAddress {
  sockaddr_storage storage{};
  socklen_t length = 0;

  int family() const { return storage.ss_family; }
  uint16_t port() const;  // 0 for another family
  const sockaddr* get() const { return reinterpret_cast<const sockaddr*>(&storage); }
  sockaddr* get() { return reinterpret_cast<sockaddr*>(&storage); }
};

// "192.0.2.7", "2001:db8::7" or "[2001:db8::7]" with a port; nothing for a name.
std::optional<SocketAddress> NumericSocketAddress(const std::string& host, uint16_t port);

// "192.0.2.7:2855" or "[2001:db8::7]:2855"; "?" for another family.
std::string DescribeSocketAddress(const sockaddr_storage& address);

}  // namespace dims::relay
