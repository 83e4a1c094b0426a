#include "relay_service.h"

#include <google/protobuf/util/time_util.h>

#include <deque>
#include <mutex>

#include "grpc_call.h"
#include "log.h"
#include "msrp_sdp.h"

namespace dims::relay {
namespace {

using dims::v1::RelayPushRequest;
using dims::v1::RelayPushResponse;
using google::protobuf::util::TimeUtil;
using grpc::StatusCode;

constexpr auto kMaxConnectTimeout = std::chrono::minutes(10);
// Messages one Push item may carry: the relay holds an item whole (encapsulated) while its
// messages go out, so a caller cannot make it hold a backlog.
constexpr int kMaxItemMessages = 1000;

// "multipart/mixed message/sip message/sipfrag" unless the caller names its own.
const std::vector<std::string> kDefaultAcceptTypes = {"multipart/mixed", "message/sip",
                                                      "message/sipfrag"};

// The call's deadline on the loops' clock; `fallback` from now when the caller set none.
EventLoop::Clock::time_point LoopDeadline(grpc::CallbackServerContext* context,
                                          std::chrono::milliseconds fallback) {
  auto now = std::chrono::system_clock::now();
  auto deadline = context->deadline();
  auto steady_now = EventLoop::Clock::now();
  if (deadline >= now + std::chrono::hours(24)) return steady_now + fallback;
  return steady_now + std::chrono::duration_cast<EventLoop::Clock::duration>(deadline - now);
}

grpc::ServerUnaryReactor* LargeMessageModeUnimplemented(grpc::CallbackServerContext* context) {
  auto* reactor = context->DefaultReactor();
  reactor->Finish(grpc::Status(StatusCode::UNIMPLEMENTED,
                               "large message mode (incoming sessions) is not implemented yet"));
  return reactor;
}

RelayStatus UnknownSession(const std::string& id, const std::string& field) {
  return RelayError(StatusCode::NOT_FOUND, "unknown session '" + id + "' at this instance",
                    "UNKNOWN_SESSION", field);
}

void FinishWith(grpc::CallbackServerContext* context, grpc::ServerUnaryReactor* reactor,
                const RelayStatus& status) {
  reactor->Finish(ToGrpcStatus(context, status));
}

// One Push stream. The reactor is owned by a shared pointer so that the session may hold it
// past the end of the call; calls into gRPC stop once OnDone has come.
class PushReactor final : public grpc::ServerBidiReactor<RelayPushRequest, RelayPushResponse>,
                          public PushStream,
                          public std::enable_shared_from_this<PushReactor> {
 public:
  static PushReactor* Start(grpc::CallbackServerContext* context, SessionRegistry& registry,
                            PagerPartType pager_part) {
    auto reactor = std::make_shared<PushReactor>(context, registry, pager_part);
    reactor->self_ = reactor;
    reactor->StartRead(&reactor->request_);
    return reactor.get();
  }

  PushReactor(grpc::CallbackServerContext* context, SessionRegistry& registry,
              PagerPartType pager_part)
      : context_(context), registry_(registry), pager_part_(pager_part) {}

  void OnReadDone(bool ok) override {
    if (!ok) {
      // The caller half-closed (or the call ended).
      if (!session_) {
        End(RelayError(StatusCode::INVALID_ARGUMENT, "the stream ended before its start item",
                       "MISSING_START", "start"));
        return;
      }
      Post([](OutgoingSession& session, PushReactor* self) { session.PushInputEnded(self); });
      return;
    }
    if (!session_) {
      Begin();
      return;
    }
    if (request_.has_start()) {
      FailItem("a second start item", "MISSING_START", "start");
      return;
    }
    if (!request_.has_messages() || request_.messages().messages().empty()) {
      FailItem("an item with no messages", "NO_MESSAGES", "messages");
      return;
    }
    if (request_.messages().messages_size() > kMaxItemMessages) {
      FailItem("an item with more than " + std::to_string(kMaxItemMessages) + " messages",
               "ITEM_TOO_LARGE", "messages");
      return;
    }
    // The whole item or nothing of it: a bad message fails the push before any is queued.
    std::vector<PreparedMessage> prepared;
    prepared.reserve(request_.messages().messages_size());
    for (int i = 0; i < request_.messages().messages_size(); ++i) {
      const auto& message = request_.messages().messages(i);
      std::string error;
      auto body = EncapsulateForPush(message, pager_part_, &error);
      if (!body) {
        FailItem(error, "MISSING_CONTENT", "messages.messages[" + std::to_string(i) + "].content");
        return;
      }
      prepared.push_back({.message_id = message.message_id(),
                          .msrp_message_id = PushMessageId(message.message_id()),
                          .content_type = std::move(body->content_type),
                          .body = std::make_shared<const std::string>(std::move(body->body))});
    }
    request_.Clear();  // held encapsulated now; not twice until the next read
    session_->loop()->Post(
        [session = session_, self = shared_from_this(), prepared = std::move(prepared)]() mutable {
          session->EnqueuePush(self.get(), std::move(prepared));
        });
  }

  void OnWriteDone(bool ok) override {
    const RelayPushResponse* next = nullptr;
    bool finish = false;
    {
      std::lock_guard lock(mu_);
      results_.pop_front();
      if (!ok) results_.clear();  // the caller is gone; OnCancel follows
      if (!results_.empty()) {
        next = &results_.front();
      } else {
        writing_ = false;
        finish = TakeFinishLocked();
      }
    }
    // gRPC may run a reaction inline: never call into it while holding mu_.
    if (next) StartWrite(next);
    if (finish) FinishNow();
  }

  void OnCancel() override {
    std::shared_ptr<OutgoingSession> session;
    {
      std::lock_guard lock(mu_);
      session = session_;
    }
    if (session) {
      session->loop()->Post(
          [session, self = shared_from_this()] { session->PushCancelled(self.get()); });
    } else {
      End(RelayStatus{.code = StatusCode::CANCELLED, .message = "cancelled by the caller"});
    }
  }

  void OnDone() override {
    std::shared_ptr<PushReactor> self;
    {
      std::lock_guard lock(mu_);
      done_ = true;
      self = std::move(self_);
    }
  }

  // PushStream
  void RequestNext() override {
    {
      std::lock_guard lock(mu_);
      if (done_ || finish_taken_) return;
    }
    StartRead(&request_);
  }

  void Deliver(const std::vector<MessageOutcome>& outcomes) override {
    const RelayPushResponse* first = nullptr;
    {
      std::lock_guard lock(mu_);
      if (done_ || finish_taken_) return;
      // Joins the last queued response when that one is not the front, being written.
      auto& response = results_.size() >= 2 ? results_.back() : results_.emplace_back();
      for (const auto& outcome : outcomes) {
        auto* result = response.add_results();
        result->set_message_id(outcome.message_id);
        result->set_outcome(outcome.outcome);
        result->set_msrp_status(outcome.msrp_status);
        result->set_msrp_comment(outcome.msrp_comment);
        result->set_bytes_sent(outcome.bytes_sent);
        *result->mutable_completed_at() =
            TimeUtil::NanosecondsToTimestamp(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                                 outcome.completed_at.time_since_epoch())
                                                 .count());
      }
      if (!writing_) {
        writing_ = true;
        first = &results_.front();
      }
    }
    if (first) StartWrite(first);
  }

