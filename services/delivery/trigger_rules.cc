#include "trigger_rules.h"

#include "aor.h"

namespace dims::delivery {
namespace v1 = dims::v1;

std::optional<Trigger> TriggerFor(const v1::BusEvent& event) {
  const v1::Aor* aor = nullptr;
  v1::TriggerReason reason = v1::TRIGGER_REASON_UNSPECIFIED;
  switch (event.payload_case()) {
    case v1::BusEvent::kRegistered:
      // A refresh changes nothing; a new binding may make the user reachable.
      if (!event.registered().refresh()) reason = v1::TRIGGER_REASON_REGISTERED;
      aor = &event.registered().aor();
      break;
    case v1::BusEvent::kSettingsPublished: {
      auto kind = event.settings_published().kind();
      // Seed 002: a new or changed publication is the push trigger; refreshes are not.
      if (kind == v1::PUBLICATION_KIND_INITIAL || kind == v1::PUBLICATION_KIND_MODIFY) {
        reason = v1::TRIGGER_REASON_SETTINGS_PUBLISHED;
      }
      aor = &event.settings_published().aor();
      break;
    }
    case v1::BusEvent::kSettingsUpdated:
      reason = v1::TRIGGER_REASON_SETTINGS_UPDATED;
      aor = &event.settings_updated().aor();
      break;
    case v1::BusEvent::kMessageStored:
      reason = v1::TRIGGER_REASON_MESSAGE_STORED;
      aor = &event.message_stored().aor();
      break;
    case v1::BusEvent::kStoreChanged:
      reason = v1::TRIGGER_REASON_STORE_CHANGED;
      aor = &event.store_changed().aor();
      break;
    case v1::BusEvent::kPresenceChanged:
      if (event.presence_changed().available_for_im()) {
        reason = v1::TRIGGER_REASON_PRESENCE_AVAILABLE;
      }
      aor = &event.presence_changed().aor();
      break;
    default:  // deregistered, and payloads of newer producers
      return std::nullopt;
  }
  if (reason == v1::TRIGGER_REASON_UNSPECIFIED) return std::nullopt;
  auto normalized = NormalizeAor(aor->uri());
  if (!normalized) return std::nullopt;
  return Trigger{*normalized, reason};
}

std::chrono::milliseconds WaitBeforeEvaluation(const Trigger& trigger,
                                               std::chrono::milliseconds registration_settle) {
  return trigger.reason == v1::TRIGGER_REASON_REGISTERED ? registration_settle
                                                         : std::chrono::milliseconds(0);
}

std::optional<std::string_view> RegistrationWaitEnd(const std::vector<v1::TriggerReason>& pending) {
  bool registered = false;
  bool published = false;
  bool other = false;
  for (auto reason : pending) {
    registered = registered || reason == v1::TRIGGER_REASON_REGISTERED;
    published = published || reason == v1::TRIGGER_REASON_SETTINGS_PUBLISHED;
    other = other || reason != v1::TRIGGER_REASON_REGISTERED;
  }
  if (!registered) return std::nullopt;
  if (published) return "publication";
  return other ? "other_trigger" : "elapsed";
}

bool MayStartPush(const std::vector<v1::TriggerReason>& pending, EarlierPush earlier) {
  if (pending.empty() || earlier == EarlierPush::kInterrupted) return true;
  for (auto reason : pending) {
    switch (reason) {
      case v1::TRIGGER_REASON_REGISTERED:
      case v1::TRIGGER_REASON_STORE_CHANGED:
        break;
      default:
        return true;
    }
  }
  return false;
}

v1::TriggerReason LeadingTrigger(const std::vector<v1::TriggerReason>& pending) {
  if (pending.empty()) return v1::TRIGGER_REASON_RETRY;
  for (auto reason : pending) {
    if (MayStartPush({reason}, EarlierPush::kNone)) return reason;
  }
  return pending.front();
}

}  // namespace dims::delivery
