// EdgeControl (edge_control.proto), served by every edge instance for requests that must
// leave towards a client whose flow this instance holds: other edge instances forwarding a
// pager MESSAGE, delivery sending notifications. Requests are validated on the gRPC thread and
// handed to the SIP loop; the SIP answer finishes the call.
#pragma once

#include <cstddef>

#include "dims/v1/edge_control.grpc.pb.h"
#include "sip_stack.h"
#include "summary_subscriptions.h"

namespace dims::edge {

class EdgeControlService : public dims::v1::EdgeControl::CallbackService {
 public:
  struct Options {
    // The From of messages DIMS originates when the caller gives none.
    std::string default_from = "<sip:dims@dims.test>";
    size_t max_body_bytes = 1024 * 1024;
    // The Contact of a push INVITE: DIMS's IM Session Identity, with +g.oma.sip-im and
    // automata (seed 004, RFC 3840).
    std::string push_contact = "<sip:dims@127.0.0.1>;+g.oma.sip-im;automata";
    int push_session_expires = 1800;  // RFC 4028, when the caller gives none
  };
  EdgeControlService(SipStack& stack, SummarySubscriptions& subscriptions, Options options);

  grpc::ServerUnaryReactor* SendMessage(
      grpc::CallbackServerContext* context, const dims::v1::EdgeControlSendMessageRequest* request,
      dims::v1::EdgeControlSendMessageResponse* response) override;
  grpc::ServerUnaryReactor* StartPushSession(
      grpc::CallbackServerContext* context,
      const dims::v1::EdgeControlStartPushSessionRequest* request,
      dims::v1::EdgeControlStartPushSessionResponse* response) override;
  grpc::ServerUnaryReactor* EndSession(grpc::CallbackServerContext* context,
                                       const dims::v1::EdgeControlEndSessionRequest* request,
                                       dims::v1::EdgeControlEndSessionResponse* response) override;
  grpc::ServerUnaryReactor* Notify(grpc::CallbackServerContext* context,
                                   const dims::v1::EdgeControlNotifyRequest* request,
                                   dims::v1::EdgeControlNotifyResponse* response) override;

 private:
  SipStack& stack_;
  SummarySubscriptions& subscriptions_;
  Options options_;
  std::string dialog_prefix_;  // drawn at start: a dialog id of an earlier run is unknown
};

}  // namespace dims::edge
