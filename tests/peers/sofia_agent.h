// A SIP user agent of our own for tests, on Sofia-SIP's nua, for the flows sipp expresses badly:
// a refresh out of CSeq order, a value of one answer (SIP-ETag) carried into the next request,
// several user agents at once. It owns an su_root loop on a thread of its own, where every nua
// call happens; the blocking methods hand their request to that thread and wait, bounded, for
// the final answer.
//
// Every request goes out as a nua extension request (nua_method), one transaction per call and
// nothing added by the stack: no automatic refresh, no un-REGISTER on shutdown, no retry on 423
// or Retry-After. A test sees exactly the answer DIMS gave to exactly the request it wrote.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace dims::testing {

enum class SipTransport { kUdp, kTcp };

// A final answer as the agent received it, copied out of Sofia's message.
struct SipResponse {
  int status = 0;  // 0: no final answer (the deadline passed, or the agent stopped); see phrase
  std::string phrase;
  std::string call_id;
  uint32_t cseq = 0;
  std::vector<std::string> contacts;  // each Contact field value: "<sip:a@h:5060>;expires=600"
  std::optional<int> expires;
  std::optional<int> min_expires;
  std::optional<int> retry_after;
  std::string etag;  // SIP-ETag
  std::string server;
  std::string date;
  std::string raw;  // the whole message, for failure messages
};

// One request outside any dialog, written by the test. The stack adds Via, Max-Forwards, the
// From tag, and Call-ID and CSeq when they are not given; the rest goes out as written.
struct SipRequest {
  std::string method;            // "REGISTER"
  std::string request_uri;       // "sip:dims.test"
  std::string from;              // "<sip:alice@dims.test>"; the stack adds the tag
  std::string to;                // empty: as From
  std::string call_id;           // empty: a new one
  std::optional<uint32_t> cseq;  // empty: the stack's next
  std::string contact;           // Contact field value; empty: none
  std::vector<std::pair<std::string, std::string>> headers;  // any other fields, name and value
  std::string content_type;
  std::string body;
  SipTransport transport = SipTransport::kUdp;
};

// A request that reached the agent (MESSAGE, INVITE, NOTIFY, ..., and the ACK and BYE of a
// dialog it accepted).
struct IncomingSipRequest {
  std::string method;
  std::string request_uri;
  std::string from;
  std::string to;
  std::string call_id;
  uint32_t cseq = 0;
  std::string content_type;
  std::string body;
  std::string raw;
};

class SofiaAgent {
 public:
  struct Options {
    std::string next_hop;  // "127.0.0.1:5060": every request goes there (the sip-edge)
    std::string user_agent = "dims-test-agent";
  };

  struct RegisterOptions {
    std::string aor;  // "sip:alice@dims.test": From and To
    // Contact header parameters after the agent's own URI, e.g.
    // ";+g.oma.sip-im;+sip.instance=\"<urn:uuid:...>\"".
    std::string contact_params;
    std::string contact;           // instead of the agent's own Contact, e.g. "*"
    std::optional<int> expires;    // the Expires header
    std::string call_id;           // empty: a new one
    std::optional<uint32_t> cseq;  // empty: the stack's next
    SipTransport transport = SipTransport::kUdp;
  };

  struct PublishOptions {
    std::string aor;  // "sip:alice@dims.test": Request-URI, From and To
    std::string event = "poc-settings";
    std::string content_type;  // with body; both empty for a refresh or a removal
    std::string body;
    std::string if_match;  // SIP-If-Match; empty: an initial publication
    std::optional<int> expires;
    SipTransport transport = SipTransport::kUdp;
  };

  // The agent's answer to an incoming request that the stack left to it (MESSAGE, INVITE,
  // NOTIFY, ...). Status 0: no answer at all, as a client that hangs (the stack cleans up when
  // the agent stops). An INVITE answered 2xx makes a dialog the agent keeps: the stack takes
  // its ACK, answers a BYE 200 itself, and SendBye ends it from this side.
  struct Answer {
    int status = 501;
    std::string phrase = "Not Implemented";
    std::string content_type;  // with body, e.g. "application/sdp"
    std::string body;
    std::string contact;  // the Contact field value; empty: the stack's own
    // Any other fields, name and value: Allow, Supported, Server, Require, ...
    std::vector<std::pair<std::string, std::string>> headers;
  };
  // Runs on the agent's loop thread for every incoming request but ACK and BYE (which the
  // stack answers), after the agent recorded it, and chooses the answer. Without a hook the
  // agent answers 501.
  using RequestHook = std::function<Answer(const IncomingSipRequest&)>;

  // Binds 127.0.0.1 on a free port (UDP and TCP) and starts the loop; throws when it cannot.
  explicit SofiaAgent(Options options);
  ~SofiaAgent();
  SofiaAgent(const SofiaAgent&) = delete;
  SofiaAgent& operator=(const SofiaAgent&) = delete;

  static constexpr std::chrono::milliseconds kDefaultTimeout{10'000};

  // Each sends one request and waits for its final answer, at most `timeout`.
  SipResponse Register(const RegisterOptions& options,
                       std::chrono::milliseconds timeout = kDefaultTimeout);
  SipResponse Publish(const PublishOptions& options,
                      std::chrono::milliseconds timeout = kDefaultTimeout);
  SipResponse SendRequest(const SipRequest& request,
                          std::chrono::milliseconds timeout = kDefaultTimeout);
  // Ends the dialog of the INVITE with this Call-ID that the agent accepted (the client hangs
  // up): sends BYE and waits for its final answer. Status 0 with a phrase saying why when
  // there is no such dialog (never accepted, or ended already).
  SipResponse SendBye(const std::string& call_id,
                      std::chrono::milliseconds timeout = kDefaultTimeout);

  // Shuts the stack down (bounded) and joins the loop thread; also done by the destructor.
  void Stop();

  int port() const { return port_; }
  // The agent's own URI for `user`: "sip:alice@127.0.0.1:25060;transport=udp".
  std::string ContactUri(const std::string& user, SipTransport transport) const;

  void OnRequest(RequestHook hook);
  std::vector<IncomingSipRequest> received() const;
  // The received requests of one method ("INVITE", "ACK", "BYE", ...).
  std::vector<IncomingSipRequest> received(const std::string& method) const;
  // Waits until `n` requests of `method` were received; false when `timeout` passed first.
  bool WaitForReceived(const std::string& method, size_t n, std::chrono::milliseconds timeout);

  struct Loop;  // loop-thread state; public for the C callbacks

 private:
  bool Start();
  void Run();
  // Any thread: hands `start` a promise on the loop thread and waits for its answer, at most
  // `timeout` (then forgets the transaction).
  SipResponse Await(std::function<void(std::shared_ptr<std::promise<SipResponse>>)> start,
                    std::chrono::milliseconds timeout);
  // Any thread: runs `task` on the loop thread. False once the loop has ended.
  bool Post(std::function<void()> task);

  Options options_;
  int port_ = 0;
  std::thread thread_;
  mutable std::mutex mu_;
  std::condition_variable started_cv_;
  std::condition_variable received_cv_;
  bool started_ = false;
  Loop* loop_ = nullptr;  // set while the loop runs, under mu_
  RequestHook hook_;
  std::vector<IncomingSipRequest> received_;
};

}  // namespace dims::testing
