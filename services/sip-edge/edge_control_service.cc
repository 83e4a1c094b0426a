#include "edge_control_service.h"

#include <algorithm>
#include <cstdio>
#include <memory>
#include <random>
#include <set>

#include "aor.h"
#include "grpc_call.h"
#include "request_fields.h"
#include "sip_outcome.h"

namespace dims::edge {
namespace {

// The SIP timers' bound on a non-INVITE transaction (Timer F, 64*T1).
constexpr auto kLongestTransaction = std::chrono::milliseconds(32000);
// What a request towards a client leaves of the caller's deadline for the answer to travel back.
constexpr auto kAnswerMargin = std::chrono::milliseconds(500);

// How long the SIP side may wait for the client's final answer: a little less than the caller
// waits, so that an answer (a 2xx above all) is never reported into a call that has ended, and
// never longer than a transaction lives.
std::chrono::milliseconds SipTimeoutFor(const grpc::CallbackServerContext& context) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
      context.deadline() - std::chrono::system_clock::now() - kAnswerMargin);
  return std::clamp(left, std::chrono::milliseconds(1), kLongestTransaction);
}

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

// Why a request is unusable: INVALID_ARGUMENT with this message, reason and field.
struct Refusal {
  std::string message;
  std::string reason;
  std::string field;
};

// Finishes the call with the refusal; returns the reactor for the handler to return.
grpc::ServerUnaryReactor* Refuse(grpc::CallbackServerContext* context,
                                 grpc::ServerUnaryReactor* reactor, const Refusal& refusal) {
  reactor->Finish(Fail(context, grpc::StatusCode::INVALID_ARGUMENT, refusal.message, refusal.reason,
                       refusal.field));
  return reactor;
}

// The target's AOR, normalised, into *aor; or why the target is unusable.
std::optional<Refusal> CheckTarget(const dims::v1::SipTarget& target, std::string* aor) {
  auto normalized = NormalizeAor(target.aor().uri());
  if (!normalized)
    return Refusal{"target.aor is not a usable AOR", "INVALID_TARGET", "target.aor.uri"};
  if (!target.contact_uri().empty() && !NormalizeAor(target.contact_uri())) {
    return Refusal{"target.contact_uri is not a SIP URI", "INVALID_TARGET", "target.contact_uri"};
  }
  *aor = *normalized;
  return std::nullopt;
}

// The caller's further header fields into *out, verbatim; or why one cannot go out: a field
// the edge writes itself (EdgeWritesField, or `also_the_edges`), or one that is not one line.
std::optional<Refusal> TakeHeaders(
    const google::protobuf::RepeatedPtrField<dims::v1::HeaderField>& headers,
    const std::set<std::string>& also_the_edges,
    std::vector<std::pair<std::string, std::string>>* out) {
  for (const auto& h : headers) {
    std::string name = FullFieldName(h.name());
    if (EdgeWritesField(name) || also_the_edges.count(name)) {
      return Refusal{"header " + name + " is the edge's to write", "FORBIDDEN_HEADER", "headers"};
    }
    if (h.name().empty() || h.value().find_first_of("\r\n") != std::string::npos) {
      return Refusal{"header fields need a name and a one-line value", "FORBIDDEN_HEADER",
                     "headers"};
    }
    out->emplace_back(h.name(), h.value());
  }
  return std::nullopt;
}

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
    : stack_(stack), subscriptions_(subscriptions), options_(std::move(options)) {
  std::random_device random;
  char prefix[24];
  std::snprintf(prefix, sizeof prefix, "%08x%08x", random(), random());
  dialog_prefix_ = prefix;
}

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
  std::string aor;
  if (auto refusal = CheckTarget(request->target(), &aor))
    return Refuse(context, reactor, *refusal);
  if (request->content_type().empty()) {
    return Refuse(context, reactor,
                  {"content_type is required", "MISSING_CONTENT_TYPE", "content_type"});
  }
  if (request->body().size() > options_.max_body_bytes) {
    return Refuse(context, reactor,
                  {"body is larger than " + std::to_string(options_.max_body_bytes) + " bytes",
                   "BODY_TOO_LARGE", "body"});
  }
  OutgoingMessage out;
  if (auto refusal = TakeHeaders(request->headers(), {}, &out.headers))
    return Refuse(context, reactor, *refusal);
  out.request_uri = request->target().contact_uri().empty() ? aor : request->target().contact_uri();
  out.from = request->from().empty() ? options_.default_from : request->from();
  out.to = request->to().empty() ? "<" + aor + ">" : request->to();
  out.call_id = request->call_id();
  out.content_type = request->content_type();
  out.body = request->body();
  out.headers.emplace_back("Accept-Contact", request->accept_contact().empty()
                                                 ? "*;+g.oma.sip-im"
                                                 : request->accept_contact());
  if (!request->p_asserted_identity().empty()) {
    out.headers.emplace_back("P-Asserted-Identity", request->p_asserted_identity());
  }
  out.timeout = SipTimeoutFor(*context);

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

