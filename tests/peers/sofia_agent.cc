#include "sofia_agent.h"

#include <sofia-sip/msg.h>
#include <sofia-sip/msg_header.h>
#include <sofia-sip/nta_tag.h>
#include <sofia-sip/nua.h>
#include <sofia-sip/nua_tag.h>
#include <sofia-sip/sip_header.h>
#include <sofia-sip/sip_tag.h>
#include <sofia-sip/su.h>
#include <sofia-sip/su_tag.h>
#include <sofia-sip/su_wait.h>
#include <sofia-sip/url.h>

#include <algorithm>
#include <cstdio>
#include <deque>
#include <future>
#include <map>
#include <memory>
#include <stdexcept>

#include "test_servers.h"

namespace dims::testing {
namespace {

const char* Name(SipTransport transport) { return transport == SipTransport::kTcp ? "tcp" : "udp"; }

// One field value as Sofia encodes it ("<sip:a@h>;expires=600"), or "" without the header.
std::string FieldValue(const void* header) {
  if (!header) return "";
  char buf[4096];
  issize_t n = msg_header_field_e(buf, sizeof buf, static_cast<const msg_header_t*>(header), 0);
  return n > 0 && static_cast<size_t>(n) < sizeof buf ? std::string(buf, static_cast<size_t>(n))
                                                      : "";
}

std::string MessageText(msg_t* msg) {
  if (!msg) return "";
  su_home_t home[1] = {SU_HOME_INIT(home)};
  size_t len = 0;
  char* text = msg_as_string(home, msg, nullptr, 0, &len);
  std::string out = text ? std::string(text, len) : "";
  su_home_deinit(home);
  return out;
}

// "sip:alice@dims.test" -> "dims.test"
std::string DomainOf(const std::string& aor) {
  auto at = aor.find('@');
  return at == std::string::npos ? aor.substr(aor.find(':') + 1) : aor.substr(at + 1);
}

// "sip:alice@dims.test" -> "alice"
std::string UserOf(const std::string& aor) {
  auto colon = aor.find(':');
  auto at = aor.find('@');
  return at == std::string::npos ? "" : aor.substr(colon + 1, at - colon - 1);
}

// What the agent records of a request that reached it.
IncomingSipRequest Incoming(nua_t* nua, sip_t const* sip) {
  IncomingSipRequest in;
  if (sip && sip->sip_request) {
    in.method = sip->sip_request->rq_method_name;
    char uri[1024];
    url_e(uri, sizeof uri, sip->sip_request->rq_url);
    in.request_uri = uri;
  }
  if (sip) {
    in.from = FieldValue(sip->sip_from);
    in.to = FieldValue(sip->sip_to);
    if (sip->sip_call_id) in.call_id = sip->sip_call_id->i_id;
    if (sip->sip_cseq) in.cseq = sip->sip_cseq->cs_seq;
    if (sip->sip_content_type && sip->sip_content_type->c_type) {
      in.content_type = sip->sip_content_type->c_type;
    }
    if (sip->sip_payload) in.body.assign(sip->sip_payload->pl_data, sip->sip_payload->pl_len);
  }
  in.raw = MessageText(nua_current_request(nua));
  return in;
}

nua_hmagic_t* MagicOf(uint64_t id) {
  return reinterpret_cast<nua_hmagic_t*>(static_cast<uintptr_t>(id));
}

SipResponse NoAnswer(std::string why) {
  SipResponse r;
  r.phrase = std::move(why);
  return r;
}

}  // namespace

// Everything below runs on the loop thread, except where a comment says otherwise.
struct SofiaAgent::Loop {
  SofiaAgent* owner = nullptr;
  su_root_t* root = nullptr;
  nua_t* nua = nullptr;
  su_timer_t* shutdown_guard = nullptr;
  bool stopping = false;
  std::vector<nua_handle_t*> unanswered;  // requests the test chose not to answer
  // nua keeps the pointer of an answer's phrase until its own thread sent the answer.
  std::deque<std::string> phrases;

  struct Pending {
    nua_handle_t* handle = nullptr;
    std::shared_ptr<std::promise<SipResponse>> done;
  };
  std::map<uint64_t, Pending> pending;  // by the id carried as handle magic
  uint64_t next_id = 1;
  // INVITEs the agent accepted, by Call-ID, until their dialog ends; each handle carries an id
  // of `next_id` as its magic, so that the answer to SendBye's BYE finds its Pending.
  std::map<std::string, nua_handle_t*> dialogs;

