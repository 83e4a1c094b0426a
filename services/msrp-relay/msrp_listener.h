// The listening socket for clients that connect to the relay (a=setup:active in their
// answer). An accepted connection belongs to no session until its first request: the
// session-id of that request's To-Path binds it (RFC 4975 section 7.3), and it moves to the
// session's loop. An unknown session gets 481 and the connection is closed.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>

#include "event_loop.h"
#include "msrp_connection.h"
#include "relay_metrics.h"
#include "session_registry.h"

namespace dims::relay {

class MsrpListener {
 public:
  MsrpListener(EventLoop* loop, SessionRegistry& registry, const SessionOptions& options,
               RelayMetrics& metrics, std::chrono::milliseconds first_request_timeout);
  ~MsrpListener();

  // Binds and listens on host:port (0: a free port); false with *error on failure.
  bool Listen(const std::string& host, uint16_t port, std::string* error);
  uint16_t port() const { return port_; }
  // Stops accepting (drain); connections not yet bound are closed.
  void Stop();

 private:
  class Binder;
  void Accept();
  void Forget(MsrpConnection* connection);

  EventLoop* loop_;
  SessionRegistry& registry_;
  const SessionOptions& options_;
  RelayMetrics& metrics_;
  std::chrono::milliseconds first_request_timeout_;
  int fd_ = -1;
  uint16_t port_ = 0;
  // Loop thread only: connections waiting for their first request.
  std::unordered_map<MsrpConnection*, std::unique_ptr<Binder>> unbound_;
};

}  // namespace dims::relay
