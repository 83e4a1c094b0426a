// The msrp-relay's push side (relay.proto Relay; RFC 4975) against a raw-socket MSRP client
// written here with its own minimal parsing, so that the relay's codec is not checked against
// itself: both connection roles, the push encapsulation byte for byte, outcomes (200, 4xx,
// timeout, lost connection, CloseSession), the in-flight window, chunking, and the errors.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <csignal>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "dims/v1/relay.grpc.pb.h"
#include "dims_stack.h"
#include "test_clients.h"

namespace dims::testing {
namespace {
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// --- A minimal MSRP client ------------------------------------------------------------------

struct PeerMessage {
  std::string transaction_id;
  bool is_request = false;
  std::string method;
  int status = 0;
  std::vector<std::pair<std::string, std::string>> headers;
  bool has_body = false;
  std::string body;
  char flag = '$';

  std::string Header(const std::string& name) const {
    for (const auto& [n, v] : headers) {
      if (strcasecmp(n.c_str(), name.c_str()) == 0) return v;
    }
    return "";
  }
};

class RawMsrpPeer {
 public:
  explicit RawMsrpPeer(int fd) : fd_(fd) {}
  ~RawMsrpPeer() { Close(); }

  static int Listen(int* port) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
    EXPECT_EQ(listen(fd, 4), 0);
    socklen_t length = sizeof address;
    getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length);
    *port = ntohs(address.sin_port);
    return fd;
  }

  static std::unique_ptr<RawMsrpPeer> Accept(int listen_fd, std::chrono::milliseconds timeout) {
    pollfd p{listen_fd, POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(timeout.count())) != 1) return nullptr;
    int fd = accept(listen_fd, nullptr, nullptr);
    return fd < 0 ? nullptr : std::make_unique<RawMsrpPeer>(fd);
  }

  static std::unique_ptr<RawMsrpPeer> Connect(int port) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    address.sin_port = htons(static_cast<uint16_t>(port));
    if (connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
      close(fd);
      return nullptr;
    }
    return std::make_unique<RawMsrpPeer>(fd);
  }

  void Write(const std::string& bytes) {
    size_t done = 0;
    while (done < bytes.size()) {
      ssize_t n = send(fd_, bytes.data() + done, bytes.size() - done, MSG_NOSIGNAL);
      ASSERT_GT(n, 0) << "write to the relay failed";
      done += static_cast<size_t>(n);
    }
  }

  // The next message, or nothing when none is complete within `timeout` or the relay closed.
  std::optional<PeerMessage> Read(std::chrono::milliseconds timeout) {
    auto until = Clock::now() + timeout;
    while (true) {
      if (auto message = TakeMessage()) return message;
      if (eof_) return std::nullopt;
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - Clock::now());
      if (left.count() <= 0) return std::nullopt;
      pollfd p{fd_, POLLIN, 0};
      if (poll(&p, 1, static_cast<int>(left.count())) != 1) continue;
      char chunk[65536];
      ssize_t n = recv(fd_, chunk, sizeof chunk, 0);
      if (n <= 0) {
        eof_ = true;
        continue;
      }
      buffer_.append(chunk, static_cast<size_t>(n));
    }
  }

  // Whether the relay closed the connection within `timeout` (messages before it are dropped).
  bool ClosedByRelay(std::chrono::milliseconds timeout) {
    auto until = Clock::now() + timeout;
    while (!eof_ && Clock::now() < until) Read(50ms);
    return eof_;
  }

  void Respond(const PeerMessage& request, int status, const std::string& comment) {
    std::string from = request.Header("To-Path");
    from = from.substr(0, from.find(' '));
    Write("MSRP " + request.transaction_id + " " + std::to_string(status) + " " + comment +
          "\r\nTo-Path: " + request.Header("From-Path") + "\r\nFrom-Path: " + from + "\r\n-------" +
          request.transaction_id + "$\r\n");
  }

  void Close() {
    if (fd_ >= 0) close(fd_);
    fd_ = -1;
  }

 private:
  std::optional<PeerMessage> TakeMessage() {
    size_t line_end = buffer_.find("\r\n");
    if (line_end == std::string::npos) return std::nullopt;
    PeerMessage message;
    std::string start = buffer_.substr(0, line_end);
    EXPECT_EQ(start.rfind("MSRP ", 0), 0u) << start;
    size_t space = start.find(' ', 5);
    message.transaction_id = start.substr(5, space - 5);
    std::string rest = start.substr(space + 1);
    if (!rest.empty() && std::isdigit(static_cast<unsigned char>(rest[0]))) {
      message.status = std::stoi(rest.substr(0, 3));
    } else {
      message.is_request = true;
      message.method = rest;
    }
    std::string end_line = "-------" + message.transaction_id;
    size_t pos = line_end + 2;
    while (true) {
      size_t eol = buffer_.find("\r\n", pos);
      if (eol == std::string::npos) return std::nullopt;
      std::string line = buffer_.substr(pos, eol - pos);
      pos = eol + 2;
      if (line.rfind(end_line, 0) == 0 && line.size() == end_line.size() + 1) {
        message.flag = line.back();
        buffer_.erase(0, pos);
        return message;
      }
      if (line.empty()) break;
      size_t colon = line.find(':');
      EXPECT_NE(colon, std::string::npos) << line;
      message.headers.emplace_back(line.substr(0, colon), line.substr(colon + 2));
    }
    size_t body_end = pos;
    while (true) {
      body_end = buffer_.find("\r\n" + end_line, body_end);
      if (body_end == std::string::npos || body_end + 2 + end_line.size() + 3 > buffer_.size()) {
        return std::nullopt;
      }
      char flag = buffer_[body_end + 2 + end_line.size()];
      if ((flag == '$' || flag == '+' || flag == '#') &&
          buffer_.compare(body_end + 3 + end_line.size(), 2, "\r\n") == 0) {
        message.flag = flag;
        break;
      }
      ++body_end;
    }
    message.has_body = true;
    message.body = buffer_.substr(pos, body_end - pos);
    buffer_.erase(0, body_end + 2 + end_line.size() + 3);
    return message;
  }

  int fd_;
  std::string buffer_;
  bool eof_ = false;
};

