#include "sip_stack.h"

#include <sofia-sip/msg.h>
#include <sofia-sip/msg_addr.h>
#include <sofia-sip/msg_date.h>
#include <sofia-sip/msg_header.h>
#include <sofia-sip/nta_tag.h>
#include <sofia-sip/nua.h>
#include <sofia-sip/nua_tag.h>
#include <sofia-sip/sip_extra.h>
#include <sofia-sip/sip_header.h>
#include <sofia-sip/sip_status.h>
#include <sofia-sip/sip_tag.h>
#include <sofia-sip/su.h>
#include <sofia-sip/su_tag.h>
#include <sofia-sip/su_wait.h>
#include <sofia-sip/url.h>
#include <strings.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdlib>
#include <deque>
#include <map>
#include <memory>
#include <set>

#include "log.h"
#include "sofia_executor.h"
#include "thread_name.h"

namespace dims::edge {

namespace {

// One request waiting for its final answer.
struct Pending {
  nua_handle_t* handle = nullptr;
  std::string method;
  std::chrono::steady_clock::time_point arrived;
  nua_saved_event_t saved[1] = {};
  su_timer_t* guard = nullptr;
};

std::string MethodOf(sip_t const* sip) {
  return sip && sip->sip_request && sip->sip_request->rq_method_name
             ? sip->sip_request->rq_method_name
             : "UNKNOWN";
}

// The request as it arrived: each fragment (request line, header field, separator, body)
// keeps the bytes it was parsed from, unless the stack changed it (the top Via gets received=
// and rport= values, RFC 3261 18.2.1, RFC 3581): such a fragment is written anew.
std::string ReceivedText(msg_t* msg) {
  std::string text;
  msg_header_t** head = msg_chain_head(msg);
  for (msg_header_t* h = head ? *head : nullptr; h; h = h->sh_succ) {
    if (h->sh_data) {
      text.append(static_cast<const char*>(h->sh_data), h->sh_len);
      continue;
    }
    char buf[8192];
    issize_t n = msg_header_e(buf, sizeof buf, h, 0);
    if (n > 0 && static_cast<size_t>(n) < sizeof buf) text.append(buf, static_cast<size_t>(n));
  }
  return text;
}

// Header fields given as name and value, as the lines SIPTAG_HEADER_STR takes.
std::string HeaderLines(const std::vector<std::pair<std::string, std::string>>& headers) {
  std::string lines;
  for (const auto& [name, value] : headers) lines += name + ": " + value + "\r\n";
  return lines;
}

// A Route header value that sends a request to `uri` (a registered contact, with or without
// its angle brackets) as a loose-routing hop: "<uri;lr>", the lr parameter before any URI
// headers, added unless the URI has it.
std::string LooseRoute(std::string uri) {
  if (uri.size() >= 2 && uri.front() == '<' && uri.back() == '>')
    uri = uri.substr(1, uri.size() - 2);
  size_t headers = uri.find('?');
  std::string base = uri.substr(0, headers);
  bool has_lr = false;
  for (size_t at = base.find(';'); at != std::string::npos; at = base.find(';', at + 1)) {
    size_t end = base.find_first_of(";=", at + 1);
    std::string name = base.substr(at + 1, end == std::string::npos ? end : end - at - 1);
    if (strcasecmp(name.c_str(), "lr") == 0) has_lr = true;
  }
  if (!has_lr) base += ";lr";
  return "<" + base + (headers == std::string::npos ? "" : uri.substr(headers)) + ">";
}

std::string DateNow() {
  char buf[64];
  msg_date_e(buf, sizeof buf, sip_now());
  return buf;
}

}  // namespace

struct SipStack::Loop {
  SipStack* owner = nullptr;
  su_root_t* root = nullptr;
  nua_t* nua = nullptr;
  std::unique_ptr<SofiaExecutor> executor;
  std::map<uint64_t, Pending> pending;
  uint64_t next_id = 1;

  // MESSAGEs the edge sent and still waits on, by handle.
  struct Sent {
    SentCallback done;
    su_timer_t* timer = nullptr;
    std::string call_id;
  };
  std::map<nua_handle_t*, Sent> sent;

  // Subscriptions the edge accepted (notifier dialogs), by dialog key and by handle.
  struct Dialog {
    nua_handle_t* handle = nullptr;
    std::deque<SentCallback> notifies;  // NOTIFYs the edge sent, waiting for their answers
    bool terminated = false;
  };
  std::map<uint64_t, Dialog> dialogs;
  std::map<nua_handle_t*, uint64_t> dialog_of;
  bool shutting_down = false;

  // Push INVITEs the edge sent, and the dialogs they made, by handle.
  struct Call {
    InviteCallback done;  // until the final answer
    su_timer_t* timer = nullptr;
    InviteAnswer seen;  // Contact and Allow of the answers so far (seed 004)
    uint64_t key = 0;   // once established
    SentCallback bye_done;
  };
  std::map<nua_handle_t*, Call> calls;
  std::map<uint64_t, nua_handle_t*> call_of;
  uint64_t next_call = 1;

