// Group commit of Ack calls: the messages that concurrent Acks (of any users) confirm are removed
// in one transaction (group_commit.h), each caller answered only after the commit, with what it
// would have got alone (DeferredStore::RemoveBatch).
#pragma once

#include "deferred_store.h"
#include "group_commit.h"
#include "metrics.h"

namespace dims::storage {

using AckResult = CommitResult<RemovalResult>;

class AckBatcher : public GroupCommit<Removal, RemovalResult> {
 public:
  AckBatcher(DeferredStore& store, Options options, MetricsRegistry& metrics);
  ~AckBatcher() { Stop(); }

 private:
  prometheus::Counter* removed_;
  prometheus::Counter* nothing_removed_;
};

}  // namespace dims::storage