// The single part of a push SEND body: its header block and its content.
struct PushPart {
  std::string headers;
  std::string content;
};

std::optional<PushPart> SinglePart(const PeerMessage& send) {
  std::string type = send.Header("Content-Type");
  size_t at = type.find("boundary=\"");
  if (type.rfind("multipart/mixed", 0) != 0 || at == std::string::npos) return std::nullopt;
  std::string boundary = type.substr(at + 10, type.find('"', at + 10) - at - 10);
  std::string open = "--" + boundary + "\r\n";
  std::string close = "\r\n--" + boundary + "--\r\n";
  const std::string& body = send.body;
  if (body.rfind(open, 0) != 0 || body.size() < open.size() + close.size() ||
      body.compare(body.size() - close.size(), close.size(), close) != 0) {
    return std::nullopt;
  }
  size_t blank = body.find("\r\n\r\n", open.size());
  if (blank == std::string::npos) return std::nullopt;
  return PushPart{body.substr(open.size(), blank + 2 - open.size()),
                  body.substr(blank + 4, body.size() - close.size() - blank - 4)};
}

std::string SipRequest(int n, const std::string& body = "") {
  std::string text = body.empty() ? "hello " + std::to_string(n) : body;
  return "MESSAGE sip:bob@dims.test SIP/2.0\r\n"
         "Via: SIP/2.0/TCP 192.0.2.1:5060;branch=z9hG4bK" +
         std::to_string(n) +
         "\r\n"
         "From: <sip:alice@dims.test>;tag=a" +
         std::to_string(n) +
         "\r\n"
         "To: <sip:bob@dims.test>\r\n"
         "Call-ID: call-" +
         std::to_string(n) +
         "@192.0.2.1\r\n"
         "CSeq: 1 MESSAGE\r\n"
         "Content-Type: text/plain\r\n"
         "Content-Length: " +
         std::to_string(text.size()) + "\r\n\r\n" + text;
}

dims::v1::DeferredMessage Pager(int n, const std::string& body = "") {
  dims::v1::DeferredMessage message;
  message.set_message_id(std::to_string(1000 + n) + "@store.dims.test");
  message.mutable_recipient()->set_uri("sip:bob@dims.test");
  message.set_kind(dims::v1::MESSAGE_KIND_PAGER);
  message.mutable_received_at()->set_seconds(784111777);
  message.set_sip_request(SipRequest(n, body));
  return message;
}

// Pager(first) ... Pager(last).
std::vector<dims::v1::DeferredMessage> Pagers(int first, int last) {
  std::vector<dims::v1::DeferredMessage> messages;
  for (int n = first; n <= last; ++n) messages.push_back(Pager(n));
  return messages;
}

// --- A Push call driven from two threads (writes, reads) -------------------------------------

dims::v1::RelayPushRequest StartItem(const std::string& session_id, uint32_t max_in_flight) {
  dims::v1::RelayPushRequest start;
  start.mutable_start()->set_session_id(session_id);
  start.mutable_start()->set_max_in_flight(max_in_flight);
  return start;
}

class PushCall {
 public:
  // Writes a start item (unless told not to), then the messages `per_item` to a messages item,
  // then half-closes.
  PushCall(dims::v1::Relay::Stub& stub, const std::string& session_id, uint32_t max_in_flight,
           const std::vector<dims::v1::DeferredMessage>& messages, bool first_is_start = true,
           size_t per_item = 1) {
    std::vector<dims::v1::RelayPushRequest> items;
    if (first_is_start) items.push_back(StartItem(session_id, max_in_flight));
    for (size_t i = 0; i < messages.size(); i += per_item) {
      auto& item = items.emplace_back();
      for (size_t j = i; j < std::min(messages.size(), i + per_item); ++j) {
        *item.mutable_messages()->add_messages() = messages[j];
      }
    }
    Start(stub, std::move(items), true);
  }
  // Writes `items` as they are, then half-closes unless told not to (then HalfClose does).
  PushCall(dims::v1::Relay::Stub& stub, std::vector<dims::v1::RelayPushRequest> items,
           bool half_close = true) {
    Start(stub, std::move(items), half_close);
  }
  ~PushCall() { Finish(); }

  std::vector<dims::v1::PushResult> Results() {
    std::lock_guard lock(mu_);
    return results_;
  }
  // How many responses carried the results.
  size_t Responses() {
    std::lock_guard lock(mu_);
    return responses_;
  }
  bool WaitResults(size_t count, std::chrono::milliseconds timeout) {
    return WaitFor([&] { return Results().size() >= count; }, timeout);
  }
  void Cancel() { context_.TryCancel(); }
  void HalfClose() {
    writer_.join();
    stream_->WritesDone();
  }

  grpc::Status Finish() {
    if (finished_) return status_;
    finished_ = true;
    reader_.join();
    if (writer_.joinable()) writer_.join();
    status_ = stream_->Finish();
    const auto& trailers = context_.GetServerTrailingMetadata();
    if (auto it = trailers.find("dims-error-bin"); it != trailers.end()) {
      detail_.ParseFromArray(it->second.data(), static_cast<int>(it->second.size()));
    }
    return status_;
  }
  const dims::v1::ErrorDetail& detail() const { return detail_; }

