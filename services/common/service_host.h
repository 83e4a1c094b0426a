// The one way a DIMS service starts and stops. A service's main() declares its options,
// builds its adapters and gRPC handlers, and hands them to a ServiceHost, which:
// - loads and validates the configuration (flags, DIMS_* environment, defaults);
// - sets up logging and the Prometheus /metrics endpoint;
// - serves gRPC with grpc.health.v1 health and server reflection;
// - probes the service's dependencies every second and reports SERVING only while every
//   required one answers (NOT_SERVING before, and again while one is down);
// - on SIGTERM or SIGINT reports NOT_SERVING, drains in-flight calls for the shutdown grace,
//   stops, and returns 0 from Run().
#pragma once

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "config.h"
#include "metrics.h"
#include "periodic_task.h"
#include "redis_pool.h"

namespace dims {

// Health name that stays SERVING while the process runs (for liveness probes); the overall
// status "" and the API names follow the dependencies (for readiness).
inline constexpr const char* kLivenessService = "liveness";

struct ServiceSpec {
  std::string name;         // "storage"; also the metrics prefix dims_storage_
  std::string description;  // one line for --help
  int default_grpc_port = 0;
  int default_metrics_port = 0;
  std::vector<ConfigOption> options;  // service-specific options
};

class ServiceHost {
 public:
  // Parses the configuration. On --help prints the usage and exits 0; on a bad value prints
  // the precise error and exits 2. Blocks SIGTERM/SIGINT in the calling thread so that every
  // thread started afterwards inherits the mask and Run() alone receives them: call it first.
  static std::unique_ptr<ServiceHost> Create(ServiceSpec spec, int argc, char** argv);
  ~ServiceHost();

  const Config& config() const { return config_; }
  MetricsRegistry& metrics() { return *metrics_; }
  const std::string& name() const { return spec_.name; }
  const std::string& instance_id() const { return instance_id_; }

  // Registers a gRPC service; health reports it by `full_name` (e.g. "dims.v1.Storage").
  void AddService(grpc::Service* service, std::string full_name);
  // A dependency probed every second; `required` ones gate SERVING, the others are only
  // reported in dims_<service>_dependency_up.
  void AddDependency(std::string name, std::function<bool()> probe, bool required = true);
  // Connects to the Redis of --redis-addr (declare it with RedisOption) and probes it.
  std::shared_ptr<RedisPool> ConnectRedis(int pool_size, bool required = true);
  // A channel to the peer service of --<option>-addr (declare it with PeerOption); the peer's
  // health is reported as dependency `peer`, never required: callers retry while it is away.
  std::shared_ptr<grpc::Channel> ConnectPeer(const std::string& option, const std::string& peer);

  // Where other services reach this instance's gRPC API when calls must come back to it (the
  // edge holding a client's flow, the relay holding a session): --advertised-grpc-addr
  // (declare it with AdvertisedAddressOption), else --grpc-listen.
  std::string advertised_address() const;

  // Called once when a stop signal arrives, before gRPC drains (stop other listeners here).
  void OnDrain(std::function<void()> fn);
  // Called once after gRPC stopped (join worker threads here).
  void OnStop(std::function<void()> fn);

  // Serves until a stop signal; returns the process exit code.
  int Run();

 private:
  ServiceHost(ServiceSpec spec, Config config);
  void ProbeOnce();
  void UpdateServing(bool serving);

  struct Dependency {
    std::string name;
    std::function<bool()> probe;
    bool required;
  };

  ServiceSpec spec_;
  Config config_;
  std::string instance_id_;
  std::unique_ptr<MetricsRegistry> metrics_;
  std::vector<std::pair<grpc::Service*, std::string>> services_;
  std::vector<Dependency> dependencies_;
  std::vector<std::function<void()>> on_drain_;
  std::vector<std::function<void()>> on_stop_;
  std::unique_ptr<grpc::Server> server_;

  std::mutex mu_;          // orders status changes between the prober and the stop
  bool stopping_ = false;  // set once a stop signal arrived; the prober then changes nothing
  std::atomic<bool> serving_{false};
  std::map<std::string, bool> last_up_;  // prober thread only: logs changes, not every probe
  std::unique_ptr<PeriodicTask> prober_;
};

// The options every service has; exposed for documentation and tests.
std::vector<ConfigOption> CommonOptions(const ServiceSpec& spec);

// --redis-addr, saying what this service keeps there.
ConfigOption RedisOption(const std::string& what);
// --<option>-addr of a peer service's gRPC server, e.g. PeerOption("storage", 50053).
ConfigOption PeerOption(const std::string& option, const std::string& peer, int default_port);
// --advertised-grpc-addr, for a service whose instances are called back one by one (`api`: the
// API they are called on, e.g. "EdgeControl").
ConfigOption AdvertisedAddressOption(const std::string& api);

}  // namespace dims
