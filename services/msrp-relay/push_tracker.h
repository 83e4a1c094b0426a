// What the relay knows about the messages of one push that await their confirmation: which
// chunk transactions are out, and what a response, a REPORT or a timeout decides (RFC 4975
// sections 7.1, 7.1.2; relay.proto Push). Pure logic: the session feeds it and acts on the
// decisions (results to the caller, timers, aborting chunks).
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "dims/v1/relay.pb.h"
#include "msrp_message.h"

namespace dims::relay {

// The decision about one message.
struct MessageOutcome {
  uint64_t seq = 0;  // the session's number of the message
  std::string message_id;
  dims::v1::PushOutcome outcome = dims::v1::PUSH_OUTCOME_UNSPECIFIED;
  uint32_t msrp_status = 0;
  std::string msrp_comment;
  uint64_t bytes_sent = 0;
  std::chrono::system_clock::time_point completed_at{};  // set when reported
};

class PushTracker {
 public:
  // `wait_for_report`: the SENDs ask for Success-Report, and a message is DELIVERED only on
  // the positive REPORT that covers all of it.
  explicit PushTracker(bool wait_for_report) : wait_for_report_(wait_for_report) {}

  void Begin(uint64_t seq, std::string message_id, std::string msrp_message_id,
             uint64_t total_bytes);
  // One chunk of message `seq` went out as transaction `transaction_id`.
  void ChunkSent(uint64_t seq, const std::string& transaction_id, uint64_t body_bytes);

  struct Step {
    bool known = false;  // the transaction belongs to an open message
    uint64_t seq = 0;
    std::optional<MessageOutcome> finished;
    // With `finished`: every transaction of that message, whose timers can go.
    std::vector<std::string> transactions;
    // The final chunk was confirmed and the REPORT is still awaited: keep a timer running.
    bool awaiting_report = false;
  };
  // A transaction response. A non-200 ends the message as REJECTED.
  Step OnResponse(const std::string& transaction_id, uint16_t status, const std::string& comment);
  // The transaction (or the REPORT after it) timed out: FAILED, 408.
  Step OnTimeout(const std::string& transaction_id);
  // A REPORT about `msrp_message_id`: a 200 that covers the whole message delivers it (when
  // reports are awaited), an error status rejects it.
  Step OnReport(const std::string& msrp_message_id, const MsrpStatus& status,
                const ByteRange& range);
  // The session failed: every open message is FAILED with `status` (0: none arrived).
  std::vector<MessageOutcome> FailAll(uint32_t status, const std::string& comment);

  size_t open_messages() const { return messages_.size(); }

 private:
  struct Open {
    std::string message_id;
    std::string msrp_message_id;
    uint64_t total_bytes = 0;
    uint64_t bytes_sent = 0;
    std::vector<std::string> transactions;
    std::set<std::string> confirmed;  // transactions answered 200
    bool final_confirmed = false;
  };
  Step Finish(uint64_t seq, dims::v1::PushOutcome outcome, uint32_t status,
              const std::string& comment);

  bool wait_for_report_;
  std::map<uint64_t, Open> messages_;  // by seq: FailAll reports in request order
  std::unordered_map<std::string, uint64_t> by_transaction_;
  std::unordered_map<std::string, uint64_t> by_msrp_id_;
};

}  // namespace dims::relay
