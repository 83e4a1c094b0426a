#include "dims_stack.h"

#include <grpcpp/generic/generic_stub.h>
#include <sys/wait.h>

#include <csignal>
#include <cstring>
#include <fstream>
#include <iostream>

#include "grpc/health/v1/health.grpc.pb.h"

namespace dims::testing {
using namespace std::chrono_literals;

std::shared_ptr<grpc::Channel> NewChannel(const std::string& address) {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  args.SetMaxReceiveMessageSize(128 << 20);  // large-mode messages, as the services take
  return grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(), args);
}

std::string HealthStatus(const std::string& address, const std::string& service) {
  auto channel = grpc::CreateChannel(address, grpc::InsecureChannelCredentials());
  auto stub = grpc::health::v1::Health::NewStub(channel);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + 1s);
  grpc::health::v1::HealthCheckRequest request;
  request.set_service(service);
  grpc::health::v1::HealthCheckResponse response;
  grpc::Status status = stub->Check(&context, request, &response);
  if (!status.ok()) {
    return "ERROR(" + std::to_string(status.error_code()) + "): " + status.error_message();
  }
  return grpc::health::v1::HealthCheckResponse::ServingStatus_Name(response.status());
}

std::string ReflectionListServices(const std::string& address) {
  // The reflection protos are not installed with gRPC, so the one request is written by
  // hand: ServerReflectionRequest{list_services: ""} is field 7, length 0.
  auto channel = grpc::CreateChannel(address, grpc::InsecureChannelCredentials());
  grpc::GenericStub stub(channel);
  grpc::CompletionQueue cq;
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + 3s);
  auto call = stub.PrepareCall(
      &context, "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo", &cq);
  void* tag = nullptr;
  bool ok = false;
  auto step = [&](int id) {
    return cq.Next(&tag, &ok) && ok && tag == reinterpret_cast<void*>(id);
  };
  std::string answer;
  call->StartCall(reinterpret_cast<void*>(1));
  if (step(1)) {
    grpc::Slice request(std::string("\x3a\x00", 2));
    grpc::ByteBuffer buffer(&request, 1);
    call->Write(buffer, reinterpret_cast<void*>(2));
    if (step(2)) {
      grpc::ByteBuffer response;
      call->Read(&response, reinterpret_cast<void*>(3));
      std::vector<grpc::Slice> slices;
      if (step(3) && response.Dump(&slices).ok()) {
        for (const auto& slice : slices) {
          answer.append(reinterpret_cast<const char*>(slice.begin()), slice.size());
        }
      }
    }
  }
  context.TryCancel();
  grpc::Status status;
  call->Finish(&status, reinterpret_cast<void*>(4));
  cq.Shutdown();
  while (cq.Next(&tag, &ok)) {
  }
  return answer;
}

DimsStack::DimsStack(Options options) {
  redis_ = std::make_unique<RedisServer>(dir_.path());
  postgres_ = std::make_unique<PostgresServer>(dir_.path());
  if (options.start_postgres) postgres_->Start();
  sip_port_ = FreePort();
  auto add = [&](const std::string& name, const std::string& grpc_service) {
    endpoints_[name] = {name, "dims-" + name, grpc_service, FreePort(), FreePort()};
  };
  add("settings", "dims.v1.Settings");
  add("storage", "dims.v1.Storage");
  add("msrp-relay", "dims.v1.Relay");
  add("delivery", "dims.v1.Delivery");
  add("sip-edge", "dims.v1.EdgeControl");
}

DimsStack::~DimsStack() {
  for (auto& [name, p] : processes_) p->Signal(SIGTERM);
  for (auto& [name, p] : processes_) p->Wait(10s);
}

void DimsStack::AddReplica(const std::string& service, const std::string& replica) {
  ServiceEndpoints ep = endpoints_.at(service);
  ep.name = replica;
  ep.grpc_port = FreePort();
  ep.metrics_port = FreePort();
  endpoints_[replica] = ep;
}

std::vector<std::string> DimsStack::service_names() const {
  return {"settings", "storage", "msrp-relay", "delivery", "sip-edge"};
}

