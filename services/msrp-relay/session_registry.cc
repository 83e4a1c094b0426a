#include "session_registry.h"

#include "msrp_message.h"

namespace dims::relay {

std::string NewSessionId() { return NewMsrpMessageId().substr(0, 20); }

SessionRegistry::SessionRegistry(std::vector<EventLoop*> loops, size_t max_sessions)
    : loops_(std::move(loops)), max_sessions_(max_sessions) {}

std::shared_ptr<OutgoingSession> SessionRegistry::Create(const std::string& aor,
                                                         const std::string& advertised_host,
                                                         uint16_t port,
                                                         const SessionOptions& options,
                                                         RelayMetrics& metrics, Refusal* refusal) {
  std::lock_guard lock(mu_);
  if (draining_) {
    *refusal = Refusal::kDraining;
    return nullptr;
  }
  if (sessions_.size() >= max_sessions_) {
    *refusal = Refusal::kFull;
    return nullptr;
  }
  std::string id;
  do {
    id = NewSessionId();
  } while (sessions_.count(id) != 0);
  MsrpUri uri{.host = advertised_host, .port = port, .session_id = id, .transport = "tcp"};
  EventLoop* loop = loops_[next_loop_++ % loops_.size()];
  auto session =
      std::make_shared<OutgoingSession>(id, std::move(uri), aor, loop, options, metrics,
                                        [this](const std::string& ended) { Remove(ended); });
  sessions_.emplace(id, session);
  *refusal = Refusal::kNone;
  return session;
}

std::shared_ptr<OutgoingSession> SessionRegistry::Find(const std::string& id) const {
  std::lock_guard lock(mu_);
  auto it = sessions_.find(id);
  return it == sessions_.end() ? nullptr : it->second;
}

void SessionRegistry::Remove(const std::string& id) {
  std::shared_ptr<OutgoingSession> removed;  // destroyed outside the lock
  std::lock_guard lock(mu_);
  auto it = sessions_.find(id);
  if (it == sessions_.end()) return;
  removed = std::move(it->second);
  sessions_.erase(it);
}

std::vector<std::shared_ptr<OutgoingSession>> SessionRegistry::StartDraining() {
  std::lock_guard lock(mu_);
  draining_ = true;
  std::vector<std::shared_ptr<OutgoingSession>> all;
  for (const auto& [id, session] : sessions_) all.push_back(session);
  return all;
}

bool SessionRegistry::draining() const {
  std::lock_guard lock(mu_);
  return draining_;
}

}  // namespace dims::relay
