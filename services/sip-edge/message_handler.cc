#include "message_handler.h"

#include <hiredis/hiredis.h>

#include <atomic>

#include "aor.h"
#include "bus_event.h"
#include "grpc_client.h"
#include "log.h"
#include "register_handler.h"
#include "request_fields.h"

namespace dims::edge {
namespace {

constexpr int kDefaultMaxForwards = 70;

// Header fields a forwarded MESSAGE does not carry on: those the edge writes itself, and those
// meant for DIMS alone (its credentials, what it had to support as a proxy).
bool NotForwarded(const std::string& full_name) {
  return EdgeWritesField(full_name) || full_name == "Authorization" ||
         full_name == "Proxy-Authorization" || full_name == "Proxy-Require";
}

}  // namespace

// One MESSAGE from its arrival to its final answer.
struct MessageHandler::Attempt {
  IncomingMessage in;
  std::string aor;
  std::vector<RequestField> fields;

  dims::v1::Registration registration;
  grpc::ClientContext settings_context;
  dims::v1::SettingsGetRequest settings_request;
  dims::v1::SettingsGetResponse settings_response;
  grpc::Status settings_status;

  PagerDecision decision;
  size_t next_contact = 0;
  std::unique_ptr<grpc::ClientContext> peer_context;
  dims::v1::EdgeControlSendMessageRequest peer_request;
  dims::v1::EdgeControlSendMessageResponse peer_response;

