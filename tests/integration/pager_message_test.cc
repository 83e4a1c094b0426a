// Pager-mode MESSAGE through the whole DIMS set (RFC 3428; seeds 000, 004; DESIGN flow 3), with
// real Redis and PostgreSQL, sipp, our Sofia-SIP agent and, for byte-exact checks, a plain UDP
// socket: offline recipients get the complete request stored and the sender 202 only after the
// commit; registered IM clients get it forwarded; failures of the forward end stored; barring,
// quotas and a storage outage give precise refusals and store nothing.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <ctime>
#include <filesystem>
#include <future>
#include <memory>
#include <string>

#include "dims/v1/edge_control.grpc.pb.h"
#include "dims/v1/storage.grpc.pb.h"
#include "dims_stack.h"
#include "sofia_agent.h"
#include "test_clients.h"

namespace dims::testing {
namespace {
using namespace std::chrono_literals;

// A MESSAGE as a test writes it on the wire: compact forms, an unknown header field, odd
// spacing, and a body with a NUL byte and bytes that are not UTF-8.
std::string UnusualMessage(int sender_port, const std::string& branch, const std::string& to,
                           const std::string& from_tag = "b0b") {
  std::string body("Hi Alice\0\xff\xfe binary tail", 24);
  return "MESSAGE sip:" + to + " SIP/2.0\r\n" +
         "v: SIP/2.0/UDP 127.0.0.1:" + std::to_string(sender_port) + ";branch=" + branch +
         "\r\n"
         "Max-Forwards: 70\r\n"
         "f: \"Bob Example\" <sip:bob@dims.test>;tag=" +
         from_tag + "\r\n" + "t: <sip:" + to +
         ">\r\n"
         "i: unusual-1@127.0.0.1\r\n"
         "CSeq: 7 MESSAGE\r\n"
         "s:   lunch at noon?\r\n"
         "Date: Sat, 21 Nov 2026 10:00:00 GMT\r\n"
         "Priority: urgent\r\n"
         "P-Asserted-Identity: <sip:bob@dims.test>\r\n"
         "X-Carrier-Trace:  a;b=c  \r\n"
         "c: application/octet-stream\r\n"
         "l: " +
         std::to_string(body.size()) +
         "\r\n"
         "\r\n" +
         body;
}

// A UDP socket on loopback that sends one request and waits for its final answer.
class RawUdpPeer {
 public:
  RawUdpPeer() {
    fd_ = socket(AF_INET, SOCK_DGRAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    socklen_t len = sizeof addr;
    getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    timeval timeout{10, 0};
    setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  }
  ~RawUdpPeer() { close(fd_); }
  int port() const { return port_; }

  // The final answer's text (provisional answers skipped); empty after 10 s of silence.
  std::string Send(const std::string& request, int to_port) {
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    to.sin_port = htons(static_cast<uint16_t>(to_port));
    sendto(fd_, request.data(), request.size(), 0, reinterpret_cast<sockaddr*>(&to), sizeof to);
    char buf[65536];
    for (;;) {
      ssize_t n = recv(fd_, buf, sizeof buf, 0);
      if (n <= 0) return "";
      std::string answer(buf, static_cast<size_t>(n));
      if (answer.rfind("SIP/2.0 1", 0) != 0) return answer;
    }
  }

 private:
  int fd_ = -1;
  int port_ = 0;
};

class PagerMessageTest : public ::testing::Test {
 protected:
  // Notification MESSAGEs are off: this suite counts the MESSAGEs a client receives, and
  // delivery's notifications have their own suite.
  void Start(std::map<std::string, std::string> env = {}) {
    env.emplace("DIMS_NOTIFY_BY_MESSAGE", "never");
    for (const auto& name : stack_.service_names()) {
      stack_.StartService(name, env);
      ASSERT_TRUE(stack_.WaitServing(name, 30s))
          << name << " not serving: " << HealthStatus(stack_.endpoints(name).grpc_address()) << "\n"
          << stack_.process(name).ReadLog();
    }
    storage_ = dims::v1::Storage::NewStub(NewChannel(stack_.endpoints("storage").grpc_address()));
  }

  SofiaAgent::Options AgentOptions() {
    return {.next_hop = "127.0.0.1:" + std::to_string(stack_.sip_port())};
  }

  // The messages stored for `aor`, complete, in arrival order.
  std::vector<dims::v1::DeferredMessage> Stored(const std::string& aor) {
    dims::v1::StorageListRequest request;
    request.mutable_recipient()->set_uri(aor);
    request.set_view(dims::v1::MESSAGE_VIEW_FULL);
    request.set_page_size(100);
    dims::v1::StorageListResponse response;
    grpc::Status status = CallWithDeadline(*storage_, &dims::v1::Storage::Stub::List, request,
                                           &response, nullptr, nullptr, 5s);
    EXPECT_TRUE(status.ok()) << Describe(status);
    return {response.messages().begin(), response.messages().end()};
  }

