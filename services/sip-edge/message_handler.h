// Pager-mode MESSAGE to a served user (RFC 3428; seeds 000, 004; DESIGN flow 3): looks up the
// recipient's registration (Redis) and settings (settings service), then forwards the MESSAGE
// to the recipient's IM client and relays its answer, or keeps the complete request in the
// deferred store and answers 202 Accepted once storage confirmed the commit, or refuses it
// when the recipient bars pager-mode IM. A forward the client cannot take now (408, 480, 503,
// no answer, transport failure) ends stored. Everything blocking or remote is asynchronous:
// the SIP loop only starts work and answers.
#pragma once

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <set>
#include <string>

#include "dims/v1/edge_control.grpc.pb.h"
#include "dims/v1/settings.grpc.pb.h"
#include "dims/v1/storage.grpc.pb.h"
#include "grpc_client.h"
#include "pager_routing.h"
#include "redis_pool.h"
#include "sip_metrics.h"
#include "sip_stack.h"
#include "worker_pool.h"

namespace dims::edge {

struct MessageConfig {
  std::set<std::string> domains;
  PagerPolicy policy;
  // How long one forwarding attempt may take before the message is stored instead. With the
  // lookups and the store it must stay under the stack's answer guard.
  std::chrono::milliseconds forward_timeout{3000};
  std::chrono::milliseconds lookup_deadline{1500};
  std::chrono::milliseconds store_deadline{3000};
};

class MessageHandler {
 public:
  MessageHandler(SipStack& stack, RedisPool& redis, WorkerPool& workers,
                 std::shared_ptr<grpc::Channel> settings, std::shared_ptr<grpc::Channel> storage,
                 MessageConfig config, MetricsRegistry& metrics);
  // Cancels the calls in flight and waits (bounded) for their completions.
  ~MessageHandler();

  void Handle(const IncomingMessage& message);  // SIP loop thread

 private:
  struct Attempt;
  void LookUp(std::shared_ptr<Attempt> attempt);
  void ReadSettings(const std::shared_ptr<Attempt>& attempt);
  void LookupDone(const std::shared_ptr<Attempt>& attempt);
  void Decide(const std::shared_ptr<Attempt>& attempt);       // SIP loop thread
  void ForwardNext(const std::shared_ptr<Attempt>& attempt);  // SIP loop thread
  void Store(const std::shared_ptr<Attempt>& attempt, dims::v1::StoreReason reason);
  void Finish(const std::shared_ptr<Attempt>& attempt, const SipAnswer& answer,
              const char* outcome);  // SIP loop thread

  // Every gRPC call in flight, so that the destructor can cancel them and wait.
  void Track(grpc::ClientContext* context);
  void Untrack(grpc::ClientContext* context);

  SipStack& stack_;
  RedisPool& redis_;
  WorkerPool& workers_;
  std::unique_ptr<dims::v1::Settings::Stub> settings_;
  std::unique_ptr<dims::v1::Storage::Stub> storage_;
  MessageConfig config_;
  prometheus::Family<prometheus::Counter>& outcomes_;

  std::mutex mu_;
  std::condition_variable idle_;
  std::set<grpc::ClientContext*> in_flight_;
  StubsByAddress<dims::v1::EdgeControl> peer_edges_;
};

}  // namespace dims::edge