  // A timer on the loop that calls `fire` with `arg` once, after `delay`.
  su_timer_t* After(std::chrono::milliseconds delay, su_timer_f fire, su_timer_arg_t* arg) {
    su_timer_t* timer =
        su_timer_create(su_root_task(root), static_cast<su_duration_t>(delay.count()));
    su_timer_set(timer, fire, arg);
    return timer;
  }

  // `with_tag`/`with_value`: the NUTAG_WITH_* naming the request being answered.
  // nua keeps the phrase pointer (unlike tag values, which it copies) until its own thread has
  // sent the answer: standard phrases are Sofia's static strings, others live in a ring far
  // larger than the answers that can be in flight at once.
  std::array<std::string, 1024> phrases;
  size_t next_phrase = 0;
  char const* LastingPhrase(const SipAnswer& a) {
    char const* standard = sip_status_phrase(a.status);
    if (a.phrase.empty() && standard) return standard;
    if (standard && a.phrase == standard) return standard;
    std::string& slot = phrases[next_phrase++ % phrases.size()];
    slot = a.phrase;
    return slot.c_str();
  }

  void Answer(nua_handle_t* nh, const SipAnswer& a, const std::string& method,
              std::chrono::steady_clock::time_point arrived, tag_type_t with_tag,
              tag_value_t with_value) {
    if (owner->options_.metrics) {
      owner->options_.metrics->Answered(method, a.status,
                                        std::chrono::steady_clock::now() - arrived);
    }
    std::string date = DateNow();
    std::string expires = a.expires ? std::to_string(*a.expires) : "";
    std::string min_expires = a.min_expires ? std::to_string(*a.min_expires) : "";
    std::string retry_after = a.retry_after ? std::to_string(*a.retry_after) : "";
    nua_respond(nh, a.status, LastingPhrase(a), with_tag, with_value,
                SIPTAG_SERVER_STR(owner->options_.server_header.c_str()),
                SIPTAG_DATE_STR(date.c_str()), TAG_IF(a.etag, SIPTAG_ETAG_STR(a.etag->c_str())),
                TAG_IF(a.expires, SIPTAG_EXPIRES_STR(expires.c_str())),
                TAG_IF(a.min_expires, SIPTAG_MIN_EXPIRES_STR(min_expires.c_str())),
                TAG_IF(a.retry_after, SIPTAG_RETRY_AFTER_STR(retry_after.c_str())),
                TAG_IF(a.accept, SIPTAG_ACCEPT_STR(a.accept->c_str())),
                TAG_IF(a.allow_events, SIPTAG_ALLOW_EVENTS_STR(a.allow_events->c_str())),
                TAG_IF(a.contact, SIPTAG_CONTACT_STR(a.contact ? a.contact->c_str() : "")),
                TAG_IF(a.warning, SIPTAG_WARNING_STR(a.warning ? a.warning->c_str() : "")),
                TAG_END());
  }

  void CountRequest(sip_t const* sip) {
    if (owner->options_.metrics) owner->options_.metrics->Request(MethodOf(sip));
  }

  // Answers a request that was not deferred, inside the callback.
  void AnswerNow(nua_handle_t* nh, sip_t const* sip, const SipAnswer& a) {
    Answer(nh, a, MethodOf(sip), std::chrono::steady_clock::now(), NUTAG_WITH_THIS(nua));
    nua_handle_destroy(nh);
  }

  uint64_t Defer(nua_handle_t* nh, sip_t const* sip) {
    uint64_t id = next_id++;
    Pending& p = pending[id];
    p.handle = nua_handle_ref(nh);
    p.method = MethodOf(sip);
    p.arrived = std::chrono::steady_clock::now();
    nua_save_event(nua, p.saved);
    p.guard = After(
        std::chrono::milliseconds(owner->options_.answer_guard_ms),
        [](su_root_magic_t* magic, su_timer_t*, su_timer_arg_t* arg) {
          auto* loop = reinterpret_cast<Loop*>(magic);
          uint64_t timed_out = reinterpret_cast<uintptr_t>(arg);
          log::Warn("no answer from a service in time; 503",
                    {{"request", static_cast<long>(timed_out)}});
          loop->Respond(timed_out, ServiceUnavailable());
        },
        reinterpret_cast<su_timer_arg_t*>(static_cast<uintptr_t>(id)));
    return id;
  }

