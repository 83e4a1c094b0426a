// The test agent on its own, without DIMS: two agents talk to each other over loopback.
#include "sofia_agent.h"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <memory>

#include "msrp_test_peer.h"
#include "push_client.h"
#include "test_servers.h"

namespace dims::testing {
namespace {
using namespace std::chrono_literals;

SofiaAgent::Options Towards(int port) { return {.next_hop = "127.0.0.1:" + std::to_string(port)}; }

// sipp as the UAC of tests/peers/sipp/<scenario>.xml towards `port`, one call.
std::unique_ptr<Process> StartSipp(const TempDir& dir, const std::string& scenario, int port) {
  auto args =
      SippClientArgs(port, std::string(DIMS_PEER_SCENARIOS) + "/" + scenario + ".xml", "u1", 1, 1);
  args.insert(args.end(), {"-timeout", "30", "-timeout_error", "-trace_err", "-error_file",
                           (dir.path() / "errors.log").string()});
  return std::make_unique<Process>(Process::Options{
      .program = "/usr/bin/sipp", .args = std::move(args), .log = dir.path() / "sipp.log"});
}

bool Passed(Process& sipp) {
  auto status = sipp.Wait(30s);
  return status && WIFEXITED(*status) && WEXITSTATUS(*status) == 0;
}

std::string Report(const TempDir& dir) {
  return ReadFile(dir.path() / "sipp.log") + ReadFile(dir.path() / "errors.log");
}

TEST(SofiaAgentTest, AnInviteIsAnswered200WithBodyAndFieldsAndTheClientHangsUp) {
  TempDir dir;
  MsrpTestPeer peer;
  SofiaAgent agent(Towards(FreePort()));
  agent.OnRequest([&](const IncomingSipRequest& in) { return AcceptPushInvite(agent, peer, in); });
  auto sipp = StartSipp(dir, "invite_client_hangs_up", agent.port());
  ASSERT_TRUE(agent.WaitForReceived("ACK", 1, 20s)) << Report(dir);
  auto invites = agent.received("INVITE");
  ASSERT_EQ(invites.size(), 1u);
  EXPECT_EQ(invites[0].content_type, "application/sdp");
  EXPECT_NE(invites[0].body.find("a=path:msrp://127.0.0.1:7394/push1;tcp"), std::string::npos);
  EXPECT_NE(invites[0].raw.find("Accept-Contact: *;+g.oma.sip-im;require;explicit"),
            std::string::npos)
      << invites[0].raw;
  EXPECT_EQ(agent.received("ACK")[0].call_id, invites[0].call_id);

  auto bye = agent.SendBye(invites[0].call_id);
  EXPECT_EQ(bye.status, 200) << bye.phrase << "\n" << Report(dir);
  EXPECT_TRUE(Passed(*sipp)) << Report(dir);
  // The dialog is over: no second BYE.
  auto again = agent.SendBye(invites[0].call_id);
  EXPECT_EQ(again.status, 0);
  EXPECT_NE(again.phrase.find("no dialog"), std::string::npos) << again.phrase;
}

TEST(SofiaAgentTest, ByeFromTheOtherSideIsRecordedAndAnswered200) {
  TempDir dir;
  MsrpTestPeer peer;
  SofiaAgent agent(Towards(FreePort()));
  agent.OnRequest([&](const IncomingSipRequest& in) { return AcceptPushInvite(agent, peer, in); });
  auto sipp = StartSipp(dir, "invite_dims_hangs_up", agent.port());
  EXPECT_TRUE(Passed(*sipp)) << Report(dir);  // sipp checks the 200 to its BYE
  ASSERT_TRUE(agent.WaitForReceived("BYE", 1, 5s));
  auto byes = agent.received("BYE");
  EXPECT_EQ(byes[0].call_id, agent.received("INVITE")[0].call_id);
  EXPECT_NE(byes[0].raw.find("Reason: SIP;cause=200"), std::string::npos) << byes[0].raw;
  std::vector<std::string> methods;
  for (const auto& in : agent.received()) methods.push_back(in.method);
  EXPECT_EQ(methods, (std::vector<std::string>{"INVITE", "ACK", "BYE"}));
  EXPECT_EQ(agent.SendBye(byes[0].call_id).status, 0);  // ended by the BYE
}

TEST(SofiaAgentTest, AnInviteCanBeRejectedOrLeftUnanswered) {
  SofiaAgent client(Towards(FreePort()));
  SofiaAgent dims(Towards(client.port()));
  std::vector<int> answers = {486, 603, 480, 0};
  size_t next = 0;
  client.OnRequest([&](const IncomingSipRequest&) {
    int status = answers.at(next++);
    return SofiaAgent::Answer{.status = status, .phrase = "Rejected"};
  });
  for (int expected : {486, 603, 480}) {
    auto answer = dims.SendRequest({.method = "INVITE",
                                    .request_uri = client.ContactUri("alice", SipTransport::kUdp),
                                    .from = "<sip:dims@dims.test>",
                                    .to = "<sip:alice@dims.test>",
                                    .content_type = "application/sdp",
                                    .body = "v=0\r\n"});
    EXPECT_EQ(answer.status, expected) << answer.raw;
  }
  auto unanswered = dims.SendRequest({.method = "INVITE",
                                      .request_uri = client.ContactUri("alice", SipTransport::kUdp),
                                      .from = "<sip:dims@dims.test>",
                                      .to = "<sip:alice@dims.test>"},
                                     1s);
  EXPECT_EQ(unanswered.status, 0) << unanswered.raw;
  EXPECT_EQ(client.received("INVITE").size(), 4u);
}

TEST(SofiaAgentTest, OneAgentRegistersManyAorsEachWithAContactOfItsOwnUser) {
  SofiaAgent registrar(Towards(FreePort()));
  registrar.OnRequest(
      [](const IncomingSipRequest&) { return SofiaAgent::Answer{.status = 200, .phrase = "OK"}; });
  SofiaAgent users(Towards(registrar.port()));
  users.OnRequest(
      [](const IncomingSipRequest&) { return SofiaAgent::Answer{.status = 200, .phrase = "OK"}; });
  SofiaAgent sender(Towards(users.port()));
  constexpr int kUsers = 5;
  for (int n = 0; n < kUsers; ++n) {
    std::string user = "user" + std::to_string(n);
    auto answer = users.Register(
        {.aor = "sip:" + user + "@dims.test", .contact_params = ";+g.oma.sip-im", .expires = 600});
    EXPECT_EQ(answer.status, 200) << answer.raw;
    auto message = sender.SendRequest({.method = "MESSAGE",
                                       .request_uri = users.ContactUri(user, SipTransport::kUdp),
                                       .from = "<sip:sender@dims.test>",
                                       .to = "<sip:" + user + "@dims.test>",
                                       .content_type = "text/plain",
                                       .body = "for " + user});
    EXPECT_EQ(message.status, 200) << message.raw;
  }
  auto registers = registrar.received("REGISTER");
  auto messages = users.received("MESSAGE");
  ASSERT_EQ(registers.size(), static_cast<size_t>(kUsers));
  ASSERT_EQ(messages.size(), static_cast<size_t>(kUsers));
  for (int n = 0; n < kUsers; ++n) {
    std::string user = "user" + std::to_string(n);
    EXPECT_NE(registers[n].raw.find("Contact: <sip:" + user + "@127.0.0.1:" +
                                    std::to_string(users.port()) + ";transport=udp>;+g.oma.sip-im"),
              std::string::npos)
        << registers[n].raw;
    EXPECT_EQ(UserPartOf(messages[n].request_uri), user);
    EXPECT_EQ(messages[n].body, "for " + user);
  }
}

TEST(SofiaAgentTest, AnIncomingMessageIsRecordedShownToTheHookAndAnswered501) {
  SofiaAgent bob(Towards(FreePort()));
  SofiaAgent alice(Towards(bob.port()));
  std::vector<std::string> seen;
  bob.OnRequest([&](const IncomingSipRequest& in) {
    seen.push_back(in.method);
    return SofiaAgent::Answer{};
  });
  for (SipTransport transport : {SipTransport::kUdp, SipTransport::kTcp}) {
    auto answer = alice.SendRequest({.method = "MESSAGE",
                                     .request_uri = bob.ContactUri("bob", transport),
                                     .from = "<sip:alice@dims.test>",
                                     .to = "<sip:bob@dims.test>",
                                     .call_id = "message-1@127.0.0.1",
                                     .cseq = 42,
                                     .headers = {{"Subject", "hello"}},
                                     .content_type = "text/plain",
                                     .body = "Hello, Bob",
                                     .transport = transport});
    EXPECT_EQ(answer.status, 501) << answer.phrase << "\n" << answer.raw;
    EXPECT_EQ(answer.call_id, "message-1@127.0.0.1");
    EXPECT_EQ(answer.cseq, 42u);
  }
  bob.Stop();  // the hook ran on bob's loop thread: read `seen` after it ended
  auto received = bob.received();
  ASSERT_EQ(received.size(), 2u);
  EXPECT_EQ(received[0].method, "MESSAGE");
  EXPECT_EQ(received[0].call_id, "message-1@127.0.0.1");
  EXPECT_EQ(received[0].cseq, 42u);
  EXPECT_EQ(received[0].content_type, "text/plain");
  EXPECT_EQ(received[0].body, "Hello, Bob");
  EXPECT_NE(received[0].raw.find("Subject: hello"), std::string::npos) << received[0].raw;
  EXPECT_EQ(seen, (std::vector<std::string>{"MESSAGE", "MESSAGE"}));
}

TEST(SofiaAgentTest, ARequestNobodyAnswersEndsAtItsDeadline) {
  // A UDP socket that takes requests and never answers.
  int silent = socket(AF_INET, SOCK_DGRAM, 0);
  ASSERT_GE(silent, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  int port = FreePort();
  addr.sin_port = htons(static_cast<uint16_t>(port));
  ASSERT_EQ(bind(silent, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);

  SofiaAgent agent(Towards(port));
  auto started = std::chrono::steady_clock::now();
  auto answer = agent.Register({.aor = "sip:nobody@dims.test", .expires = 600}, 300ms);
  auto took = std::chrono::steady_clock::now() - started;
  EXPECT_EQ(answer.status, 0) << answer.phrase;
  EXPECT_GE(took, 300ms);
  EXPECT_LT(took, 5s);
  close(silent);
}

}  // namespace
}  // namespace dims::testing