  // `user` registers its agent as an IM client of `aor`.
  void RegisterImClient(SofiaAgent& agent, const std::string& user) {
    auto answer = agent.Register(
        {.aor = "sip:" + user + "@dims.test", .contact_params = ";+g.oma.sip-im", .expires = 600});
    ASSERT_EQ(answer.status, 200) << answer.raw;
  }

  SipResponse SendMessage(SofiaAgent& from, const std::string& to_user,
                          const std::string& body = "Hello",
                          SipTransport transport = SipTransport::kUdp) {
    return from.SendRequest({.method = "MESSAGE",
                             .request_uri = "sip:" + to_user + "@dims.test",
                             .from = "<sip:bob@dims.test>",
                             .to = "<sip:" + to_user + "@dims.test>",
                             .headers = {{"Subject", "test"}},
                             .content_type = "text/plain",
                             .body = body,
                             .transport = transport});
  }

  std::string EdgeLog() { return stack_.process("sip-edge").LogTail(60); }

  DimsStack::Sipp StartSipp(const std::string& scenario, const std::string& transport, long calls,
                            int limit, const std::string& user = "") {
    return stack_.StartSipp(scenario, transport, calls, limit, user);
  }

  // A test failure, with what sipp and the edge logged, unless every call passed.
  void ExpectSippPassed(DimsStack::Sipp& sipp) {
    EXPECT_TRUE(sipp.Passed(90s)) << sipp.Report() << EdgeLog();
  }

  // The message-summary subscriptions the edge recorded for `aor` in Redis.
  std::vector<dims::v1::Subscription> Subscriptions(const std::string& aor) {
    std::vector<dims::v1::Subscription> found;
    for (const auto& raw : RedisHashValues(stack_.redis().port(), "dims:sub:{" + aor + "}")) {
      if (found.emplace_back().ParseFromString(raw)) continue;
      ADD_FAILURE() << "a subscription record that is not a dims.v1.Subscription";
      found.pop_back();
    }
    return found;
  }

  std::unique_ptr<dims::v1::EdgeControl::Stub> EdgeControl() {
    return dims::v1::EdgeControl::NewStub(NewChannel(stack_.endpoints("sip-edge").grpc_address()));
  }

  dims::v1::StoreSummary Summary(const std::string& aor) { return StoreSummaryOf(*storage_, aor); }

  // Bob's two messages stored for Alice (Subject "test", bodies "first" and "second"); returns
  // her store's version after them, the one an immediate NOTIFY is built from.
  uint64_t StoreTwoMessagesForAlice() {
    SofiaAgent bob(AgentOptions());
    EXPECT_EQ(SendMessage(bob, "alice", "first").status, 202) << EdgeLog();
    EXPECT_EQ(SendMessage(bob, "alice", "second").status, 202);
    uint64_t version = Summary("sip:alice@dims.test").version();
    EXPECT_GE(version, 2u);
    return version;
  }

  // An EdgeControl.Notify on Alice's subscription `id`: a summary at `version` with `new_count`
  // new pager messages (the NOTIFY body's "text-message: <new_count>/0").
  static dims::v1::EdgeControlNotifyRequest AliceSummary(const std::string& id, uint64_t version,
                                                         uint32_t new_count,
                                                         bool only_if_newer = false) {
    dims::v1::EdgeControlNotifyRequest notify;
    notify.set_subscription_id(id);
    notify.mutable_aor()->set_uri("sip:alice@dims.test");
    notify.set_only_if_newer(only_if_newer);
    auto* summary = notify.mutable_summary();
    summary->mutable_aor()->set_uri("sip:alice@dims.test");
    summary->set_version(version);
    summary->set_new_count(new_count);
    summary->mutable_pager()->set_new_count(new_count);
    return notify;
  }

  struct NotifyCall {
    grpc::Status status;
    dims::v1::EdgeControlNotifyResponse response;
    dims::v1::ErrorDetail detail;
  };
  static NotifyCall Notify(dims::v1::EdgeControl::Stub& edge,
                           const dims::v1::EdgeControlNotifyRequest& request) {
    NotifyCall call;
    call.status = CallWithDeadline(edge, &dims::v1::EdgeControl::Stub::Notify, request,
                                   &call.response, &call.detail, nullptr, 15s);
    return call;
  }