  void Respond(uint64_t id, const SipAnswer& a) {
    auto it = pending.find(id);
    if (it == pending.end()) return;  // answered already (guard timer or shutdown)
    Pending p = it->second;
    pending.erase(it);
    Answer(p.handle, a, p.method, p.arrived, NUTAG_WITH_SAVED(p.saved));
    su_timer_destroy(p.guard);
    nua_destroy_event(p.saved);
    nua_handle_destroy(p.handle);  // dialog-less requests: nothing else uses the handle
    nua_handle_unref(p.handle);
  }

  void OnRegister(nua_handle_t* nh, sip_t const* sip) {
    IncomingRegister in;
    char buf[1024];
    if (sip->sip_to) {
      url_e(buf, sizeof buf, sip->sip_to->a_url);
      in.to = buf;
    }
    for (sip_contact_t const* m = sip->sip_contact; m; m = m->m_next) {
      if (m->m_url->url_type == url_any) {
        in.wildcard = true;
        continue;
      }
      IncomingRegister::Contact c;
      url_e(buf, sizeof buf, m->m_url);
      c.uri = buf;
      if (m->m_expires) c.expires = std::atoi(m->m_expires);
      if (m->m_q) c.q = std::strtof(m->m_q, nullptr);
      for (msg_param_t const* p = m->m_params; p && *p; ++p) {
        std::string_view param = *p;
        std::string name(param.substr(0, param.find('=')));
        std::string value;
        if (auto eq = param.find('='); eq != std::string_view::npos) {
          value = std::string(param.substr(eq + 1));
          if (value.size() >= 2 && value.front() == '"' && value.back() == '"') {
            value = value.substr(1, value.size() - 2);
          }
        }
        if (IsFeatureTag(name)) c.feature_tags[name] = value;
      }
      in.contacts.push_back(std::move(c));
    }
    if (sip->sip_expires) in.expires = static_cast<int>(sip->sip_expires->ex_delta);
    if (sip->sip_call_id) in.call_id = sip->sip_call_id->i_id;
    if (sip->sip_cseq) in.cseq = sip->sip_cseq->cs_seq;
    if (msg_t* msg = nua_current_request(nua)) {
      if (su_addrinfo_t* ai = msg_addrinfo(msg); ai && ai->ai_addr) {
        char host[SU_ADDRSIZE] = {};
        su_inet_ntop(ai->ai_family, SU_ADDR(reinterpret_cast<su_sockaddr_t*>(ai->ai_addr)), host,
                     sizeof host);
        in.peer_ip = host;
      }
    }
    if (sip->sip_user_agent) in.user_agent = sip->sip_user_agent->g_string;
    if (sip->sip_via) {
      std::string transport = sip->sip_via->v_protocol ? sip->sip_via->v_protocol : "";
      transport = transport.substr(transport.rfind('/') + 1);
      for (auto& ch : transport)
        ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
      const char* host = sip->sip_via->v_received ? sip->sip_via->v_received : sip->sip_via->v_host;
      in.source = transport + ":" + (host ? host : "") + ":" +
                  (sip->sip_via->v_rport && *sip->sip_via->v_rport ? sip->sip_via->v_rport
                   : sip->sip_via->v_port                          ? sip->sip_via->v_port
                                                                   : "5060");
    }
    Dispatch(nh, sip, in, owner->on_register_);
  }

  // Hands a request to its handler, deferring the answer; while stopping, answers 503 at once.
  template <typename Request, typename Handler>
  void Dispatch(nua_handle_t* nh, sip_t const* sip, Request& in, const Handler& handler) {
    if (shutting_down || !handler) {
      AnswerNow(nh, sip, ServiceUnavailable());
      return;
    }
    in.id = Defer(nh, sip);
    handler(in);
  }

  // RFC 3840: extension tags start with '+'; the base tags are listed in its section 10.
  static bool IsFeatureTag(const std::string& name) {
    static const std::set<std::string> kBase = {
        "audio",       "automata", "class",    "duplex",  "data",    "control",     "mobility",
        "description", "events",   "priority", "methods", "schemes", "application", "video",
        "language",    "type",     "isfocus",  "actor",   "text",    "extensions"};
    return (!name.empty() && name[0] == '+') || kBase.count(name) > 0;
  }

  void OnMessage(nua_handle_t* nh, sip_t const* sip) {
    IncomingMessage in;
    in.received_at = std::chrono::system_clock::now();
    char uri[1024];
    url_e(uri, sizeof uri, sip->sip_request->rq_url);
    in.request_uri = uri;
    if (msg_t* msg = nua_current_request(nua)) in.raw = ReceivedText(msg);
    if (sip->sip_payload) in.body.assign(sip->sip_payload->pl_data, sip->sip_payload->pl_len);
    if (sip->sip_content_type && sip->sip_content_type->c_type) {
      in.content_type = sip->sip_content_type->c_type;
    }
    if (sip->sip_call_id) in.call_id = sip->sip_call_id->i_id;
    if (sip->sip_cseq) in.cseq = sip->sip_cseq->cs_seq;
    if (sip->sip_max_forwards) {
      in.max_forwards = static_cast<int>(sip->sip_max_forwards->mf_count);
    }
    Dispatch(nh, sip, in, owner->on_message_);
  }

