// PUBLISH of the IM service settings (seed 002 5.2.4, RFC 3903): checks that DIMS serves the
// user's domain, hands the request to the settings service asynchronously, and answers from its
// result. Runs on the SIP loop thread; the gRPC completion comes back through the stack.
#pragma once

#include <memory>
#include <set>
#include <string>

#include "dims/v1/settings.grpc.pb.h"
#include "sip_stack.h"

namespace dims::edge {

class PublishHandler {
 public:
  PublishHandler(SipStack& stack, std::shared_ptr<grpc::Channel> settings,
                 std::set<std::string> domains, std::string allowed_events);

  void Handle(const IncomingPublish& publish);

 private:
  SipStack& stack_;
  std::unique_ptr<dims::v1::Settings::Stub> settings_;
  std::set<std::string> domains_;
  std::string allowed_events_;
};

}  // namespace dims::edge
