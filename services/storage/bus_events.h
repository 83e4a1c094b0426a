// The storage service's bus events (dims.v1.BusEvent), serialized for the outbox.
#pragma once

#include <string>

#include "deferred_store.h"
#include "dims/v1/common.pb.h"

namespace dims::storage {

class BusEvents : public EventFactory {
 public:
  explicit BusEvents(std::string producer) : producer_(std::move(producer)) {}

  std::string MessageStored(const StoredMessage& message, int64_t store_version,
                            int reason) override;
  std::string StoreChanged(const std::string& recipient, RemovalCause cause,
                           const std::vector<StoredMessage>& removed, int64_t store_version,
                           int64_t remaining) override;

 private:
  std::string producer_;
};

// The summary view of a stored message, shared by events and the gRPC answers.
void ToSummaryEntry(const StoredMessage& message, dims::v1::MessageSummaryEntry* entry);
void ToHeaders(const MessageHeaders& headers, dims::v1::MessageHeaders* out);

}  // namespace dims::storage
