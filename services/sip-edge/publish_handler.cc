#include "publish_handler.h"

#include "aor.h"
#include "grpc_client.h"
#include "log.h"
#include "publish_answer.h"

namespace dims::edge {
namespace {

// Well under the stack's answer guard, so that the service's own answer normally wins. The
// call waits for a connection within it (wait_for_ready): a settings replica that is just
// starting or restarting gets the request instead of an instant 503.
constexpr auto kSettingsDeadline = std::chrono::milliseconds(4000);

}  // namespace

// Everything one call needs until its completion has been answered.
struct PublishHandler::Call {
  grpc::ClientContext context;
  dims::v1::SettingsPublishRequest request;
  dims::v1::SettingsPublishResponse response;
  uint64_t request_id = 0;
};

PublishHandler::~PublishHandler() {
  std::unique_lock lock(mu_);
  for (Call* call : in_flight_) call->context.TryCancel();
  idle_.wait_for(lock, std::chrono::seconds(5), [&] { return in_flight_.empty(); });
}

PublishHandler::PublishHandler(SipStack& stack, std::shared_ptr<grpc::Channel> settings,
                               std::set<std::string> domains, std::string allowed_events)
    : stack_(stack),
      settings_(dims::v1::Settings::NewStub(settings)),
      domains_(std::move(domains)),
      allowed_events_(std::move(allowed_events)) {}

void PublishHandler::Handle(const IncomingPublish& publish) {
  auto parsed = ParseAor(publish.request_uri);
  if (!parsed.aor) {
    stack_.Respond(publish.id, {400, "Bad Request-URI: " + parsed.error});
    return;
  }
  if (!domains_.count(parsed.aor->Domain())) {
    stack_.Respond(publish.id, {404, "Not Found (domain not served)"});
    return;
  }
  auto call = std::make_shared<Call>();
  call->request_id = publish.id;
  auto& r = call->request;
  r.mutable_aor()->set_uri(parsed.aor->ToString());
  r.set_event_package(publish.event);
  r.set_if_match(publish.if_match);
  if (publish.expires) r.mutable_expires()->set_seconds(*publish.expires);
  r.set_content_type(publish.content_type);
  r.set_body(publish.body);
  r.set_call_id(publish.call_id);
  SetDeadline(call->context, kSettingsDeadline);
  call->context.set_wait_for_ready(true);
  {
    std::lock_guard lock(mu_);
    in_flight_.insert(call.get());
  }
  settings_->async()->Publish(
      &call->context, &call->request, &call->response, [this, call](grpc::Status status) {
        // On a gRPC thread: only hand the result to the SIP loop.
        bool posted = stack_.Post([this, call, status] {
          SipAnswer answer =
              PublishAnswer(status, ErrorDetailOf(call->context), call->response, allowed_events_);
          if (!status.ok()) {
            log::Info("PUBLISH refused", {{"aor", call->request.aor().uri()},
                                          {"status", answer.status},
                                          {"grpc", status.error_message()}});
          }
          stack_.Respond(call->request_id, answer);
        });
        if (!posted) log::Debug("PUBLISH answered after shutdown began; dropped");
        std::lock_guard lock(mu_);
        in_flight_.erase(call.get());
        idle_.notify_all();
      });
}

}  // namespace dims::edge
