// The MSRP test peer on its own: handwritten MSRP over raw loopback sockets, byte for byte.
#include "msrp_test_peer.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <thread>

namespace dims::testing {
namespace {
using namespace std::chrono_literals;

constexpr char kRelay[] = "msrp://127.0.0.1:9/relay1;tcp";

// One TCP connection written and read by hand, as the relay would.
class RawConnection {
 public:
  explicit RawConnection(int port) : fd_(socket(AF_INET, SOCK_STREAM, 0)) {
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(static_cast<uint16_t>(port));
    connected_ = connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  }
  explicit RawConnection(int fd, bool) : fd_(fd), connected_(true) {}
  ~RawConnection() { close(fd_); }
  bool connected() const { return connected_; }

  void Send(const std::string& bytes) {
    ASSERT_EQ(send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL),
              static_cast<ssize_t>(bytes.size()));
  }
  // Reads until the received bytes end with `suffix` (or the peer closes, or 5 s pass).
  std::string ReadUntil(const std::string& suffix) {
    auto deadline = std::chrono::steady_clock::now() + 5s;
    while (!received_.ends_with(suffix) && std::chrono::steady_clock::now() < deadline) {
      if (!ReadSome(100)) break;
    }
    std::string out;
    out.swap(received_);
    return out;
  }
  // True when the peer closed the connection within 5 s.
  bool ClosedByPeer() {
    auto deadline = std::chrono::steady_clock::now() + 5s;
    while (std::chrono::steady_clock::now() < deadline) {
      if (!ReadSome(100)) return eof_;
    }
    return false;
  }
  // What arrived within `ms`, without waiting for anything in particular.
  std::string ReadFor(int ms) {
    ReadSome(ms);
    std::string out;
    out.swap(received_);
    return out;
  }

 private:
  // False on end of stream or error.
  bool ReadSome(int ms) {
    pollfd p{fd_, POLLIN, 0};
    if (poll(&p, 1, ms) <= 0) return true;
    char buf[4096];
    ssize_t n = recv(fd_, buf, sizeof buf, 0);
    if (n <= 0) {
      eof_ = true;
      return false;
    }
    received_.append(buf, static_cast<size_t>(n));
    return true;
  }

