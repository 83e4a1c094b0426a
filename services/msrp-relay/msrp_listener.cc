#include "msrp_listener.h"

#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <future>

#include "log.h"
#include "msrp_serializer.h"
#include "socket_address.h"

namespace dims::relay {
namespace {
constexpr int kAcceptsPerEvent = 64;
}

// Waits for the first request of one accepted connection.
class MsrpListener::Binder : public MsrpConnection::Listener {
 public:
  Binder(MsrpListener& owner, std::shared_ptr<MsrpConnection> connection)
      : owner_(owner), connection_(std::move(connection)) {}

  void Arm(std::chrono::milliseconds timeout) {
    MsrpConnection* key = connection_.get();
    MsrpListener* owner = &owner_;
    timer_ = owner_.loop_->RunAfter(timeout, [owner, key] {
      auto it = owner->unbound_.find(key);
      if (it == owner->unbound_.end()) return;
      log::Debug("inbound MSRP connection sent nothing in time", {{"peer", key->peer()}});
      it->second->timer_ = 0;
      key->Close();
      owner->Forget(key);
    });
  }
  void Disarm() { owner_.loop_->Cancel(timer_); }

  void OnConnected(MsrpConnection&) override {}
  void OnDrained(MsrpConnection&) override {}
  void OnClosed(MsrpConnection& connection, const std::string&) override {
    owner_.Forget(&connection);
  }
  void OnMessages(MsrpConnection& connection, std::vector<MsrpParseResult>& results) override {
    auto keep = connection_;
    const auto* first = std::get_if<MsrpMessage>(&results.front());
    if (!first || !first->is_request) {
      // A broken or unexpected first message: nothing to bind, nothing to answer to.
      if (const auto* error = std::get_if<MsrpParseError>(&results.front());
          error && error->ShouldRespond()) {
        connection.SendNowAndClose(
            SerializeMsrpMessage(MakeMsrpResponse(error->partial, error->status, error->comment)));
      } else {
        connection.Close();
      }
      owner_.Forget(&connection);
      return;
    }
    auto session = owner_.registry_.Find(std::string(first->ToSessionId()));
    if (!session) {
      log::Info("inbound MSRP connection for an unknown session",
                {{"peer", connection.peer()}, {"session", first->ToSessionId()}});
      if (ExpectsResponse(*first)) {
        connection.SendNowAndClose(
            SerializeMsrpMessage(MakeMsrpResponse(*first, 481, "no such session")));
      } else {
        connection.Close();
      }
      owner_.Forget(&connection);
      return;
    }
    connection.Detach();
    std::vector<MsrpParseResult> pending = std::move(results);
    results.clear();
    owner_.Forget(&connection);
    session->loop()->Post([session, keep, pending = std::move(pending)]() mutable {
      session->AdoptInbound(keep, std::move(pending));
    });
  }

  EventLoop::TimerId timer_ = 0;

 private:
  MsrpListener& owner_;
  std::shared_ptr<MsrpConnection> connection_;
};

MsrpListener::MsrpListener(EventLoop* loop, SessionRegistry& registry,
                           const SessionOptions& options, RelayMetrics& metrics,
                           std::chrono::milliseconds first_request_timeout)
    : loop_(loop),
      registry_(registry),
      options_(options),
      metrics_(metrics),
      first_request_timeout_(first_request_timeout) {}

MsrpListener::~MsrpListener() { Stop(); }

bool MsrpListener::Listen(const std::string& host, uint16_t port, std::string* error) {
  auto address = NumericSocketAddress(host, port);
  if (!address) {
    *error = "msrp-listen host '" + host + "' is not an IPv4 or IPv6 address";
    return false;
  }
  fd_ = socket(address->family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd_ < 0) {
    *error = std::string("socket: ") + std::strerror(errno);
    return false;
  }
  int one = 1;
  setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (address->family() == AF_INET6) {
    // "[::]" takes IPv4 clients too, whatever the host's net.ipv6.bindv6only says.
    int zero = 0;
    setsockopt(fd_, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
  }
  if (bind(fd_, address->get(), address->length) != 0 || listen(fd_, 1024) != 0) {
    *error =
        "cannot listen on " + DescribeSocketAddress(address->storage) + ": " + std::strerror(errno);
    close(fd_);
    fd_ = -1;
    return false;
  }
  socklen_t length = sizeof address->storage;
  getsockname(fd_, address->get(), &length);
  port_ = address->port();
  std::promise<void> watching;
  loop_->Post([this, &watching] {
    loop_->Watch(fd_, EPOLLIN, [this](uint32_t) { Accept(); });
    watching.set_value();
  });
  watching.get_future().wait();
  return true;
}

void MsrpListener::Stop() {
  if (fd_ < 0) return;
  std::promise<void> stopped;
  loop_->Post([this, &stopped] {
    loop_->Unwatch(fd_);
    close(fd_);
    fd_ = -1;
    for (auto& [connection, binder] : unbound_) {
      binder->Disarm();
      connection->Close();
    }
    unbound_.clear();
    stopped.set_value();
  });
  stopped.get_future().wait();
}

void MsrpListener::Accept() {
  for (int i = 0; i < kAcceptsPerEvent; ++i) {
    sockaddr_storage peer{};
    socklen_t length = sizeof peer;
    int fd =
        accept4(fd_, reinterpret_cast<sockaddr*>(&peer), &length, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
        log::Warn("accept failed", {{"error", std::strerror(errno)}});
      }
      return;
    }
    auto connection =
        std::make_shared<MsrpConnection>(fd, options_.limits, /*connecting=*/false,
                                         DescribeSocketAddress(peer), &metrics_.connections);
    auto binder = std::make_unique<Binder>(*this, connection);
    Binder* listener = binder.get();
    unbound_.emplace(connection.get(), std::move(binder));
    listener->Arm(first_request_timeout_);
    connection->Start(loop_, listener);
  }
}

void MsrpListener::Forget(MsrpConnection* connection) {
  auto it = unbound_.find(connection);
  if (it == unbound_.end()) return;
  it->second->Disarm();
  // The binder may be running (it called us): destroy it once it has returned.
  loop_->RunAtEndOfBatch([binder = std::shared_ptr<Binder>(std::move(it->second))] {});
  unbound_.erase(it);
}

}  // namespace dims::relay
