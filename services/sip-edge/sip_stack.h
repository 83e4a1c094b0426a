// The Sofia-SIP user agent of the edge: owns the su_root loop on its own thread (every nua call
// happens there) and the UDP and TCP listeners. Requests that need another service are answered
// later: the stack keeps the request (saved event + handle reference) and a guard timer, the
// handler's completion comes back through the executor, and each request gets exactly one final
// answer, 503 with Retry-After when the guard fires first. Every answer carries Server and Date.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "sip_answer.h"
#include "sip_metrics.h"

namespace dims::edge {

// A PUBLISH as the handler sees it (copied out of Sofia's message).
struct IncomingPublish {
  uint64_t id = 0;  // for Respond()
  std::string request_uri;
  std::string event;
  std::string if_match;
  std::optional<int> expires;
  std::string content_type;
  std::string body;
  std::string call_id;
};

// A REGISTER as the handler sees it.
struct IncomingRegister {
  uint64_t id = 0;
  std::string to;  // the To URI: the address of record
  bool wildcard = false;
  struct Contact {
    std::string uri;
    std::optional<int> expires;
    std::optional<float> q;
    std::map<std::string, std::string> feature_tags;
  };
  std::vector<Contact> contacts;
  std::optional<int> expires;
  std::string call_id;
  uint32_t cseq = 0;
  std::string user_agent;
  std::string source;   // transport:host:port from the top Via, for diagnostics
  std::string peer_ip;  // the address the request really came from (trust decisions)
};

// A pager-mode MESSAGE as the handler sees it.
struct IncomingMessage {
  uint64_t id = 0;
  std::string request_uri;
  std::string raw;   // the complete request as received: request line, header fields, body
  std::string body;  // the body alone
  std::string content_type;
  std::string call_id;
  uint32_t cseq = 0;
  std::optional<int> max_forwards;
  std::chrono::system_clock::time_point received_at;
};

// An initial SUBSCRIBE (refreshes and removals of a subscription the edge accepted are answered
// by the stack itself and reported as SubscriptionChange).
struct IncomingSubscribe {
  uint64_t id = 0;
  std::string request_uri;
  std::string event;
  std::string from;                 // the From URI
  std::string asserted_identity;    // the P-Asserted-Identity URI, when present
  std::optional<int> expires;       // the Expires header
  std::vector<std::string> accept;  // the Accept media types, when present
  std::string call_id;
  std::string contact;
};

// One NOTIFY's content.
struct NotifyContent {
  std::string event;  // "message-summary"
  std::string content_type;
  std::string body;
  bool terminate = false;  // Subscription-State: terminated (else active)
  std::string reason;      // with terminate: "timeout", "deactivated", "noresource", ...
};

// What happened to an accepted subscription without the edge asking.
struct SubscriptionChange {
  uint64_t dialog = 0;
  bool terminated = false;  // the subscriber removed it, or it expired
  int expires = 0;          // when refreshed: the seconds granted
};

// A MESSAGE the edge sends (a forwarded MESSAGE, a notification).
struct OutgoingMessage {
  std::string request_uri;  // the contact, or the AOR
  std::string from;         // name-addr; the stack adds its own tag when it has none
  std::string to;
  std::string call_id;  // empty: a new one
  std::string content_type;
  std::string body;
  std::optional<int> max_forwards;
  // Further header fields, verbatim and in order (Subject, Date, Accept-Contact, ...).
  std::vector<std::pair<std::string, std::string>> headers;
  std::chrono::milliseconds timeout{3000};  // then the attempt counts as a local 408
};

// The final answer to a MESSAGE the edge sent.
struct SentAnswer {
  int status = 0;
  std::string phrase;
  bool local = false;  // made by the edge's own stack (timeout, transport failure)
  std::string call_id;
};

// The INVITE of a push session (seeds 002/004): DIMS offers an MSRP session to the IM client.
struct OutgoingInvite {
  std::string request_uri;
  // Where the INVITE goes when not to the Request-URI: a registered contact, sent as a loose
  // Route (RFC 3261 16.12) so that the Request-URI stays the public identity (seed 004).
  std::string next_hop;
  std::string from;
  std::string to;
  std::string contact;  // the IM Session Identity of DIMS, with +g.oma.sip-im and automata
  std::string accept_contact;
  std::string sdp_offer;
  int session_expires = 1800;  // RFC 4028 interval; DIMS (the UAC) refreshes
  std::vector<std::pair<std::string, std::string>> headers;  // further fields, verbatim
  std::chrono::milliseconds timeout{32000};                  // then CANCEL, and a local 408
};

// The final answer to a push INVITE; with a 2xx, the dialog the edge now holds.
struct InviteAnswer {
  int status = 0;
  std::string phrase;
  bool local = false;
  uint64_t dialog = 0;  // 2xx: the key for Bye()
  std::string sdp_answer;
  std::string remote_contact;      // of the final answer, else of the last provisional one
  std::vector<std::string> allow;  // likewise
  int session_expires = 0;         // negotiated (2xx)
  bool refresher_is_uac = true;
  std::string remote_user_agent;  // Server or User-Agent of the answer
};

class SipStack {
 public:
  struct Options {
    std::string host = "127.0.0.1";
    int port = 5060;
    std::string server_header;  // release version token
    std::string allowed_events = "poc-settings, im-settings";
    int answer_guard_ms = 8000;           // well under Timer F (32 s): the client still listens
    int max_subscription_expires = 3600;  // longest subscription granted
    SipMetrics* metrics = nullptr;
  };
  using PublishHandler = std::function<void(const IncomingPublish&)>;
  using RegisterHandler = std::function<void(const IncomingRegister&)>;
  using MessageHandler = std::function<void(const IncomingMessage&)>;
  using SentCallback = std::function<void(const SentAnswer&)>;
  using SubscribeHandler = std::function<void(const IncomingSubscribe&)>;
  using SubscriptionChangeHandler = std::function<void(const SubscriptionChange&)>;
  using InviteCallback = std::function<void(const InviteAnswer&)>;