  void OnSubscribe(nua_handle_t* nh, int status, sip_t const* sip, tagi_t* tags) {
    if (status >= 200) {  // a refresh or removal, answered by the stack
      auto it = dialog_of.find(nh);
      if (it == dialog_of.end()) return;
      int substate = nua_substate_active;
      tl_gets(tags, NUTAG_SUBSTATE_REF(substate), TAG_END());
      SubscriptionChange change{it->second, substate == nua_substate_terminated, 0};
      if (!change.terminated) {
        int requested = sip && sip->sip_expires ? static_cast<int>(sip->sip_expires->ex_delta)
                                                : owner->options_.max_subscription_expires;
        change.expires = std::min(requested, owner->options_.max_subscription_expires);
      } else {
        dialogs[it->second].terminated = true;  // the stack sends the final NOTIFY itself
      }
      if (owner->on_subscription_change_) owner->on_subscription_change_(change);
      return;
    }
    IncomingSubscribe in;
    char buf[1024];
    url_e(buf, sizeof buf, sip->sip_request->rq_url);
    in.request_uri = buf;
    if (sip->sip_event) in.event = sip->sip_event->o_type;
    if (sip->sip_from) {
      url_e(buf, sizeof buf, sip->sip_from->a_url);
      in.from = buf;
    }
    if (sip_p_asserted_identity_t const* pai = sip_p_asserted_identity(sip)) {
      url_e(buf, sizeof buf, pai->paid_url);
      in.asserted_identity = buf;
    }
    if (sip->sip_expires) in.expires = static_cast<int>(sip->sip_expires->ex_delta);
    for (sip_accept_t const* a = sip->sip_accept; a; a = a->ac_next) {
      if (a->ac_type) in.accept.emplace_back(a->ac_type);
    }
    if (sip->sip_call_id) in.call_id = sip->sip_call_id->i_id;
    if (sip->sip_contact) {
      url_e(buf, sizeof buf, sip->sip_contact->m_url);
      in.contact = buf;
    }
    Dispatch(nh, sip, in, owner->on_subscribe_);
  }

  uint64_t AcceptSubscription(uint64_t id, int expires, const NotifyContent& first,
                              SentCallback done) {
    auto it = pending.find(id);
    if (it == pending.end()) return 0;  // answered already (guard timer or shutdown)
    Pending p = it->second;
    pending.erase(it);
    SipAnswer ok{200, "OK"};
    ok.expires = expires;
    Answer(p.handle, ok, p.method, p.arrived, NUTAG_WITH_SAVED(p.saved));
    su_timer_destroy(p.guard);
    nua_destroy_event(p.saved);
    // The handle now carries the dialog; the reference taken in Defer keeps it until the end.
    uint64_t dialog = next_id++;
    dialogs[dialog].handle = p.handle;
    dialog_of[p.handle] = dialog;
    Notify(dialog, first, std::move(done));
    return dialog;
  }

  void Notify(uint64_t dialog, const NotifyContent& c, SentCallback done) {
    auto it = dialogs.find(dialog);
    if (it == dialogs.end() || it->second.terminated || shutting_down) {
      done({481, "Subscription does not exist", true, ""});
      return;
    }
    it->second.notifies.push_back(std::move(done));
    std::string state =
        c.terminate ? "terminated" + (c.reason.empty() ? "" : ";reason=" + c.reason) : "";
    su_home_t home[1] = {SU_HOME_INIT(home)};
    sip_payload_t* payload = sip_payload_create(home, c.body.data(), c.body.size());
    nua_notify(it->second.handle,
               NUTAG_SUBSTATE(c.terminate ? nua_substate_terminated : nua_substate_active),
               TAG_IF(c.terminate, SIPTAG_SUBSCRIPTION_STATE_STR(state.c_str())),
               SIPTAG_EVENT_STR(c.event.c_str()), SIPTAG_CONTENT_TYPE_STR(c.content_type.c_str()),
               SIPTAG_PAYLOAD(payload), TAG_END());
    su_home_deinit(home);
    if (c.terminate) it->second.terminated = true;
  }