  void Send(const SipRequest& r, std::shared_ptr<std::promise<SipResponse>> done) {
    if (stopping) {
      done->set_value(NoAnswer("agent stopping"));
      return;
    }
    uint64_t id = next_id++;
    std::string next_hop = "sip:" + owner->options_.next_hop + ";transport=" + Name(r.transport);
    std::string to = r.to.empty() ? r.from : r.to;
    std::string extra;
    for (const auto& [name, value] : r.headers) extra += name + ": " + value + "\r\n";
    // Outside a dialog nta keeps a CSeq given here, and numbers the request itself otherwise.
    std::string cseq = r.cseq ? std::to_string(*r.cseq) + " " + r.method : "";

    std::vector<tagi_t> tags;
    auto add = [&](tag_type_t tag, tag_value_t value) { tags.push_back({tag, value}); };
    add(NUTAG_METHOD(r.method.c_str()));
    add(NUTAG_URL(r.request_uri.c_str()));
    add(NUTAG_PROXY(next_hop.c_str()));
    add(SIPTAG_FROM_STR(r.from.c_str()));
    add(SIPTAG_TO_STR(to.c_str()));
    if (!r.call_id.empty()) add(SIPTAG_CALL_ID_STR(r.call_id.c_str()));
    if (r.cseq) add(SIPTAG_CSEQ_STR(cseq.c_str()));
    if (!r.contact.empty()) add(SIPTAG_CONTACT_STR(r.contact.c_str()));
    if (!extra.empty()) add(SIPTAG_HEADER_STR(extra.c_str()));
    if (!r.content_type.empty()) add(SIPTAG_CONTENT_TYPE_STR(r.content_type.c_str()));
    if (!r.body.empty()) add(SIPTAG_PAYLOAD_STR(r.body.c_str()));
    add(TAG_END());

    nua_handle_t* nh = nua_handle(nua, MagicOf(id), TAG_END());
    if (!nh) {
      done->set_value(NoAnswer("nua_handle failed"));
      return;
    }
    pending[id] = {nh, std::move(done)};
    // nua copies the tag list (and the strings it points to) before returning.
    nua_method(nh, TAG_NEXT(tags.data()));
  }

  void SendBye(const std::string& call_id, std::shared_ptr<std::promise<SipResponse>> done) {
    auto dialog = dialogs.find(call_id);
    if (stopping || dialog == dialogs.end()) {
      done->set_value(NoAnswer("no dialog with Call-ID " + call_id));
      return;
    }
    nua_handle_t* nh = dialog->second;
    pending[reinterpret_cast<uintptr_t>(nua_handle_magic(nh))] = {nh, std::move(done)};
    nua_bye(nh, TAG_END());
  }

  // The caller gave up waiting: drop the transaction.
  void Forget(uint64_t id) {
    auto it = pending.find(id);
    if (it == pending.end()) return;
    Destroy(it->second.handle);
    pending.erase(it);
  }

  // Destroys a handle the agent owns, and the dialog it held.
  void Destroy(nua_handle_t* nh) {
    std::erase_if(dialogs, [&](const auto& dialog) { return dialog.second == nh; });
    nua_handle_destroy(nh);
  }

  void Record(IncomingSipRequest in) {
    {
      std::lock_guard lock(owner->mu_);
      owner->received_.push_back(std::move(in));
    }
    owner->received_cv_.notify_all();
  }

  // A request of a dialog the stack answered itself (ACK, BYE); a dialog that ended is let go.
  void OnDialogEvent(nua_event_t event, nua_handle_t* nh, sip_t const* sip, tagi_t* tags) {
    if (event == nua_i_ack || event == nua_i_bye) {
      Record(Incoming(nua, sip));
      return;
    }
    int state = nua_callstate_init;
    tl_gets(tags, NUTAG_CALLSTATE_REF(state), TAG_END());
    if (state != nua_callstate_terminated) return;
    for (const auto& [call_id, handle] : dialogs) {
      if (handle == nh) {
        Destroy(nh);
        return;
      }
    }
  }