 private:
  void Start(dims::v1::Relay::Stub& stub, std::vector<dims::v1::RelayPushRequest> items,
             bool half_close) {
    context_.set_deadline(std::chrono::system_clock::now() + 60s);
    stream_ = stub.Push(&context_);
    writer_ = std::thread([this, half_close, items = std::move(items)] {
      for (const auto& item : items) {
        if (!stream_->Write(item)) return;
      }
      if (half_close) stream_->WritesDone();
    });
    reader_ = std::thread([this] {
      dims::v1::RelayPushResponse response;
      while (stream_->Read(&response)) {
        std::lock_guard lock(mu_);
        ++responses_;
        for (const auto& result : response.results()) results_.push_back(result);
      }
    });
  }

  grpc::ClientContext context_;
  std::unique_ptr<grpc::ClientReaderWriter<dims::v1::RelayPushRequest, dims::v1::RelayPushResponse>>
      stream_;
  std::thread writer_;
  std::thread reader_;
  std::mutex mu_;
  std::vector<dims::v1::PushResult> results_;
  size_t responses_ = 0;
  bool finished_ = false;
  grpc::Status status_;
  dims::v1::ErrorDetail detail_;
};

// --- The fixture ------------------------------------------------------------------------------

std::string Answer(const std::string& setup, int port, const std::string& extra = "",
                   const std::string& accept = "multipart/mixed message/sip") {
  std::string p = std::to_string(port);
  return "v=0\r\no=bob 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
         "m=message " +
         p + " TCP/MSRP *\r\na=recvonly\r\na=accept-types:" + accept +
         "\r\na=path:msrp://127.0.0.1:" + p + "/bob1;tcp\r\n" +
         (setup.empty() ? "" : "a=setup:" + setup + "\r\n") + extra;
}

class MsrpRelayTest : public ::testing::Test {
 protected:
  MsrpRelayTest() : stack_(DimsStack::Options{.start_postgres = false}) {}

  void StartRelay(std::map<std::string, std::string> env = {}) {
    stack_.StartService("msrp-relay", env);
    ASSERT_TRUE(stack_.WaitServing("msrp-relay", 30s)) << Log();
    relay_ = dims::v1::Relay::NewStub(NewChannel(stack_.endpoints("msrp-relay").grpc_address()));
  }
  void SetUp() override { StartRelay(); }

  std::string Log() { return stack_.process("msrp-relay").LogTail(40); }

  dims::v1::RelayOpenSessionResponse Open() {
    dims::v1::RelayOpenSessionRequest request;
    request.mutable_aor()->set_uri("sip:bob@dims.test");
    dims::v1::RelayOpenSessionResponse response;
    grpc::Status status = CallWithDeadline(*relay_, &dims::v1::Relay::Stub::OpenSession, request,
                                           &response, nullptr, nullptr, 5s);
    EXPECT_TRUE(status.ok()) << Describe(status);
    return response;
  }

  static int MsrpPort(const dims::v1::RelayOpenSessionResponse& session) {
    const std::string& uri = session.local_uri();  // msrp://127.0.0.1:<port>/<id>;tcp
    size_t colon = uri.find(':', 7);
    return std::stoi(uri.substr(colon + 1, uri.find('/', colon) - colon - 1));
  }

  grpc::Status Connect(const std::string& session_id, const std::string& answer,
                       dims::v1::RelayConnectSessionResponse* response,
                       dims::v1::ErrorDetail* detail = nullptr) {
    dims::v1::RelayConnectSessionRequest request;
    request.set_session_id(session_id);
    request.set_sdp_answer(answer);
    return CallWithDeadline(*relay_, &dims::v1::Relay::Stub::ConnectSession, request, response,
                            detail, nullptr, 10s);
  }

  // Relay active: the peer listens, the relay connects and binds with a bodiless SEND.
  std::unique_ptr<RawMsrpPeer> ConnectRelayActive(const std::string& session_id) {
    int port = 0;
    int listen_fd = RawMsrpPeer::Listen(&port);
    dims::v1::RelayConnectSessionResponse connected;
    grpc::Status status;
    std::thread call([&] { status = Connect(session_id, Answer("passive", port), &connected); });
    auto peer = RawMsrpPeer::Accept(listen_fd, 10s);
    close(listen_fd);
    if (peer) {
      auto bind = peer->Read(10s);
      EXPECT_TRUE(bind && bind->is_request && bind->method == "SEND" && !bind->has_body);
      if (bind) {
        EXPECT_EQ(bind->Header("To-Path"),
                  "msrp://127.0.0.1:" + std::to_string(port) + "/bob1;tcp");
        peer->Respond(*bind, 200, "OK");
      }
    }
    call.join();
    EXPECT_TRUE(peer) << "the relay did not connect" << Log();
    EXPECT_TRUE(status.ok()) << Describe(status) << Log();
    EXPECT_EQ(connected.setup(), dims::v1::SETUP_ROLE_ACTIVE);
    EXPECT_EQ(connected.peer_path_size(), 1);
    return peer;
  }