  explicit SipStack(Options options);
  ~SipStack();
  SipStack(const SipStack&) = delete;
  SipStack& operator=(const SipStack&) = delete;

  // Set before Start. Runs on the loop thread; must not block.
  void OnPublish(PublishHandler handler) { on_publish_ = std::move(handler); }
  void OnRegister(RegisterHandler handler) { on_register_ = std::move(handler); }
  void OnMessage(MessageHandler handler) { on_message_ = std::move(handler); }
  void OnSubscribe(SubscribeHandler handler) { on_subscribe_ = std::move(handler); }
  void OnSubscriptionChange(SubscriptionChangeHandler handler) {
    on_subscription_change_ = std::move(handler);
  }

  // Starts the loop thread; returns once the listeners are bound (false and *error if not).
  bool Start(std::string* error);
  // Answers what is pending with 503, shuts the stack down (bounded) and joins the thread.
  void Stop();
  bool running() const { return running_; }

  // Any thread: runs `task` on the loop thread. False when the stack is stopping.
  bool Post(std::function<void()> task);
  // Loop thread: the final answer to request `id`; ignored when it was answered already.
  void Respond(uint64_t id, const SipAnswer& answer);
  // Loop thread: sends `message`; `done` runs on the loop thread with its final answer, exactly
  // once (with a local 503 when the stack is stopping).
  void SendMessage(const OutgoingMessage& message, SentCallback done);
  // Loop thread: accepts SUBSCRIBE `id` (200 with Expires: `expires`) and sends `first` as the
  // immediate NOTIFY (RFC 6665 4.2.1.2); `done` gets that NOTIFY's answer. Returns the dialog
  // key for later NOTIFYs, 0 when the request was answered already.
  uint64_t AcceptSubscription(uint64_t id, int expires, const NotifyContent& first,
                              SentCallback done);
  // Loop thread: sends a NOTIFY in dialog `dialog`; `done` gets its final answer (a local 481
  // when the subscription is gone). A terminating NOTIFY ends the dialog.
  void Notify(uint64_t dialog, const NotifyContent& content, SentCallback done);

  // Loop thread: sends `invite`; `done` runs on the loop thread with its final answer, exactly
  // once. After a 2xx the stack has sent the ACK and runs the session timer (RFC 4028) until
  // Bye(), the client's BYE or a failed refresh.
  void Invite(const OutgoingInvite& invite, InviteCallback done);
  // Loop thread: ends push dialog `dialog` with a BYE (`reason` goes into a Reason header);
  // `done` gets the BYE's answer (a local 481 when the dialog is gone).
  void Bye(uint64_t dialog, const std::string& reason, SentCallback done);

  struct Loop;  // loop-thread state; public for the C callbacks

 private:
  void Run();

  Options options_;
  PublishHandler on_publish_;
  RegisterHandler on_register_;
  MessageHandler on_message_;
  SubscribeHandler on_subscribe_;
  SubscriptionChangeHandler on_subscription_change_;
  std::thread thread_;
  std::mutex mu_;
  std::condition_variable started_cv_;
  bool started_ = false;
  std::string start_error_;
  std::atomic<bool> running_{false};
  Loop* loop_ = nullptr;  // valid while running_
};

}  // namespace dims::edge