grpc::ServerUnaryReactor* EdgeControlService::StartPushSession(
    grpc::CallbackServerContext* context,
    const dims::v1::EdgeControlStartPushSessionRequest* request,
    dims::v1::EdgeControlStartPushSessionResponse* response) {
  auto* reactor = context->DefaultReactor();
  std::string aor;
  if (auto refusal = CheckTarget(request->target(), &aor))
    return Refuse(context, reactor, *refusal);
  const std::string& contact = request->target().contact_uri();
  if (request->sdp_offer().empty())
    return Refuse(context, reactor, {"sdp_offer is required", "MISSING_SDP", "sdp_offer"});
  OutgoingInvite out;
  // Besides the fields of every request, the push INVITE's own (seed 004) are the edge's.
  static const std::set<std::string> kPushFields = {"Accept-Contact", "Allow", "Session-Expires",
                                                    "Supported", "User-Agent"};
  if (auto refusal = TakeHeaders(request->headers(), kPushFields, &out.headers)) {
    return Refuse(context, reactor, *refusal);
  }
  // The Request-URI is the public identity (seed 004). DIMS as registrar reaches the client
  // itself, at its registered contact; otherwise the core routes by the public identity.
  out.request_uri = aor;
  out.next_hop = contact;
  out.from = request->from().empty() ? options_.default_from : request->from();
  out.to = "<" + aor + ">";
  out.contact = options_.push_contact;
  out.accept_contact = request->accept_contact().empty() ? "*;+g.oma.sip-im;require;explicit"
                                                         : request->accept_contact();
  out.sdp_offer = request->sdp_offer();
  out.session_expires = request->has_session_expires()
                            ? static_cast<int>(request->session_expires().seconds())
                            : options_.push_session_expires;
  if (out.session_expires < 90) {  // RFC 4028 4: the smallest interval allowed
    return Refuse(
        context, reactor,
        {"session_expires must be at least 90 s", "INVALID_SESSION_EXPIRES", "session_expires"});
  }
  out.timeout = SipTimeoutFor(*context);

  auto call = std::make_shared<PendingCall>(context, reactor);
  bool posted = stack_.Post([this, call, out = std::move(out), response] {
    stack_.Invite(out, [this, call, response](const InviteAnswer& answer) {
      if (answer.dialog != 0 && call->context()->IsCancelled()) {
        // The caller is gone all the same: nobody would ever end this dialog.
        stack_.Bye(answer.dialog, "push abandoned", [](const SentAnswer&) {});
        call->Finish(grpc::Status(grpc::StatusCode::CANCELLED, "the call ended first"));
        return;
      }
      dims::v1::SipOutcome outcome = SipOutcomeOf({answer.status, answer.phrase, answer.local, ""});
      grpc::StatusCode code = StatusForSipAnswer(answer.status);
      if (code != grpc::StatusCode::OK) {
        dims::v1::ErrorDetail detail;
        *detail.mutable_sip() = outcome;
        call->Finish(Fail(call->context(), code,
                          "the INVITE got " + std::to_string(answer.status) + " " + answer.phrase,
                          detail));
        return;
      }
      response->set_dialog_id(dialog_prefix_ + "-" + std::to_string(answer.dialog));
      *response->mutable_sip() = outcome;
      response->set_sdp_answer(answer.sdp_answer);
      response->set_remote_contact(answer.remote_contact);
      for (const auto& method : answer.allow) response->add_allow(method);
      response->mutable_session_expires()->set_seconds(answer.session_expires);
      response->set_refresher(answer.refresher_is_uac ? dims::v1::SESSION_REFRESHER_UAC
                                                      : dims::v1::SESSION_REFRESHER_UAS);
      response->set_remote_user_agent(answer.remote_user_agent);
      call->Finish(grpc::Status::OK);
    });
  });
  (void)posted;  // not posted: `call` finishes with UNAVAILABLE as it goes away
  return reactor;
}

grpc::ServerUnaryReactor* EdgeControlService::EndSession(
    grpc::CallbackServerContext* context, const dims::v1::EdgeControlEndSessionRequest* request,
    dims::v1::EdgeControlEndSessionResponse* response) {
  auto* reactor = context->DefaultReactor();
  const std::string& id = request->dialog_id();
  if (id.empty()) {
    reactor->Finish(Fail(context, grpc::StatusCode::INVALID_ARGUMENT, "dialog_id is required",
                         "UNKNOWN_DIALOG", "dialog_id"));
    return reactor;
  }
  if (request->reason().find_first_of("\"\\\r\n") != std::string::npos) {
    return Refuse(context, reactor,
                  {"reason goes into a quoted string: no quotes, backslashes or line breaks",
                   "INVALID_REASON", "reason"});
  }
  uint64_t key = 0;
  if (id.rfind(dialog_prefix_ + "-", 0) == 0) {
    key = std::strtoull(id.c_str() + dialog_prefix_.size() + 1, nullptr, 10);
  }
  auto call = std::make_shared<PendingCall>(context, reactor);
  bool posted = stack_.Post([this, call, key, id, reason = request->reason(), response] {
    stack_.Bye(key, reason, [call, id, response](const SentAnswer& answer) {
      if (answer.local && answer.status == 481) {
        call->Finish(Fail(call->context(), grpc::StatusCode::NOT_FOUND,
                          "no dialog " + id + " at this edge instance", "UNKNOWN_DIALOG",
                          "dialog_id"));
        return;
      }
      // The BYE ends the dialog whatever its answer; the answer is reported, not an error.
      *response->mutable_sip() = SipOutcomeOf(answer);
      call->Finish(grpc::Status::OK);
    });
  });
  (void)posted;
  return reactor;
}

}  // namespace dims::edge