  // Reads `count` SENDs, answering each with `status` (200 unless listed in `statuses`).
  std::vector<PeerMessage> AnswerSends(RawMsrpPeer& peer, size_t count,
                                       std::map<size_t, int> statuses = {}) {
    std::vector<PeerMessage> sends;
    while (sends.size() < count) {
      auto send = peer.Read(10s);
      if (!send) break;
      EXPECT_TRUE(send->is_request && send->method == "SEND");
      int status = statuses.count(sends.size()) ? statuses[sends.size()] : 200;
      peer.Respond(*send, status, status == 200 ? "OK" : "Nope");
      sends.push_back(*send);
    }
    EXPECT_EQ(sends.size(), count) << Log();
    return sends;
  }

  std::unique_ptr<dims::v1::Relay::Stub> relay_;
  DimsStack stack_;
};

TEST_F(MsrpRelayTest, OpenSessionReturnsTheCompleteOffer) {
  auto session = Open();
  EXPECT_GE(session.session_id().size(), 16u);
  int port = MsrpPort(session);
  EXPECT_GT(port, 0);
  EXPECT_NE(port, 2855);  // port 0 was asked for: the real port is advertised
  std::string uri =
      "msrp://127.0.0.1:" + std::to_string(port) + "/" + session.session_id() + ";tcp";
  EXPECT_EQ(session.local_uri(), uri);
  ASSERT_EQ(session.local_path_size(), 1);
  EXPECT_EQ(session.local_path(0), uri);
  const std::string& sdp = session.sdp_offer();
  for (const std::string& line :
       {std::string("v=0\r\n"), std::string("s=-\r\n"), std::string("c=IN IP4 127.0.0.1\r\n"),
        std::string("t=0 0\r\n"), "m=message " + std::to_string(port) + " TCP/MSRP *\r\n",
        std::string("a=sendonly\r\n"),
        std::string("a=accept-types:multipart/mixed message/sip message/sipfrag\r\n"),
        "a=path:" + uri + "\r\n", std::string("a=setup:actpass\r\n")}) {
    EXPECT_NE(sdp.find(line), std::string::npos) << line << " in\n" << sdp;
  }
  EXPECT_EQ(sdp.rfind("v=0\r\no=", 0), 0u);
  EXPECT_EQ(session.relay_instance_id(), "msrp-relay");
  EXPECT_EQ(session.relay_address(), stack_.endpoints("msrp-relay").grpc_address());
  EXPECT_GT(session.expires_at().seconds(), 0);
  EXPECT_NE(Open().session_id(), session.session_id());
}

