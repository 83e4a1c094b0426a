// The whole DIMS set for integration tests: a private Redis and PostgreSQL and the five
// service binaries on free loopback ports, each with its own log in a temporary folder.
#pragma once

#include <grpcpp/grpcpp.h>

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "test_servers.h"

namespace dims::testing {

struct ServiceEndpoints {
  std::string name;          // "storage"
  std::string binary;        // "dims-storage"
  std::string grpc_service;  // "dims.v1.Storage"
  int grpc_port = 0;
  int metrics_port = 0;
  std::string grpc_address() const { return "127.0.0.1:" + std::to_string(grpc_port); }
};

// A channel with a connection of its own (not shared with other channels to the address).
std::shared_ptr<grpc::Channel> NewChannel(const std::string& address);

// grpc.health.v1 status of `service` at `address`: "SERVING", "NOT_SERVING", ..., or
// "ERROR(<gRPC code>): <message>" when the call failed.
std::string HealthStatus(const std::string& address, const std::string& service = "");

// Asks the server's reflection service (grpc.reflection.v1alpha) to list its services and
// returns the raw answer, in which every service name appears as a string; empty on failure.
std::string ReflectionListServices(const std::string& address);

class DimsStack {
 public:
  struct Options {
    bool start_postgres = true;  // false: the cluster is created but not started
  };
  explicit DimsStack(Options options);
  DimsStack() : DimsStack(Options{}) {}
  ~DimsStack();

  // Starts one service, or all five in dependency order. `env` adds or overrides DIMS_*
  // variables (e.g. {"DIMS_MAX_USER_MESSAGES", "3"}).
  void StartService(const std::string& name, const std::map<std::string, std::string>& env = {});
  // Declares another instance of `service` named `replica` (e.g. "delivery-2"), with ports of
  // its own, to be started by StartService(replica). Its instance id is its name.
  void AddReplica(const std::string& service, const std::string& replica);
  void StartAll();

  const ServiceEndpoints& endpoints(const std::string& name) const { return endpoints_.at(name); }
  std::vector<std::string> service_names() const;
  Process& process(const std::string& name) { return *processes_.at(name); }
  int sip_port() const { return sip_port_; }
  PostgresServer& postgres() { return *postgres_; }
  RedisServer& redis() { return *redis_; }
  const TempDir& dir() const { return dir_; }

  // A sipp client running the scenario tests/sip/<scenario>.xml against the edge (`user`
  // non-empty: its [field0]), with its log and error file in the stack's folder.
  struct Sipp {
    std::unique_ptr<Process> process;
    std::filesystem::path errors;
    // Waits for sipp to end; true when every call passed.
    bool Passed(std::chrono::milliseconds timeout) const;
    std::string Report() const;  // its log's tail and its errors, for failure messages
  };
  Sipp StartSipp(const std::string& scenario, const std::string& transport, long calls, int limit,
                 const std::string& user = "");

  // A sipp server (UAS) running the scenario tests/sip/<scenario>.xml on 127.0.0.1:`port` over
  // UDP, for one call: a client DIMS sends requests to.
  Sipp StartSippServer(const std::string& scenario, int port);

  // Waits until the service's overall health is SERVING; false on timeout.
  bool WaitServing(const std::string& name, std::chrono::milliseconds timeout);

 private:
  TempDir dir_;
  std::unique_ptr<RedisServer> redis_;
  std::unique_ptr<PostgresServer> postgres_;
  std::map<std::string, ServiceEndpoints> endpoints_;
  std::map<std::string, std::unique_ptr<Process>> processes_;
  int sip_port_ = 0;
};

}  // namespace dims::testing