  void OnAnswer(int status, char const* phrase, nua_handle_t* nh, nua_hmagic_t* hmagic,
                sip_t const* sip) {
    if (status < 200) return;  // 100 Trying; the final answer follows
    auto it = pending.find(reinterpret_cast<uintptr_t>(hmagic));
    if (it == pending.end() || it->second.handle != nh) return;
    SipResponse r;
    r.status = status;
    r.phrase = phrase ? phrase : "";
    if (sip) {
      if (sip->sip_call_id) r.call_id = sip->sip_call_id->i_id;
      if (sip->sip_cseq) r.cseq = sip->sip_cseq->cs_seq;
      for (sip_contact_t const* m = sip->sip_contact; m; m = m->m_next) {
        r.contacts.push_back(FieldValue(m));
      }
      if (sip->sip_expires) r.expires = static_cast<int>(sip->sip_expires->ex_delta);
      if (sip->sip_min_expires) r.min_expires = static_cast<int>(sip->sip_min_expires->me_delta);
      if (sip->sip_retry_after) r.retry_after = static_cast<int>(sip->sip_retry_after->af_delta);
      if (sip->sip_etag && sip->sip_etag->g_string) r.etag = sip->sip_etag->g_string;
      if (sip->sip_server) r.server = FieldValue(sip->sip_server);
      r.date = FieldValue(sip->sip_date);
      // The event's message is only reachable through a saved event in this Sofia release.
      nua_saved_event_t saved[1] = {};
      if (nua_save_event(nua, saved)) {
        r.raw = MessageText(nua_event_data(saved)->e_msg);
        nua_destroy_event(saved);
      }
    }
    it->second.done->set_value(std::move(r));
    pending.erase(it);
    Destroy(nh);
  }

  void OnIncoming(int status, nua_handle_t* nh, nua_hmagic_t* hmagic, sip_t const* sip) {
    IncomingSipRequest in = Incoming(nua, sip);
    Record(in);
    RequestHook hook;
    {
      std::lock_guard lock(owner->mu_);
      hook = owner->hook_;
    }
    SofiaAgent::Answer answer = hook ? hook(in) : SofiaAgent::Answer{};
    // Below 200 the request waits for us (the stack answered the others itself).
    if (status < 200 && answer.status == 0) {
      unanswered.push_back(nh);  // destroying the handle would make the stack answer 500
      return;
    }
    if (status < 200) Respond(nh, answer);
    if (in.method == "INVITE" && status < 200 && answer.status >= 200 && answer.status < 300) {
      nua_handle_bind(nh, MagicOf(next_id++));
      dialogs[in.call_id] = nh;
      return;
    }
    if (!hmagic) nua_handle_destroy(nh);  // made by the stack for this request alone
  }

  void Respond(nua_handle_t* nh, const SofiaAgent::Answer& answer) {
    phrases.push_back(answer.phrase);
    std::string extra;
    for (const auto& [name, value] : answer.headers) extra += name + ": " + value + "\r\n";
    std::vector<tagi_t> tags;
    auto add = [&](tag_type_t tag, tag_value_t value) { tags.push_back({tag, value}); };
    add(NUTAG_WITH_THIS(nua));
    if (!answer.contact.empty()) add(SIPTAG_CONTACT_STR(answer.contact.c_str()));
    if (!extra.empty()) add(SIPTAG_HEADER_STR(extra.c_str()));
    if (!answer.content_type.empty()) add(SIPTAG_CONTENT_TYPE_STR(answer.content_type.c_str()));
    if (!answer.body.empty()) add(SIPTAG_PAYLOAD_STR(answer.body.c_str()));
    add(TAG_END());
    // nua copies the tag list (and the strings it points to) before returning.
    nua_respond(nh, answer.status, phrases.back().c_str(), TAG_NEXT(tags.data()));
  }

