// The IM client's side of a push (DESIGN flow 5) for tests and benchmarks: a SofiaAgent that
// answers DIMS's push INVITE with the SDP answer of an MsrpTestPeer.
#pragma once

#include <string>

#include "msrp_test_peer.h"
#include "sofia_agent.h"

namespace dims::testing {

// "sip:alice@127.0.0.1:5060;transport=udp" -> "alice"; empty without a user part.
std::string UserPartOf(const std::string& uri);

// 200 OK to a push INVITE: the peer's SDP answer (a=setup:passive, the peer's path for the
// user the Request-URI names, so that each user has an MSRP session of its own), and the
// fields an OMA IM client sends: Contact with +g.oma.sip-im, Allow, Supported, Server.
// `session_id` names the peer's session instead (e.g. one per INVITE). Throws
// std::invalid_argument when the INVITE carries no MSRP offer.
SofiaAgent::Answer AcceptPushInvite(const SofiaAgent& agent, const MsrpTestPeer& peer,
                                    const IncomingSipRequest& invite,
                                    const std::string& session_id = "");

}  // namespace dims::testing
