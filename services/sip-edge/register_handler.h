// REGISTER with DIMS as registrar (seeds 000, 002, 003; RFC 3261 10.3): bindings of the users
// of the served domains, kept in Redis where every service and every edge replica sees them,
// with a registered / deregistered event for each change. Redis work runs on a worker pool;
// the answer comes back to the SIP loop through the stack.
#pragma once

#include <set>
#include <string>

#include "redis_pool.h"
#include "registrar_rules.h"
#include "sip_stack.h"
#include "user_records.h"
#include "worker_pool.h"

namespace dims::edge {

struct RegistrarConfig {
  std::set<std::string> domains;
  RegisterLimits limits;
  std::string edge_instance_id;
  std::string edge_address;  // this instance's EdgeControl address, for the bindings
  std::string producer;      // "sip-edge/<instance>"
  // Addresses of the SIP/IP core: a REGISTER from one of them is a third-party REGISTER
  // (DIMS as application server, seeds 000 and 003).
  std::set<std::string> trusted_core;
  // Whether clients may REGISTER with DIMS directly; when false, only the core may.
  bool registrar_mode = true;
};

class RegisterHandler {
 public:
  RegisterHandler(SipStack& stack, RedisPool& redis, WorkerPool& workers, RegistrarConfig config);

  void Handle(const IncomingRegister& request);  // SIP loop thread

 private:
  SipAnswer Register(const std::string& aor, const IncomingRegister& request,
                     bool third_party);  // worker thread

  SipStack& stack_;
  RedisPool& redis_;
  WorkerPool& workers_;
  RegistrarConfig config_;
};

}  // namespace dims::edge
