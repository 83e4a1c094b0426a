// The test agent on its own, without DIMS: two agents talk to each other over loopback.
#include "sofia_agent.h"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>

#include "test_servers.h"

namespace dims::testing {
namespace {
using namespace std::chrono_literals;

SofiaAgent::Options Towards(int port) { return {.next_hop = "127.0.0.1:" + std::to_string(port)}; }

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
