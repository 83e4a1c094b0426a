// One MSRP TCP connection on an event loop: non-blocking socket, the codec's incremental
// parser on the way in, a queue of byte segments written with writev on the way out (bodies
// are referenced, not copied; writes of one loop batch leave in one system call).
#pragma once

#include <prometheus/gauge.h>

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "event_loop.h"
#include "msrp_parser.h"

namespace dims::relay {

class MsrpConnection : public std::enable_shared_from_this<MsrpConnection> {
 public:
  // Told on the loop thread; a listener may close the connection from any of these.
  class Listener {
   public:
    virtual ~Listener() = default;
    // The non-blocking connect completed.
    virtual void OnConnected(MsrpConnection& connection) = 0;
    virtual void OnMessages(MsrpConnection& connection, std::vector<MsrpParseResult>& results) = 0;
    // Everything queued has been handed to the kernel.
    virtual void OnDrained(MsrpConnection& connection) = 0;
    // The peer closed, an I/O error, or a parse error that loses the framing (after
    // OnMessages has seen that error). Not called after Close().
    virtual void OnClosed(MsrpConnection& connection, const std::string& why) = 0;
  };

  // `fd`: non-blocking, connected (accepted) or with a connect in progress (`connecting`).
  // `connections`: the gauge of open connections (may be null).
  MsrpConnection(int fd, MsrpLimits limits, bool connecting, std::string peer,
                 prometheus::Gauge* connections);
  ~MsrpConnection();
  MsrpConnection(const MsrpConnection&) = delete;
  MsrpConnection& operator=(const MsrpConnection&) = delete;

  // Starts watching the socket on `loop` (its thread). Results parsed before a move to this
  // loop are delivered first.
  void Start(EventLoop* loop, Listener* listener, std::vector<MsrpParseResult> pending = {});
  // Stops watching, to Start on another loop; the parser state moves with the object.
  void Detach();

  // Queues bytes; they leave at the end of the loop's batch.
  void Send(std::string bytes);
  // Queues head, a slice of a shared body (not copied) and tail.
  void Send(std::string head, std::shared_ptr<const std::string> body, size_t offset, size_t size,
            std::string tail);
  size_t queued_bytes() const { return queued_bytes_; }

  // Closes the socket at once (queued bytes are dropped); no OnClosed.
  void Close();
  // Writes `bytes` at once, as far as the socket takes them, and closes: a final short
  // answer (481, 506) on a connection that is then dropped.
  void SendNowAndClose(std::string_view bytes);
  bool closed() const { return fd_ < 0; }
  const std::string& peer() const { return peer_; }

 private:
  struct Segment {
    std::string owned;
    std::shared_ptr<const std::string> shared;
    const char* data = nullptr;
    size_t size = 0;
  };
  void Queue(Segment segment);
  void OnEvents(uint32_t events);
  void ReadAvailable();
  void Flush();
  void UpdateInterest();
  void Fail(const std::string& why);

  int fd_;
  MsrpParser parser_;
  bool connecting_;
  std::string peer_;
  prometheus::Gauge* connections_;
  EventLoop* loop_ = nullptr;
  Listener* listener_ = nullptr;
  std::deque<Segment> out_;
  size_t queued_bytes_ = 0;
  bool flush_scheduled_ = false;
  bool want_write_ = false;
};

}  // namespace dims::relay