  void OnNotifyAnswer(nua_handle_t* nh, int status, char const* phrase, sip_t const* sip,
                      tagi_t* tags) {
    if (status < 200) return;
    auto by_handle = dialog_of.find(nh);
    if (by_handle == dialog_of.end()) return;
    uint64_t key = by_handle->second;
    Dialog& dialog = dialogs[key];
    // Answers come in the order the NOTIFYs went out; NOTIFYs the stack sent on its own (the
    // copy after a refresh, the final one on expiry) find the queue empty.
    if (!dialog.notifies.empty()) {
      SentCallback done = std::move(dialog.notifies.front());
      dialog.notifies.pop_front();
      done({status, phrase ? phrase : "", sip == nullptr, ""});
    }
    int substate = nua_substate_active;
    tl_gets(tags, NUTAG_SUBSTATE_REF(substate), TAG_END());
    bool over = substate == nua_substate_terminated || status == 481;
    if (!over) return;
    bool reported = dialog.terminated;
    for (auto& waiting : dialog.notifies) waiting({481, "Subscription does not exist", true, ""});
    dialogs.erase(key);
    dialog_of.erase(nh);
    nua_handle_destroy(nh);
    nua_handle_unref(nh);
    if (owner->on_subscription_change_ && (!reported || status == 481)) {
      owner->on_subscription_change_({key, true, 0});
    }
  }

  void SendMessage(const OutgoingMessage& m, SentCallback done) {
    if (shutting_down) {
      done({503, "Service Unavailable (edge stopping)", true, m.call_id});
      return;
    }
    nua_handle_t* nh = nua_handle(nua, nullptr, TAG_END());
    std::string extra = HeaderLines(m.headers);
    std::string max_forwards = m.max_forwards ? std::to_string(*m.max_forwards) : "";
    su_home_t home[1] = {SU_HOME_INIT(home)};
    // The body as a payload object: it may hold NUL bytes, which a _STR tag would cut.
    sip_payload_t* payload = sip_payload_create(home, m.body.data(), m.body.size());
    nua_message(nh, NUTAG_URL(m.request_uri.c_str()), SIPTAG_FROM_STR(m.from.c_str()),
                SIPTAG_TO_STR(m.to.c_str()),
                TAG_IF(!m.call_id.empty(), SIPTAG_CALL_ID_STR(m.call_id.c_str())),
                TAG_IF(m.max_forwards, SIPTAG_MAX_FORWARDS_STR(max_forwards.c_str())),
                SIPTAG_CONTENT_TYPE_STR(m.content_type.c_str()), SIPTAG_PAYLOAD(payload),
                TAG_IF(!extra.empty(), SIPTAG_HEADER_STR(extra.c_str())), TAG_END());
    su_home_deinit(home);  // nua copied the tags
    Sent& entry = sent[nh];
    entry.done = std::move(done);
    entry.call_id = m.call_id;
    entry.timer = After(
        m.timeout,
        [](su_root_magic_t* magic, su_timer_t*, su_timer_arg_t* arg) {
          auto* loop = reinterpret_cast<Loop*>(magic);
          loop->FinishSent(reinterpret_cast<nua_handle_t*>(arg),
                           {408, "Request Timeout (no answer in time)", true, ""});
        },
        reinterpret_cast<su_timer_arg_t*>(nh));
  }

  // The one end of a sent MESSAGE: its final answer, its timeout, or the edge stopping.
  void FinishSent(nua_handle_t* nh, SentAnswer answer) {
    auto it = sent.find(nh);
    if (it == sent.end()) return;
    Sent entry = std::move(it->second);
    sent.erase(it);
    su_timer_destroy(entry.timer);
    nua_handle_destroy(nh);  // no later events; a late answer is dropped by the stack
    if (answer.call_id.empty()) answer.call_id = entry.call_id;
    entry.done(answer);
  }

  void OnMessageAnswer(nua_handle_t* nh, int status, char const* phrase, sip_t const* sip) {
    if (status < 200) return;
    SentAnswer answer{status, phrase ? phrase : "", sip == nullptr, ""};
    if (sip && sip->sip_call_id) answer.call_id = sip->sip_call_id->i_id;
    FinishSent(nh, std::move(answer));
  }

  void Invite(const OutgoingInvite& m, InviteCallback done) {
    if (shutting_down) {
      done({.status = 503, .phrase = "Service Unavailable (edge stopping)", .local = true});
      return;
    }
    nua_handle_t* nh = nua_handle(nua, nullptr, TAG_END());
    std::string extra = HeaderLines(m.headers);
    std::string route = m.next_hop.empty() ? std::string() : LooseRoute(m.next_hop);
    nua_invite(nh, NUTAG_URL(m.request_uri.c_str()), SIPTAG_FROM_STR(m.from.c_str()),
               TAG_IF(!route.empty(), SIPTAG_ROUTE_STR(route.c_str())), SIPTAG_TO_STR(m.to.c_str()),
               SIPTAG_CONTACT_STR(m.contact.c_str()),
               SIPTAG_ACCEPT_CONTACT_STR(m.accept_contact.c_str()),
               // The methods of the push dialog (seed 004), not every method the edge serves.
               SIPTAG_ALLOW_STR("INVITE, ACK, CANCEL, BYE, UPDATE"),
               NUTAG_SESSION_TIMER(static_cast<unsigned>(m.session_expires)),
               NUTAG_SESSION_REFRESHER(nua_local_refresher),
               NUTAG_MIN_SE(90),  // RFC 4028's floor; the caller's interval decides
               SIPTAG_CONTENT_TYPE_STR("application/sdp"), SIPTAG_PAYLOAD_STR(m.sdp_offer.c_str()),
               TAG_IF(!extra.empty(), SIPTAG_HEADER_STR(extra.c_str())), TAG_END());
    Call& call = calls[nh];
    call.done = std::move(done);
    call.timer = After(
        m.timeout,
        [](su_root_magic_t* magic, su_timer_t*, su_timer_arg_t* arg) {
          auto* loop = reinterpret_cast<Loop*>(magic);
          auto* handle = reinterpret_cast<nua_handle_t*>(arg);
          // The caller hears now; the INVITE is cancelled, and a 2xx that still comes is ended.
          loop->FinishInvite(handle, {.status = 408, .phrase = "Request Timeout", .local = true});
          nua_cancel(handle, TAG_END());
        },
        reinterpret_cast<su_timer_arg_t*>(nh));
  }