  // The id of Alice's one subscription once the edge recorded it; empty, and a test failure,
  // when it does not within 20 s.
  std::string RecordedAliceSubscription() {
    if (!WaitFor([&] { return Subscriptions("sip:alice@dims.test").size() == 1; }, 20s)) {
      ADD_FAILURE() << "no subscription recorded for Alice\n" << EdgeLog();
      return "";
    }
    return Subscriptions("sip:alice@dims.test")[0].subscription_id();
  }

  // Sends `request` on a subscription that is pending (recorded, SUBSCRIBE not answered yet) and
  // leaves it waiting there. A second call at the same version with only_if_newer is skipped at
  // once whichever of the two the edge took first (it is no newer than the waiting one, or the
  // waiting one supersedes it), which shows that the first one waits at the edge; without a
  // pending subscription it would be NOT_FOUND.
  static std::future<NotifyCall> LeaveWaiting(dims::v1::EdgeControl::Stub& edge,
                                              const dims::v1::EdgeControlNotifyRequest& request) {
    auto waiting =
        std::async(std::launch::async, [&edge, request] { return Notify(edge, request); });
    auto probe = request;
    probe.set_only_if_newer(true);
    probe.mutable_summary()->set_new_count(7);  // "text-message: 7/0": sent, it fails sipp
    probe.mutable_summary()->mutable_pager()->set_new_count(7);
    auto skipped = Notify(edge, probe);
    EXPECT_TRUE(skipped.status.ok()) << Describe(skipped.status);
    EXPECT_TRUE(skipped.response.stale_skipped());
    EXPECT_EQ(skipped.response.last_sent_version(), 0u);  // nothing sent yet
    // Nothing goes out before the immediate NOTIFY, which waits for the summary.
    EXPECT_EQ(waiting.wait_for(300ms), std::future_status::timeout);
    return waiting;
  }

  // An EdgeControl stub on a channel already connected, so that its first call is quick.
  std::unique_ptr<dims::v1::EdgeControl::Stub> ConnectedEdgeControl() {
    auto channel = NewChannel(stack_.endpoints("sip-edge").grpc_address());
    EXPECT_TRUE(channel->WaitForConnected(std::chrono::system_clock::now() + 10s));
    return dims::v1::EdgeControl::NewStub(channel);
  }