void DimsStack::StartService(const std::string& name,
                             const std::map<std::string, std::string>& extra_env) {
  const auto& ep = endpoints_.at(name);
  std::map<std::string, std::string> env = {
      {"DIMS_GRPC_LISTEN", ep.grpc_address()},
      {"DIMS_METRICS_LISTEN", "127.0.0.1:" + std::to_string(ep.metrics_port)},
      {"DIMS_LOG_FORMAT", "text"},
      {"DIMS_LOG_LEVEL", "debug"},
      {"DIMS_REDIS_ADDR", redis_->address()},
      {"DIMS_POSTGRES_DSN", postgres_->dsn()},
      {"DIMS_SETTINGS_ADDR", endpoints_.at("settings").grpc_address()},
      {"DIMS_STORAGE_ADDR", endpoints_.at("storage").grpc_address()},
      {"DIMS_DELIVERY_ADDR", endpoints_.at("delivery").grpc_address()},
      {"DIMS_RELAY_ADDR", endpoints_.at("msrp-relay").grpc_address()},
      {"DIMS_SIP_LISTEN", "127.0.0.1:" + std::to_string(sip_port_)},
      // The relay's MSRP socket: a free port, never the fixed default (its URIs carry it).
      {"DIMS_MSRP_LISTEN", "127.0.0.1:0"},
      {"DIMS_INSTANCE_ID", name},
  };
  for (const auto& [k, v] : extra_env) env[k] = v;
  // Each service reads only the variables it declares; the others are ignored.
  processes_[name] = std::make_unique<Process>(Process::Options{
      .program = BinaryPath(ep.binary),
      .args = {},
      .env = env,
      .log = dir_.path() / (name + ".log"),
  });
}

void DimsStack::StartAll() {
  for (const auto& name : service_names()) StartService(name);
}

DimsStack::Sipp DimsStack::StartSipp(const std::string& scenario, const std::string& transport,
                                     long calls, int limit, const std::string& user) {
  std::string name = scenario + "-" + transport + (user.empty() ? "" : "-" + user);
  Sipp sipp{nullptr, dir_.path() / (name + "-errors.log")};
  auto args = SippClientArgs(sip_port_, std::string(DIMS_SIP_SCENARIOS) + "/" + scenario + ".xml",
                             transport, calls, limit);
  if (!user.empty()) {
    auto users = dir_.path() / ("users-" + name + ".csv");
    std::ofstream(users) << "SEQUENTIAL\n" << user << ";\n";
    args.insert(args.end(), {"-inf", users.string()});
  }
  args.insert(args.end(), {"-timeout", "90", "-timeout_error", "-trace_err", "-error_file",
                           sipp.errors.string()});
  sipp.process = std::make_unique<Process>(Process::Options{
      .program = "/usr/bin/sipp", .args = std::move(args), .log = dir_.path() / (name + ".log")});
  return sipp;
}

DimsStack::Sipp DimsStack::StartSippServer(const std::string& scenario, int port) {
  Sipp sipp{nullptr, dir_.path() / (scenario + "-errors.log")};
  sipp.process = std::make_unique<Process>(Process::Options{
      .program = "/usr/bin/sipp",
      .args = {"-sf", std::string(DIMS_SIP_SCENARIOS) + "/" + scenario + ".xml", "-t", "u1", "-i",
               "127.0.0.1", "-p", std::to_string(port), "-m", "1", "-nostdin", "-timeout", "90",
               "-timeout_error", "-trace_err", "-error_file", sipp.errors.string()},
      .log = dir_.path() / (scenario + ".log")});
  return sipp;
}

bool DimsStack::Sipp::Passed(std::chrono::milliseconds timeout) const {
  auto status = process->Wait(timeout);
  return status && WIFEXITED(*status) && WEXITSTATUS(*status) == 0;
}

std::string DimsStack::Sipp::Report() const { return process->LogTail(30) + ReadFile(errors); }

bool DimsStack::WaitServing(const std::string& name, std::chrono::milliseconds timeout) {
  if (WaitFor([&] { return HealthStatus(endpoints_.at(name).grpc_address()) == "SERVING"; },
              timeout)) {
    return true;
  }
  // What the process is doing, for the failure message: a service that neither logs nor
  // listens has happened on loaded CI machines, and its empty log says nothing.
  Process& process = *processes_.at(name);
  std::cerr << name << " is not serving after " << timeout.count() << " ms: ";
  if (!process.running()) {
    auto status = process.Wait(std::chrono::milliseconds(0));
    if (status && WIFSIGNALED(*status)) {
      std::cerr << "its process was killed by signal " << WTERMSIG(*status) << " ("
                << strsignal(WTERMSIG(*status)) << ")";
    } else {
      std::cerr << "its process ended, wait status " << (status ? *status : -1);
    }
    std::cerr << "; its log ends:\n" << process.LogTail(20) << "\n";
  } else {
    std::string proc = "/proc/" + std::to_string(process.pid());
    std::cerr << "its process " << process.pid() << " runs; wchan " << ReadFile(proc + "/wchan")
              << "\n"
              << ReadFile(proc + "/status").substr(0, 400) << "\nkernel stack:\n"
              << ReadFile(proc + "/stack") << "\n";
  }
  return false;
}

}  // namespace dims::testing
