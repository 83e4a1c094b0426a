#include "msrp_connection.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace dims::relay {
namespace {
constexpr size_t kReadBytes = 64 * 1024;
constexpr int kReadsPerEvent = 16;  // then other sockets of the loop get their turn
constexpr int kMaxIov = 64;
}  // namespace

MsrpConnection::MsrpConnection(int fd, MsrpLimits limits, bool connecting, std::string peer,
                               prometheus::Gauge* connections)
    : fd_(fd),
      parser_(std::move(limits)),
      connecting_(connecting),
      peer_(std::move(peer)),
      connections_(connections) {
  int one = 1;
  setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (connections_) connections_->Increment();
}

MsrpConnection::~MsrpConnection() { Close(); }

void MsrpConnection::Start(EventLoop* loop, Listener* listener,
                           std::vector<MsrpParseResult> pending) {
  loop_ = loop;
  listener_ = listener;
  flush_scheduled_ = false;
  if (fd_ < 0) return;
  want_write_ = connecting_ || !out_.empty();
  auto weak = weak_from_this();
  loop_->Watch(fd_, EPOLLIN | EPOLLRDHUP | (want_write_ ? EPOLLOUT : 0u), [weak](uint32_t events) {
    if (auto self = weak.lock()) self->OnEvents(events);
  });
  if (!pending.empty()) {
    auto self = shared_from_this();
    listener_->OnMessages(*this, pending);
    if (fd_ >= 0 && parser_.closed()) Fail("MSRP framing lost");
  }
}

void MsrpConnection::Detach() {
  if (loop_ && fd_ >= 0) loop_->Unwatch(fd_);
  loop_ = nullptr;
  listener_ = nullptr;
}

void MsrpConnection::Queue(Segment segment) {
  if (fd_ < 0 || segment.size == 0) return;
  queued_bytes_ += segment.size;
  out_.push_back(std::move(segment));
  // A moved short string moves its characters: point at them where they now live (deque
  // elements stay put while others are added and removed at the ends).
  if (!out_.back().shared) out_.back().data = out_.back().owned.data();
  if (!flush_scheduled_ && !want_write_ && loop_) {
    flush_scheduled_ = true;
    auto weak = weak_from_this();
    loop_->RunAtEndOfBatch([weak] {
      if (auto self = weak.lock()) {
        self->flush_scheduled_ = false;
        self->Flush();
      }
    });
  }
}

void MsrpConnection::Send(std::string bytes) {
  Segment segment;
  segment.owned = std::move(bytes);
  segment.data = segment.owned.data();
  segment.size = segment.owned.size();
  Queue(std::move(segment));
}

void MsrpConnection::Send(std::string head, std::shared_ptr<const std::string> body, size_t offset,
                          size_t size, std::string tail) {
  Send(std::move(head));
  Segment slice;
  slice.shared = std::move(body);
  slice.data = slice.shared->data() + offset;
  slice.size = size;
  Queue(std::move(slice));
  Send(std::move(tail));
}

void MsrpConnection::Close() {
  if (fd_ < 0) return;
  if (loop_) loop_->Unwatch(fd_);
  close(fd_);
  fd_ = -1;
  out_.clear();
  queued_bytes_ = 0;
  if (connections_) connections_->Decrement();
}

void MsrpConnection::SendNowAndClose(std::string_view bytes) {
  if (fd_ >= 0) [[maybe_unused]]
    ssize_t n = send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
  Close();
}

void MsrpConnection::Fail(const std::string& why) {
  if (fd_ < 0) return;
  Listener* listener = listener_;
  Close();
  if (listener) listener->OnClosed(*this, why);
}

void MsrpConnection::OnEvents(uint32_t events) {
  auto self = shared_from_this();  // a listener may drop its reference while told
  if (connecting_) {
    if (!(events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) return;
    int error = 0;
    socklen_t length = sizeof error;
    getsockopt(fd_, SOL_SOCKET, SO_ERROR, &error, &length);
    if (error != 0) {
      Fail(std::string("connect failed: ") + std::strerror(error));
      return;
    }
    connecting_ = false;
    UpdateInterest();
    listener_->OnConnected(*this);
    if (fd_ >= 0 && !out_.empty()) Flush();
    return;
  }
  if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) ReadAvailable();
  if (fd_ >= 0 && loop_ && (events & EPOLLOUT)) Flush();
}

void MsrpConnection::ReadAvailable() {
  char buffer[kReadBytes];
  // A listener may detach the connection (to move it to another loop) while told.
  for (int i = 0; i < kReadsPerEvent && fd_ >= 0 && loop_; ++i) {
    ssize_t n = read(fd_, buffer, sizeof buffer);
    if (n > 0) {
      auto results = parser_.Feed(std::string_view(buffer, static_cast<size_t>(n)));
      if (!results.empty() && listener_) listener_->OnMessages(*this, results);
      if (fd_ >= 0 && loop_ && parser_.closed()) Fail("MSRP framing lost");
      if (static_cast<size_t>(n) < sizeof buffer) return;
      continue;
    }
    if (n == 0) {
      Fail(parser_.at_message_boundary() ? "closed by the peer"
                                         : "closed by the peer in the middle of a message");
      return;
    }
    if (errno == EINTR) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK) Fail(std::string("read: ") + std::strerror(errno));
    return;
  }
}

void MsrpConnection::Flush() {
  if (fd_ < 0 || connecting_ || !loop_) return;
  while (!out_.empty()) {
    iovec iov[kMaxIov];
    int count = 0;
    for (auto it = out_.begin(); it != out_.end() && count < kMaxIov; ++it, ++count) {
      iov[count].iov_base = const_cast<char*>(it->data);
      iov[count].iov_len = it->size;
    }
    ssize_t n = writev(fd_, iov, count);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      Fail(std::string("write: ") + std::strerror(errno));
      return;
    }
    size_t written = static_cast<size_t>(n);
    queued_bytes_ -= written;
    while (written > 0) {
      Segment& front = out_.front();
      if (written >= front.size) {
        written -= front.size;
        out_.pop_front();
      } else {
        front.data += written;
        front.size -= written;
        written = 0;
      }
    }
  }
  UpdateInterest();
  if (out_.empty() && listener_) listener_->OnDrained(*this);
}

void MsrpConnection::UpdateInterest() {
  bool want = connecting_ || !out_.empty();
  if (want == want_write_ || fd_ < 0 || !loop_) return;
  want_write_ = want;
  loop_->Modify(fd_, EPOLLIN | EPOLLRDHUP | (want ? EPOLLOUT : 0u));
}

}  // namespace dims::relay