  void FinishInvite(nua_handle_t* nh, InviteAnswer answer) {
    auto it = calls.find(nh);
    if (it == calls.end() || !it->second.done) return;
    Call& call = it->second;
    su_timer_destroy(call.timer);
    call.timer = nullptr;
    auto done = std::move(call.done);
    call.done = nullptr;
    done(answer);
  }

  void OnInviteAnswer(nua_handle_t* nh, int status, char const* phrase, sip_t const* sip) {
    auto it = calls.find(nh);
    if (it == calls.end()) return;
    Call& call = it->second;
    if (sip && sip->sip_contact) {
      char contact[2048];
      if (sip_contact_e(contact, sizeof contact,
                        reinterpret_cast<msg_header_t const*>(sip->sip_contact), 0) > 0) {
        call.seen.remote_contact = contact;
      }
    }
    if (sip && sip->sip_allow && sip->sip_allow->k_items) {
      call.seen.allow.clear();
      for (char const* const* m = sip->sip_allow->k_items; *m; ++m) call.seen.allow.push_back(*m);
    }
    if (status < 200) return;
    // An answer on the established dialog: the stack's own session refresh (RFC 4028).
    if (call.key) return;
    bool established = status < 300;
    if (!call.done) {  // the caller gave up: end what the late answer made
      if (established) nua_bye(nh, TAG_END());
      return;
    }
    InviteAnswer answer = call.seen;
    answer.status = status;
    answer.phrase = phrase ? phrase : "";
    answer.local = sip == nullptr;
    if (sip && (sip->sip_server || sip->sip_user_agent)) {
      answer.remote_user_agent =
          sip->sip_server ? sip->sip_server->g_string : sip->sip_user_agent->g_string;
    }
    if (established) {
      if (sip && sip->sip_payload) {
        answer.sdp_answer.assign(sip->sip_payload->pl_data, sip->sip_payload->pl_len);
      }
      if (sip && sip->sip_session_expires) {
        answer.session_expires = static_cast<int>(sip->sip_session_expires->x_delta);
        char const* refresher = sip->sip_session_expires->x_refresher;
        answer.refresher_is_uac = !refresher || std::string(refresher) != "uas";
      }
      call.key = next_call++;
      call_of[call.key] = nh;
      answer.dialog = call.key;
    }
    FinishInvite(nh, std::move(answer));
  }

  void Bye(uint64_t key, const std::string& reason, SentCallback done) {
    auto found = call_of.find(key);
    if (found == call_of.end() || calls[found->second].bye_done) {
      done({481, "Call/Transaction Does Not Exist", true, ""});
      return;
    }
    if (shutting_down) {  // nua_shutdown ends every dialog itself
      done({503, "Service Unavailable (edge stopping)", true, ""});
      return;
    }
    nua_handle_t* nh = found->second;
    calls[nh].bye_done = std::move(done);
    std::string text = "SIP;cause=200;text=\"" + reason + "\"";
    nua_bye(nh, TAG_IF(!reason.empty(), SIPTAG_REASON_STR(text.c_str())), TAG_END());
  }

  void OnByeAnswer(nua_handle_t* nh, int status, char const* phrase, sip_t const* sip) {
    auto it = calls.find(nh);
    if (status < 200 || it == calls.end() || !it->second.bye_done) return;
    auto done = std::move(it->second.bye_done);
    it->second.bye_done = nullptr;
    done({status, phrase ? phrase : "", sip == nullptr, ""});
  }

