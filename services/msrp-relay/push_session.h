// One outgoing (push) MSRP session (relay.proto Relay: OpenSession .. CloseSession). It lives
// on one event loop and is touched only there: gRPC handlers post to it. It connects to the
// client (or adopts the client's inbound connection), sends the deferred messages as SENDs in
// chunks, and turns responses, REPORTs and timeouts into push results.
#pragma once

#include <chrono>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "dims/v1/relay.pb.h"
#include "event_loop.h"
#include "msrp_connection.h"
#include "msrp_sdp.h"
#include "msrp_serializer.h"
#include "push_tracker.h"
#include "relay_metrics.h"
#include "relay_status.h"

namespace dims::relay {

// The caller's side of a Push stream, as the session drives it. Thread-safe.
class PushStream {
 public:
  virtual ~PushStream() = default;
  // Read the next item (the session asks once the last item's messages are all in the window).
  virtual void RequestNext() = 0;
  // Queue results for the caller, to travel in one response.
  virtual void Deliver(const std::vector<MessageOutcome>& outcomes) = 0;
  // End the stream with `status` once the results queued so far are written.
  virtual void End(const RelayStatus& status) = 0;
};

// One deferred message, encapsulated, ready to go out.
struct PreparedMessage {
  std::string message_id;       // DeferredMessage.message_id
  std::string msrp_message_id;  // the outer SEND's Message-ID
  std::string content_type;
  std::shared_ptr<const std::string> body;
};

struct SessionOptions {
  std::chrono::milliseconds transaction_timeout{30000};
  // A connected session without a Push stream this long is closed (its caller went away
  // without CloseSession).
  std::chrono::milliseconds idle_timeout{120000};
  size_t chunk_bytes = 65536;
  // How long a push result waits for others to join it in one response to the caller (a
  // gRPC write per message costs more than the message); 0: each goes at once.
  std::chrono::milliseconds result_linger{10};
  MsrpLimits limits;
};

class OutgoingSession : public MsrpConnection::Listener,
                        public std::enable_shared_from_this<OutgoingSession> {
 public:
  using ConnectDone =
      std::function<void(const RelayStatus&, const dims::v1::RelayConnectSessionResponse&)>;

  // `on_ended` is told (on the loop) when the session is gone, to forget its id.
  OutgoingSession(std::string id, MsrpUri local_uri, std::string aor, EventLoop* loop,
                  const SessionOptions& options, RelayMetrics& metrics,
                  std::function<void(const std::string&)> on_ended);
  ~OutgoingSession() override;

  const std::string& id() const { return id_; }
  EventLoop* loop() const { return loop_; }

  // Everything below: on the loop thread.
  // Arms the reaping of a session not connected by `expires_at`.
  void Start(EventLoop::Clock::time_point expires_at);
  // ConnectSession with a parsed answer (`answer_text` tells a repeat from another answer).
  void Connect(SdpAnswer answer, std::string answer_text, EventLoop::Clock::time_point deadline,
               ConnectDone done);
  // The client's connection, bound by the session-id of its first request (`pending`: the
  // requests read so far, the first among them).
  void AdoptInbound(std::shared_ptr<MsrpConnection> connection,
                    std::vector<MsrpParseResult> pending);

  void AttachPush(std::shared_ptr<PushStream> stream, const dims::v1::PushStart& start);
  // One item of the caller's stream, in order.
  void EnqueuePush(PushStream* stream, std::vector<PreparedMessage> messages);
  void PushInputEnded(PushStream* stream);
  // The caller broke the protocol (a second start, an empty or oversized item, a message
  // without content).
  void FailPush(PushStream* stream, const RelayStatus& status);
  // The caller cancelled: the push ends and the session closes.
  void PushCancelled(PushStream* stream);

  // CloseSession: a running push ends with ABORTED. Returns the messages delivered.
  uint32_t Close();
  // The instance drains: a running push ends with UNAVAILABLE and the session closes.
  void Drain();

  // MsrpConnection::Listener
  void OnConnected(MsrpConnection& connection) override;
  void OnMessages(MsrpConnection& connection, std::vector<MsrpParseResult>& results) override;
  void OnDrained(MsrpConnection& connection) override;
  void OnClosed(MsrpConnection& connection, const std::string& why) override;

 private:
  enum class State {
    kOpen,             // waiting for ConnectSession
    kConnecting,       // relay active: TCP connect or binding SEND under way
    kAwaitingInbound,  // relay passive: waiting for the client's connection
    kConnected,
    kLost,  // the connection went away; only CloseSession or reaping remain
    kClosed,
  };
  struct Waiter {
    uint64_t id;
    ConnectDone done;
    EventLoop::TimerId timer;
  };
  struct Sending {
    uint64_t seq;
    PreparedMessage message;
    std::vector<MsrpChunkPlan> chunks;
    size_t next_chunk = 0;
  };

  bool StartActiveConnect(std::string* error);
  void SendBindingSend();
  void BecomeConnected();
  void ConnectFailed(const RelayStatus& status, const std::string& result);
  void ResolveWaiters(const RelayStatus& status);

  void HandleRequest(const MsrpMessage& request);
  void HandleResponse(const MsrpMessage& response);
  void Respond(const MsrpMessage& request, uint16_t status, std::string_view comment);
  void ApplyStep(const PushTracker::Step& step, const std::string& transaction_id);
  void OnTransactionTimeout(const std::string& transaction_id);
  void CancelTransactionTimer(const std::string& transaction_id);

  void Pump();
  void SendChunk(Sending& sending);
  void AbortRemainingChunks(uint64_t seq);
  // Moves read messages into the window as far as it allows, and sends.
  void StartReady();
  void MaybeRequestNext();
  void MaybeEndPush();
  void EndPush(const RelayStatus& status, uint32_t failed_status, const std::string& comment);
  void Report(const MessageOutcome& outcome);
  void FlushResults();

  void End(const RelayStatus& push_status, const RelayStatus& waiter_status);
  void ArmReaper(EventLoop::Clock::time_point when);

  const std::string id_;
  const MsrpUri local_uri_;
  const std::string aor_;
  EventLoop* const loop_;
  const SessionOptions& options_;
  RelayMetrics& metrics_;
  std::function<void(const std::string&)> on_ended_;

  State state_ = State::kOpen;
  std::optional<SdpAnswer> answer_;
  std::string answer_text_;
  dims::v1::RelayConnectSessionResponse connect_response_;
  std::shared_ptr<MsrpConnection> connection_;
  bool inbound_bound_ = false;  // the client connected before ConnectSession
  std::string binding_transaction_;
  std::vector<Waiter> waiters_;
  uint64_t next_waiter_ = 1;
  EventLoop::TimerId reaper_ = 0;

  std::shared_ptr<PushStream> push_;
  std::unique_ptr<PushTracker> tracker_;
  uint32_t max_in_flight_ = 1;
  bool request_report_ = false;
  bool read_pending_ = false;  // a read from the caller's stream is outstanding
  bool input_ended_ = false;
  EventLoop::Clock::time_point push_started_;
  std::deque<Sending> sending_;
  // Read ahead of the window: the messages of the last item read wait here, encapsulated, so
  // that each goes out the moment the window opens instead of after a read from the caller.
  std::deque<PreparedMessage> ready_;
  // Results not yet handed to the caller: they linger (result_linger) to travel together.
  std::vector<MessageOutcome> unsent_results_;
  EventLoop::TimerId results_timer_ = 0;
  std::unordered_map<std::string, EventLoop::TimerId> transaction_timers_;
  uint64_t next_seq_ = 1;
  uint32_t delivered_ = 0;
};

}  // namespace dims::relay
