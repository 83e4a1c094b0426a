// An MSRP (RFC 4975) client endpoint for tests and benchmarks: the user's side of a push
// session. It parses what it receives with its own small reader, on purpose independent of
// msrp-relay's codec, so that a test never checks the codec against itself.
//
// One thread runs an epoll loop over the listening socket and every connection. The peer is
// passive (it listens on 127.0.0.1 and the relay connects) or active (Connect: it connects
// to the relay's URI and binds the connection with a bodiless SEND, RFC 4975 5.4). Per
// session, named by the last path segment of the peer's own URI, it records every request
// and response it received and reassembles complete messages by Message-ID. By default it
// answers every SEND 200 OK and sends a success REPORT when asked (Success-Report: yes);
// Behaviour changes that per session. What breaks the protocol is recorded as a violation.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

namespace dims::testing {

using HeaderFields = std::vector<std::pair<std::string, std::string>>;

// The first value of `name` (any case) in `fields`; empty when absent.
std::string FieldOf(const HeaderFields& fields, std::string_view name);

// "start-end/total" of RFC 4975 Byte-Range; end and total absent for "*".
struct MsrpByteRange {
  uint64_t start = 1;
  std::optional<uint64_t> end;
  std::optional<uint64_t> total;
};

// A request as the peer received it.
struct MsrpReceivedRequest {
  std::string method;  // "SEND", "REPORT"
  std::string transaction_id;
  HeaderFields headers;      // every header field in order, names as received
  MsrpByteRange byte_range;  // "1-*/*" when the field is absent
  std::string content_type;
  std::string body;
  char continuation = '$';  // the end-line's flag: '$' complete, '+' more, '#' aborted
  int answered = 0;         // the status the peer answered; 0: none (held, closed, REPORT)
};

// A response to one of the peer's own requests (the bodiless SEND of Connect).
struct MsrpReceivedResponse {
  std::string transaction_id;
  int status = 0;
  std::string comment;
  HeaderFields headers;
};

// A message whose chunks all arrived, joined by Byte-Range.
struct MsrpReceivedMessage {
  std::string message_id;
  std::string content_type;  // of its first chunk
  std::string body;
  int chunks = 0;
  int times_completed = 1;  // above 1: the same Message-ID arrived complete again
};

// One part of a multipart/mixed body (RFC 2046 5.1): its header fields and its exact bytes.
struct MimePart {
  HeaderFields headers;
  std::string body;
};

// Splits a multipart/mixed body into its parts, `content_type` being the whole Content-Type
// value (it names the boundary). Nothing, with `error` set, when the body is not well formed
// (no boundary, no first delimiter, no close delimiter, a part without its blank line).
std::optional<std::vector<MimePart>> ParseMultipartMixed(const std::string& content_type,
                                                         const std::string& body,
                                                         std::string* error);

class MsrpTestPeer {
 public:
  // How the peer treats the SENDs of one session. SENDs are counted from 1 over the session,
  // each chunk once, the bodiless SEND that binds a connection (RFC 4975 5.4) not at all.
  struct Behaviour {
    std::map<int, int> status_for_send;  // n -> the status answered to the n-th SEND, not 200
    bool hold_responses = false;         // answer no SEND at all
    // After this many complete messages the next SEND closes the connection, unanswered.
    std::optional<int> close_after_messages;
    std::chrono::milliseconds delay{0};  // before each response
  };

  // Listens on 127.0.0.1 on a port of the kernel's choosing and starts the loop; throws when
  // it cannot.
  MsrpTestPeer();
  ~MsrpTestPeer();
  MsrpTestPeer(const MsrpTestPeer&) = delete;
  MsrpTestPeer& operator=(const MsrpTestPeer&) = delete;

  // Closes every connection and joins the loop thread; also done by the destructor.
  void Stop();

  int port() const { return port_; }
  // "msrp://127.0.0.1:<port>/<session_id>;tcp"
  std::string Uri(const std::string& session_id) const;
  // The SDP answer to a relay's push offer (RFC 4975 8.1, RFC 6135): recvonly, the peer's
  // path for `session_id`, a=setup `setup` ("passive": the relay connects; "active": the
  // test calls Connect). Throws std::invalid_argument when `offer` is no MSRP offer (no
  // m=message ... TCP/MSRP line, or no a=path).
  std::string AnswerSdp(const std::string& offer, const std::string& session_id,
                        const std::string& setup) const;

  // Applies to the session's SENDs from now on.
  void SetBehaviour(const std::string& session_id, Behaviour behaviour);

  // Active side: connects to `remote_uri` (msrp://host:port/id;tcp), sends the bodiless SEND
  // from Uri(session_id) and waits for its response. Returns its status; 0 when none came
  // within `timeout`, -1 when the connection could not be made or `remote_uri` is not an
  // msrp URI over TCP.
  int Connect(const std::string& session_id, const std::string& remote_uri,
              std::chrono::milliseconds timeout);
  // Closes the session's connections, as a client that goes away.
  void Disconnect(const std::string& session_id);

  // Copies of what the session received so far (empty for an unknown session).
  std::vector<MsrpReceivedRequest> requests(const std::string& session_id) const;
  std::vector<MsrpReceivedResponse> responses(const std::string& session_id) const;
  // Complete messages in the order they completed.
  std::vector<MsrpReceivedMessage> messages(const std::string& session_id) const;
  // Sessions that received anything, in the order they first did.
  std::vector<std::string> sessions() const;
  bool connected(const std::string& session_id) const;
  // Connections of the session that ended (closed by either side).
  int disconnects(const std::string& session_id) const;

  // Over all sessions: distinct complete messages, and complete messages whose Message-ID
  // had completed before in the same session.
  long total_messages() const;
  long duplicate_messages() const;
  // Everything received that broke RFC 4975, one line each; empty for a clean run.
  std::vector<std::string> violations() const;

  // Each waits until the condition holds or `timeout` passes; false on timeout.
  bool WaitForMessages(const std::string& session_id, size_t n, std::chrono::milliseconds timeout);
  bool WaitForRequests(const std::string& session_id, size_t n, std::chrono::milliseconds timeout);
  bool WaitForTotalMessages(long n, std::chrono::milliseconds timeout);
  bool WaitForDisconnects(const std::string& session_id, int n, std::chrono::milliseconds timeout);

  struct Loop;  // the loop thread's state

 private:
  struct Session {
    Behaviour behaviour;
    std::vector<MsrpReceivedRequest> requests;
    std::vector<MsrpReceivedResponse> responses;
    std::vector<MsrpReceivedMessage> messages;
    std::map<std::string, size_t> message_index;  // Message-ID -> messages[i]
    int sends = 0;                                // SENDs counted for Behaviour
    int open_connections = 0;
    int disconnects = 0;
  };

  bool Wait(const std::function<bool()>& condition, std::chrono::milliseconds timeout);
  // Runs `task` on the loop thread.
  void Post(std::function<void()> task);
  Session& SessionLocked(const std::string& session_id);  // made on first use
  const Session* FindLocked(const std::string& session_id) const;

  int port_ = 0;
  std::unique_ptr<Loop> loop_;
  std::thread thread_;

  mutable std::mutex mu_;
  std::condition_variable changed_;
  std::map<std::string, Session> sessions_;
  std::vector<std::string> session_order_;
  std::vector<std::string> violations_;
  long total_messages_ = 0;
  long duplicate_messages_ = 0;
  std::map<std::string, int> connect_results_;  // transaction id of a binding SEND -> status
};

}  // namespace dims::testing
