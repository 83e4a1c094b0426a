// The push INVITE of the sip-edge (EdgeControl StartPushSession / EndSession; seeds 002, 004
// "Pushing Deferred Messages"; RFC 3841, 3840, 4028), against a sipp client that checks every
// header field seed 004 lists, one by one: the answer's SDP, Contact, Allow and session timer
// come back to the caller, the ACK goes out, and EndSession ends the dialog with a BYE.
#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "dims/v1/edge_control.grpc.pb.h"
#include "dims_stack.h"
#include "test_clients.h"

namespace dims::testing {
namespace {
using namespace std::chrono_literals;

constexpr const char* kOffer =
    "v=0\r\n"
    "o=dims 1 1 IN IP4 127.0.0.1\r\n"
    "s=-\r\n"
    "c=IN IP4 127.0.0.1\r\n"
    "t=0 0\r\n"
    "m=message 7394 TCP/MSRP *\r\n"
    "a=sendonly\r\n"
    "a=accept-types:multipart/mixed\r\n"
    "a=path:msrp://127.0.0.1:7394/push1;tcp\r\n"
    "a=setup:actpass\r\n";

class PushSessionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    stack_.StartService("sip-edge");
    ASSERT_TRUE(stack_.WaitServing("sip-edge", 30s)) << stack_.process("sip-edge").ReadLog();
    edge_ = dims::v1::EdgeControl::NewStub(NewChannel(stack_.endpoints("sip-edge").grpc_address()));
  }

  dims::v1::EdgeControlStartPushSessionRequest Invite(int client_port) {
    dims::v1::EdgeControlStartPushSessionRequest request;
    request.mutable_target()->mutable_aor()->set_uri("sip:alice@dims.test");
    request.mutable_target()->set_contact_uri("sip:alice@127.0.0.1:" + std::to_string(client_port));
    request.set_sdp_offer(kOffer);
    auto* subject = request.add_headers();
    subject->set_name("Subject");
    subject->set_value("deferred messages");
    return request;
  }

  std::string EdgeLog() { return stack_.process("sip-edge").LogTail(40); }

  DimsStack stack_;
  std::unique_ptr<dims::v1::EdgeControl::Stub> edge_;
};

TEST_F(PushSessionTest, TheInviteCarriesEverySeedHeaderAndTheSessionEndsWithABye) {
  const int client_port = FreePort();
  auto client = stack_.StartSippServer("push_invite_uas", client_port);
  dims::v1::EdgeControlStartPushSessionResponse session;
  dims::v1::ErrorDetail detail;
  grpc::Status status = grpc::Status::CANCELLED;
  // sipp takes a moment to listen; an INVITE before that goes unanswered (ICMP) and fails.
  ASSERT_TRUE(WaitFor(
      [&] {
        status = CallWithDeadline(*edge_, &dims::v1::EdgeControl::Stub::StartPushSession,
                                  Invite(client_port), &session, &detail, nullptr, 10s);
        return status.ok();
      },
      20s))
      << Describe(status) << " " << detail.ShortDebugString() << client.Report() << EdgeLog();
  EXPECT_EQ(session.sip().status_code(), 200u);
  EXPECT_FALSE(session.dialog_id().empty());
  EXPECT_NE(session.sdp_answer().find("a=path:msrp://127.0.0.1:7777/client1;tcp"),
            std::string::npos)
      << session.sdp_answer();
  EXPECT_NE(session.remote_contact().find("sip:alice@127.0.0.1"), std::string::npos)
      << session.remote_contact();
  EXPECT_NE(session.remote_contact().find("+g.oma.sip-im"), std::string::npos);
  std::vector<std::string> allow(session.allow().begin(), session.allow().end());
  EXPECT_EQ(allow, (std::vector<std::string>{"INVITE", "ACK", "BYE", "CANCEL", "UPDATE"}));
  EXPECT_EQ(session.session_expires().seconds(), 1800);
  EXPECT_EQ(session.refresher(), dims::v1::SESSION_REFRESHER_UAC);
  EXPECT_EQ(session.remote_user_agent(), "IM-client/OMA1.0 test/1");

  dims::v1::EdgeControlEndSessionRequest end;
  end.set_dialog_id(session.dialog_id());
  end.set_reason("all deferred messages sent");
  dims::v1::EdgeControlEndSessionResponse ended;
  status = CallWithDeadline(*edge_, &dims::v1::EdgeControl::Stub::EndSession, end, &ended, &detail,
                            nullptr, 10s);
  ASSERT_TRUE(status.ok()) << Describe(status) << EdgeLog();
  EXPECT_EQ(ended.sip().status_code(), 200u);
  // sipp checked each header field of the INVITE, the ACK and the BYE with its Reason.
  EXPECT_TRUE(client.Passed(30s)) << client.Report() << EdgeLog();

  // The dialog is gone: ending it again is NOT_FOUND, as is an id of no dialog at all.
  status = CallWithDeadline(*edge_, &dims::v1::EdgeControl::Stub::EndSession, end, &ended, &detail,
                            nullptr, 5s);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND) << Describe(status);
  EXPECT_EQ(detail.reason(), "UNKNOWN_DIALOG");
  end.set_dialog_id("0123456789abcdef-1");
  status = CallWithDeadline(*edge_, &dims::v1::EdgeControl::Stub::EndSession, end, &ended, &detail,
                            nullptr, 5s);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND);
}

