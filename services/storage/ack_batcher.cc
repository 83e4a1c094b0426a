#include "ack_batcher.h"

namespace dims::storage {

namespace {
const char* kAcksTotal = "acks_total";
const char* kAcksHelp = "Ack calls by result (removed: the call removed at least one message).";
}  // namespace

AckBatcher::AckBatcher(DeferredStore& store, Options options, MetricsRegistry& metrics)
    : GroupCommit(
          options, {"ack", "calls", kAcksTotal, kAcksHelp}, metrics,
          [&store](const std::vector<Removal>& batch) { return store.RemoveBatch(batch); },
          [this](const RemovalResult& r) {
            (r.removed.empty() ? nothing_removed_ : removed_)->Increment();
          }) {
  auto& results = metrics.CounterFamily(kAcksTotal, kAcksHelp);
  removed_ = &results.Add({{"result", "removed"}});
  nothing_removed_ = &results.Add({{"result", "nothing_removed"}});
}

}  // namespace dims::storage