  // The dialog ended (BYE either way, a failed refresh, a rejected INVITE): forget it.
  void OnCallState(nua_handle_t* nh, tagi_t* tags) {
    int state = nua_callstate_init;
    tl_gets(tags, NUTAG_CALLSTATE_REF(state), TAG_END());
    auto it = calls.find(nh);
    if (state != nua_callstate_terminated || it == calls.end()) return;
    Call call = std::move(it->second);
    calls.erase(it);
    if (call.key) call_of.erase(call.key);
    if (call.timer) su_timer_destroy(call.timer);
    if (call.done) call.done({.status = 481, .phrase = "Call Terminated", .local = true});
    if (call.bye_done) call.bye_done({200, "OK (dialog ended)", true, ""});
    nua_handle_destroy(nh);
  }

  void OnPublish(nua_handle_t* nh, sip_t const* sip) {
    IncomingPublish in;
    char uri[1024];
    url_e(uri, sizeof uri, sip->sip_request->rq_url);
    in.request_uri = uri;
    if (sip->sip_event) in.event = sip->sip_event->o_type;
    if (sip->sip_if_match) in.if_match = sip->sip_if_match->g_string;
    if (sip->sip_expires) in.expires = static_cast<int>(sip->sip_expires->ex_delta);
    if (sip->sip_content_type && sip->sip_content_type->c_type) {
      in.content_type = sip->sip_content_type->c_type;
    }
    if (sip->sip_payload) in.body.assign(sip->sip_payload->pl_data, sip->sip_payload->pl_len);
    if (sip->sip_call_id) in.call_id = sip->sip_call_id->i_id;
    Dispatch(nh, sip, in, owner->on_publish_);
  }
};

namespace {

void OnEvent(nua_event_t event, int status, char const* phrase, nua_t*, nua_magic_t* magic,
             nua_handle_t* nh, nua_hmagic_t*, sip_t const* sip, tagi_t* tags) noexcept {
  auto* loop = reinterpret_cast<SipStack::Loop*>(magic);
  try {
    bool incoming = event == nua_i_publish || event == nua_i_register || event == nua_i_options ||
                    event == nua_i_subscribe || event == nua_i_invite || event == nua_i_message;
    if (incoming) loop->CountRequest(sip);
    switch (event) {
      case nua_i_publish:
        loop->OnPublish(nh, sip);
        break;
      case nua_i_options:
        // Answered here rather than by the stack, so that it too carries Server and Date.
        loop->AnswerNow(nh, sip, {200, "OK"});
        break;
      case nua_i_register:
        loop->OnRegister(nh, sip);
        break;
      case nua_i_message:
        loop->OnMessage(nh, sip);
        break;
      case nua_r_message:
        loop->OnMessageAnswer(nh, status, phrase, sip);
        break;
      case nua_i_subscribe:
        loop->OnSubscribe(nh, status, sip, tags);
        break;
      case nua_r_notify:
        loop->OnNotifyAnswer(nh, status, phrase, sip, tags);
        break;
      case nua_r_invite:
        loop->OnInviteAnswer(nh, status, phrase, sip);
        break;
      case nua_r_bye:
        loop->OnByeAnswer(nh, status, phrase, sip);
        break;
      case nua_i_state:
        loop->OnCallState(nh, tags);
        break;
      case nua_i_invite:
        log::Debug("request not implemented yet",
                   {{"method", sip && sip->sip_request ? sip->sip_request->rq_method_name : "?"}});
        loop->AnswerNow(nh, sip, {501, "Not Implemented"});
        break;
      case nua_r_shutdown:
        if (status >= 200) su_root_break(loop->root);
        break;
      case nua_i_error:
        log::Warn("sofia error", {{"status", status}, {"phrase", phrase ? phrase : ""}});
        break;
      default:
        break;
    }
  } catch (const std::exception& e) {
    // No exception may unwind through Sofia's C code.
    log::Error("SIP event handling failed", {{"error", e.what()}});
  }
}

}  // namespace

SipStack::SipStack(Options options) : options_(std::move(options)) {}

SipStack::~SipStack() { Stop(); }

bool SipStack::Start(std::string* error) {
  thread_ = std::thread([this] { Run(); });
  std::unique_lock lock(mu_);
  started_cv_.wait(lock, [&] { return started_; });
  if (!start_error_.empty()) {
    if (error) *error = start_error_;
    lock.unlock();
    thread_.join();
    return false;
  }
  return true;
}

bool SipStack::Post(std::function<void()> task) {
  std::lock_guard lock(mu_);
  if (!running_ || !loop_) return false;
  return loop_->executor->Post(std::move(task));
}

void SipStack::Respond(uint64_t id, const SipAnswer& answer) {
  if (loop_) loop_->Respond(id, answer);
}

void SipStack::SendMessage(const OutgoingMessage& message, SentCallback done) {
  if (loop_) loop_->SendMessage(message, std::move(done));
}

uint64_t SipStack::AcceptSubscription(uint64_t id, int expires, const NotifyContent& first,
                                      SentCallback done) {
  return loop_ ? loop_->AcceptSubscription(id, expires, first, std::move(done)) : 0;
}

void SipStack::Notify(uint64_t dialog, const NotifyContent& content, SentCallback done) {
  if (loop_) loop_->Notify(dialog, content, std::move(done));
}

void SipStack::Invite(const OutgoingInvite& invite, InviteCallback done) {
  if (loop_) loop_->Invite(invite, std::move(done));
}

void SipStack::Bye(uint64_t dialog, const std::string& reason, SentCallback done) {
  if (loop_) loop_->Bye(dialog, reason, std::move(done));
}

void SipStack::Stop() {
  bool posted = Post([this] {
    Loop* loop = loop_;
    loop->shutting_down = true;
    // Whatever still waits gets its one final answer now: the edge's MESSAGEs first, since
    // their callbacks may answer (or store) requests still pending.
    while (!loop->sent.empty()) {
      loop->FinishSent(loop->sent.begin()->first,
                       {503, "Service Unavailable (edge stopping)", true, ""});
    }
    for (auto& [handle, call] : loop->calls) {
      if (call.timer) su_timer_destroy(call.timer);
      call.timer = nullptr;
      if (call.done) {
        auto done = std::move(call.done);
        call.done = nullptr;
        done({.status = 503, .phrase = "Service Unavailable (edge stopping)", .local = true});
      }
      if (call.bye_done) {  // nua_shutdown sends the BYE; its answer is no longer awaited
        auto done = std::move(call.bye_done);
        call.bye_done = nullptr;
        done({503, "Service Unavailable (edge stopping)", true, ""});
      }
    }
    while (!loop->pending.empty()) {
      loop->Respond(loop->pending.begin()->first, ServiceUnavailable());
    }
    // Subscriptions end with the stack (nua_shutdown sends their final NOTIFYs); whoever waits
    // on a NOTIFY hears so now.
    for (auto& [key, dialog] : loop->dialogs) {
      for (auto& waiting : dialog.notifies) waiting({503, "Service Unavailable", true, ""});
      dialog.notifies.clear();
    }
    nua_shutdown(loop->nua);
  });
  (void)posted;
  if (thread_.joinable()) thread_.join();
}

void SipStack::Run() {
  NameThisThread("sip-stack");
  su_init();
  Loop loop;
  loop.owner = this;
  loop.root = su_root_create(reinterpret_cast<su_root_magic_t*>(&loop));
  std::string url = "sip:" + options_.host + ":" + std::to_string(options_.port);
  if (loop.root) {
    loop.nua = nua_create(
        loop.root, OnEvent, reinterpret_cast<nua_magic_t*>(&loop), NUTAG_URL(url.c_str()),
        // MESSAGE is answered by DIMS, never automatically by the stack (202 only after storage).
        NUTAG_APPL_METHOD("MESSAGE"), NUTAG_APPL_METHOD("REGISTER"), NUTAG_APPL_METHOD("OPTIONS"),
        NUTAG_ALLOW("INVITE, ACK, BYE, CANCEL, OPTIONS, MESSAGE, REGISTER, PUBLISH, SUBSCRIBE, "
                    "NOTIFY"),
        NUTAG_ALLOW_EVENTS(options_.allowed_events.c_str()), NUTAG_MEDIA_ENABLE(0),
        NUTAG_SUB_EXPIRES(static_cast<unsigned>(options_.max_subscription_expires)),
        // 100 Trying to a non-INVITE still waiting for a service after T2/2 stops the client's
        // UDP retransmissions (RFC 4320).
        NTATAG_EXTRA_100(1),
        // Keep each header field's bytes as received: a stored MESSAGE is the request exactly as
        // the sender wrote it (compact forms, spacing), not Sofia's rendering of it.
        NTATAG_SIPFLAGS(MSG_DO_EXTRACT_COPY), SIPTAG_SERVER_STR(options_.server_header.c_str()),
        NUTAG_USER_AGENT(options_.server_header.c_str()), TAG_END());
  }
  if (loop.nua) {
    loop.executor = std::make_unique<SofiaExecutor>(loop.root);
    if (options_.metrics) {
      loop.executor->Observe(&options_.metrics->queue_depth(), &options_.metrics->queue_delay());
    }
  }
  {
    std::lock_guard lock(mu_);
    started_ = true;
    if (!loop.nua) {
      start_error_ = "cannot listen for SIP on " + url;
    } else {
      loop_ = &loop;
      running_ = true;
    }
  }
  started_cv_.notify_all();
  if (!loop.nua) {
    if (loop.root) su_root_destroy(loop.root);
    su_deinit();
    return;
  }
  su_root_run(loop.root);

  {
    std::lock_guard lock(mu_);
    running_ = false;
    loop.executor->Close();
  }
  loop.executor.reset();
  nua_destroy(loop.nua);
  {
    std::lock_guard lock(mu_);
    loop_ = nullptr;
  }
  su_root_destroy(loop.root);
  su_deinit();
}

}  // namespace dims::edge
