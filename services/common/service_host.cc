#include "service_host.h"

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/health_check_service_interface.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <map>

#include "grpc_client.h"
#include "grpc_process.h"
#include "log.h"
#include "version.h"

namespace dims {
namespace {

std::string Hostname() {
  char buf[256] = {};
  if (gethostname(buf, sizeof buf - 1) != 0 || buf[0] == '\0') return "dims";
  return buf;
}

sigset_t StopSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  return set;
}

}  // namespace

std::vector<ConfigOption> CommonOptions(const ServiceSpec& spec) {
  return {
      {"grpc-listen", "127.0.0.1:" + std::to_string(spec.default_grpc_port),
       "address of the gRPC server (host:port; port 0 picks a free port)",
       validate::HostPortValueAllowZero()},
      {"metrics-listen", "127.0.0.1:" + std::to_string(spec.default_metrics_port),
       "address of the Prometheus /metrics endpoint (host:port; port 0 picks a free port)",
       validate::HostPortValueAllowZero()},
      {"log-level", "info", "debug, info, warn or error",
       validate::OneOf({"debug", "info", "warn", "error"})},
      {"log-format", "json", "json (one object per line) or text",
       validate::OneOf({"json", "text"})},
      {"instance-id", "", "name of this instance in logs and shared state [default: hostname]",
       nullptr},
      {"shutdown-grace-seconds", "3",
       "how long in-flight calls may finish after SIGTERM before they are cancelled",
       validate::IntInRange(0, 60)},
  };
}

ConfigOption RedisOption(const std::string& what) {
  return {"redis-addr", "127.0.0.1:6379", "Redis: " + what + " (host:port)",
          validate::HostPortValue()};
}

ConfigOption PeerOption(const std::string& option, const std::string& peer, int default_port) {
  return {option + "-addr", "127.0.0.1:" + std::to_string(default_port),
          peer + " service gRPC address (host:port)", validate::HostPortValue()};
}

ConfigOption AdvertisedAddressOption(const std::string& api) {
  return {"advertised-grpc-addr", "",
          "address other services use to reach this instance's " + api +
              " (host:port; empty: the grpc-listen address)",
          validate::OptionalHostPortValue()};
}

std::string ServiceHost::advertised_address() const {
  const std::string& advertised = config_.Get("advertised-grpc-addr");
  return advertised.empty() ? config_.Get("grpc-listen") : advertised;
}

std::unique_ptr<ServiceHost> ServiceHost::Create(ServiceSpec spec, int argc, char** argv) {
  sigset_t stop = StopSignals();
  pthread_sigmask(SIG_BLOCK, &stop, nullptr);
  signal(SIGPIPE, SIG_IGN);  // a peer closing a socket must not kill the service
  ApplyGrpcProcessSettings();

  std::vector<ConfigOption> options = CommonOptions(spec);
  options.insert(options.end(), spec.options.begin(), spec.options.end());
  std::vector<std::string> args(argv + 1, argv + argc);
  std::string program = "dims-" + spec.name;
  try {
    Config config = Config::Load(options, args, Config::ProcessEnvironment());
    if (config.help_requested()) {
      std::cout << program << ": " << spec.description << "\n\n" << Config::Usage(program, options);
      std::exit(0);
    }
    return std::unique_ptr<ServiceHost>(new ServiceHost(std::move(spec), std::move(config)));
  } catch (const ConfigError& e) {
    std::cerr << program << ": configuration error: " << e.what() << "\n";
    std::exit(2);
  }
}

ServiceHost::ServiceHost(ServiceSpec spec, Config config)
    : spec_(std::move(spec)), config_(std::move(config)) {
  instance_id_ = config_.Get("instance-id").empty() ? Hostname() : config_.Get("instance-id");
  log::Init(spec_.name, *log::ParseLevel(config_.Get("log-level")),
            config_.Get("log-format") == "json" ? log::Format::kJson : log::Format::kText);
  metrics_ = std::make_unique<MetricsRegistry>(spec_.name);
  metrics_->SetReady(false);
}

ServiceHost::~ServiceHost() = default;

void ServiceHost::AddService(grpc::Service* service, std::string full_name) {
  services_.emplace_back(service, std::move(full_name));
}

void ServiceHost::AddDependency(std::string name, std::function<bool()> probe, bool required) {
  metrics_->SetDependencyUp(name, false);
  dependencies_.push_back({std::move(name), std::move(probe), required});
}

std::shared_ptr<RedisPool> ServiceHost::ConnectRedis(int pool_size, bool required) {
  HostPort address = config_.GetHostPort("redis-addr");
  auto redis = std::make_shared<RedisPool>(
      RedisPool::Options{.host = address.host, .port = address.port, .size = pool_size});
  AddDependency(
      "redis", [redis] { return redis->Ping(); }, required);
  return redis;
}

