// PUBLISH of the IM service settings (seed 002 5.2.4, RFC 3903): checks that DIMS serves the
// user's domain, hands the request to the settings service asynchronously, and answers from its
// result. Runs on the SIP loop thread; the gRPC completion comes back through the stack.
#pragma once

#include <condition_variable>
#include <memory>
#include <mutex>
#include <set>
#include <string>

#include "dims/v1/settings.grpc.pb.h"
#include "sip_stack.h"

namespace dims::edge {

class PublishHandler {
 public:
  PublishHandler(SipStack& stack, std::shared_ptr<grpc::Channel> settings,
                 std::set<std::string> domains, std::string allowed_events);

  // Cancels the calls still in flight and waits (bounded) for their completions, which refer
  // to this handler.
  ~PublishHandler();

  void Handle(const IncomingPublish& publish);

 private:
  struct Call;
  SipStack& stack_;
  std::unique_ptr<dims::v1::Settings::Stub> settings_;
  std::set<std::string> domains_;
  std::string allowed_events_;
  std::mutex mu_;
  std::condition_variable idle_;
  std::set<Call*> in_flight_;
};

}  // namespace dims::edge