  void End(const RelayStatus& status) override {
    bool finish = false;
    {
      std::lock_guard lock(mu_);
      if (end_ || done_) return;
      end_ = status;
      finish = !writing_ && TakeFinishLocked();
    }
    if (finish) FinishNow();
  }

 private:
  void Begin() {
    if (!request_.has_start()) {
      End(RelayError(StatusCode::INVALID_ARGUMENT, "the first item must be start", "MISSING_START",
                     "start"));
      return;
    }
    if (registry_.draining()) {
      End(RelayError(StatusCode::UNAVAILABLE, "the relay instance is draining", "DRAINING"));
      return;
    }
    auto session = registry_.Find(request_.start().session_id());
    if (!session) {
      End(UnknownSession(request_.start().session_id(), "start.session_id"));
      return;
    }
    {
      // OnCancel, on another thread, reads session_; a call it has already ended is not
      // attached to the session.
      std::lock_guard lock(mu_);
      if (end_ || done_) return;
      session_ = std::move(session);
    }
    session_->loop()->Post([session = session_, self = shared_from_this(),
                            start = request_.start()] { session->AttachPush(self, start); });
  }

  // The caller's item breaks the contract: the push ends INVALID_ARGUMENT.
  void FailItem(const std::string& message, const std::string& reason, const std::string& field) {
    Post([status = RelayError(StatusCode::INVALID_ARGUMENT, message, reason, field)](
             OutgoingSession& session, PushReactor* self) { session.FailPush(self, status); });
  }

  template <typename Fn>
  void Post(Fn fn) {
    session_->loop()->Post(
        [session = session_, self = shared_from_this(), fn] { fn(*session, self.get()); });
  }

