// Group commit of Store calls: concurrent stores share one transaction (group_commit.h), each
// caller answered only after the commit.
#pragma once

#include "deferred_store.h"
#include "group_commit.h"
#include "metrics.h"

namespace dims::storage {

using StoreResult = CommitResult<StoreOutcome>;

class StoreBatcher : public GroupCommit<NewMessage, StoreOutcome> {
 public:
  StoreBatcher(DeferredStore& store, Options options, MetricsRegistry& metrics);
  ~StoreBatcher() { Stop(); }

 private:
  void Count(const StoreOutcome& outcome);

  prometheus::Counter* stored_;
  prometheus::Counter* duplicate_;
  prometheus::Counter* over_limit_;
};

}  // namespace dims::storage
