#include "register_handler.h"

#include <algorithm>

#include "aor.h"
#include "bus_event.h"
#include "log.h"
#include "redis_record.h"

namespace dims::edge {

RegisterHandler::RegisterHandler(SipStack& stack, RedisPool& redis, WorkerPool& workers,
                                 RegistrarConfig config)
    : stack_(stack), redis_(redis), workers_(workers), config_(std::move(config)) {}

void RegisterHandler::Handle(const IncomingRegister& request) {
  auto parsed = ParseAor(request.to);
  if (!parsed.aor) {
    stack_.Respond(request.id, {400, "Bad To: " + parsed.error});
    return;
  }
  if (!config_.domains.count(parsed.aor->Domain())) {
    stack_.Respond(request.id, {404, "Not Found (domain not served)"});
    return;
  }
  std::string aor = parsed.aor->ToString();
  bool third_party = config_.trusted_core.count(request.peer_ip) > 0;
  if (!third_party && !config_.registrar_mode) {
    stack_.Respond(request.id, {403, "Forbidden (REGISTER is taken from the SIP/IP core only)"});
    return;
  }
  bool queued = workers_.Post([this, aor, request, third_party] {
    SipAnswer answer = Register(aor, request, third_party);
    stack_.Post([this, id = request.id, answer] { stack_.Respond(id, answer); });
  });
  if (!queued) stack_.Respond(request.id, ServiceUnavailable());
}

SipAnswer RegisterHandler::Register(const std::string& aor, const IncomingRegister& in,
                                    bool third_party) {
  RegisterRequest request;
  request.aor = aor;
  request.wildcard = in.wildcard;
  for (const auto& c : in.contacts) {
    request.contacts.push_back({c.uri, c.expires, c.q, c.feature_tags});
  }
  request.expires = in.expires;
  request.call_id = in.call_id;
  request.cseq = in.cseq;
  request.user_agent = in.user_agent;
  request.source = in.source;
  request.edge_instance_id = config_.edge_instance_id;
  request.edge_address = config_.edge_address;
  request.mode =
      third_party ? dims::v1::REGISTRATION_MODE_THIRD_PARTY : dims::v1::REGISTRATION_MODE_REGISTRAR;

  RegisterOutcome outcome;
  dims::v1::Registration registration;
  auto now = Clock::now();
  try {
    RedisRecord(redis_).Update(
        RegistrationKey(aor),
        [&](const std::optional<std::string>& raw) -> std::optional<RedisRecord::Change> {
          registration.Clear();
          if (raw) registration.ParseFromString(*raw);
          outcome = ApplyRegister(registration, request, now, config_.limits);
          if (outcome.error != RegisterOutcome::Error::kNone) return std::nullopt;
          if (registration.bindings().empty()) return RedisRecord::Change{};  // delete the key
          Clock::time_point last = now;
          for (const auto& b : registration.bindings()) {
            last = std::max(last, FromTimestamp(b.expires_at()));
          }
          return RedisRecord::Change{
              registration.SerializeAsString(),
              std::chrono::duration_cast<std::chrono::milliseconds>(last - now)};
        });
  } catch (const RedisError& e) {
    log::Warn("REGISTER not stored", {{"aor", aor}, {"error", e.what()}});
    return ServiceUnavailable();
  }

  switch (outcome.error) {
    case RegisterOutcome::Error::kNone:
      break;
    case RegisterOutcome::Error::kTooBrief: {
      SipAnswer a{423, "Interval Too Brief"};
      a.min_expires = config_.limits.min_expires;
      return a;
    }
    case RegisterOutcome::Error::kBadWildcard:
      return {400, "Contact: * needs Expires: 0 and no other Contact"};
    case RegisterOutcome::Error::kOutOfOrder:
      return {500, "Out of order CSeq for this Call-ID"};
  }

  // Every change is announced; registration alone never pushes anything (seed 002).
  std::vector<std::vector<std::string>> events;
  auto announce = [&](const dims::v1::Binding& b, bool refresh) {
    auto event = NewBusEvent(config_.producer);
    auto* registered = event.mutable_registered();
    registered->mutable_aor()->set_uri(aor);
    *registered->mutable_binding() = b;
    registered->set_refresh(refresh);
    events.push_back(AppendEventCommand(aor, "registered", event.SerializeAsString()));
  };
  for (const auto& b : outcome.added) announce(b, false);
  for (const auto& b : outcome.refreshed) announce(b, true);
  for (const auto& b : outcome.removed) {
    auto event = NewBusEvent(config_.producer);
    auto* gone = event.mutable_deregistered();
    gone->mutable_aor()->set_uri(aor);
    gone->set_contact_uri(b.contact_uri());
    gone->set_cause(dims::v1::DEREGISTRATION_CAUSE_CLIENT);
    gone->set_remaining_bindings(static_cast<uint32_t>(registration.bindings_size()));
    gone->set_edge_instance_id(b.edge_instance_id());
    events.push_back(AppendEventCommand(aor, "deregistered", event.SerializeAsString()));
  }
  if (!events.empty()) {
    try {
      redis_.Pipeline(events);
    } catch (const RedisError& e) {
      log::Warn("registration events not appended", {{"aor", aor}, {"error", e.what()}});
    }
  }
  if (!outcome.added.empty() || !outcome.removed.empty()) {
    log::Info("registration changed", {{"aor", aor},
                                       {"added", static_cast<long>(outcome.added.size())},
                                       {"removed", static_cast<long>(outcome.removed.size())},
                                       {"bindings", registration.bindings_size()}});
  }

  SipAnswer ok{200, "OK"};
  std::string contacts;
  for (const auto& b : registration.bindings()) {
    if (!contacts.empty()) contacts += ", ";
    contacts += "<" + b.contact_uri() + ">;expires=" + std::to_string(SecondsLeft(b, now));
  }
  if (!contacts.empty()) ok.contact = contacts;
  return ok;
}

}  // namespace dims::edge