TEST_F(PushSessionTest, ARejectedInviteReportsTheClientsAnswerAndBadRequestsSendNothing) {
  const int client_port = FreePort();
  auto client = stack_.StartSippServer("push_invite_busy", client_port);
  dims::v1::EdgeControlStartPushSessionResponse session;
  dims::v1::ErrorDetail detail;
  grpc::Status status;
  ASSERT_TRUE(WaitFor(
      [&] {
        status = CallWithDeadline(*edge_, &dims::v1::EdgeControl::Stub::StartPushSession,
                                  Invite(client_port), &session, &detail, nullptr, 10s);
        return detail.sip().status_code() == 486;
      },
      20s))
      << Describe(status) << client.Report() << EdgeLog();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::ABORTED) << Describe(status);
  EXPECT_TRUE(client.Passed(30s)) << client.Report();

  auto request = Invite(client_port);
  request.clear_sdp_offer();
  status = CallWithDeadline(*edge_, &dims::v1::EdgeControl::Stub::StartPushSession, request,
                            &session, &detail, nullptr, 5s);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(detail.reason(), "MISSING_SDP");

  request = Invite(client_port);
  auto* allow = request.add_headers();
  allow->set_name("Allow");
  allow->set_value("INVITE");
  status = CallWithDeadline(*edge_, &dims::v1::EdgeControl::Stub::StartPushSession, request,
                            &session, &detail, nullptr, 5s);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(detail.reason(), "FORBIDDEN_HEADER");

  request = Invite(client_port);
  request.mutable_target()->mutable_aor()->set_uri("nobody");
  status = CallWithDeadline(*edge_, &dims::v1::EdgeControl::Stub::StartPushSession, request,
                            &session, &detail, nullptr, 5s);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(detail.reason(), "INVALID_TARGET");
}

TEST_F(PushSessionTest, TheSessionIsRefreshedAsUacAndStaysUpUntilABye) {
  const int client_port = FreePort();
  auto client = stack_.StartSippServer("push_invite_refresh", client_port);
  auto request = Invite(client_port);
  request.mutable_session_expires()->set_seconds(90);
  dims::v1::EdgeControlStartPushSessionResponse session;
  dims::v1::ErrorDetail detail;
  grpc::Status status;
  ASSERT_TRUE(WaitFor(
      [&] {
        status = CallWithDeadline(*edge_, &dims::v1::EdgeControl::Stub::StartPushSession, request,
                                  &session, &detail, nullptr, 10s);
        return status.ok();
      },
      20s))
      << Describe(status) << client.Report() << EdgeLog();
  EXPECT_EQ(session.session_expires().seconds(), 90);
  // sipp takes the refresh half-way (about 45 s), which must leave the session up, then ends
  // it with its own BYE.
  EXPECT_TRUE(client.Passed(120s)) << client.Report() << EdgeLog();
  dims::v1::EdgeControlEndSessionRequest end;
  end.set_dialog_id(session.dialog_id());
  dims::v1::EdgeControlEndSessionResponse ended;
  EXPECT_TRUE(WaitFor(
      [&] {
        return CallWithDeadline(*edge_, &dims::v1::EdgeControl::Stub::EndSession, end, &ended,
                                &detail, nullptr, 5s)
                   .error_code() == grpc::StatusCode::NOT_FOUND;
      },
      10s))
      << "the client's BYE ended the dialog at the edge";

  // A Reason text that would break out of its quoted string is refused.
  end.set_reason("done\"\r\nX-Evil: 1");
  status = CallWithDeadline(*edge_, &dims::v1::EdgeControl::Stub::EndSession, end, &ended, &detail,
                            nullptr, 5s);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(detail.reason(), "INVALID_REASON");
}

}  // namespace
}  // namespace dims::testing
