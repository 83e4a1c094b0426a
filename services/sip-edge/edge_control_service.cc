#include "edge_control_service.h"

#include <algorithm>
#include <memory>

#include "aor.h"
#include "grpc_call.h"
#include "request_fields.h"
#include "sip_outcome.h"

namespace dims::edge {
namespace {

// The SIP timers' bound on a non-INVITE transaction (Timer F, 64*T1).
constexpr auto kLongestTransaction = std::chrono::milliseconds(32000);

// One call until it is finished, exactly once: by the SIP answer, or, when the loop never ran
// the request (the edge stopped), by this object's destructor.
class PendingCall {
 public:
  PendingCall(grpc::CallbackServerContext* context, grpc::ServerUnaryReactor* reactor)
      : context_(context), reactor_(reactor) {}
  ~PendingCall() {
    if (!finished_) {
      reactor_->Finish(Fail(context_, grpc::StatusCode::UNAVAILABLE,
                            "the edge is stopping; nothing was sent", "DRAINING"));
    }
  }
  void Finish(const grpc::Status& status) {
    finished_ = true;
    reactor_->Finish(status);
  }
  grpc::CallbackServerContext* context() const { return context_; }

 private:
  grpc::CallbackServerContext* context_;
  grpc::ServerUnaryReactor* reactor_;
  bool finished_ = false;
};

}  // namespace

// RFC 6665 event-reason-value for a termination reason.
std::string ReasonToken(dims::v1::SubscriptionTerminationReason reason) {
  switch (reason) {
    case dims::v1::SUBSCRIPTION_TERMINATION_REASON_PROBATION:
      return "probation";
    case dims::v1::SUBSCRIPTION_TERMINATION_REASON_REJECTED:
      return "rejected";
    case dims::v1::SUBSCRIPTION_TERMINATION_REASON_TIMEOUT:
      return "timeout";
    case dims::v1::SUBSCRIPTION_TERMINATION_REASON_GIVEUP:
      return "giveup";
    case dims::v1::SUBSCRIPTION_TERMINATION_REASON_NORESOURCE:
      return "noresource";
    default:
      return "deactivated";
  }
}

EdgeControlService::EdgeControlService(SipStack& stack, SummarySubscriptions& subscriptions,
                                       Options options)
    : stack_(stack), subscriptions_(subscriptions), options_(std::move(options)) {}

grpc::ServerUnaryReactor* EdgeControlService::Notify(
    grpc::CallbackServerContext* context, const dims::v1::EdgeControlNotifyRequest* request,
    dims::v1::EdgeControlNotifyResponse* response) {
  auto* reactor = context->DefaultReactor();
  if (request->subscription_id().empty()) {
    reactor->Finish(Fail(context, grpc::StatusCode::INVALID_ARGUMENT, "subscription_id is required",
                         "UNKNOWN_SUBSCRIPTION", "subscription_id"));
    return reactor;
  }
  auto aor = NormalizeAor(request->aor().uri());
  if (!aor) {
    reactor->Finish(Fail(context, grpc::StatusCode::INVALID_ARGUMENT, "aor is not a usable AOR",
                         "INVALID_AOR", "aor.uri"));
    return reactor;
  }
  std::optional<dims::v1::StoreSummary> summary;
  std::optional<std::string> terminate;
  switch (request->action_case()) {
    case dims::v1::EdgeControlNotifyRequest::kSummary:
      summary = request->summary();
      break;
    case dims::v1::EdgeControlNotifyRequest::kTerminate:
      terminate = ReasonToken(request->terminate().reason());
      break;
    default:
      reactor->Finish(Fail(context, grpc::StatusCode::INVALID_ARGUMENT,
                           "either summary or terminate is required", "MISSING_ACTION", ""));
      return reactor;
  }
  auto call = std::make_shared<PendingCall>(context, reactor);
  stack_.Post([this, call, response, id = request->subscription_id(), aor = *aor,
               summary = std::move(summary), terminate = std::move(terminate),
               only_if_newer = request->only_if_newer()] {
    subscriptions_.Notify(id, aor, summary, terminate, only_if_newer,
                          [call, response](const SummarySubscriptions::NotifyResult& result) {
                            if (!result.status.ok()) {
                              call->Finish(Fail(call->context(), result.status.error_code(),
                                                result.status.error_message(), result.detail));
                              return;
                            }
                            if (!result.stale_skipped) *response->mutable_sip() = result.sip;
                            response->set_stale_skipped(result.stale_skipped);
                            response->set_last_sent_version(result.last_sent_version);
                            call->Finish(grpc::Status::OK);
                          });
  });
  return reactor;
}

grpc::ServerUnaryReactor* EdgeControlService::SendMessage(
    grpc::CallbackServerContext* context, const dims::v1::EdgeControlSendMessageRequest* request,
    dims::v1::EdgeControlSendMessageResponse* response) {
  auto* reactor = context->DefaultReactor();
  auto invalid = [&](const std::string& message, const std::string& reason,
                     const std::string& field) {
    reactor->Finish(Fail(context, grpc::StatusCode::INVALID_ARGUMENT, message, reason, field));
    return reactor;
  };
  auto aor = NormalizeAor(request->target().aor().uri());
  if (!aor) return invalid("target.aor is not a usable AOR", "INVALID_TARGET", "target.aor.uri");
  if (!request->target().contact_uri().empty() && !NormalizeAor(request->target().contact_uri())) {
    return invalid("target.contact_uri is not a SIP URI", "INVALID_TARGET", "target.contact_uri");
  }
  if (request->content_type().empty()) {
    return invalid("content_type is required", "MISSING_CONTENT_TYPE", "content_type");
  }
  if (request->body().size() > options_.max_body_bytes) {
    return invalid("body is larger than " + std::to_string(options_.max_body_bytes) + " bytes",
                   "BODY_TOO_LARGE", "body");
  }
  OutgoingMessage out;
  for (const auto& h : request->headers()) {
    std::string name = FullFieldName(h.name());
    if (EdgeWritesField(name)) {
      return invalid("header " + name + " is the edge's to write", "FORBIDDEN_HEADER", "headers");
    }
    if (h.name().empty() || h.value().find_first_of("\r\n") != std::string::npos) {
      return invalid("header fields need a name and a one-line value", "FORBIDDEN_HEADER",
                     "headers");
    }
    out.headers.emplace_back(h.name(), h.value());
  }
  out.request_uri =
      request->target().contact_uri().empty() ? *aor : request->target().contact_uri();
  out.from = request->from().empty() ? options_.default_from : request->from();
  out.to = request->to().empty() ? "<" + *aor + ">" : request->to();
  out.call_id = request->call_id();
  out.content_type = request->content_type();
  out.body = request->body();
  out.headers.emplace_back("Accept-Contact", request->accept_contact().empty()
                                                 ? "*;+g.oma.sip-im"
                                                 : request->accept_contact());
  if (!request->p_asserted_identity().empty()) {
    out.headers.emplace_back("P-Asserted-Identity", request->p_asserted_identity());
  }
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
      context->deadline() - std::chrono::system_clock::now());
  out.timeout = std::clamp(left, std::chrono::milliseconds(1), kLongestTransaction);

  auto call = std::make_shared<PendingCall>(context, reactor);
  bool posted = stack_.Post([this, call, out = std::move(out), response] {
    stack_.SendMessage(out, [call, response](const SentAnswer& answer) {
      dims::v1::SipOutcome outcome = SipOutcomeOf(answer);
      grpc::StatusCode code = StatusForSipAnswer(answer.status);
      if (code == grpc::StatusCode::OK) {
        *response->mutable_sip() = outcome;
        response->set_call_id(answer.call_id);
        call->Finish(grpc::Status::OK);
        return;
      }
      dims::v1::ErrorDetail detail;
      *detail.mutable_sip() = outcome;
      call->Finish(Fail(call->context(), code,
                        "the MESSAGE got " + std::to_string(answer.status) + " " + answer.phrase,
                        detail));
    });
  });
  (void)posted;  // not posted: `call` finishes with UNAVAILABLE as it goes away
  return reactor;
}

}  // namespace dims::edge
