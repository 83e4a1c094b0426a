#include "push_session.h"

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "log.h"
#include "msrp_serializer.h"
#include "socket_address.h"

namespace dims::relay {
namespace {

// Lingering results go to the caller at once when this many have gathered.
constexpr size_t kMaxResultsPerResponse = 256;

using grpc::StatusCode;

// A numeric host:port to connect to (no DNS on an event loop). RFC 4975 connects to the first
// URI of the peer's path; when its host is a name, the c=/m= address (RFC 6714 style) is used.
std::optional<SocketAddress> ConnectAddress(const std::string& host, uint16_t port) {
  if (port == 0) return std::nullopt;
  return NumericSocketAddress(host, port);
}

}  // namespace

OutgoingSession::OutgoingSession(std::string id, MsrpUri local_uri, std::string aor,
                                 EventLoop* loop, const SessionOptions& options,
                                 RelayMetrics& metrics,
                                 std::function<void(const std::string&)> on_ended)
    : id_(std::move(id)),
      local_uri_(std::move(local_uri)),
      aor_(std::move(aor)),
      loop_(loop),
      options_(options),
      metrics_(metrics),
      on_ended_(std::move(on_ended)) {
  metrics_.sessions_outgoing.Increment();
}

OutgoingSession::~OutgoingSession() {
  if (connection_) connection_->Close();
  metrics_.sessions_outgoing.Decrement();
}

void OutgoingSession::Start(EventLoop::Clock::time_point expires_at) { ArmReaper(expires_at); }

void OutgoingSession::ArmReaper(EventLoop::Clock::time_point when) {
  loop_->Cancel(reaper_);
  std::weak_ptr<OutgoingSession> weak = weak_from_this();
  reaper_ = loop_->RunAt(when, [weak] {
    auto self = weak.lock();
    if (!self) return;
    self->reaper_ = 0;
    if (self->state_ == State::kClosed) return;
    if (self->state_ == State::kConnected) {
      if (self->push_) return;  // a push runs: not idle; its end arms the reaper again
      log::Info("idle push session closed", {{"session", self->id_}, {"aor", self->aor_}});
      RelayStatus idle =
          RelayError(StatusCode::ABORTED, "the session was idle too long", "SESSION_IDLE");
      self->End(idle, idle);
      return;
    }
    log::Info("push session reaped", {{"session", self->id_}, {"aor", self->aor_}});
    if (self->answer_ && self->state_ != State::kLost) {
      self->metrics_.CountConnect(RelayConnects(self->answer_->setup) ? "active" : "passive",
                                  "timeout");
    }
    RelayStatus timeout = RelayError(StatusCode::DEADLINE_EXCEEDED,
                                     "the client did not connect in time", "CONNECT_TIMEOUT");
    self->End(timeout, timeout);
  });
}

// --- Connecting ---------------------------------------------------------------------------

void OutgoingSession::Connect(SdpAnswer answer, std::string answer_text,
                              EventLoop::Clock::time_point deadline, ConnectDone done) {
  if (state_ == State::kClosed) {
    done(RelayError(StatusCode::NOT_FOUND, "session " + id_ + " is closed", "UNKNOWN_SESSION",
                    "session_id"),
         connect_response_);
    return;
  }
  if (state_ == State::kLost) {
    done(RelayError(StatusCode::UNAVAILABLE, "the session's MSRP connection was lost",
                    "CONNECT_FAILED"),
         connect_response_);
    return;
  }
  if (answer_) {
    if (answer_text != answer_text_) {
      done(RelayError(StatusCode::FAILED_PRECONDITION,
                      "session " + id_ + " is connected with a different answer",
                      "ALREADY_CONNECTED", "sdp_answer"),
           connect_response_);
      return;
    }
    if (state_ == State::kConnected) {
      done(RelayStatus{}, connect_response_);
      return;
    }
  } else {
    answer_ = std::move(answer);
    answer_text_ = std::move(answer_text);
    connect_response_.Clear();
    for (const auto& uri : answer_->path_uris) connect_response_.add_peer_path(uri);
    for (const auto& type : answer_->accept_types) connect_response_.add_peer_accept_types(type);
    connect_response_.set_peer_max_size(answer_->max_size);
    bool active = RelayConnects(answer_->setup);
    connect_response_.set_setup(active ? dims::v1::SETUP_ROLE_ACTIVE
                                       : dims::v1::SETUP_ROLE_PASSIVE);
    if (inbound_bound_) {
      // The client connected already (it took the active role of actpass before its answer
      // reached us): that connection is the session's, whatever the answer says.
      BecomeConnected();
      done(RelayStatus{}, connect_response_);
      return;
    }
    if (active) {
      std::string error;
      if (!StartActiveConnect(&error)) {
        answer_.reset();
        metrics_.CountConnect("active", "failed");
        done(RelayError(StatusCode::UNAVAILABLE, error, "CONNECT_FAILED"), connect_response_);
        return;
      }
      state_ = State::kConnecting;
    } else {
      state_ = State::kAwaitingInbound;
    }
  }
  uint64_t waiter = next_waiter_++;
  std::weak_ptr<OutgoingSession> weak = weak_from_this();
  auto timer = loop_->RunAt(deadline, [weak, waiter] {
    auto self = weak.lock();
    if (!self) return;
    for (auto it = self->waiters_.begin(); it != self->waiters_.end(); ++it) {
      if (it->id != waiter) continue;
      auto expired = std::move(it->done);
      self->waiters_.erase(it);
      expired(RelayError(StatusCode::DEADLINE_EXCEEDED,
                         "the MSRP connection was not up within the call's deadline",
                         "CONNECT_TIMEOUT"),
              self->connect_response_);
      return;
    }
  });
  waiters_.push_back({waiter, std::move(done), timer});
}

bool OutgoingSession::StartActiveConnect(std::string* error) {
  auto address = ConnectAddress(answer_->path.front().host, answer_->path.front().port);
  if (!address) address = ConnectAddress(answer_->connection_host, answer_->media_port);
  if (!address) {
    *error = "no numeric address to connect to in the answer's a=path or c=/m= lines";
    return false;
  }
  std::string peer = DescribeSocketAddress(address->storage);
  int fd = socket(address->family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    *error = std::string("socket: ") + std::strerror(errno);
    return false;
  }
  if (connect(fd, address->get(), address->length) != 0 && errno != EINPROGRESS) {
    *error = "connect to " + peer + ": " + std::strerror(errno);
    close(fd);
    return false;
  }
  connection_ = std::make_shared<MsrpConnection>(fd, options_.limits, /*connecting=*/true, peer,
                                                 &metrics_.connections);
  connection_->Start(loop_, this);
  log::Debug("connecting", {{"session", id_}, {"peer", peer}});
  return true;
}

void OutgoingSession::OnConnected(MsrpConnection&) { SendBindingSend(); }

// RFC 4975 5.4 / 7.1.1: the active side sends first, so that the passive side can bind the
// connection to the session; a SEND without body serves.
void OutgoingSession::SendBindingSend() {
  MsrpMessage send;
  send.method = "SEND";
  send.transaction_id = NewMsrpTransactionId();
  send.to_path = answer_->path;
  send.from_path = {local_uri_};
  send.message_id = NewMsrpMessageId();
  send.byte_range = ByteRange{.start = 1, .end = 0, .total = 0};
  binding_transaction_ = send.transaction_id;
  connection_->Send(SerializeMsrpMessage(send));
}

void OutgoingSession::BecomeConnected() {
  state_ = State::kConnected;
  ArmReaper(EventLoop::Clock::now() + options_.idle_timeout);
  metrics_.CountConnect(RelayConnects(answer_->setup) ? "active" : "passive", "connected");
  log::Info("push session connected",
            {{"session", id_},
             {"aor", aor_},
             {"setup", RelayConnects(answer_->setup) ? "active" : "passive"},
             {"peer", connection_ ? connection_->peer() : ""}});
  ResolveWaiters(RelayStatus{});
}

void OutgoingSession::ResolveWaiters(const RelayStatus& status) {
  auto waiters = std::move(waiters_);
  waiters_.clear();
  for (auto& waiter : waiters) {
    loop_->Cancel(waiter.timer);
    waiter.done(status, connect_response_);
  }
}

void OutgoingSession::ConnectFailed(const RelayStatus& status, const std::string& result) {
  metrics_.CountConnect(answer_ && !RelayConnects(answer_->setup) ? "passive" : "active", result);
  log::Info("push session connect failed", {{"session", id_}, {"error", status.message}});
  if (connection_) connection_->Close();
  connection_.reset();
  // A repeated ConnectSession (idempotent, retried on UNAVAILABLE) starts afresh.
  answer_.reset();
  answer_text_.clear();
  binding_transaction_.clear();
  state_ = State::kOpen;
  ResolveWaiters(status);
}

void OutgoingSession::AdoptInbound(std::shared_ptr<MsrpConnection> connection,
                                   std::vector<MsrpParseResult> pending) {
  bool takes_inbound = (state_ == State::kOpen || state_ == State::kAwaitingInbound) &&
                       !connection_ && !inbound_bound_;
  if (!takes_inbound) {
    // RFC 4975 7.3: a session already bound to another connection answers 506.
    for (const auto& result : pending) {
      if (const auto* request = std::get_if<MsrpMessage>(&result)) {
        if (request->is_request && ExpectsResponse(*request)) {
          connection->SendNowAndClose(SerializeMsrpMessage(
              MakeMsrpResponse(*request, 506, "session bound to another connection")));
          return;
        }
      }
    }
    connection->Close();
    return;
  }
  connection_ = std::move(connection);
  inbound_bound_ = true;
  connection_->Start(loop_, this, std::move(pending));
  if (state_ == State::kAwaitingInbound && connection_ && !connection_->closed()) {
    BecomeConnected();
  }
}

// --- MSRP traffic -------------------------------------------------------------------------

void OutgoingSession::OnMessages(MsrpConnection&, std::vector<MsrpParseResult>& results) {
  auto keep = shared_from_this();
  for (auto& result : results) {
    if (state_ == State::kClosed || !connection_) return;
    if (auto* error = std::get_if<MsrpParseError>(&result)) {
      log::Debug("bad MSRP from the client", {{"session", id_},
                                              {"status", static_cast<int>(error->status)},
                                              {"error", error->comment}});
      if (error->ShouldRespond()) Respond(error->partial, error->status, error->comment);
      continue;
    }
    auto& message = std::get<MsrpMessage>(result);
    if (message.is_request) {
      HandleRequest(message);
    } else {
      HandleResponse(message);
    }
  }
}

void OutgoingSession::Respond(const MsrpMessage& request, uint16_t status,
                              std::string_view comment) {
  if (!connection_ || !ExpectsResponse(request)) return;
  connection_->Send(SerializeMsrpMessage(MakeMsrpResponse(request, status, comment)));
}

void OutgoingSession::HandleRequest(const MsrpMessage& request) {
  if (request.ToSessionId() != id_) {
    Respond(request, 481, "no such session on this connection");
    return;
  }
  if (request.IsReport()) {
    if (!tracker_ || !request.message_id || !request.status) return;
    auto step =
        tracker_->OnReport(*request.message_id, *request.status, request.EffectiveByteRange());
    ApplyStep(step, "");
    return;
  }
  if (request.IsSend()) {
    // A SEND without content binds the connection or keeps it alive (RFC 4975 5.4, 7.1.1).
    // Content is refused: the push session is sendonly (SDP a=sendonly; RFC 4975 section 7.2
    // lets a receiver refuse a request it does not allow with 403).
    if (!request.body || request.body->empty()) {
      Respond(request, 200, "OK");
    } else {
      Respond(request, 403, "push session is sendonly");
    }
    return;
  }
  Respond(request, 501, "method not implemented");
}

void OutgoingSession::HandleResponse(const MsrpMessage& response) {
  if (!binding_transaction_.empty() && response.transaction_id == binding_transaction_) {
    binding_transaction_.clear();
    if (state_ != State::kConnecting) return;
    if (response.status_code == 200) {
      BecomeConnected();
    } else {
      RelayStatus status = RelayError(
          StatusCode::UNAVAILABLE,
          "the client answered the binding SEND with " + std::to_string(response.status_code),
          "CONNECT_FAILED");
      status.detail.set_msrp_status(response.status_code);
      status.detail.set_msrp_comment(response.comment);
      ConnectFailed(status, "failed");
    }
    return;
  }
  if (!tracker_) return;
  auto step = tracker_->OnResponse(response.transaction_id, response.status_code, response.comment);
  ApplyStep(step, response.transaction_id);
}

void OutgoingSession::ApplyStep(const PushTracker::Step& step, const std::string& transaction_id) {
  if (!step.known) return;
  if (!transaction_id.empty()) CancelTransactionTimer(transaction_id);
  if (step.awaiting_report && !transaction_id.empty()) {
    // The success REPORT gets the same time as a transaction response.
    std::weak_ptr<OutgoingSession> weak = weak_from_this();
    transaction_timers_[transaction_id] =
        loop_->RunAfter(options_.transaction_timeout, [weak, transaction_id] {
          if (auto self = weak.lock()) self->OnTransactionTimeout(transaction_id);
        });
  }
  if (!step.finished) return;
  // A message decided by a REPORT, an error or a timeout may still have other chunks' timers
  // (or the one awaiting the REPORT) running.
  for (const auto& transaction : step.transactions) CancelTransactionTimer(transaction);
  if (step.finished->outcome != dims::v1::PUSH_OUTCOME_DELIVERED) {
    AbortRemainingChunks(step.seq);
  }
  Report(*step.finished);
  StartReady();
  MaybeRequestNext();
  MaybeEndPush();
}

void OutgoingSession::CancelTransactionTimer(const std::string& transaction_id) {
  auto timer = transaction_timers_.find(transaction_id);
  if (timer == transaction_timers_.end()) return;
  loop_->Cancel(timer->second);
  transaction_timers_.erase(timer);
}

void OutgoingSession::OnTransactionTimeout(const std::string& transaction_id) {
  transaction_timers_.erase(transaction_id);
  if (!tracker_) return;
  auto step = tracker_->OnTimeout(transaction_id);
  if (!step.known) return;
  metrics_.transaction_timeouts.Increment();
  ApplyStep(step, "");
}

void OutgoingSession::Report(const MessageOutcome& outcome) {
  metrics_.CountMessage(outcome.outcome);
  if (outcome.outcome == dims::v1::PUSH_OUTCOME_DELIVERED) ++delivered_;
  if (!push_) return;
  unsent_results_.push_back(outcome);
  unsent_results_.back().completed_at = std::chrono::system_clock::now();
  if (options_.result_linger.count() == 0 || unsent_results_.size() >= kMaxResultsPerResponse) {
    FlushResults();
  } else if (results_timer_ == 0) {
    std::weak_ptr<OutgoingSession> weak = weak_from_this();
    results_timer_ = loop_->RunAfter(options_.result_linger, [weak] {
      if (auto self = weak.lock()) {
        self->results_timer_ = 0;
        self->FlushResults();
      }
    });
  }
}

void OutgoingSession::FlushResults() {
  loop_->Cancel(results_timer_);
  results_timer_ = 0;
  if (push_ && !unsent_results_.empty()) push_->Deliver(unsent_results_);
  unsent_results_.clear();
}

// --- Sending ------------------------------------------------------------------------------

void OutgoingSession::OnDrained(MsrpConnection&) { Pump(); }

// Chunks leave while the connection's queue is short, so that a large message never sits
// whole in the queue and a rejected one can still be cut short.
void OutgoingSession::Pump() {
  while (connection_ && state_ == State::kConnected && !sending_.empty() &&
         connection_->queued_bytes() < options_.chunk_bytes * 2) {
    Sending& front = sending_.front();
    SendChunk(front);
    if (front.next_chunk == front.chunks.size()) sending_.pop_front();
  }
}

void OutgoingSession::SendChunk(Sending& sending) {
  const MsrpChunkPlan& plan = sending.chunks[sending.next_chunk++];
  const std::string& body = *sending.message.body;
  std::string_view slice(body.data() + plan.offset, static_cast<size_t>(plan.size));
  MsrpMessage head;
  head.method = "SEND";
  head.transaction_id = NewMsrpTransactionIdFor(slice);
  head.to_path = answer_->path;
  head.from_path = {local_uri_};
  head.message_id = sending.message.msrp_message_id;
  if (request_report_) head.success_report = true;
  head.byte_range = plan.range;
  head.content_type = sending.message.content_type;
  // The codec frames the header fields; the body follows by reference, then the end-line.
  std::string framed = SerializeMsrpMessage(head);
  framed.resize(framed.size() - (7 + head.transaction_id.size() + 3));
  framed += "\r\n";
  std::string tail = "\r\n-------" + head.transaction_id;
  tail += static_cast<char>(plan.continuation);
  tail += "\r\n";
  connection_->Send(std::move(framed), sending.message.body, static_cast<size_t>(plan.offset),
                    slice.size(), std::move(tail));
  tracker_->ChunkSent(sending.seq, head.transaction_id, plan.size);
  metrics_.chunks_sent.Increment();
  metrics_.bytes_sent.Increment(static_cast<double>(plan.size));
  std::weak_ptr<OutgoingSession> weak = weak_from_this();
  std::string transaction = head.transaction_id;
  transaction_timers_[transaction] =
      loop_->RunAfter(options_.transaction_timeout, [weak, transaction] {
        if (auto self = weak.lock()) self->OnTransactionTimeout(transaction);
      });
}

// RFC 4975 7.1: a sender that gives up on a message it has begun ends it with "#".
void OutgoingSession::AbortRemainingChunks(uint64_t seq) {
  for (auto it = sending_.begin(); it != sending_.end(); ++it) {
    if (it->seq != seq) continue;
    if (it->next_chunk > 0 && connection_ && state_ == State::kConnected) {
      const MsrpChunkPlan& next = it->chunks[it->next_chunk];
      MsrpMessage abort;
      abort.method = "SEND";
      abort.transaction_id = NewMsrpTransactionId();
      abort.to_path = answer_->path;
      abort.from_path = {local_uri_};
      abort.message_id = it->message.msrp_message_id;
      abort.byte_range =
          ByteRange{.start = next.offset + 1, .end = next.offset, .total = next.range.total};
      abort.content_type = it->message.content_type;
      abort.body = "";
      abort.continuation = MsrpContinuation::kAborted;
      connection_->Send(SerializeMsrpMessage(abort));
    }
    sending_.erase(it);
    return;
  }
}

// --- Push streams -------------------------------------------------------------------------

void OutgoingSession::AttachPush(std::shared_ptr<PushStream> stream,
                                 const dims::v1::PushStart& start) {
  if (state_ == State::kClosed) {
    stream->End(RelayError(StatusCode::NOT_FOUND, "session " + id_ + " is closed",
                           "UNKNOWN_SESSION", "start.session_id"));
    return;
  }
  if (push_) {
    stream->End(RelayError(StatusCode::FAILED_PRECONDITION,
                           "session " + id_ + " already has a Push stream", "PUSH_IN_PROGRESS"));
    return;
  }
  if (state_ == State::kLost) {
    stream->End(RelayError(StatusCode::UNAVAILABLE, "the session's MSRP connection was lost",
                           "CONNECTION_LOST"));
    return;
  }
  if (state_ != State::kConnected) {
    stream->End(RelayError(StatusCode::FAILED_PRECONDITION,
                           "session " + id_ + " is not connected (ConnectSession first)",
                           "NOT_CONNECTED"));
    return;
  }
  push_ = std::move(stream);
  max_in_flight_ = start.max_in_flight() == 0 ? 1 : start.max_in_flight();
  request_report_ = start.request_success_report();
  tracker_ = std::make_unique<PushTracker>(request_report_);
  read_pending_ = false;
  input_ended_ = false;
  push_started_ = EventLoop::Clock::now();
  log::Debug("push started", {{"session", id_},
                              {"run", start.run_id()},
                              {"max_in_flight", static_cast<unsigned>(max_in_flight_)}});
  MaybeRequestNext();
}

void OutgoingSession::EnqueuePush(PushStream* stream, std::vector<PreparedMessage> messages) {
  if (!push_ || push_.get() != stream) return;
  read_pending_ = false;
  for (auto& message : messages) ready_.push_back(std::move(message));
  StartReady();
  MaybeRequestNext();
}

void OutgoingSession::StartReady() {
  while (!ready_.empty() && tracker_ && tracker_->open_messages() < max_in_flight_) {
    PreparedMessage message = std::move(ready_.front());
    ready_.pop_front();
    uint64_t seq = next_seq_++;
    uint64_t size = message.body->size();
    tracker_->Begin(seq, message.message_id, message.msrp_message_id, size);
    sending_.push_back({.seq = seq,
                        .message = std::move(message),
                        .chunks = PlanMsrpChunks(size, options_.chunk_bytes)});
  }
  Pump();
}

void OutgoingSession::PushInputEnded(PushStream* stream) {
  if (!push_ || push_.get() != stream) return;
  read_pending_ = false;
  input_ended_ = true;
  MaybeEndPush();
}

void OutgoingSession::FailPush(PushStream* stream, const RelayStatus& status) {
  if (!push_ || push_.get() != stream) {
    stream->End(status);
    return;
  }
  EndPush(status, 0, "push ended: " + status.message);
}

void OutgoingSession::PushCancelled(PushStream* stream) {
  if (!push_ || push_.get() != stream) return;
  log::Info("push cancelled by the caller; closing the session", {{"session", id_}});
  RelayStatus cancelled{.code = StatusCode::CANCELLED, .message = "cancelled by the caller"};
  End(cancelled, cancelled);
}

void OutgoingSession::MaybeRequestNext() {
  if (!push_ || input_ended_ || read_pending_ || !tracker_) return;
  // The window's messages plus one item read ahead, the next read only once that item is all
  // sent: no more, so that backpressure reaches the caller.
  if (!ready_.empty()) return;
  read_pending_ = true;
  push_->RequestNext();
}

void OutgoingSession::MaybeEndPush() {
  if (push_ && input_ended_ && tracker_ && tracker_->open_messages() == 0 && ready_.empty()) {
    EndPush(RelayStatus{}, 0, "");
  }
}

void OutgoingSession::EndPush(const RelayStatus& status, uint32_t failed_status,
                              const std::string& comment) {
  if (!push_) return;
  for (const auto& outcome : tracker_->FailAll(failed_status, comment)) {
    AbortRemainingChunks(outcome.seq);
    Report(outcome);
  }
  // Read but never sent: FAILED as well (relay.proto: every message read and not confirmed).
  for (const auto& message : ready_) {
    Report({.message_id = message.message_id,
            .outcome = dims::v1::PUSH_OUTCOME_FAILED,
            .msrp_status = failed_status,
            .msrp_comment = comment});
  }
  ready_.clear();
  sending_.clear();
  for (const auto& [transaction, timer] : transaction_timers_) loop_->Cancel(timer);
  transaction_timers_.clear();
  FlushResults();
  push_->End(status);
  push_.reset();
  tracker_.reset();
  if (state_ == State::kConnected) ArmReaper(EventLoop::Clock::now() + options_.idle_timeout);
  metrics_.push_duration.Observe(
      std::chrono::duration<double>(EventLoop::Clock::now() - push_started_).count());
}

// --- Ending -------------------------------------------------------------------------------

void OutgoingSession::OnClosed(MsrpConnection&, const std::string& why) {
  auto keep = shared_from_this();
  log::Info("MSRP connection closed", {{"session", id_}, {"reason", why}});
  if (state_ == State::kConnecting) {
    ConnectFailed(RelayError(StatusCode::UNAVAILABLE, "MSRP connection to the client: " + why,
                             "CONNECT_FAILED"),
                  "failed");
    return;
  }
  connection_.reset();
  if (state_ != State::kConnected && state_ != State::kAwaitingInbound && state_ != State::kOpen) {
    return;
  }
  if (state_ == State::kOpen || state_ == State::kAwaitingInbound) {
    // The client's early connection went away before the session was connected: it may
    // connect again.
    inbound_bound_ = false;
    return;
  }
  state_ = State::kLost;
  EndPush(RelayError(StatusCode::UNAVAILABLE, "the MSRP connection was lost: " + why,
                     "CONNECTION_LOST"),
          0, "connection lost: " + why);
  // Kept for a while so that CloseSession still answers with what was delivered.
  ArmReaper(EventLoop::Clock::now() + std::chrono::minutes(1));
}

uint32_t OutgoingSession::Close() {
  RelayStatus aborted =
      RelayError(StatusCode::ABORTED, "session " + id_ + " was closed", "SESSION_CLOSED");
  End(aborted, aborted);
  return delivered_;
}

void OutgoingSession::Drain() {
  RelayStatus draining =
      RelayError(StatusCode::UNAVAILABLE, "the relay instance is draining", "DRAINING");
  End(draining, draining);
}

void OutgoingSession::End(const RelayStatus& push_status, const RelayStatus& waiter_status) {
  if (state_ == State::kClosed) return;
  auto keep = shared_from_this();
  state_ = State::kClosed;
  EndPush(push_status, 0, "session ended: " + push_status.message);
  ResolveWaiters(waiter_status);
  loop_->Cancel(reaper_);
  reaper_ = 0;
  if (connection_) connection_->Close();
  connection_.reset();
  on_ended_(id_);
}

}  // namespace dims::relay