  void BeginShutdown() {
    stopping = true;
    for (auto& [id, p] : pending) {
      p.done->set_value(NoAnswer("agent stopping"));
      nua_handle_destroy(p.handle);
    }
    pending.clear();
    for (nua_handle_t* nh : unanswered) nua_handle_destroy(nh);
    unanswered.clear();
    // nua_shutdown ends the dialogs still up (BYE) and frees their handles.
    dialogs.clear();
    nua_shutdown(nua);
    // nua_shutdown answers within its own timers; the guard only keeps a broken stack from
    // hanging the test.
    shutdown_guard = su_timer_create(su_root_task(root), 0);
    su_timer_set_interval(
        shutdown_guard,
        [](su_root_magic_t* magic, su_timer_t*, su_timer_arg_t*) {
          su_root_break(reinterpret_cast<Loop*>(magic)->root);
        },
        nullptr, 10'000);
  }
};

namespace {

void OnEvent(nua_event_t event, int status, char const* phrase, nua_t*, nua_magic_t* magic,
             nua_handle_t* nh, nua_hmagic_t* hmagic, sip_t const* sip, tagi_t* tags) noexcept {
  auto* loop = reinterpret_cast<SofiaAgent::Loop*>(magic);
  try {
    switch (event) {
      case nua_r_method:
      case nua_r_bye:
        loop->OnAnswer(status, phrase, nh, hmagic, sip);
        break;
      case nua_i_ack:
      case nua_i_bye:
      case nua_i_state:
        loop->OnDialogEvent(event, nh, sip, tags);
        break;
      case nua_i_invite:
      case nua_i_message:
      case nua_i_notify:
      case nua_i_subscribe:
      case nua_i_options:
      case nua_i_info:
      case nua_i_refer:
      case nua_i_publish:
      case nua_i_register:
      case nua_i_method:
        loop->OnIncoming(status, nh, hmagic, sip);
        break;
      case nua_r_shutdown:
        if (status >= 200) su_root_break(loop->root);
        break;
      default:
        break;
    }
  } catch (const std::exception& e) {
    // No exception may unwind through Sofia's C code.
    std::fprintf(stderr, "SofiaAgent: event %s failed: %s\n", nua_event_name(event), e.what());
  }
}

// The su_msg payload: one owning pointer to the task.
using TaskSlot = std::function<void()>*;

TaskSlot& SlotOf(su_msg_arg_t* arg) { return *static_cast<TaskSlot*>(arg); }

void RunTask(su_root_magic_t*, su_msg_r, su_msg_arg_t* arg) {
  std::unique_ptr<std::function<void()>> task(SlotOf(arg));
  SlotOf(arg) = nullptr;
  try {
    (*task)();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "SofiaAgent: task failed: %s\n", e.what());
  }
}

// A message destroyed undelivered (the loop ended first) still frees its task.
void DropTask(su_msg_arg_t* arg) {
  delete SlotOf(arg);
  SlotOf(arg) = nullptr;
}

}  // namespace

SofiaAgent::SofiaAgent(Options options) : options_(std::move(options)) {
  // FreePort checks that the port can be bound; another process may still take it first.
  for (int attempt = 0; attempt < 3; ++attempt) {
    if (Start()) return;
  }
  throw std::runtime_error("SofiaAgent: cannot listen on 127.0.0.1");
}

SofiaAgent::~SofiaAgent() { Stop(); }

bool SofiaAgent::Start() {
  port_ = FreePort();
  {
    std::lock_guard lock(mu_);
    started_ = false;
  }
  thread_ = std::thread([this] { Run(); });
  std::unique_lock lock(mu_);
  started_cv_.wait(lock, [&] { return started_; });
  if (loop_) return true;
  lock.unlock();
  thread_.join();
  return false;
}

void SofiaAgent::Stop() {
  if (!thread_.joinable()) return;
  // When the post fails the loop has ended already.
  Post([this] { loop_->BeginShutdown(); });
  thread_.join();
}

void SofiaAgent::Run() {
  su_init();
  Loop loop;
  loop.owner = this;
  loop.root = su_root_create(reinterpret_cast<su_root_magic_t*>(&loop));
  std::string url = "sip:127.0.0.1:" + std::to_string(port_);
  if (loop.root) {
    loop.nua = nua_create(
        loop.root, OnEvent, reinterpret_cast<nua_magic_t*>(&loop), NUTAG_URL(url.c_str()),
        NUTAG_USER_AGENT(options_.user_agent.c_str()),
        // No automatic retry (423, Retry-After, redirect): the test sees the answer itself.
        NUTAG_RETRY_COUNT(0),
        // MESSAGE reaches us unanswered (the stack would say 200 itself), and so does
        // REGISTER, for a test agent in the registrar's place (the stack would say 405).
        NUTAG_APPL_METHOD("MESSAGE"), NUTAG_APPL_METHOD("REGISTER"), NUTAG_ALLOW("REGISTER"),
        NUTAG_MEDIA_ENABLE(0), TAG_END());
  }
  {
    std::lock_guard lock(mu_);
    started_ = true;
    if (loop.nua) loop_ = &loop;
  }
  started_cv_.notify_all();
  if (loop.nua) {
    su_root_run(loop.root);
    {
      std::lock_guard lock(mu_);
      loop_ = nullptr;
    }
    if (loop.shutdown_guard) su_timer_destroy(loop.shutdown_guard);
    nua_destroy(loop.nua);
  }
  // Tasks still queued are destroyed with the root, each by DropTask.
  if (loop.root) su_root_destroy(loop.root);
  su_deinit();
}

bool SofiaAgent::Post(std::function<void()> task) {
  std::lock_guard lock(mu_);
  if (!loop_) return false;
  su_msg_r msg = SU_MSG_R_INIT;
  if (su_msg_create(msg, su_root_task(loop_->root), su_task_null, RunTask, sizeof(TaskSlot)) != 0) {
    return false;
  }
  SlotOf(su_msg_data(msg)) = new std::function<void()>(std::move(task));
  su_msg_deinitializer(msg, DropTask);
  return su_msg_send(msg) == 0;
}

SipResponse SofiaAgent::SendRequest(const SipRequest& request, std::chrono::milliseconds timeout) {
  return Await([this, request](auto done) { loop_->Send(request, done); }, timeout);
}

SipResponse SofiaAgent::SendBye(const std::string& call_id, std::chrono::milliseconds timeout) {
  return Await([this, call_id](auto done) { loop_->SendBye(call_id, done); }, timeout);
}

SipResponse SofiaAgent::Await(std::function<void(std::shared_ptr<std::promise<SipResponse>>)> start,
                              std::chrono::milliseconds timeout) {
  auto done = std::make_shared<std::promise<SipResponse>>();
  auto answer = done->get_future();
  if (!Post([start, done] { start(done); })) return NoAnswer("agent stopped");
  if (answer.wait_for(timeout) != std::future_status::ready) {
    // Forget the transaction; an answer arriving later finds nobody waiting.
    Post([this, done] {
      for (auto& [id, p] : loop_->pending) {
        if (p.done == done) {
          loop_->Forget(id);
          break;
        }
      }
    });
    return NoAnswer("no final answer within " + std::to_string(timeout.count()) + " ms");
  }
  try {
    return answer.get();
  } catch (const std::future_error&) {
    return NoAnswer("agent stopped");  // the task was dropped with the loop
  }
}

SipResponse SofiaAgent::Register(const RegisterOptions& o, std::chrono::milliseconds timeout) {
  SipRequest r;
  r.method = "REGISTER";
  r.request_uri = "sip:" + DomainOf(o.aor);
  r.from = "<" + o.aor + ">";
  r.call_id = o.call_id;
  r.cseq = o.cseq;
  r.contact = !o.contact.empty()
                  ? o.contact
                  : "<" + ContactUri(UserOf(o.aor), o.transport) + ">" + o.contact_params;
  if (o.expires) r.headers.emplace_back("Expires", std::to_string(*o.expires));
  r.transport = o.transport;
  return SendRequest(r, timeout);
}

SipResponse SofiaAgent::Publish(const PublishOptions& o, std::chrono::milliseconds timeout) {
  SipRequest r;
  r.method = "PUBLISH";
  r.request_uri = o.aor;
  r.from = "<" + o.aor + ">";
  r.headers.emplace_back("Event", o.event);
  if (!o.if_match.empty()) r.headers.emplace_back("SIP-If-Match", o.if_match);
  if (o.expires) r.headers.emplace_back("Expires", std::to_string(*o.expires));
  r.content_type = o.content_type;
  r.body = o.body;
  r.transport = o.transport;
  return SendRequest(r, timeout);
}

std::string SofiaAgent::ContactUri(const std::string& user, SipTransport transport) const {
  return "sip:" + (user.empty() ? "" : user + "@") + "127.0.0.1:" + std::to_string(port_) +
         ";transport=" + Name(transport);
}

void SofiaAgent::OnRequest(RequestHook hook) {
  std::lock_guard lock(mu_);
  hook_ = std::move(hook);
}

std::vector<IncomingSipRequest> SofiaAgent::received() const {
  std::lock_guard lock(mu_);
  return received_;
}

std::vector<IncomingSipRequest> SofiaAgent::received(const std::string& method) const {
  std::lock_guard lock(mu_);
  std::vector<IncomingSipRequest> out;
  for (const auto& in : received_) {
    if (in.method == method) out.push_back(in);
  }
  return out;
}

bool SofiaAgent::WaitForReceived(const std::string& method, size_t n,
                                 std::chrono::milliseconds timeout) {
  std::unique_lock lock(mu_);
  return received_cv_.wait_for(lock, timeout, [&] {
    return std::count_if(received_.begin(), received_.end(), [&](const auto& in) {
             return in.method == method;
           }) >= static_cast<long>(n);
  });
}

}  // namespace dims::testing