  int fd_;
  bool connected_ = false;
  bool eof_ = false;
  std::string received_;
};

std::string Send(const std::string& tid, const std::string& to, const std::string& message_id,
                 const std::string& range, const std::string& body, char flag = '$',
                 const std::string& extra = "") {
  return "MSRP " + tid + " SEND\r\nTo-Path: " + to + "\r\nFrom-Path: " + kRelay +
         "\r\nMessage-ID: " + message_id + "\r\nByte-Range: " + range + "\r\n" + extra +
         "Content-Type: text/plain\r\n\r\n" + body + "\r\n-------" + tid + flag + "\r\n";
}

std::string Ok(const std::string& tid, const std::string& own) {
  return "MSRP " + tid + " 200 OK\r\nTo-Path: " + kRelay + "\r\nFrom-Path: " + own + "\r\n-------" +
         tid + "$\r\n";
}

TEST(MsrpTestPeerTest, ASendInPiecesIsRecordedAndAnswered200WithThePathsOfRfc4975) {
  MsrpTestPeer peer;
  std::string own = peer.Uri("alice1");
  EXPECT_EQ(own, "msrp://127.0.0.1:" + std::to_string(peer.port()) + "/alice1;tcp");
  RawConnection relay(peer.port());
  ASSERT_TRUE(relay.connected());
  // The body holds an end-line of another transaction and one of its own with a wrong flag:
  // both are data.
  std::string body = "Hello\r\n-------other99$\r\nstill\r\n-------tx0001x\r\nend";
  std::string send = Send("tx0001", own, "msg-1",
                          "1-" + std::to_string(body.size()) + "/" + std::to_string(body.size()),
                          body, '$', "X-Extra:  kept as is \r\n");
  for (size_t i = 0; i < send.size(); i += 7) relay.Send(send.substr(i, 7));

  EXPECT_EQ(relay.ReadUntil("$\r\n"), Ok("tx0001", own));
  ASSERT_TRUE(peer.WaitForMessages("alice1", 1, 5s));
  auto requests = peer.requests("alice1");
  ASSERT_EQ(requests.size(), 1u);
  const MsrpReceivedRequest& r = requests[0];
  EXPECT_EQ(r.method, "SEND");
  EXPECT_EQ(r.transaction_id, "tx0001");
  ASSERT_EQ(r.headers.size(), 6u);
  EXPECT_EQ(r.headers[0], (std::pair<std::string, std::string>{"To-Path", own}));
  EXPECT_EQ(r.headers[4], (std::pair<std::string, std::string>{"X-Extra", "kept as is"}));
  EXPECT_EQ(FieldOf(r.headers, "message-id"), "msg-1");
  EXPECT_EQ(r.byte_range.start, 1u);
  EXPECT_EQ(r.byte_range.total, body.size());
  EXPECT_EQ(r.content_type, "text/plain");
  EXPECT_EQ(r.body, body);
  EXPECT_EQ(r.continuation, '$');
  EXPECT_EQ(r.answered, 200);
  auto messages = peer.messages("alice1");
  ASSERT_EQ(messages.size(), 1u);
  EXPECT_EQ(messages[0].message_id, "msg-1");
  EXPECT_EQ(messages[0].body, body);
  EXPECT_EQ(messages[0].chunks, 1);
  EXPECT_TRUE(peer.connected("alice1"));
  EXPECT_EQ(peer.total_messages(), 1);
  EXPECT_TRUE(peer.violations().empty()) << peer.violations()[0];
}

TEST(MsrpTestPeerTest, ChunksAreJoinedByByteRangeAndASuccessReportFollowsTheLast200) {
  MsrpTestPeer peer;
  std::string own = peer.Uri("bob");
  RawConnection relay(peer.port());
  // The binding SEND first (RFC 4975 5.4): answered, not a message, not counted.
  relay.Send("MSRP bind01 SEND\r\nTo-Path: " + own + "\r\nFrom-Path: " + kRelay +
             "\r\nMessage-ID: bind\r\nByte-Range: 1-0/0\r\n-------bind01$\r\n");
  EXPECT_EQ(relay.ReadUntil("$\r\n"), Ok("bind01", own));
  // Second half first; the first half completes the message.
  relay.Send(Send("chunk2", own, "big", "6-10/10", "world", '$', "Success-Report: yes\r\n"));
  EXPECT_EQ(relay.ReadUntil("$\r\n"), Ok("chunk2", own));
  EXPECT_TRUE(peer.messages("bob").empty());
  relay.Send(Send("chunk1", own, "big", "1-5/10", "hello", '+', "Success-Report: yes\r\n"));
  std::string answer = relay.ReadUntil("$\r\n");
  ASSERT_TRUE(answer.starts_with(Ok("chunk1", own))) << answer;
  std::string report = answer.substr(Ok("chunk1", own).size());
  if (report.empty()) report = relay.ReadUntil("$\r\n");
  EXPECT_TRUE(report.starts_with("MSRP ")) << report;
  EXPECT_NE(report.find(" REPORT\r\nTo-Path: " + std::string(kRelay) + "\r\nFrom-Path: " + own +
                        "\r\nMessage-ID: big\r\nByte-Range: 1-10/10\r\nStatus: 000 200 OK\r\n"),
            std::string::npos)
      << report;
  auto messages = peer.messages("bob");
  ASSERT_EQ(messages.size(), 1u);
  EXPECT_EQ(messages[0].body, "helloworld");
  EXPECT_EQ(messages[0].chunks, 2);
  EXPECT_EQ(peer.requests("bob").size(), 3u);
  // The same message again is a duplicate, not a second message.
  relay.Send(Send("again1", own, "big", "1-10/10", "helloworld"));
  EXPECT_EQ(relay.ReadUntil("$\r\n"), Ok("again1", own));
  messages = peer.messages("bob");
  ASSERT_EQ(messages.size(), 1u);
  EXPECT_EQ(messages[0].times_completed, 2);
  EXPECT_EQ(peer.total_messages(), 1);
  EXPECT_EQ(peer.duplicate_messages(), 1);
  EXPECT_TRUE(peer.violations().empty()) << peer.violations()[0];
}

TEST(MsrpTestPeerTest, BehaviourAnswersAStatusForTheNthSendHoldsAndDelays) {
  MsrpTestPeer peer;
  std::string own = peer.Uri("carol");
  peer.SetBehaviour("carol", {.status_for_send = {{2, 413}}});
  RawConnection relay(peer.port());
  relay.Send(Send("first1", own, "m1", "1-1/1", "a"));
  EXPECT_EQ(relay.ReadUntil("$\r\n"), Ok("first1", own));
  relay.Send(Send("second", own, "m2", "1-1/1", "b"));
  EXPECT_EQ(relay.ReadUntil("$\r\n"),
            "MSRP second 413 Message Too Large\r\nTo-Path: " + std::string(kRelay) +
                "\r\nFrom-Path: " + own + "\r\n-------second$\r\n");
  EXPECT_EQ(peer.messages("carol").size(), 1u);  // the refused one is no message

  peer.SetBehaviour("carol", {.hold_responses = true});
  relay.Send(Send("third1", own, "m3", "1-1/1", "c"));
  ASSERT_TRUE(peer.WaitForRequests("carol", 3, 5s));
  EXPECT_EQ(relay.ReadFor(300), "");
  EXPECT_EQ(peer.requests("carol")[2].answered, 0);

  peer.SetBehaviour("carol", {.delay = 200ms});
  auto sent = std::chrono::steady_clock::now();
  relay.Send(Send("fourth", own, "m4", "1-1/1", "d"));
  EXPECT_EQ(relay.ReadUntil("$\r\n"), Ok("fourth", own));
  EXPECT_GE(std::chrono::steady_clock::now() - sent, 200ms);
  EXPECT_TRUE(peer.violations().empty()) << peer.violations()[0];
}

TEST(MsrpTestPeerTest, CloseAfterMessagesClosesBeforeAnsweringTheNextSend) {
  MsrpTestPeer peer;
  std::string own = peer.Uri("dave");
  peer.SetBehaviour("dave", {.close_after_messages = 1});
  RawConnection relay(peer.port());
  relay.Send(Send("one001", own, "m1", "1-1/1", "a"));
  EXPECT_EQ(relay.ReadUntil("$\r\n"), Ok("one001", own));
  relay.Send(Send("two002", own, "m2", "1-1/1", "b"));
  EXPECT_TRUE(relay.ClosedByPeer());
  ASSERT_TRUE(peer.WaitForDisconnects("dave", 1, 5s));
  EXPECT_FALSE(peer.connected("dave"));
  auto requests = peer.requests("dave");
  ASSERT_EQ(requests.size(), 2u);
  EXPECT_EQ(requests[1].answered, 0);
  EXPECT_EQ(peer.messages("dave").size(), 1u);
}

TEST(MsrpTestPeerTest, FailureReportNoAndPartialLimitTheAnswers) {
  MsrpTestPeer peer;
  std::string own = peer.Uri("erin");
  RawConnection relay(peer.port());
  relay.Send(Send("quiet1", own, "m1", "1-1/1", "a", '$', "Failure-Report: no\r\n"));
  relay.Send(Send("quiet2", own, "m2", "1-1/1", "b", '$', "Failure-Report: partial\r\n"));
  ASSERT_TRUE(peer.WaitForMessages("erin", 2, 5s));
  EXPECT_EQ(relay.ReadFor(300), "");
}

TEST(MsrpTestPeerTest, ViolationsAreRecorded) {
  MsrpTestPeer peer;
  {
    // To-Path naming another endpoint; answered all the same.
    RawConnection relay(peer.port());
    relay.Send(Send("wrong1", "msrp://127.0.0.1:1/frank;tcp", "m1", "1-1/1", "a"));
    EXPECT_TRUE(relay.ReadUntil("$\r\n").starts_with("MSRP wrong1 200 OK"));
  }
  {
    // A final chunk shorter than its range.
    RawConnection relay(peer.port());
    relay.Send(Send("short1", peer.Uri("frank"), "m2", "1-5/5", "abc"));
    relay.ReadUntil("$\r\n");
  }
  {
    // No start line: the stream is closed.
    RawConnection relay(peer.port());
    relay.Send("HELLO there\r\n");
    EXPECT_TRUE(relay.ClosedByPeer());
  }
  {
    // The end-line of another transaction right after the headers.
    RawConnection relay(peer.port());
    relay.Send("MSRP abcd12 SEND\r\nTo-Path: " + peer.Uri("frank") + "\r\nFrom-Path: " + kRelay +
               "\r\nMessage-ID: m3\r\n-------abcd13$\r\n");
    EXPECT_TRUE(relay.ClosedByPeer());
  }
  auto violations = peer.violations();
  ASSERT_EQ(violations.size(), 4u);
  EXPECT_NE(violations[0].find("does not name this peer"), std::string::npos) << violations[0];
  EXPECT_NE(violations[1].find("final chunk does not fill its range"), std::string::npos)
      << violations[1];
  EXPECT_NE(violations[2].find("start line"), std::string::npos) << violations[2];
  EXPECT_NE(violations[3].find("does not match transaction id abcd12"), std::string::npos)
      << violations[3];
}

TEST(MsrpTestPeerTest, ConnectBindsTheConnectionWithABodilessSend) {
  int listener = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  ASSERT_EQ(bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(listen(listener, 4), 0);
  ASSERT_EQ(getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  std::string relay_uri = "msrp://127.0.0.1:" + std::to_string(ntohs(addr.sin_port)) + "/r7;tcp";

  MsrpTestPeer peer;
  std::string own = peer.Uri("gina");
  std::string request;
  std::thread relay([&] {
    RawConnection c(accept(listener, nullptr, nullptr), true);
    request = c.ReadUntil("$\r\n");
    std::string tid = request.substr(5, request.find(' ', 5) - 5);
    c.Send("MSRP " + tid + " 200 OK\r\nTo-Path: " + own + "\r\nFrom-Path: " + relay_uri +
           "\r\n-------" + tid + "$\r\n");
    c.Send(Send("push01", own, "m1", "1-2/2", "hi"));
    c.ReadUntil("$\r\n");
  });
  EXPECT_EQ(peer.Connect("gina", relay_uri, 5s), 200);
  EXPECT_TRUE(peer.WaitForMessages("gina", 1, 5s));
  relay.join();
  close(listener);
  EXPECT_TRUE(request.starts_with("MSRP ")) << request;
  EXPECT_NE(
      request.find(" SEND\r\nTo-Path: " + relay_uri + "\r\nFrom-Path: " + own + "\r\nMessage-ID: "),
      std::string::npos)
      << request;
  EXPECT_NE(request.find("\r\nByte-Range: 1-0/0\r\n-------"), std::string::npos) << request;
  EXPECT_EQ(request.find("Content-Type"), std::string::npos) << request;
  ASSERT_EQ(peer.responses("gina").size(), 1u);
  EXPECT_EQ(peer.responses("gina")[0].status, 200);
  EXPECT_EQ(peer.Connect("gina", "msrp://127.0.0.1:1/x;tcp", 5s), -1);  // refused
  EXPECT_EQ(peer.Connect("gina", "sip:nobody@127.0.0.1", 5s), -1);
  EXPECT_TRUE(peer.violations().empty()) << peer.violations()[0];
}

TEST(MsrpTestPeerTest, AnswerSdpAnswersAnMsrpOfferAndRefusesAnythingElse) {
  MsrpTestPeer peer;
  std::string offer =
      "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
      "m=message 7394 TCP/MSRP *\r\na=sendonly\r\na=accept-types:multipart/mixed\r\n"
      "a=path:msrp://127.0.0.1:7394/s1;tcp\r\na=setup:actpass\r\n";
  std::string port = std::to_string(peer.port());
  EXPECT_EQ(peer.AnswerSdp(offer, "hank", "passive"),
            "v=0\r\no=- " + port + " 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\n" +
                "t=0 0\r\nm=message " + port + " TCP/MSRP *\r\na=recvonly\r\n" +
                "a=accept-types:multipart/mixed message/sip message/sipfrag message/msrp " +
                "text/plain\r\na=path:msrp://127.0.0.1:" + port + "/hank;tcp\r\n" +
                "a=setup:passive\r\n");
  EXPECT_THROW(peer.AnswerSdp("v=0\r\nm=audio 4000 RTP/AVP 0\r\n", "hank", "passive"),
               std::invalid_argument);
  EXPECT_THROW(peer.AnswerSdp("v=0\r\nm=message 4000 TCP/MSRP *\r\n", "hank", "passive"),
               std::invalid_argument);
}

TEST(MsrpTestPeerTest, MultipartMixedSplitsIntoPartsWithTheirExactBytes) {
  std::string sip = "MESSAGE sip:bob@dims.test SIP/2.0\r\nCall-ID: c1\r\n\r\nHi\r\n";
  std::string body = "preamble\r\n--b1\r\nContent-Type: message/sip\r\n\r\n" + sip +
                     "\r\n--b1\r\nContent-Type: text/plain\r\nX-Long: one\r\n two\r\n\r\n"
                     "x\r\n--b1--\r\nepilogue";
  std::string error;
  auto parts = ParseMultipartMixed("multipart/mixed; boundary=\"b1\"", body, &error);
  ASSERT_TRUE(parts) << error;
  ASSERT_EQ(parts->size(), 2u);
  EXPECT_EQ(FieldOf((*parts)[0].headers, "content-type"), "message/sip");
  EXPECT_EQ((*parts)[0].body, sip);
  EXPECT_EQ(FieldOf((*parts)[1].headers, "X-Long"), "one two");
  EXPECT_EQ((*parts)[1].body, "x");

  auto first =
      ParseMultipartMixed("multipart/mixed;boundary=b1", "--b1\r\n\r\nbare\r\n--b1--", &error);
  ASSERT_TRUE(first) << error;
  ASSERT_EQ(first->size(), 1u);
  EXPECT_TRUE((*first)[0].headers.empty());
  EXPECT_EQ((*first)[0].body, "bare");

  EXPECT_FALSE(ParseMultipartMixed("multipart/mixed", body, &error));
  EXPECT_NE(error.find("boundary"), std::string::npos) << error;
  EXPECT_FALSE(ParseMultipartMixed("multipart/mixed; boundary=b1", "--b1\r\n\r\nno end", &error));
  EXPECT_NE(error.find("close delimiter"), std::string::npos) << error;
  EXPECT_FALSE(ParseMultipartMixed("text/plain", body, &error));
}

}  // namespace
}  // namespace dims::testing