  DimsStack stack_;
  std::unique_ptr<dims::v1::Storage::Stub> storage_;
};

TEST_F(PagerMessageTest, AnOfflineUsersMessageIsStoredByteForByteAndAnswered202OnceCommitted) {
  Start();
  RawUdpPeer bob;
  std::string request = UnusualMessage(bob.port(), "z9hG4bK-first", "alice@dims.test");
  std::string answer = bob.Send(request, stack_.sip_port());
  ASSERT_EQ(answer.rfind("SIP/2.0 202 ", 0), 0u) << answer << EdgeLog();
  EXPECT_NE(answer.find("Server: IM-serv/OMA1.0"), std::string::npos) << answer;

  auto stored = Stored("sip:alice@dims.test");
  ASSERT_EQ(stored.size(), 1u);
  const auto& m = stored[0];
  EXPECT_EQ(m.sip_request(), request);
  EXPECT_EQ(m.kind(), dims::v1::MESSAGE_KIND_PAGER);
  EXPECT_EQ(m.headers().from(), "\"Bob Example\" <sip:bob@dims.test>;tag=b0b");
  EXPECT_EQ(m.headers().to(), "<sip:alice@dims.test>");
  EXPECT_EQ(m.headers().subject(), "lunch at noon?");
  EXPECT_EQ(m.headers().date(), "Sat, 21 Nov 2026 10:00:00 GMT");
  EXPECT_EQ(m.headers().priority(), "urgent");
  EXPECT_EQ(m.headers().p_asserted_identity(), "<sip:bob@dims.test>");
  EXPECT_EQ(m.headers().call_id(), "unusual-1@127.0.0.1");
  EXPECT_EQ(m.headers().cseq(), 7u);
  EXPECT_EQ(m.headers().content_type(), "application/octet-stream");
  EXPECT_EQ(m.size_bytes(), 24u);

  // A retransmission (the 202 was lost) gets the 202 again from the transaction.
  answer = bob.Send(request, stack_.sip_port());
  ASSERT_EQ(answer.rfind("SIP/2.0 202 ", 0), 0u) << answer;
  // A retry as a new request with the same Call-ID and CSeq (an element in front of DIMS that
  // gave up and tried again with a tag of its own) is answered 202 with the first copy.
  answer = bob.Send(UnusualMessage(bob.port(), "z9hG4bK-retry", "alice@dims.test", "retry"),
                    stack_.sip_port());
  ASSERT_EQ(answer.rfind("SIP/2.0 202 ", 0), 0u) << answer;
  auto after = Stored("sip:alice@dims.test");
  ASSERT_EQ(after.size(), 1u);
  EXPECT_EQ(after[0].sip_request(), request);
}

TEST_F(PagerMessageTest, SippMessagesToOfflineUsersOverUdpAndTcpAreAllStored) {
  Start();
  for (const std::string transport : {"u1", "t1"}) {
    auto sipp = StartSipp("message_offline", transport, 50, 10);
    ExpectSippPassed(sipp);
  }
  // sipp numbers calls from 1 in each run: every recipient got one message per transport.
  for (int n : {1, 25, 50}) {
    auto stored = Stored("sip:offline-" + std::to_string(n) + "@dims.test");
    ASSERT_EQ(stored.size(), 2u) << n;
    EXPECT_NE(stored[0].sip_request().find("this waits for you"), std::string::npos);
    EXPECT_EQ(stored[0].headers().subject(), "offline test " + std::to_string(n));
  }
}

TEST_F(PagerMessageTest, ARegisteredImClientGetsTheMessageForwardedAndNothingIsStored) {
  Start();
  SofiaAgent alice_client(AgentOptions());
  alice_client.OnRequest([](const IncomingSipRequest&) { return SofiaAgent::Answer{200, "OK"}; });
  RegisterImClient(alice_client, "alice");
  SofiaAgent bob(AgentOptions());
  for (SipTransport transport : {SipTransport::kUdp, SipTransport::kTcp}) {
    auto answer = SendMessage(bob, "alice", "Are you there?", transport);
    EXPECT_EQ(answer.status, 200) << answer.raw << EdgeLog();
  }
  auto received = alice_client.received();
  ASSERT_EQ(received.size(), 2u);
  EXPECT_EQ(received[0].method, "MESSAGE");
  EXPECT_EQ(received[0].body, "Are you there?");
  EXPECT_EQ(received[0].content_type, "text/plain");
  EXPECT_NE(received[0].raw.find("Subject: test"), std::string::npos) << received[0].raw;
  EXPECT_NE(received[0].from.find("sip:bob@dims.test"), std::string::npos) << received[0].from;
  EXPECT_TRUE(Stored("sip:alice@dims.test").empty());
}

TEST_F(PagerMessageTest, AForwardTheClientCannotTakeNowEndsStoredWith202) {
  Start({{"DIMS_MESSAGE_FORWARD_TIMEOUT_MS", "500"}});
  SofiaAgent alice_client(AgentOptions());
  std::atomic<int> answer_with{0};  // first: never answer
  alice_client.OnRequest([&](const IncomingSipRequest&) {
    return SofiaAgent::Answer{answer_with, "Temporarily Unavailable"};
  });
  RegisterImClient(alice_client, "alice");
  SofiaAgent bob(AgentOptions());
  auto answer = SendMessage(bob, "alice", "nobody answers");
  EXPECT_EQ(answer.status, 202) << answer.raw << EdgeLog();
  answer_with = 480;
  answer = SendMessage(bob, "alice", "busy client");
  EXPECT_EQ(answer.status, 202) << answer.raw << EdgeLog();

  auto stored = Stored("sip:alice@dims.test");
  ASSERT_EQ(stored.size(), 2u);
  EXPECT_NE(stored[0].sip_request().find("nobody answers"), std::string::npos);
  EXPECT_NE(stored[1].sip_request().find("busy client"), std::string::npos);
  EXPECT_EQ(alice_client.received().size(), 2u);
}

TEST_F(PagerMessageTest, AClientHeldByAnotherEdgeReplicaGetsTheMessageThroughThatReplica) {
  Start();
  stack_.AddReplica("sip-edge", "sip-edge-2");
  const int other_sip_port = FreePort();
  stack_.StartService("sip-edge-2",
                      {{"DIMS_SIP_LISTEN", "127.0.0.1:" + std::to_string(other_sip_port)},
                       {"DIMS_NOTIFY_BY_MESSAGE", "never"}});
  ASSERT_TRUE(stack_.WaitServing("sip-edge-2", 30s)) << stack_.process("sip-edge-2").ReadLog();

  // Alice's client registers through the second replica, which holds its flow.
  SofiaAgent alice_client({.next_hop = "127.0.0.1:" + std::to_string(other_sip_port)});
  std::atomic<int> answer_with{200};
  alice_client.OnRequest([&](const IncomingSipRequest&) {
    return SofiaAgent::Answer{answer_with, answer_with == 200 ? "OK" : "Temporarily Unavailable"};
  });
  RegisterImClient(alice_client, "alice");
  dims::v1::Registration registration;
  auto raw = RedisGet(stack_.redis().port(), "dims:reg:{sip:alice@dims.test}");
  ASSERT_TRUE(raw && registration.ParseFromString(*raw));
  ASSERT_EQ(registration.bindings_size(), 1);
  EXPECT_EQ(registration.bindings(0).edge_instance_id(), "sip-edge-2");
  EXPECT_EQ(registration.bindings(0).edge_address(), stack_.endpoints("sip-edge-2").grpc_address());

  // Bob's MESSAGE arrives at the first replica, which hands it to the second.
  SofiaAgent bob(AgentOptions());
  auto answer = SendMessage(bob, "alice", "through the other edge");
  EXPECT_EQ(answer.status, 200) << answer.raw << EdgeLog()
                                << stack_.process("sip-edge-2").LogTail(30);
  auto received = alice_client.received();
  ASSERT_EQ(received.size(), 1u);
  EXPECT_EQ(received[0].body, "through the other edge");
  EXPECT_NE(received[0].from.find("sip:bob@dims.test"), std::string::npos) << received[0].from;
  EXPECT_TRUE(Stored("sip:alice@dims.test").empty());

  // The client cannot take the next one: the first replica stores it and answers 202.
  answer_with = 480;
  answer = SendMessage(bob, "alice", "stored after all");
  EXPECT_EQ(answer.status, 202) << answer.raw << EdgeLog();
  auto stored = Stored("sip:alice@dims.test");
  ASSERT_EQ(stored.size(), 1u);
  EXPECT_NE(stored[0].sip_request().find("stored after all"), std::string::npos);
}

TEST_F(PagerMessageTest, AClientsRefusalIsRelayedAndNothingIsStored) {
  Start();
  SofiaAgent alice_client(AgentOptions());
  alice_client.OnRequest([](const IncomingSipRequest&) {
    return SofiaAgent::Answer{415, "Unsupported Media Type"};
  });
  RegisterImClient(alice_client, "alice");
  SofiaAgent bob(AgentOptions());
  auto answer = SendMessage(bob, "alice");
  EXPECT_EQ(answer.status, 415) << answer.raw;
  EXPECT_TRUE(Stored("sip:alice@dims.test").empty());
}

TEST_F(PagerMessageTest, ARecipientWhoBarsPagerModeImRefusesWith403AndNothingIsStored) {
  Start();
  SofiaAgent alice(AgentOptions());
  auto published = alice.Publish(
      {.aor = "sip:alice@dims.test",
       .content_type = "application/poc-settings+xml",
       .body = "<poc-settings xmlns=\"urn:oma:params:xml:ns:poc:poc-settings\" "
               "xmlns:dims=\"urn:dims:params:xml:ns:im-settings-ext\"><entity id=\"a\">"
               "<dims:pager-large-barring active=\"true\"/></entity></poc-settings>",
       .expires = 600});
  ASSERT_EQ(published.status, 200) << published.raw;
  SofiaAgent bob(AgentOptions());
  auto answer = SendMessage(bob, "alice");
  EXPECT_EQ(answer.status, 403) << answer.raw;
  EXPECT_TRUE(Stored("sip:alice@dims.test").empty());
}

TEST_F(PagerMessageTest, StorageRefusalsReachTheSenderPreciselyAndStoreNothingMore) {
  Start({{"DIMS_MAX_USER_MESSAGES", "2"}, {"DIMS_MAX_MESSAGE_BYTES", "1000"}});
  SofiaAgent bob(AgentOptions());
  EXPECT_EQ(SendMessage(bob, "carol", "one").status, 202);
  EXPECT_EQ(SendMessage(bob, "carol", "two").status, 202);
  auto full = SendMessage(bob, "carol", "three");
  EXPECT_EQ(full.status, 480) << full.raw;
  EXPECT_NE(full.raw.find("Warning: 399"), std::string::npos) << full.raw;
  EXPECT_NE(full.raw.find("USER_MESSAGES"), std::string::npos) << full.raw;
  auto large = SendMessage(bob, "dave", std::string(2000, 'x'));
  EXPECT_EQ(large.status, 413) << large.raw;
  EXPECT_EQ(Stored("sip:carol@dims.test").size(), 2u);
  EXPECT_TRUE(Stored("sip:dave@dims.test").empty());
}

TEST_F(PagerMessageTest, WithStorageAwayTheSenderGets503WithRetryAfterAndNothingIsStored) {
  Start();
  stack_.process("storage").Signal(SIGKILL);
  ASSERT_TRUE(stack_.process("storage").Wait(10s));
  SofiaAgent bob(AgentOptions());
  auto answer = SendMessage(bob, "erin", "while storage is away");
  EXPECT_EQ(answer.status, 503) << answer.raw;
  EXPECT_TRUE(answer.retry_after) << answer.raw;

  stack_.StartService("storage");
  ASSERT_TRUE(stack_.WaitServing("storage", 30s));
  EXPECT_TRUE(Stored("sip:erin@dims.test").empty());
  EXPECT_EQ(SendMessage(bob, "erin", "after it came back").status, 202) << EdgeLog();
  EXPECT_EQ(Stored("sip:erin@dims.test").size(), 1u);
}

TEST_F(PagerMessageTest, EdgeControlSendsAMessageAndReportsTheClientsAnswer) {
  Start();
  SofiaAgent alice_client(AgentOptions());
  std::atomic<int> answer_with{200};
  alice_client.OnRequest([&](const IncomingSipRequest&) {
    return SofiaAgent::Answer{answer_with, "Whatever"};
  });
  auto edge =
      dims::v1::EdgeControl::NewStub(NewChannel(stack_.endpoints("sip-edge").grpc_address()));
  dims::v1::EdgeControlSendMessageRequest request;
  request.mutable_target()->mutable_aor()->set_uri("sip:alice@dims.test");
  request.mutable_target()->set_contact_uri(alice_client.ContactUri("alice", SipTransport::kUdp));
  request.set_content_type("application/simple-message-summary");
  request.set_body("Messages-Waiting: yes\r\n");
  auto* subject = request.add_headers();
  subject->set_name("Subject");
  subject->set_value("deferred messages");
  dims::v1::EdgeControlSendMessageResponse response;
  dims::v1::ErrorDetail detail;
  grpc::Status status = CallWithDeadline(*edge, &dims::v1::EdgeControl::Stub::SendMessage, request,
                                         &response, &detail, nullptr, 10s);
  ASSERT_TRUE(status.ok()) << Describe(status) << EdgeLog();
  EXPECT_EQ(response.sip().status_code(), 200u);
  auto received = alice_client.received();
  ASSERT_EQ(received.size(), 1u);
  EXPECT_EQ(received[0].content_type, "application/simple-message-summary");
  EXPECT_NE(received[0].raw.find("Accept-Contact: *;+g.oma.sip-im"), std::string::npos)
      << received[0].raw;
  EXPECT_NE(received[0].raw.find("Subject: deferred messages"), std::string::npos);

  answer_with = 486;
  status = CallWithDeadline(*edge, &dims::v1::EdgeControl::Stub::SendMessage, request, &response,
                            &detail, nullptr, 10s);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::ABORTED) << Describe(status);
  EXPECT_EQ(detail.sip().status_code(), 486u);