std::shared_ptr<grpc::Channel> ServiceHost::ConnectPeer(const std::string& option,
                                                        const std::string& peer) {
  auto channel = MakeChannel(config_.Get(option + "-addr"));
  AddDependency(
      peer, [channel] { return CheckHealth(*channel, ""); }, /*required=*/false);
  return channel;
}

void ServiceHost::OnDrain(std::function<void()> fn) { on_drain_.push_back(std::move(fn)); }
void ServiceHost::OnStop(std::function<void()> fn) { on_stop_.push_back(std::move(fn)); }

void ServiceHost::UpdateServing(bool serving) {
  if (serving_.exchange(serving) == serving && server_) return;
  metrics_->SetReady(serving);
  if (!server_) return;
  auto* health = server_->GetHealthCheckService();
  health->SetServingStatus("", serving);
  for (auto& [service, name] : services_) health->SetServingStatus(name, serving);
  log::Info(serving ? "serving" : "not serving");
}

void ServiceHost::ProbeOnce() {
  bool all_required_up = true;
  for (const auto& dep : dependencies_) {
    bool up = false;
    try {
      up = dep.probe();
    } catch (const std::exception& e) {
      log::Debug("dependency probe threw", {{"dependency", dep.name}, {"error", e.what()}});
    }
    metrics_->SetDependencyUp(dep.name, up);
    auto it = last_up_.find(dep.name);
    if (it == last_up_.end() || it->second != up) {
      if (up) {
        log::Info("dependency up", {{"dependency", dep.name}});
      } else {
        log::Warn("dependency down", {{"dependency", dep.name}, {"required", dep.required}});
      }
      last_up_[dep.name] = up;
    }
    if (dep.required && !up) all_required_up = false;
  }
  std::lock_guard lock(mu_);
  if (!stopping_) UpdateServing(all_required_up);
}

int ServiceHost::Run() {
  std::string metrics_address = config_.Get("metrics-listen");
  try {
    metrics_->Serve(metrics_address);
  } catch (const std::exception& e) {
    log::Error("cannot serve metrics", {{"address", metrics_address}, {"error", e.what()}});
    return 1;
  }

  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  builder.SetMaxReceiveMessageSize(kMaxGrpcMessageBytes);
  int grpc_port = 0;
  HostPort grpc_listen = config_.GetHostPort("grpc-listen");
  builder.AddListeningPort(grpc_listen.ToString(), grpc::InsecureServerCredentials(), &grpc_port);
  for (auto& [service, name] : services_) builder.RegisterService(service);
  server_ = builder.BuildAndStart();
  if (!server_ || grpc_port == 0) {
    log::Error("cannot serve gRPC", {{"address", grpc_listen.ToString()}});
    return 1;
  }
  // The default health service starts out SERVING; nothing is ready until probes say so.
  serving_ = true;
  UpdateServing(false);
  for (auto& [service, name] : services_) {
    server_->GetHealthCheckService()->SetServingStatus(name, false);
  }
  // "liveness" answers SERVING while the process works, whatever its dependencies say, so that
  // a liveness probe restarts a wedged process and never one that waits for its database.
  server_->GetHealthCheckService()->SetServingStatus(kLivenessService, true);

  HostPort metrics_listen = config_.GetHostPort("metrics-listen");
  log::Info("started", {{"version", kVersion},
                        {"instance", instance_id_},
                        {"grpc", grpc_listen.host + ":" + std::to_string(grpc_port)},
                        {"metrics", "http://" + metrics_listen.host + ":" +
                                        std::to_string(metrics_->bound_port()) + "/metrics"}});
  for (const auto& [name, value] : config_.values()) {
    log::Debug("config",
               {{"option", name}, {"value", value}, {"source", config_.sources().at(name)}});
  }

  prober_ = std::make_unique<PeriodicTask>("dependency probes", std::chrono::seconds(1),
                                           [this] { ProbeOnce(); });

  sigset_t stop = StopSignals();
  int sig = 0;
  sigwait(&stop, &sig);
  log::Info("stopping", {{"signal", sig == SIGINT ? "SIGINT" : "SIGTERM"}});

  {
    // The prober never changes the status once stopping_ is set; a probe still running is
    // joined at the end, so that it overlaps with the drain instead of delaying it.
    std::lock_guard lock(mu_);
    stopping_ = true;
    serving_ = true;
    UpdateServing(false);
    server_->GetHealthCheckService()->Shutdown();  // watchers see NOT_SERVING from here on
  }

  auto t0 = std::chrono::steady_clock::now();
  for (auto& fn : on_drain_) fn();
  auto grace = std::chrono::seconds(config_.GetInt("shutdown-grace-seconds"));
  server_->Shutdown(std::chrono::system_clock::now() + grace);
  server_->Wait();
  for (auto& fn : on_stop_) fn();
  prober_.reset();
  log::Debug(
      "drained",
      {{"seconds", std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count()}});
  log::Info("stopped");
  return 0;
}

}  // namespace dims
