#include "bus_events.h"

#include "bus_event.h"

namespace dims::storage {
namespace {

dims::v1::StoreChangeCause ToCause(RemovalCause cause) {
  switch (cause) {
    case RemovalCause::kDelivered:
      return dims::v1::STORE_CHANGE_CAUSE_DELIVERED;
    case RemovalCause::kDeletedByUser:
      return dims::v1::STORE_CHANGE_CAUSE_DELETED_BY_USER;
    case RemovalCause::kDeletedByBackend:
      return dims::v1::STORE_CHANGE_CAUSE_DELETED_BY_BACKEND;
    case RemovalCause::kDeletedByOperator:
      return dims::v1::STORE_CHANGE_CAUSE_DELETED_BY_OPERATOR;
    case RemovalCause::kExpired:
      return dims::v1::STORE_CHANGE_CAUSE_EXPIRED;
    case RemovalCause::kPurged:
      return dims::v1::STORE_CHANGE_CAUSE_PURGED;
  }
  return dims::v1::STORE_CHANGE_CAUSE_UNSPECIFIED;
}

constexpr size_t kMaxIdsPerEvent = 1000;

}  // namespace

void ToHeaders(const MessageHeaders& h, dims::v1::MessageHeaders* out) {
  out->set_from(h.from);
  out->set_to(h.to);
  out->set_p_asserted_identity(h.p_asserted_identity);
  out->set_subject(h.subject);
  out->set_date(h.date);
  out->set_priority(h.priority);
  out->set_call_id(h.call_id);
  out->set_cseq(static_cast<uint32_t>(h.cseq));
  out->set_content_type(h.content_type);
}

void ToSummaryEntry(const StoredMessage& m, dims::v1::MessageSummaryEntry* entry) {
  entry->set_message_id(m.message_id);
  ToHeaders(m.headers, entry->mutable_headers());
  entry->set_kind(m.kind == MessageKind::kLarge ? dims::v1::MESSAGE_KIND_LARGE
                                                : dims::v1::MESSAGE_KIND_PAGER);
  ToTimestamp(m.received_at, entry->mutable_received_at());
  ToTimestamp(m.expires_at, entry->mutable_expires_at());
  entry->set_size_bytes(static_cast<uint64_t>(m.size_bytes));
  entry->set_is_new(m.is_new);
}

std::string BusEvents::MessageStored(const StoredMessage& message, int64_t store_version,
                                     int reason) {
  dims::v1::BusEvent event = NewBusEvent(producer_);
  auto* stored = event.mutable_message_stored();
  stored->mutable_aor()->set_uri(message.recipient);
  ToSummaryEntry(message, stored->mutable_entry());
  stored->set_store_version(static_cast<uint64_t>(store_version));
  stored->set_reason(static_cast<dims::v1::StoreReason>(reason));
  return event.SerializeAsString();
}

std::string BusEvents::StoreChanged(const std::string& recipient, RemovalCause cause,
                                    const std::vector<StoredMessage>& removed,
                                    int64_t store_version, int64_t remaining) {
  dims::v1::BusEvent event = NewBusEvent(producer_);
  auto* changed = event.mutable_store_changed();
  changed->mutable_aor()->set_uri(recipient);
  changed->set_cause(ToCause(cause));
  for (size_t i = 0; i < removed.size() && i < kMaxIdsPerEvent; ++i) {
    changed->add_message_ids(removed[i].message_id);
    // An expiry notice to the sender needs who sent what, although the content is gone.
    if (cause == RemovalCause::kExpired) ToSummaryEntry(removed[i], changed->add_expired());
  }
  changed->set_message_ids_truncated(removed.size() > kMaxIdsPerEvent);
  changed->set_store_version(static_cast<uint64_t>(store_version));
  changed->set_remaining_count(static_cast<uint32_t>(remaining));
  return event.SerializeAsString();
}

}  // namespace dims::storage