  auto* forbidden = request.add_headers();
  forbidden->set_name("Via");
  forbidden->set_value("SIP/2.0/UDP 192.0.2.1");
  status = CallWithDeadline(*edge, &dims::v1::EdgeControl::Stub::SendMessage, request, &response,
                            &detail, nullptr, 10s);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(detail.reason(), "FORBIDDEN_HEADER");
}

TEST_F(PagerMessageTest, AMessageSummarySubscriptionListsTheStoreAndFollowsItsChanges) {
  Start();
  // The version the immediate NOTIFY is built from (MarkNotified leaves it as it is).
  const uint64_t version = StoreTwoMessagesForAlice();
  ASSERT_FALSE(HasFailure());

  auto sipp = StartSipp("subscribe_summary", "u1", 1, 1, "alice");

  // The subscription is in Redis, naming this edge instance, before the SUBSCRIBE is answered.
  ASSERT_TRUE(WaitFor([&] { return Subscriptions("sip:alice@dims.test").size() == 1; }, 20s))
      << sipp.process->ReadLog() << EdgeLog();
  auto subscription = Subscriptions("sip:alice@dims.test")[0];
  EXPECT_EQ(subscription.event_package(), "message-summary");
  EXPECT_EQ(subscription.edge_address(), stack_.endpoints("sip-edge").grpc_address());
  EXPECT_GT(subscription.expires_at().seconds(), std::time(nullptr) + 500);
  // The immediate NOTIFY got its 2xx once the two messages it listed count as old.
  ASSERT_TRUE(WaitFor([&] { return Summary("sip:alice@dims.test").old_count() == 2; }, 20s))
      << sipp.process->ReadLog() << EdgeLog();

  auto edge = EdgeControl();
  dims::v1::EdgeControlNotifyRequest notify;
  notify.set_subscription_id(subscription.subscription_id());
  notify.mutable_aor()->set_uri("sip:alice@dims.test");
  auto* summary = notify.mutable_summary();
  summary->mutable_aor()->set_uri("sip:alice@dims.test");
  // An older summary than the last one sent is not sent (sent, its 9/0 would fail sipp's check
  // of the next NOTIFY). Checked while sipp still waits for that NOTIFY: once it has it, sipp
  // unsubscribes.
  summary->set_version(version - 1);
  summary->set_new_count(9);
  summary->mutable_pager()->set_new_count(9);
  dims::v1::EdgeControlNotifyResponse response;
  dims::v1::ErrorDetail detail;
  grpc::Status status = CallWithDeadline(*edge, &dims::v1::EdgeControl::Stub::Notify, notify,
                                         &response, &detail, nullptr, 15s);
  ASSERT_TRUE(status.ok()) << Describe(status) << EdgeLog();
  EXPECT_TRUE(response.stale_skipped());
  EXPECT_EQ(response.last_sent_version(), version);
  // A change of the store: delivery would ask for this NOTIFY; here the test does.
  summary->set_version(100);
  summary->set_new_count(3);
  summary->mutable_pager()->set_new_count(3);
  status = CallWithDeadline(*edge, &dims::v1::EdgeControl::Stub::Notify, notify, &response, &detail,
                            nullptr, 15s);
  ASSERT_TRUE(status.ok()) << Describe(status) << EdgeLog();
  EXPECT_EQ(response.sip().status_code(), 200u);
  EXPECT_EQ(response.last_sent_version(), 100u);

  // sipp checked both NOTIFYs, unsubscribed and got the final NOTIFY.
  ExpectSippPassed(sipp);
  EXPECT_TRUE(WaitFor([&] { return Subscriptions("sip:alice@dims.test").empty(); }, 10s));
  summary->set_version(200);
  status = CallWithDeadline(*edge, &dims::v1::EdgeControl::Stub::Notify, notify, &response, &detail,
                            nullptr, 15s);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND) << Describe(status);
  EXPECT_EQ(detail.reason(), "UNKNOWN_SUBSCRIPTION");
}

TEST_F(PagerMessageTest, OnlyIfNewerSkipsASummaryNoNewerThanTheImmediateNotify) {
  Start();
  // The version the immediate NOTIFY is built from (MarkNotified leaves it as it is).
  const uint64_t version = StoreTwoMessagesForAlice();
  ASSERT_FALSE(HasFailure());

  auto sipp = StartSipp("subscribe_summary", "u1", 1, 1, "alice");
  const std::string id = RecordedAliceSubscription();
  ASSERT_FALSE(id.empty()) << sipp.process->ReadLog();
  // The immediate NOTIFY got its 2xx once the two messages it listed count as old.
  ASSERT_TRUE(WaitFor([&] { return Summary("sip:alice@dims.test").old_count() == 2; }, 20s))
      << sipp.process->ReadLog() << EdgeLog();

  auto edge = EdgeControl();
  // At the version the subscriber was shown: skipped. Had it gone out, its "text-message: 9/0"
  // would fail sipp's check of the next NOTIFY, which expects 3/0.
  auto skipped = Notify(*edge, AliceSummary(id, version, 9, /*only_if_newer=*/true));
  ASSERT_TRUE(skipped.status.ok()) << Describe(skipped.status) << EdgeLog();
  EXPECT_TRUE(skipped.response.stale_skipped());
  EXPECT_FALSE(skipped.response.has_sip());
  EXPECT_EQ(skipped.response.last_sent_version(), version);
  // Without the flag the same version is sent: a repeat is harmless.
  auto sent = Notify(*edge, AliceSummary(id, version, 3));
  ASSERT_TRUE(sent.status.ok()) << Describe(sent.status) << EdgeLog();
  EXPECT_FALSE(sent.response.stale_skipped());
  EXPECT_EQ(sent.response.sip().status_code(), 200u);
  EXPECT_EQ(sent.response.last_sent_version(), version);

  // sipp saw the immediate NOTIFY (2/0), then only the 3/0 one, and unsubscribed.
  ExpectSippPassed(sipp);
}

// Stops a process (SIGSTOP) until Resume or the end of the scope: calls to it wait unanswered.
class Paused {
 public:
  explicit Paused(Process& process) : process_(process) { process_.Signal(SIGSTOP); }
  ~Paused() { Resume(); }
  void Resume() {
    if (paused_) process_.Signal(SIGCONT);
    paused_ = false;
  }