  // Whether this caller is the one to finish the call (once, after the last write).
  bool TakeFinishLocked() {
    if (!end_ || finish_taken_) return false;
    finish_taken_ = true;
    return true;
  }
  // end_ is set for good once finish_taken_ is.
  void FinishNow() { Finish(ToGrpcStatus(context_, *end_)); }

  grpc::CallbackServerContext* context_;
  SessionRegistry& registry_;
  PagerPartType pager_part_;
  std::shared_ptr<PushReactor> self_;  // released by OnDone
  RelayPushRequest request_;
  // Set by the first read (under mu_, as OnCancel reads it); the gRPC reads, which are
  // sequential, read it without the lock.
  std::shared_ptr<OutgoingSession> session_;

  std::mutex mu_;
  std::deque<RelayPushResponse> results_;  // front: being written
  bool writing_ = false;
  std::optional<RelayStatus> end_;
  bool finish_taken_ = false;
  bool done_ = false;
};

}  // namespace

RelayService::RelayService(SessionRegistry& registry, const SessionOptions& session_options,
                           RelayMetrics& metrics, RelayServiceOptions options)
    : registry_(registry),
      session_options_(session_options),
      metrics_(metrics),
      options_(std::move(options)) {}

grpc::ServerUnaryReactor* RelayService::OpenSession(
    grpc::CallbackServerContext* context, const dims::v1::RelayOpenSessionRequest* request,
    dims::v1::RelayOpenSessionResponse* response) {
  auto* reactor = context->DefaultReactor();
  auto aor = AorOrFinish(request->aor(), "aor", context, reactor);
  if (!aor) return reactor;
  std::vector<std::string> accept_types(request->accept_types().begin(),
                                        request->accept_types().end());
  for (size_t i = 0; i < accept_types.size(); ++i) {
    if (accept_types[i] != "*" && !IsMsrpMediaType(accept_types[i])) {
      FinishWith(context, reactor,
                 RelayError(StatusCode::INVALID_ARGUMENT,
                            "accept_types[" + std::to_string(i) + "] '" + accept_types[i] +
                                "' is not a media type",
                            "INVALID_ACCEPT_TYPE", "accept_types"));
      return reactor;
    }
  }
  if (accept_types.empty()) accept_types = kDefaultAcceptTypes;
  auto connect_timeout = options_.connect_timeout;
  if (request->has_connect_timeout()) {
    auto requested =
        std::chrono::milliseconds(TimeUtil::DurationToMilliseconds(request->connect_timeout()));
    if (requested.count() <= 0 || requested > kMaxConnectTimeout) {
      FinishWith(context, reactor,
                 RelayError(StatusCode::INVALID_ARGUMENT,
                            "connect_timeout must be positive and at most 10 minutes",
                            "INVALID_CONNECT_TIMEOUT", "connect_timeout"));
      return reactor;
    }
    connect_timeout = requested;
  }
  SessionRegistry::Refusal refusal;
  auto session = registry_.Create(*aor, options_.advertised_host, options_.msrp_port,
                                  session_options_, metrics_, &refusal);
  if (!session) {
    if (refusal == SessionRegistry::Refusal::kDraining) {
      FinishWith(context, reactor,
                 RelayError(StatusCode::UNAVAILABLE, "the relay instance is draining", "DRAINING"));
    } else {
      RelayStatus full =
          RelayError(StatusCode::RESOURCE_EXHAUSTED,
                     "this relay instance holds its maximum of sessions", "SESSION_LIMIT");
      full.detail.set_limit("SESSIONS");
      FinishWith(context, reactor, full);
    }
    return reactor;
  }
  metrics_.sessions_opened.Increment();
  auto expires = EventLoop::Clock::now() + connect_timeout;
  session->loop()->Post([session, expires] { session->Start(expires); });

  MsrpUri uri{.host = options_.advertised_host,
              .port = options_.msrp_port,
              .session_id = session->id(),
              .transport = "tcp"};
  std::string local_uri = uri.ToString();
  response->set_session_id(session->id());
  response->set_local_uri(local_uri);
  response->add_local_path(local_uri);
  response->set_sdp_offer(BuildPushOffer(
      {.advertised_host = options_.advertised_host,
       .port = options_.msrp_port,
       .local_uri = local_uri,
       .accept_types = accept_types,
       .session_version = static_cast<uint64_t>(TimeUtil::GetCurrentTime().seconds())}));
  response->set_relay_instance_id(options_.instance_id);
  response->set_relay_address(options_.relay_address);
  *response->mutable_expires_at() = TimeUtil::MillisecondsToTimestamp(
      TimeUtil::TimestampToMilliseconds(TimeUtil::GetCurrentTime()) + connect_timeout.count());
  log::Debug("push session opened",
             {{"session", session->id()}, {"aor", *aor}, {"run", request->run_id()}});
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

grpc::ServerUnaryReactor* RelayService::ConnectSession(
    grpc::CallbackServerContext* context, const dims::v1::RelayConnectSessionRequest* request,
    dims::v1::RelayConnectSessionResponse* response) {
  auto* reactor = context->DefaultReactor();
  auto session = registry_.Find(request->session_id());
  if (!session) {
    FinishWith(context, reactor, UnknownSession(request->session_id(), "session_id"));
    return reactor;
  }
  auto parsed = ParseSdpAnswer(request->sdp_answer());
  if (!parsed.answer) {
    FinishWith(context, reactor,
               RelayError(StatusCode::INVALID_ARGUMENT, "unusable SDP answer: " + parsed.detail,
                          parsed.error == SdpAnswerError::kMediaRejected ? "MEDIA_REJECTED"
                                                                         : "INVALID_SDP",
                          "sdp_answer"));
    return reactor;
  }
  if (!AcceptsPushEncapsulation(parsed.answer->accept_types)) {
    FinishWith(context, reactor,
               RelayError(StatusCode::FAILED_PRECONDITION,
                          "the client accepts neither multipart/mixed, multipart/* nor *",
                          "NO_COMMON_TYPE", "sdp_answer"));
    return reactor;
  }
  auto deadline = LoopDeadline(context, options_.connect_timeout);
  session->loop()->Post([session, context, reactor, response, deadline,
                         answer = std::move(*parsed.answer),
                         text = request->sdp_answer()]() mutable {
    session->Connect(
        std::move(answer), std::move(text), deadline,
        [context, reactor, response](const RelayStatus& status,
                                     const dims::v1::RelayConnectSessionResponse& connected) {
          if (status.ok()) *response = connected;
          FinishWith(context, reactor, status);
        });
  });
  return reactor;
}

grpc::ServerBidiReactor<dims::v1::RelayPushRequest, dims::v1::RelayPushResponse>*
RelayService::Push(grpc::CallbackServerContext* context) {
  return PushReactor::Start(context, registry_, options_.pager_part);
}

grpc::ServerUnaryReactor* RelayService::CloseSession(
    grpc::CallbackServerContext* context, const dims::v1::RelayCloseSessionRequest* request,
    dims::v1::RelayCloseSessionResponse* response) {
  auto* reactor = context->DefaultReactor();
  if (request->session_id().empty()) {
    FinishWith(context, reactor,
               RelayError(StatusCode::INVALID_ARGUMENT, "session_id is empty", "MISSING_SESSION_ID",
                          "session_id"));
    return reactor;
  }
  if (request->reason() == dims::v1::CLOSE_REASON_UNSPECIFIED) {
    FinishWith(context, reactor,
               RelayError(StatusCode::INVALID_ARGUMENT, "reason is unspecified", "MISSING_REASON",
                          "reason"));
    return reactor;
  }
  auto session = registry_.Find(request->session_id());
  if (!session) {
    FinishWith(context, reactor, UnknownSession(request->session_id(), "session_id"));
    return reactor;
  }
  std::string reason = dims::v1::CloseReason_Name(request->reason());
  session->loop()->Post([session, reactor, response, reason] {
    response->set_messages_delivered(session->Close());
    log::Info("push session closed", {{"session", session->id()},
                                      {"reason", reason},
                                      {"delivered", response->messages_delivered()}});
    reactor->Finish(grpc::Status::OK);
  });
  return reactor;
}

grpc::ServerUnaryReactor* RelayService::AcceptIncomingSession(
    grpc::CallbackServerContext* context, const dims::v1::RelayAcceptIncomingSessionRequest*,
    dims::v1::RelayAcceptIncomingSessionResponse*) {
  return LargeMessageModeUnimplemented(context);
}

grpc::ServerUnaryReactor* RelayService::ConfirmIncomingSession(
    grpc::CallbackServerContext* context, const dims::v1::RelayConfirmIncomingSessionRequest*,
    dims::v1::RelayConfirmIncomingSessionResponse*) {
  return LargeMessageModeUnimplemented(context);
}

void RelayService::Drain() {
  for (auto& session : registry_.StartDraining()) {
    session->loop()->Post([session] { session->Drain(); });
  }
}

}  // namespace dims::relay
