#include "push_client.h"

namespace dims::testing {

std::string UserPartOf(const std::string& uri) {
  auto colon = uri.find(':');
  auto at = uri.find('@');
  return colon == std::string::npos || at == std::string::npos || at < colon
             ? ""
             : uri.substr(colon + 1, at - colon - 1);
}

SofiaAgent::Answer AcceptPushInvite(const SofiaAgent& agent, const MsrpTestPeer& peer,
                                    const IncomingSipRequest& invite,
                                    const std::string& session_id) {
  std::string user = UserPartOf(invite.request_uri);
  return {.status = 200,
          .phrase = "OK",
          .content_type = "application/sdp",
          .body = peer.AnswerSdp(invite.body, session_id.empty() ? user : session_id, "passive"),
          .contact = "<" + agent.ContactUri(user, SipTransport::kUdp) + ">;+g.oma.sip-im",
          .headers = {{"Allow", "INVITE, ACK, BYE, CANCEL, MESSAGE"},
                      {"Supported", "timer"},
                      {"Server", "IM-client/OMA1.0 dims-test-agent"}}};
}

}  // namespace dims::testing