 private:
  Process& process_;
  bool paused_ = true;
};

// The edge records a subscription, then reads the summary for the immediate NOTIFY: with storage
// stopped, these tests hold the subscription pending (recorded, SUBSCRIBE unanswered) for up to
// the edge's 3 s deadline on that read, and call Notify in that window, as delivery would once
// it found the record.

TEST_F(PagerMessageTest, ANotifyBeforeTheImmediateNotifyWaitsForItAndFollowsIt) {
  Start();
  StoreTwoMessagesForAlice();
  ASSERT_FALSE(HasFailure());
  auto edge = ConnectedEdgeControl();

  Paused storage(stack_.process("storage"));
  auto sipp = StartSipp("subscribe_summary", "u1", 1, 1, "alice");
  const std::string id = RecordedAliceSubscription();
  ASSERT_FALSE(id.empty()) << sipp.process->ReadLog();
  auto waiting = LeaveWaiting(*edge, AliceSummary(id, 100, 3));

  storage.Resume();
  auto followed = waiting.get();
  ASSERT_TRUE(followed.status.ok()) << Describe(followed.status) << EdgeLog();
  EXPECT_FALSE(followed.response.stale_skipped());
  EXPECT_EQ(followed.response.sip().status_code(), 200u);
  EXPECT_EQ(followed.response.last_sent_version(), 100u);
  // sipp saw the immediate NOTIFY (2/0) first, then the waiting one (3/0).
  ExpectSippPassed(sipp);
}

TEST_F(PagerMessageTest, ANotifyBeforeTheImmediateNotifyIsSkippedWhenThatOneIsNewer) {
  Start();
  // The version the immediate NOTIFY is built from (MarkNotified leaves it as it is).
  const uint64_t version = StoreTwoMessagesForAlice();
  ASSERT_FALSE(HasFailure());
  auto edge = ConnectedEdgeControl();

  Paused storage(stack_.process("storage"));
  auto sipp = StartSipp("subscribe_summary", "u1", 1, 1, "alice");
  const std::string id = RecordedAliceSubscription();
  ASSERT_FALSE(id.empty()) << sipp.process->ReadLog();
  // Built from an older version than the immediate NOTIFY will show. Had it gone out, its
  // "text-message: 9/0" would fail sipp's check of the NOTIFY after the immediate one.
  auto waiting = LeaveWaiting(*edge, AliceSummary(id, version - 1, 9));

  storage.Resume();
  auto outdated = waiting.get();
  ASSERT_TRUE(outdated.status.ok()) << Describe(outdated.status) << EdgeLog();
  EXPECT_TRUE(outdated.response.stale_skipped());
  EXPECT_EQ(outdated.response.last_sent_version(), version);
  auto sent = Notify(*edge, AliceSummary(id, 100, 3));
  ASSERT_TRUE(sent.status.ok()) << Describe(sent.status) << EdgeLog();
  EXPECT_EQ(sent.response.sip().status_code(), 200u);
  // sipp saw the immediate NOTIFY (2/0), then the 3/0 one.
  ExpectSippPassed(sipp);
}

TEST_F(PagerMessageTest, ANotifyWaitingOnASubscribeThatIsRefusedIsNotFoundAndTheRecordGoes) {
  Start();
  auto edge = ConnectedEdgeControl();
  SofiaAgent alice(AgentOptions());

  // With storage stopped for good, the summary read times out and the SUBSCRIBE is refused.
  Paused storage(stack_.process("storage"));
  auto subscribe = std::async(std::launch::async, [&] {
    return alice.SendRequest({.method = "SUBSCRIBE",
                              .request_uri = "sip:alice@dims.test",
                              .from = "<sip:alice@dims.test>",
                              .to = "<sip:alice@dims.test>",
                              .contact = "<" + alice.ContactUri("alice", SipTransport::kUdp) + ">",
                              .headers = {{"Event", "message-summary"}, {"Expires", "600"}}},
                             20s);
  });
  const std::string id = RecordedAliceSubscription();
  ASSERT_FALSE(id.empty());
  auto waiting = LeaveWaiting(*edge, AliceSummary(id, 100, 3));

  // The waiting call hears that there is no such subscription, and the record goes.
  auto gone = waiting.get();
  EXPECT_EQ(gone.status.error_code(), grpc::StatusCode::NOT_FOUND) << Describe(gone.status);
  EXPECT_EQ(gone.detail.reason(), "UNKNOWN_SUBSCRIPTION");
  auto answer = subscribe.get();
  EXPECT_EQ(answer.status, 503) << answer.raw;
  EXPECT_TRUE(WaitFor([&] { return Subscriptions("sip:alice@dims.test").empty(); }, 10s));
}

TEST_F(PagerMessageTest, AMessageSummarySubscriptionToSomeoneElsesStoreIsRefused) {
  Start();
  SofiaAgent mallory(AgentOptions());
  auto answer =
      mallory.SendRequest({.method = "SUBSCRIBE",
                           .request_uri = "sip:alice@dims.test",
                           .from = "<sip:mallory@dims.test>",
                           .to = "<sip:alice@dims.test>",
                           .contact = "<" + mallory.ContactUri("mallory", SipTransport::kUdp) + ">",
                           .headers = {{"Event", "message-summary"}, {"Expires", "600"}}});
  EXPECT_EQ(answer.status, 403) << answer.raw;
  EXPECT_TRUE(Subscriptions("sip:alice@dims.test").empty());
}

}  // namespace
}  // namespace dims::testing