  grpc::ClientContext store_context;
  dims::v1::StorageStoreRequest store_request;
  dims::v1::StorageStoreResponse store_response;
};

MessageHandler::MessageHandler(SipStack& stack, RedisPool& redis, WorkerPool& workers,
                               std::shared_ptr<grpc::Channel> settings,
                               std::shared_ptr<grpc::Channel> storage, MessageConfig config,
                               MetricsRegistry& metrics)
    : stack_(stack),
      redis_(redis),
      workers_(workers),
      settings_(dims::v1::Settings::NewStub(settings)),
      storage_(dims::v1::Storage::NewStub(storage)),
      config_(std::move(config)),
      outcomes_(metrics.CounterFamily(
          "messages_total",
          "Pager-mode MESSAGEs to served users by outcome: forwarded (the client answered 2xx), "
          "relayed (the client's refusal passed on), stored (202 after the commit), refused "
          "(barring or bad request), failed (not stored: storage refused or away).")) {}

MessageHandler::~MessageHandler() {
  std::unique_lock lock(mu_);
  for (grpc::ClientContext* context : in_flight_) context->TryCancel();
  idle_.wait_for(lock, std::chrono::seconds(5), [&] { return in_flight_.empty(); });
}

void MessageHandler::Track(grpc::ClientContext* context) {
  std::lock_guard lock(mu_);
  in_flight_.insert(context);
}

void MessageHandler::Untrack(grpc::ClientContext* context) {
  std::lock_guard lock(mu_);
  in_flight_.erase(context);
  idle_.notify_all();
}

void MessageHandler::Handle(const IncomingMessage& message) {
  auto attempt = std::make_shared<Attempt>();
  attempt->in = message;
  auto parsed = ParseAor(message.request_uri);
  if (!parsed.aor) {
    Finish(attempt, {400, "Bad Request-URI: " + parsed.error}, "refused");
    return;
  }
  if (!config_.domains.count(parsed.aor->Domain())) {
    Finish(attempt, {404, "Not Found (domain not served)"}, "refused");
    return;
  }
  attempt->aor = parsed.aor->ToString();
  LookUp(std::move(attempt));
}

void MessageHandler::LookUp(std::shared_ptr<Attempt> attempt) {
  bool queued = workers_.Post([this, attempt] {
    // The header fields are read here, off the SIP loop; the loop uses them after the lookups.
    attempt->fields = ReadRequestFields(attempt->in.raw);
    bool has_settings = true;
    try {
      // One round trip: the registration, and whether the user has settings at all. A user with
      // no settings key has the defaults (docs/im-settings.md), and most messages stored are
      // for such users: the settings service is asked only about the others.
      auto replies = redis_.Pipeline(
          {{"GET", RegistrationKey(attempt->aor)}, {"EXISTS", SettingsKey(attempt->aor)}});
      if (replies[0]->type == REDIS_REPLY_STRING) {
        attempt->registration.ParseFromArray(replies[0]->str, static_cast<int>(replies[0]->len));
      }
      has_settings = replies[1]->type != REDIS_REPLY_INTEGER || replies[1]->integer != 0;
    } catch (const RedisError& e) {
      // Without the registration the user counts as offline: the message is kept, not lost.
      log::Warn("registration not read; storing", {{"aor", attempt->aor}, {"error", e.what()}});
    }
    if (has_settings) {
      ReadSettings(attempt);
    } else {
      LookupDone(attempt);  // the defaults: no barring, not invisible
    }
  });
  if (!queued) {  // read as "not registered"
    attempt->fields = ReadRequestFields(attempt->in.raw);
    ReadSettings(attempt);
  }
}

void MessageHandler::ReadSettings(const std::shared_ptr<Attempt>& attempt) {
  attempt->settings_request.mutable_aor()->set_uri(attempt->aor);
  SetDeadline(attempt->settings_context, config_.lookup_deadline);
  attempt->settings_context.set_wait_for_ready(true);
  Track(&attempt->settings_context);
  settings_->async()->Get(&attempt->settings_context, &attempt->settings_request,
                          &attempt->settings_response, [this, attempt](grpc::Status status) {
                            attempt->settings_status = std::move(status);
                            Untrack(&attempt->settings_context);
                            LookupDone(attempt);
                          });
}

void MessageHandler::LookupDone(const std::shared_ptr<Attempt>& attempt) {
  if (!stack_.Post([this, attempt] { Decide(attempt); })) {
    log::Debug("MESSAGE looked up after shutdown began; dropped");
  }
}

void MessageHandler::Decide(const std::shared_ptr<Attempt>& attempt) {
  if (!attempt->settings_status.ok()) {
    // Without the settings DIMS cannot tell whether the user bars this message: it must not
    // store what the user refused, so the sender tries again later.
    log::Warn("settings not read; MESSAGE answered 503",
              {{"aor", attempt->aor}, {"grpc", attempt->settings_status.error_message()}});
    Finish(attempt, ServiceUnavailable("Service Unavailable (recipient's settings unavailable)"),
           "failed");
    return;
  }
  attempt->decision = DecidePager(attempt->registration, attempt->settings_response.effective(),
                                  std::chrono::system_clock::now(), config_.policy);
  switch (attempt->decision.action) {
    case PagerDecision::Action::kRefuse:
      Finish(attempt, attempt->decision.refusal, "refused");
      return;
    case PagerDecision::Action::kStore:
      Store(attempt, attempt->decision.store_reason);
      return;
    case PagerDecision::Action::kForward:
      if (attempt->in.max_forwards && *attempt->in.max_forwards <= 0) {
        Finish(attempt, {483, "Too Many Hops"}, "refused");
        return;
      }
      ForwardNext(attempt);
      return;
  }
}

void MessageHandler::ForwardNext(const std::shared_ptr<Attempt>& attempt) {
  const auto& contacts = attempt->decision.contacts;
  if (attempt->next_contact >= contacts.size()) {
    Store(attempt, dims::v1::STORE_REASON_DELIVERY_FAILED);
    return;
  }
  const dims::v1::Binding& contact = contacts[attempt->next_contact++];
  OutgoingMessage out;
  out.request_uri = contact.contact_uri();
  out.from = FieldValue(attempt->fields, "From").value_or("");
  out.to = FieldValue(attempt->fields, "To").value_or("");
  out.call_id = attempt->in.call_id;
  out.content_type = FieldValue(attempt->fields, "Content-Type").value_or("");
  out.body = attempt->in.body;
  out.max_forwards = attempt->in.max_forwards.value_or(kDefaultMaxForwards) - 1;
  for (const auto& field : attempt->fields) {
    if (!NotForwarded(field.full_name)) out.headers.emplace_back(field.name, field.value);
  }
  out.timeout = config_.forward_timeout;

  auto on_answer = [this, attempt](int status, const std::string& phrase) {
    if (status >= 200 && status < 300) {
      Finish(attempt, RelayedAnswer(status, phrase), "forwarded");
    } else if (ForwardFailedTemporarily(status)) {
      log::Debug("forward failed; next contact or store",
                 {{"aor", attempt->aor}, {"status", status}});
      ForwardNext(attempt);
    } else {
      Finish(attempt, RelayedAnswer(status, phrase), "relayed");
    }
  };

  if (contact.edge_instance_id() == config_.policy.edge_instance_id) {
    stack_.SendMessage(
        out, [on_answer](const SentAnswer& answer) { on_answer(answer.status, answer.phrase); });
    return;
  }
  // Another edge instance holds the client's flow: it sends (EdgeControl.SendMessage).
  auto& r = attempt->peer_request;
  r.Clear();
  r.mutable_target()->mutable_aor()->set_uri(attempt->aor);
  r.mutable_target()->set_contact_uri(contact.contact_uri());
  r.set_from(out.from);
  r.set_to(out.to);
  r.set_call_id(out.call_id);
  r.set_content_type(out.content_type);
  r.set_body(out.body);
  for (const auto& [name, value] : out.headers) {
    if (FullFieldName(name) == "Accept-Contact") {
      r.set_accept_contact(value);  // the sender's, instead of the edge's default
      continue;
    }
    auto* h = r.add_headers();
    h->set_name(name);
    h->set_value(value);
  }
  attempt->peer_context = std::make_unique<grpc::ClientContext>();
  SetDeadline(*attempt->peer_context, config_.forward_timeout);
  grpc::ClientContext* context = attempt->peer_context.get();
  Track(context);
  peer_edges_.At(contact.edge_address())
      .async()
      ->SendMessage(context, &attempt->peer_request, &attempt->peer_response,
                    [this, attempt, context, on_answer](grpc::Status status) {
                      dims::v1::ErrorDetail detail = ErrorDetailOf(*context);
                      Untrack(context);
                      int code = 200;
                      std::string phrase = "OK";
                      if (status.ok()) {
                        code = static_cast<int>(attempt->peer_response.sip().status_code());
                        phrase = attempt->peer_response.sip().reason_phrase();
                      } else if (detail.has_sip()) {
                        code = static_cast<int>(detail.sip().status_code());
                        phrase = detail.sip().reason_phrase();
                      } else {
                        code = 503;  // the other instance is away: as a transport failure
                        phrase = "Service Unavailable";
                      }
                      stack_.Post([on_answer, code, phrase] { on_answer(code, phrase); });
                    });
}

void MessageHandler::Store(const std::shared_ptr<Attempt>& attempt, dims::v1::StoreReason reason) {
  auto& r = attempt->store_request;
  r.mutable_recipient()->set_uri(attempt->aor);
  auto* h = r.mutable_headers();
  const auto& fields = attempt->fields;
  h->set_from(FieldValue(fields, "From").value_or(""));
  h->set_to(FieldValue(fields, "To").value_or(""));
  h->set_p_asserted_identity(FieldValue(fields, "P-Asserted-Identity").value_or(""));
  h->set_subject(FieldValue(fields, "Subject").value_or(""));
  h->set_date(FieldValue(fields, "Date").value_or(""));
  h->set_priority(FieldValue(fields, "Priority").value_or(""));
  h->set_call_id(attempt->in.call_id);
  h->set_cseq(attempt->in.cseq);
  h->set_content_type(FieldValue(fields, "Content-Type").value_or(""));
  ToTimestamp(attempt->in.received_at, r.mutable_received_at());
  r.set_reason(reason);
  r.set_sip_request(attempt->in.raw);
  SetDeadline(attempt->store_context, config_.store_deadline);
  // A storage replica that is restarting gets the message within the deadline.
  attempt->store_context.set_wait_for_ready(true);
  Track(&attempt->store_context);
  storage_->async()->Store(
      &attempt->store_context, &attempt->store_request, &attempt->store_response,
      [this, attempt](grpc::Status status) {
        dims::v1::ErrorDetail detail;
        if (!status.ok()) detail = ErrorDetailOf(attempt->store_context);
        Untrack(&attempt->store_context);
        bool posted = stack_.Post([this, attempt, status, detail] {
          if (status.ok()) {
            Finish(attempt, {202, "Accepted"}, "stored");
            return;
          }
          log::Info(
              "MESSAGE not stored",
              {{"aor", attempt->aor}, {"grpc", status.error_message()}, {"limit", detail.limit()}});
          Finish(attempt, StoreRefusal(status, detail), "failed");
        });
        if (!posted) log::Debug("MESSAGE stored after shutdown began; the sender got 503");
      });
}

void MessageHandler::Finish(const std::shared_ptr<Attempt>& attempt, const SipAnswer& answer,
                            const char* outcome) {
  outcomes_.Add({{"outcome", outcome}}).Increment();
  stack_.Respond(attempt->in.id, answer);
}

}  // namespace dims::edge
