// The sessions of this instance by id, and the event loops they are spread over. Thread-safe:
// gRPC handlers look sessions up here, then post to the session's loop.
#pragma once

#include <cstddef>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "event_loop.h"
#include "push_session.h"

namespace dims::relay {

class SessionRegistry {
 public:
  SessionRegistry(std::vector<EventLoop*> loops, size_t max_sessions);

  enum class Refusal { kNone, kFull, kDraining };
  // A new session with a fresh unguessable id on the next loop; nullptr with *refusal set
  // when the instance is full or draining.
  std::shared_ptr<OutgoingSession> Create(const std::string& aor,
                                          const std::string& advertised_host, uint16_t port,
                                          const SessionOptions& options, RelayMetrics& metrics,
                                          Refusal* refusal);
  std::shared_ptr<OutgoingSession> Find(const std::string& id) const;
  void Remove(const std::string& id);

  // Refuses new sessions from now on and returns those that exist.
  std::vector<std::shared_ptr<OutgoingSession>> StartDraining();
  bool draining() const;

 private:
  std::vector<EventLoop*> loops_;
  size_t max_sessions_;
  mutable std::mutex mu_;
  std::unordered_map<std::string, std::shared_ptr<OutgoingSession>> sessions_;
  size_t next_loop_ = 0;
  bool draining_ = false;
};

// A fresh session id: 20 alphanumerics from the system's random source (~119 bits).
std::string NewSessionId();

}  // namespace dims::relay
