#include "store_batcher.h"

namespace dims::storage {

namespace {
const char* kStoresTotal = "stores_total";
const char* kStoresHelp = "Store calls by result.";
}  // namespace

StoreBatcher::StoreBatcher(DeferredStore& store, Options options, MetricsRegistry& metrics)
    : GroupCommit(
          options, {"store", "messages", kStoresTotal, kStoresHelp}, metrics,
          [&store](const std::vector<NewMessage>& batch) { return store.StoreBatch(batch); },
          [this](const StoreOutcome& outcome) { Count(outcome); }) {
  auto& results = metrics.CounterFamily(kStoresTotal, kStoresHelp);
  stored_ = &results.Add({{"result", "stored"}});
  duplicate_ = &results.Add({{"result", "duplicate"}});
  over_limit_ = &results.Add({{"result", "over_limit"}});
}

void StoreBatcher::Count(const StoreOutcome& outcome) {
  switch (outcome.result) {
    case StoreOutcome::Result::kStored:
      stored_->Increment();
      break;
    case StoreOutcome::Result::kDuplicate:
      duplicate_->Increment();
      break;
    case StoreOutcome::Result::kOverLimit:
      over_limit_->Increment();
      break;
  }
}

}  // namespace dims::storage
