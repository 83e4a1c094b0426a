// The gRPC Storage API: validates requests on the gRPC thread (cheap, no I/O), hands stores
// and acks to their group committers and every other call to the worker pool, and answers with the
// status codes the contract (proto/dims/v1/storage.proto) documents.
#pragma once

#include <chrono>
#include <functional>
#include <string>

#include "ack_batcher.h"
#include "deferred_store.h"
#include "dims/v1/storage.grpc.pb.h"
#include "store_batcher.h"
#include "worker_pool.h"

namespace dims::storage {

struct RetentionPolicy {
  std::chrono::seconds default_retention{7 * 24 * 3600};
  std::chrono::seconds max_retention{30 * 24 * 3600};
};

class StorageService : public dims::v1::Storage::CallbackService {
 public:
  StorageService(DeferredStore& store, StoreBatcher& batcher, AckBatcher& acks, WorkerPool& workers,
                 StoreLimits limits, RetentionPolicy retention);

  // Called with what each Purge call removed (for the purge metrics).
  void OnPurged(std::function<void(const PurgeResult&)> fn) { on_purged_ = std::move(fn); }

  grpc::ServerUnaryReactor* Store(grpc::CallbackServerContext* context,
                                  const dims::v1::StorageStoreRequest* request,
                                  dims::v1::StorageStoreResponse* response) override;
  grpc::ServerUnaryReactor* GetSummary(grpc::CallbackServerContext* context,
                                       const dims::v1::StorageGetSummaryRequest* request,
                                       dims::v1::StorageGetSummaryResponse* response) override;
  grpc::ServerUnaryReactor* List(grpc::CallbackServerContext* context,
                                 const dims::v1::StorageListRequest* request,
                                 dims::v1::StorageListResponse* response) override;
  grpc::ServerUnaryReactor* Get(grpc::CallbackServerContext* context,
                                const dims::v1::StorageGetRequest* request,
                                dims::v1::StorageGetResponse* response) override;
  grpc::ServerUnaryReactor* AttachSessionHeaders(
      grpc::CallbackServerContext* context,
      const dims::v1::StorageAttachSessionHeadersRequest* request,
      dims::v1::StorageAttachSessionHeadersResponse* response) override;
  grpc::ServerWriteReactor<dims::v1::StorageFetchResponse>* Fetch(
      grpc::CallbackServerContext* context, const dims::v1::StorageFetchRequest* request) override;
  grpc::ServerUnaryReactor* Ack(grpc::CallbackServerContext* context,
                                const dims::v1::StorageAckRequest* request,
                                dims::v1::StorageAckResponse* response) override;
  grpc::ServerUnaryReactor* MarkNotified(grpc::CallbackServerContext* context,
                                         const dims::v1::StorageMarkNotifiedRequest* request,
                                         dims::v1::StorageMarkNotifiedResponse* response) override;
  grpc::ServerUnaryReactor* Delete(grpc::CallbackServerContext* context,
                                   const dims::v1::StorageDeleteRequest* request,
                                   dims::v1::StorageDeleteResponse* response) override;
  grpc::ServerUnaryReactor* Purge(grpc::CallbackServerContext* context,
                                  const dims::v1::StoragePurgeRequest* request,
                                  dims::v1::StoragePurgeResponse* response) override;

 private:
  DeferredStore& store_;
  StoreBatcher& batcher_;
  AckBatcher& acks_;
  WorkerPool& workers_;
  StoreLimits limits_;
  RetentionPolicy retention_;
  std::function<void(const PurgeResult&)> on_purged_;
};

}  // namespace dims::storage
