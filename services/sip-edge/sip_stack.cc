#include "sip_stack.h"

#include <sofia-sip/nua.h>
#include <sofia-sip/nua_tag.h>
#include <sofia-sip/sip_status.h>
#include <sofia-sip/sip_tag.h>
#include <sofia-sip/su.h>
#include <sofia-sip/su_tag.h>
#include <sofia-sip/su_wait.h>

#include <chrono>

#include "log.h"

namespace dims::edge {

struct SipStack::Loop {
  SipStack* owner = nullptr;
  su_root_t* root = nullptr;
  nua_t* nua = nullptr;
  su_timer_t* stop_poll = nullptr;
  bool shutdown_sent = false;
};

namespace {

// Only the loop thread touches Sofia objects; a foreign thread sets stop_requested_ and this
// timer notices it (the su_msg executor of issue #4 replaces the polling).
constexpr su_duration_t kStopPollMs = 100;

void OnEvent(nua_event_t event, int status, char const* phrase, nua_t* nua, nua_magic_t* magic,
             nua_handle_t* nh, nua_hmagic_t* /*hmagic*/, sip_t const* sip,
             tagi_t* /*tags*/) noexcept {
  auto* loop = reinterpret_cast<SipStack::Loop*>(magic);
  switch (event) {
    case nua_i_register:
    case nua_i_publish:
    case nua_i_subscribe:
    case nua_i_invite:
    case nua_i_message:
      log::Debug("request not implemented yet",
                 {{"method", sip && sip->sip_request ? sip->sip_request->rq_method_name : "?"}});
      nua_respond(nh, SIP_501_NOT_IMPLEMENTED, NUTAG_WITH_THIS(nua), TAG_END());
      nua_handle_destroy(nh);
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

void SipStack::Stop() {
  stop_requested_ = true;
  if (thread_.joinable()) thread_.join();
}

void SipStack::Run() {
  su_init();
  Loop loop;
  loop.owner = this;
  loop.root = su_root_create(&loop);
  std::string url = "sip:" + options_.host + ":" + std::to_string(options_.port);
  if (loop.root) {
    loop.nua = nua_create(
        loop.root, OnEvent, reinterpret_cast<nua_magic_t*>(&loop), NUTAG_URL(url.c_str()),
        // MESSAGE is answered by DIMS, never automatically by the stack (202 only after storage).
        NUTAG_APPL_METHOD("MESSAGE"), NUTAG_APPL_METHOD("REGISTER"),
        NUTAG_ALLOW("INVITE, ACK, BYE, CANCEL, OPTIONS, MESSAGE, REGISTER, PUBLISH, SUBSCRIBE, "
                    "NOTIFY"),
        NUTAG_MEDIA_ENABLE(0), SIPTAG_SERVER_STR(options_.server_header.c_str()),
        NUTAG_USER_AGENT(options_.server_header.c_str()), TAG_END());
  }
  {
    std::lock_guard lock(mu_);
    started_ = true;
    if (!loop.nua) start_error_ = "cannot listen for SIP on " + url;
  }
  if (!loop.nua) {
    started_cv_.notify_all();
    if (loop.root) su_root_destroy(loop.root);
    su_deinit();
    return;
  }
  running_ = true;
  started_cv_.notify_all();

  loop.stop_poll = su_timer_create(su_root_task(loop.root), kStopPollMs);
  su_timer_set_for_ever(
      loop.stop_poll,
      [](su_root_magic_t* magic, su_timer_t*, su_timer_arg_t*) {
        auto* l = reinterpret_cast<Loop*>(magic);
        if (l->owner->stop_requested_ && !l->shutdown_sent) {
          l->shutdown_sent = true;
          nua_shutdown(l->nua);
        }
      },
      nullptr);
  su_root_run(loop.root);

  running_ = false;
  su_timer_destroy(loop.stop_poll);
  nua_destroy(loop.nua);
  su_root_destroy(loop.root);
  su_deinit();
}

}  // namespace dims::edge