TEST_F(MsrpRelayTest, RelayActivePushesThreeMessagesInOrderWithStableMessageIds) {
  auto session = Open();
  auto peer = ConnectRelayActive(session.session_id());
  ASSERT_TRUE(peer);
  auto messages = Pagers(1, 3);
  std::vector<PeerMessage> sends;
  {
    // Two items: messages 1 and 2, then 3.
    PushCall push(*relay_, session.session_id(), 1, messages, true, /*per_item=*/2);
    sends = AnswerSends(*peer, 3);
    ASSERT_TRUE(push.Finish().ok()) << Describe(push.Finish()) << Log();
    auto results = push.Results();
    ASSERT_EQ(results.size(), 3u);
    for (size_t i = 0; i < 3; ++i) {
      EXPECT_EQ(results[i].message_id(), messages[i].message_id());
      EXPECT_EQ(results[i].outcome(), dims::v1::PUSH_OUTCOME_DELIVERED);
      EXPECT_EQ(results[i].msrp_status(), 200u);
      EXPECT_EQ(results[i].bytes_sent(), sends[i].body.size());
    }
  }
  for (size_t i = 0; i < 3; ++i) {
    const auto& send = sends[i];
    EXPECT_EQ(send.Header("To-Path").rfind("msrp://127.0.0.1:", 0), 0u);
    EXPECT_NE(send.Header("To-Path").find("/bob1;tcp"), std::string::npos);
    EXPECT_EQ(send.Header("From-Path"), session.local_uri());
    EXPECT_EQ(send.flag, '$');
    auto part = SinglePart(send);
    ASSERT_TRUE(part) << send.body;
    EXPECT_EQ(part->content, messages[i].sip_request());  // byte for byte
    EXPECT_NE(part->headers.find("Content-Type: message/sip\r\n"), std::string::npos);
    EXPECT_NE(part->headers.find("Date: Sun, 06 Nov 1994 08:49:37 GMT\r\n"), std::string::npos);
    EXPECT_FALSE(send.Header("Message-ID").empty());
  }
  EXPECT_NE(sends[0].Header("Message-ID"), sends[1].Header("Message-ID"));
  // A repeat of the first message carries the same Message-ID.
  {
    PushCall again(*relay_, session.session_id(), 1, {Pager(1)});
    auto repeat = AnswerSends(*peer, 1);
    ASSERT_EQ(repeat.size(), 1u);
    EXPECT_EQ(repeat[0].Header("Message-ID"), sends[0].Header("Message-ID"));
    EXPECT_TRUE(again.Finish().ok());
  }
  dims::v1::RelayCloseSessionRequest close_request;
  close_request.set_session_id(session.session_id());
  close_request.set_reason(dims::v1::CLOSE_REASON_DONE);
  dims::v1::RelayCloseSessionResponse closed;
  ASSERT_TRUE(CallWithDeadline(*relay_, &dims::v1::Relay::Stub::CloseSession, close_request,
                               &closed, nullptr, nullptr, 5s)
                  .ok());
  EXPECT_EQ(closed.messages_delivered(), 4u);
  EXPECT_TRUE(peer->ClosedByRelay(5s));
  dims::v1::ErrorDetail detail;
  EXPECT_EQ(CallWithDeadline(*relay_, &dims::v1::Relay::Stub::CloseSession, close_request, &closed,
                             &detail, nullptr, 5s)
                .error_code(),
            grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(detail.reason(), "UNKNOWN_SESSION");
}

TEST_F(MsrpRelayTest, RelayPassiveTheClientConnectsAndBindsFirst) {
  auto session = Open();
  dims::v1::RelayConnectSessionResponse connected;
  grpc::Status status;
  std::thread call(
      [&] { status = Connect(session.session_id(), Answer("active", 9), &connected); });
  auto peer = RawMsrpPeer::Connect(MsrpPort(session));
  ASSERT_TRUE(peer);
  peer->Write("MSRP bind0001 SEND\r\nTo-Path: " + session.local_uri() +
              "\r\nFrom-Path: msrp://127.0.0.1:9/bob1;tcp\r\nMessage-ID: bindmsg1\r\n"
              "Byte-Range: 1-0/0\r\n-------bind0001$\r\n");
  auto ok = peer->Read(10s);
  ASSERT_TRUE(ok) << Log();
  EXPECT_FALSE(ok->is_request);
  EXPECT_EQ(ok->status, 200);
  EXPECT_EQ(ok->transaction_id, "bind0001");
  call.join();
  ASSERT_TRUE(status.ok()) << Describe(status) << Log();
  EXPECT_EQ(connected.setup(), dims::v1::SETUP_ROLE_PASSIVE);
  // The same answer again: OK again (idempotent); another answer: ALREADY_CONNECTED.
  EXPECT_TRUE(Connect(session.session_id(), Answer("active", 9), &connected).ok());
  dims::v1::ErrorDetail detail;
  EXPECT_EQ(Connect(session.session_id(), Answer("active", 10), &connected, &detail).error_code(),
            grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(detail.reason(), "ALREADY_CONNECTED");

  PushCall push(*relay_, session.session_id(), 1, {Pager(7)});
  auto sends = AnswerSends(*peer, 1);
  ASSERT_EQ(sends.size(), 1u);
  EXPECT_EQ(sends[0].Header("To-Path"), "msrp://127.0.0.1:9/bob1;tcp");
  ASSERT_TRUE(push.Finish().ok());
  ASSERT_EQ(push.Results().size(), 1u);
  EXPECT_EQ(push.Results()[0].outcome(), dims::v1::PUSH_OUTCOME_DELIVERED);
  // A SEND with content from the client on the sendonly session is refused with 403.
  peer->Write("MSRP cl000002 SEND\r\nTo-Path: " + session.local_uri() +
              "\r\nFrom-Path: msrp://127.0.0.1:9/bob1;tcp\r\nMessage-ID: climsg2\r\n"
              "Byte-Range: 1-2/2\r\nContent-Type: text/plain\r\n\r\nhi\r\n-------cl000002$\r\n");
  auto refused = peer->Read(10s);
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->status, 403);
}

TEST_F(MsrpRelayTest, AnErrorStatusRejectsThatMessageOnly) {
  auto session = Open();
  auto peer = ConnectRelayActive(session.session_id());
  ASSERT_TRUE(peer);
  PushCall push(*relay_, session.session_id(), 1, {Pager(1), Pager(2), Pager(3)});
  AnswerSends(*peer, 3, {{1, 415}});
  ASSERT_TRUE(push.Finish().ok());
  auto results = push.Results();
  ASSERT_EQ(results.size(), 3u);
  EXPECT_EQ(results[0].outcome(), dims::v1::PUSH_OUTCOME_DELIVERED);
  EXPECT_EQ(results[1].outcome(), dims::v1::PUSH_OUTCOME_REJECTED);
  EXPECT_EQ(results[1].msrp_status(), 415u);
  EXPECT_EQ(results[1].msrp_comment(), "Nope");
  EXPECT_EQ(results[2].outcome(), dims::v1::PUSH_OUTCOME_DELIVERED);
}

TEST_F(MsrpRelayTest, ALostConnectionFailsTheUnconfirmedAndEndsThePushUnavailable) {
  auto session = Open();
  auto peer = ConnectRelayActive(session.session_id());
  ASSERT_TRUE(peer);
  PushCall push(*relay_, session.session_id(), 4, {Pager(1), Pager(2), Pager(3), Pager(4)});
  std::vector<PeerMessage> sends;
  for (int i = 0; i < 4; ++i) {
    auto send = peer->Read(10s);
    ASSERT_TRUE(send) << Log();
    sends.push_back(*send);
  }
  peer->Respond(sends[0], 200, "OK");
  peer->Respond(sends[1], 200, "OK");
  ASSERT_TRUE(push.WaitResults(2, 10s));
  peer->Close();
  EXPECT_EQ(push.Finish().error_code(), grpc::StatusCode::UNAVAILABLE) << Log();
  auto results = push.Results();
  ASSERT_EQ(results.size(), 4u);
  EXPECT_EQ(results[0].outcome(), dims::v1::PUSH_OUTCOME_DELIVERED);
  EXPECT_EQ(results[1].outcome(), dims::v1::PUSH_OUTCOME_DELIVERED);
  EXPECT_EQ(results[2].outcome(), dims::v1::PUSH_OUTCOME_FAILED);
  EXPECT_EQ(results[3].outcome(), dims::v1::PUSH_OUTCOME_FAILED);
  EXPECT_EQ(results[3].message_id(), Pager(4).message_id());
}

TEST_F(MsrpRelayTest, ALostConnectionFailsEveryMessageOfTheItemReadAheadOnce) {
  auto session = Open();
  auto peer = ConnectRelayActive(session.session_id());
  ASSERT_TRUE(peer);
  auto messages = Pagers(1, 6);
  PushCall push(*relay_, session.session_id(), 1, messages, true, /*per_item=*/6);
  EXPECT_EQ(AnswerSends(*peer, 1).size(), 1u);
  ASSERT_TRUE(peer->Read(10s)) << Log();  // the second, never answered
  peer->Close();
  EXPECT_EQ(push.Finish().error_code(), grpc::StatusCode::UNAVAILABLE) << Log();
  auto results = push.Results();
  ASSERT_EQ(results.size(), 6u);
  EXPECT_EQ(results[0].outcome(), dims::v1::PUSH_OUTCOME_DELIVERED);
  std::set<std::string> failed;
  for (size_t i = 1; i < 6; ++i) {
    EXPECT_EQ(results[i].outcome(), dims::v1::PUSH_OUTCOME_FAILED);
    failed.insert(results[i].message_id());
  }
  EXPECT_EQ(failed.size(), 5u);
  EXPECT_FALSE(failed.count(messages[0].message_id()));
}

TEST_F(MsrpRelayTest, TheInFlightWindowIsHonoured) {
  auto session = Open();
  auto peer = ConnectRelayActive(session.session_id());
  ASSERT_TRUE(peer);
  auto messages = Pagers(1, 6);
  PushCall push(*relay_, session.session_id(), 2, messages);
  std::vector<PeerMessage> outstanding;
  size_t most = 0;
  size_t answered = 0;
  for (int round = 0; round < 50 && answered < 6; ++round) {
    // The peer holds its responses while SENDs arrive; only when none comes does it answer
    // the oldest.
    if (auto send = peer->Read(300ms)) {
      outstanding.push_back(*send);
      most = std::max(most, outstanding.size());
      continue;
    }
    ASSERT_FALSE(outstanding.empty()) << "no SEND arrived" << Log();
    peer->Respond(outstanding.front(), 200, "OK");
    outstanding.erase(outstanding.begin());
    ++answered;
  }
  EXPECT_EQ(answered, 6u);
  EXPECT_EQ(most, 2u);
  ASSERT_TRUE(push.Finish().ok());
  EXPECT_EQ(push.Results().size(), 6u);
}

TEST_F(MsrpRelayTest, AFiveMegabyteMessageGoesInChunksAndIsDeliveredOnce) {
  auto session = Open();
  auto peer = ConnectRelayActive(session.session_id());
  ASSERT_TRUE(peer);
  std::string big(5 * 1024 * 1024, 'x');
  for (size_t i = 0; i < big.size(); i += 997) big[i] = static_cast<char>('a' + i % 26);
  auto message = Pager(1, big);
  PushCall push(*relay_, session.session_id(), 1, {message});
  std::string reassembled;
  uint64_t total = 0;
  int chunks = 0;
  std::string message_id;
  for (int i = 0; i < 1000; ++i) {
    auto chunk = peer->Read(20s);
    ASSERT_TRUE(chunk) << Log();
    ++chunks;
    if (message_id.empty()) message_id = chunk->Header("Message-ID");
    EXPECT_EQ(chunk->Header("Message-ID"), message_id);
    // Byte-Range: start-end/total, contiguous
    std::string range = chunk->Header("Byte-Range");
    size_t dash = range.find('-');
    size_t slash = range.find('/');
    uint64_t start = std::stoull(range.substr(0, dash));
    uint64_t end = std::stoull(range.substr(dash + 1, slash - dash - 1));
    total = std::stoull(range.substr(slash + 1));
    EXPECT_EQ(start, reassembled.size() + 1);
    EXPECT_EQ(end - start + 1, chunk->body.size());
    EXPECT_LE(chunk->body.size(), 65536u);
    reassembled += chunk->body;
    peer->Respond(*chunk, 200, "OK");
    if (chunk->flag == '$') break;
    EXPECT_EQ(chunk->flag, '+');
  }
  EXPECT_EQ(total, reassembled.size());
  EXPECT_GT(chunks, 80);
  ASSERT_TRUE(push.Finish().ok());
  auto results = push.Results();
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(results[0].outcome(), dims::v1::PUSH_OUTCOME_DELIVERED);
  EXPECT_EQ(results[0].bytes_sent(), total);
  EXPECT_NE(reassembled.find(message.sip_request()), std::string::npos);
}

TEST_F(MsrpRelayTest, CloseSessionDuringAPushAbortsIt) {
  auto session = Open();
  auto peer = ConnectRelayActive(session.session_id());
  ASSERT_TRUE(peer);
  PushCall push(*relay_, session.session_id(), 1, {Pager(1), Pager(2)});
  ASSERT_TRUE(peer->Read(10s)) << Log();  // held unanswered
  dims::v1::RelayCloseSessionRequest request;
  request.set_session_id(session.session_id());
  request.set_reason(dims::v1::CLOSE_REASON_REMOTE_BYE);
  dims::v1::RelayCloseSessionResponse closed;
  ASSERT_TRUE(CallWithDeadline(*relay_, &dims::v1::Relay::Stub::CloseSession, request, &closed,
                               nullptr, nullptr, 5s)
                  .ok());
  EXPECT_EQ(closed.messages_delivered(), 0u);
  EXPECT_EQ(push.Finish().error_code(), grpc::StatusCode::ABORTED);
  auto results = push.Results();
  ASSERT_GE(results.size(), 1u);
  EXPECT_EQ(results[0].outcome(), dims::v1::PUSH_OUTCOME_FAILED);
  EXPECT_TRUE(peer->ClosedByRelay(5s));
}

TEST_F(MsrpRelayTest, ConnectSessionErrors) {
  auto session = Open();
  dims::v1::RelayConnectSessionResponse response;
  dims::v1::ErrorDetail detail;
  struct Case {
    std::string answer;
    grpc::StatusCode code;
    std::string reason;
  };
  for (const Case& c :
       std::vector<Case>{{"garbage", grpc::StatusCode::INVALID_ARGUMENT, "INVALID_SDP"},
                         {"v=0\r\nc=IN IP4 127.0.0.1\r\nm=message 5 TCP/MSRP *\r\n",
                          grpc::StatusCode::INVALID_ARGUMENT, "INVALID_SDP"},  // no a=path
                         {"v=0\r\nc=IN IP4 127.0.0.1\r\nm=message 0 TCP/MSRP *\r\n"
                          "a=path:msrp://127.0.0.1:5/x;tcp\r\n",
                          grpc::StatusCode::INVALID_ARGUMENT, "MEDIA_REJECTED"},
                         {Answer("passive", 5, "", "text/plain message/cpim"),
                          grpc::StatusCode::FAILED_PRECONDITION, "NO_COMMON_TYPE"}}) {
    EXPECT_EQ(Connect(session.session_id(), c.answer, &response, &detail).error_code(), c.code)
        << c.answer;
    EXPECT_EQ(detail.reason(), c.reason) << c.answer;
  }
  EXPECT_EQ(Connect("nosuchsession", Answer("passive", 5), &response, &detail).error_code(),
            grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(detail.reason(), "UNKNOWN_SESSION");
  // Nothing listens there: CONNECT_FAILED, and the session can still be connected later.
  int port = 0;
  close(RawMsrpPeer::Listen(&port));
  EXPECT_EQ(Connect(session.session_id(), Answer("passive", port), &response, &detail).error_code(),
            grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(detail.reason(), "CONNECT_FAILED");
  EXPECT_TRUE(ConnectRelayActive(session.session_id())) << Log();
}

TEST_F(MsrpRelayTest, PushErrors) {
  {
    PushCall push(*relay_, "nosuchsession", 1, {});
    EXPECT_EQ(push.Finish().error_code(), grpc::StatusCode::NOT_FOUND);
    EXPECT_EQ(push.detail().reason(), "UNKNOWN_SESSION");
  }
  {
    PushCall push(*relay_, "", 1, {Pager(1)}, /*first_is_start=*/false);
    EXPECT_EQ(push.Finish().error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_EQ(push.detail().reason(), "MISSING_START");
  }
  auto session = Open();
  {
    PushCall push(*relay_, session.session_id(), 1, {Pager(1)});
    EXPECT_EQ(push.Finish().error_code(), grpc::StatusCode::FAILED_PRECONDITION);
    EXPECT_EQ(push.detail().reason(), "NOT_CONNECTED");
  }
}

TEST_F(MsrpRelayTest, AnItemWithABadMessageSendsNothingOfIt) {
  auto session = Open();
  auto peer = ConnectRelayActive(session.session_id());
  ASSERT_TRUE(peer);
  {
    auto empty = Pager(2);
    empty.clear_sip_request();
    PushCall push(*relay_, session.session_id(), 1, {Pager(1), empty}, true, /*per_item=*/2);
    EXPECT_EQ(push.Finish().error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_EQ(push.detail().reason(), "MISSING_CONTENT");
    EXPECT_EQ(push.detail().field(), "messages.messages[1].content");
    EXPECT_TRUE(push.Results().empty());
  }
  EXPECT_FALSE(peer->Read(500ms)) << "a SEND of a refused item went out";
  // An item without messages.
  {
    dims::v1::RelayPushRequest nothing;
    nothing.mutable_messages();
    PushCall push(*relay_, {StartItem(session.session_id(), 1), nothing});
    EXPECT_EQ(push.Finish().error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_EQ(push.detail().reason(), "NO_MESSAGES");
    EXPECT_EQ(push.detail().field(), "messages");
  }
  // An item of more than 1000 messages.
  {
    auto many = Pagers(0, 1000);
    PushCall push(*relay_, session.session_id(), 1, many, true, /*per_item=*/1001);
    EXPECT_EQ(push.Finish().error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_EQ(push.detail().reason(), "ITEM_TOO_LARGE");
    EXPECT_TRUE(push.Results().empty());
  }
  EXPECT_FALSE(peer->Read(300ms)) << "a SEND of a refused item went out";
  // The session still pushes, and the next SEND on the connection is this one (TCP keeps the
  // order: nothing of the refused items went before it).
  PushCall push(*relay_, session.session_id(), 1, {Pager(3)});
  auto sends = AnswerSends(*peer, 1);
  ASSERT_EQ(sends.size(), 1u);
  auto part = SinglePart(sends[0]);
  ASSERT_TRUE(part);
  EXPECT_EQ(part->content, Pager(3).sip_request());
  ASSERT_TRUE(push.Finish().ok()) << Log();
  ASSERT_EQ(push.Results().size(), 1u);
  EXPECT_EQ(push.Results()[0].outcome(), dims::v1::PUSH_OUTCOME_DELIVERED);
}

TEST_F(MsrpRelayTest, AnInboundConnectionForAnUnknownSessionGets481) {
  auto session = Open();
  auto peer = RawMsrpPeer::Connect(MsrpPort(session));
  ASSERT_TRUE(peer);
  peer->Write(
      "MSRP unkn0001 SEND\r\nTo-Path: msrp://127.0.0.1:" + std::to_string(MsrpPort(session)) +
      "/nosuchsession;tcp\r\nFrom-Path: msrp://127.0.0.1:9/bob1;tcp\r\n"
      "Message-ID: m0001\r\nByte-Range: 1-0/0\r\n-------unkn0001$\r\n");
  auto answer = peer->Read(10s);
  ASSERT_TRUE(answer) << Log();
  EXPECT_EQ(answer->status, 481);
  EXPECT_EQ(answer->transaction_id, "unkn0001");
  EXPECT_TRUE(peer->ClosedByRelay(5s));
}

TEST_F(MsrpRelayTest, DrainingEndsARunningPushUnavailable) {
  auto session = Open();
  auto peer = ConnectRelayActive(session.session_id());
  ASSERT_TRUE(peer);
  PushCall push(*relay_, session.session_id(), 1, {Pager(1)});
  ASSERT_TRUE(peer->Read(10s)) << Log();  // held unanswered
  stack_.process("msrp-relay").Signal(SIGTERM);
  EXPECT_EQ(push.Finish().error_code(), grpc::StatusCode::UNAVAILABLE) << Log();
  auto results = push.Results();
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(results[0].outcome(), dims::v1::PUSH_OUTCOME_FAILED);
  EXPECT_TRUE(peer->ClosedByRelay(5s));
  auto exit = stack_.process("msrp-relay").Wait(15s);
  ASSERT_TRUE(exit) << Log();
  EXPECT_TRUE(WIFEXITED(*exit) && WEXITSTATUS(*exit) == 0) << Log();
}

class MsrpRelayLingerTest : public MsrpRelayTest {
 protected:
  void SetUp() override { StartRelay({{"DIMS_PUSH_RESULT_LINGER_MS", "1000"}}); }
};

TEST_F(MsrpRelayLingerTest, LingeringResultsGoInOneResponseWhenThePushEnds) {
  auto session = Open();
  auto peer = ConnectRelayActive(session.session_id());
  ASSERT_TRUE(peer);
  auto messages = Pagers(1, 6);
  PushCall push(*relay_, session.session_id(), 6, messages, true, /*per_item=*/6);
  std::vector<PeerMessage> sends;
  for (int i = 0; i < 6; ++i) {
    auto send = peer->Read(10s);
    ASSERT_TRUE(send) << Log();
    sends.push_back(*send);
  }
  for (const auto& send : sends) peer->Respond(send, 200, "OK");
  ASSERT_TRUE(push.Finish().ok()) << Log();
  auto results = push.Results();
  ASSERT_EQ(results.size(), 6u);
  for (size_t i = 0; i < 6; ++i) {
    EXPECT_EQ(results[i].message_id(), messages[i].message_id());
    EXPECT_EQ(results[i].outcome(), dims::v1::PUSH_OUTCOME_DELIVERED);
  }
  EXPECT_EQ(push.Responses(), 1u);
}

TEST_F(MsrpRelayLingerTest, ALingeringResultGoesWhenItsLingerEndsWhileThePushGoesOn) {
  auto session = Open();
  auto peer = ConnectRelayActive(session.session_id());
  ASSERT_TRUE(peer);
  dims::v1::RelayPushRequest item;
  *item.mutable_messages()->add_messages() = Pager(1);
  // The stream stays open: only the linger's end can bring the result.
  PushCall push(*relay_, {StartItem(session.session_id(), 1), item}, /*half_close=*/false);
  ASSERT_EQ(AnswerSends(*peer, 1).size(), 1u);
  ASSERT_TRUE(push.WaitResults(1, 10s)) << Log();
  EXPECT_EQ(push.Results()[0].outcome(), dims::v1::PUSH_OUTCOME_DELIVERED);
  push.HalfClose();
  ASSERT_TRUE(push.Finish().ok()) << Log();
  EXPECT_EQ(push.Results().size(), 1u);
}

class MsrpRelayTimeoutTest : public MsrpRelayTest {
 protected:
  void SetUp() override {
    StartRelay({{"DIMS_TRANSACTION_TIMEOUT_MS", "300"}, {"DIMS_IDLE_TIMEOUT_MS", "1000"}});
  }
};

TEST_F(MsrpRelayTimeoutTest, AConnectedSessionNobodyPushesOnIsClosedWhenIdle) {
  auto session = Open();
  auto peer = ConnectRelayActive(session.session_id());
  ASSERT_TRUE(peer);
  // The caller went away without CloseSession: after the idle timeout the session and its
  // connection are gone.
  EXPECT_TRUE(peer->ClosedByRelay(10s)) << Log();
  dims::v1::RelayCloseSessionRequest close_request;
  close_request.set_session_id(session.session_id());
  close_request.set_reason(dims::v1::CLOSE_REASON_CANCELLED);
  dims::v1::RelayCloseSessionResponse closed;
  EXPECT_EQ(CallWithDeadline(*relay_, &dims::v1::Relay::Stub::CloseSession, close_request, &closed,
                             nullptr, nullptr, 5s)
                .error_code(),
            grpc::StatusCode::NOT_FOUND);
}

TEST_F(MsrpRelayTimeoutTest, AnUnansweredSendFailsWith408) {
  auto session = Open();
  auto peer = ConnectRelayActive(session.session_id());
  ASSERT_TRUE(peer);
  PushCall push(*relay_, session.session_id(), 1, {Pager(1)});
  ASSERT_TRUE(peer->Read(10s)) << Log();  // never answered
  ASSERT_TRUE(push.Finish().ok()) << Log();
  auto results = push.Results();
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(results[0].outcome(), dims::v1::PUSH_OUTCOME_FAILED);
  EXPECT_EQ(results[0].msrp_status(), 408u);
}

}  // namespace
}  // namespace dims::testing
