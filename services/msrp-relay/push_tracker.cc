#include "push_tracker.h"

namespace dims::relay {

void PushTracker::Begin(uint64_t seq, std::string message_id, std::string msrp_message_id,
                        uint64_t total_bytes) {
  by_msrp_id_[msrp_message_id] = seq;
  messages_[seq] = Open{.message_id = std::move(message_id),
                        .msrp_message_id = std::move(msrp_message_id),
                        .total_bytes = total_bytes};
}

void PushTracker::ChunkSent(uint64_t seq, const std::string& transaction_id, uint64_t body_bytes) {
  auto it = messages_.find(seq);
  if (it == messages_.end()) return;
  it->second.bytes_sent += body_bytes;
  it->second.transactions.push_back(transaction_id);
  by_transaction_[transaction_id] = seq;
}

PushTracker::Step PushTracker::Finish(uint64_t seq, dims::v1::PushOutcome outcome, uint32_t status,
                                      const std::string& comment) {
  auto it = messages_.find(seq);
  Step step{.known = true, .seq = seq};
  MessageOutcome result{.seq = seq,
                        .message_id = it->second.message_id,
                        .outcome = outcome,
                        .msrp_status = status,
                        .msrp_comment = comment,
                        .bytes_sent = it->second.bytes_sent};
  for (const auto& transaction : it->second.transactions) by_transaction_.erase(transaction);
  step.transactions = std::move(it->second.transactions);
  auto by_id = by_msrp_id_.find(it->second.msrp_message_id);
  if (by_id != by_msrp_id_.end() && by_id->second == seq) by_msrp_id_.erase(by_id);
  messages_.erase(it);
  step.finished = std::move(result);
  return step;
}

PushTracker::Step PushTracker::OnResponse(const std::string& transaction_id, uint16_t status,
                                          const std::string& comment) {
  auto found = by_transaction_.find(transaction_id);
  if (found == by_transaction_.end()) return {};
  uint64_t seq = found->second;
  Open& open = messages_.at(seq);
  if (status != 200) return Finish(seq, dims::v1::PUSH_OUTCOME_REJECTED, status, comment);
  // Chunks go out pipelined and may be answered in any order: the message is confirmed once
  // every byte went out and every chunk's transaction got its 200.
  open.confirmed.insert(transaction_id);
  bool all_confirmed =
      open.bytes_sent == open.total_bytes && open.confirmed.size() == open.transactions.size();
  if (!all_confirmed) return {.known = true, .seq = seq};
  if (!wait_for_report_) return Finish(seq, dims::v1::PUSH_OUTCOME_DELIVERED, status, comment);
  open.final_confirmed = true;
  return {.known = true, .seq = seq, .awaiting_report = true};
}

PushTracker::Step PushTracker::OnTimeout(const std::string& transaction_id) {
  auto found = by_transaction_.find(transaction_id);
  if (found == by_transaction_.end()) return {};
  return Finish(found->second, dims::v1::PUSH_OUTCOME_FAILED, 408,
                messages_.at(found->second).final_confirmed ? "no success report in time"
                                                            : "transaction timed out");
}

PushTracker::Step PushTracker::OnReport(const std::string& msrp_message_id,
                                        const MsrpStatus& status, const ByteRange& range) {
  auto found = by_msrp_id_.find(msrp_message_id);
  if (found == by_msrp_id_.end()) return {};
  uint64_t seq = found->second;
  const Open& open = messages_.at(seq);
  if (status.code != 200) {
    return Finish(seq, dims::v1::PUSH_OUTCOME_REJECTED, status.code, status.reason);
  }
  // A success report may cover part of the message (RFC 4975 7.1.2); only one that reaches
  // its last byte confirms it all.
  bool covers_all = range.start == 1 && (!range.end || *range.end >= open.total_bytes);
  if (!wait_for_report_ || !covers_all || open.bytes_sent < open.total_bytes) {
    return {.known = true, .seq = seq};
  }
  return Finish(seq, dims::v1::PUSH_OUTCOME_DELIVERED, 200, status.reason);
}

std::vector<MessageOutcome> PushTracker::FailAll(uint32_t status, const std::string& comment) {
  std::vector<MessageOutcome> failed;
  while (!messages_.empty()) {
    failed.push_back(
        *Finish(messages_.begin()->first, dims::v1::PUSH_OUTCOME_FAILED, status, comment).finished);
  }
  return failed;
}

}  // namespace dims::relay
