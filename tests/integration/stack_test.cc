// The whole set with real Redis and PostgreSQL: health, metrics, clean stop, and readiness
// that follows the database.
#include <arpa/inet.h>
#include <google/protobuf/descriptor.h>
#include <grpcpp/generic/generic_stub.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <pqxx/pqxx>
#include <set>

#include "dims_stack.h"

namespace dims::testing {
namespace {
using namespace std::chrono_literals;

class StackTest : public ::testing::Test {
 protected:
  void StartAllAndWait() {
    stack_.StartAll();
    for (const auto& name : stack_.service_names()) {
      ASSERT_TRUE(stack_.WaitServing(name, 30s))
          << name << " is " << HealthStatus(stack_.endpoints(name).grpc_address()) << "\n"
          << stack_.process(name).ReadLog();
    }
  }
  DimsStack stack_;
};

TEST_F(StackTest, EveryServiceReportsServingAndReflectsItsApi) {
  StartAllAndWait();
  for (const auto& name : stack_.service_names()) {
    const auto& ep = stack_.endpoints(name);
    EXPECT_EQ(HealthStatus(ep.grpc_address(), ""), "SERVING") << name;
    EXPECT_EQ(HealthStatus(ep.grpc_address(), ep.grpc_service), "SERVING") << name;
    std::string reflected = ReflectionListServices(ep.grpc_address());
    EXPECT_NE(reflected.find(ep.grpc_service), std::string::npos) << name << ": " << reflected;
    EXPECT_NE(reflected.find("grpc.health.v1.Health"), std::string::npos) << name;
    EXPECT_EQ(HealthStatus(ep.grpc_address(), "no.such.Service").rfind("ERROR(5)", 0), 0u)
        << name;  // NOT_FOUND
  }
}

TEST_F(StackTest, EveryMetricsPageParsesAndCarriesDimsMetrics) {
  StartAllAndWait();
  for (const auto& name : stack_.service_names()) {
    const auto& ep = stack_.endpoints(name);
    auto body = HttpGet(ep.metrics_port, "/metrics");
    ASSERT_TRUE(body) << name << ": no 200 from /metrics";
    std::string error;
    EXPECT_TRUE(IsValidPrometheusText(*body, &error)) << name << ": " << error;
    std::string prefix = "dims_";
    for (char c : name) prefix += c == '-' ? '_' : c;
    EXPECT_NE(body->find("\n" + prefix + "_ready 1"), std::string::npos) << *body;
    EXPECT_NE(body->find(prefix + "_build_info{"), std::string::npos) << *body;
    EXPECT_NE(body->find(prefix + "_start_time_seconds "), std::string::npos) << *body;
  }
  auto storage = HttpGet(stack_.endpoints("storage").metrics_port, "/metrics");
  EXPECT_NE(storage->find("dims_storage_dependency_up{dependency=\"postgres\"} 1"),
            std::string::npos);
}

// RPCs whose feature has landed; every other one must say UNIMPLEMENTED instead of pretending
// to work.
const std::set<std::string> kBuiltRpcs = {
    "dims.v1.Storage.Store",
    "dims.v1.Storage.GetSummary",
    "dims.v1.Storage.List",
    "dims.v1.Storage.Get",
    "dims.v1.Storage.Fetch",
    "dims.v1.Storage.Ack",
    "dims.v1.Storage.Delete",
    "dims.v1.Storage.MarkNotified",
    "dims.v1.Storage.Purge",
    "dims.v1.Storage.AttachSessionHeaders",
    "dims.v1.Settings.Publish",
    "dims.v1.Settings.Get",
    "dims.v1.Settings.Put",
    "dims.v1.Settings.Delete",
    "dims.v1.EdgeControl.SendMessage",
    "dims.v1.EdgeControl.Notify",
    "dims.v1.EdgeControl.StartPushSession",
    "dims.v1.EdgeControl.EndSession",
    "dims.v1.Delivery.Trigger",
    "dims.v1.Delivery.GetDeliveryState",
    "dims.v1.Relay.OpenSession",
    "dims.v1.Relay.ConnectSession",
    "dims.v1.Relay.CloseSession",
};

TEST_F(StackTest, RpcsNotBuiltYetAnswerUnimplemented) {
  StartAllAndWait();
  auto* pool = google::protobuf::DescriptorPool::generated_pool();
  int checked = 0;
  for (const auto& name : stack_.service_names()) {
    const auto& ep = stack_.endpoints(name);
    const auto* service = pool->FindServiceByName(ep.grpc_service);
    ASSERT_NE(service, nullptr) << ep.grpc_service;
    ASSERT_GT(service->method_count(), 0);
    auto channel = grpc::CreateChannel(ep.grpc_address(), grpc::InsecureChannelCredentials());
    grpc::GenericStub stub(channel);
    for (int i = 0; i < service->method_count(); ++i) {
      const auto* method = service->method(i);
      if (method->client_streaming() || method->server_streaming()) continue;
      if (kBuiltRpcs.count(method->full_name())) continue;
      grpc::ClientContext context;
      context.set_deadline(std::chrono::system_clock::now() + 2s);
      grpc::Slice empty("");  // an empty message is a valid request of every type
      grpc::ByteBuffer request(&empty, 1), response;
      std::mutex mu;
      std::condition_variable cv;
      bool done = false;
      grpc::Status status;
      stub.UnaryCall(&context, "/" + service->full_name() + "/" + method->name(), {}, &request,
                     &response, [&](grpc::Status s) {
                       std::lock_guard lock(mu);
                       status = s;
                       done = true;
                       cv.notify_one();
                     });
      std::unique_lock lock(mu);
      cv.wait(lock, [&] { return done; });
      EXPECT_EQ(status.error_code(), grpc::StatusCode::UNIMPLEMENTED) << method->full_name();
      ++checked;
    }
  }
  EXPECT_GT(checked, 0);  // until every feature has landed
}

TEST_F(StackTest, SipEdgeAnswersOptionsOverUdpAndTcp) {
  StartAllAndWait();
  auto options = [&](const std::string& transport) {
    return "OPTIONS sip:dims.test SIP/2.0\r\n"
           "Via: SIP/2.0/" +
           transport + " 127.0.0.1:5999;branch=z9hG4bK-dims-test-" + transport +
           ";rport\r\n"
           "Max-Forwards: 70\r\n"
           "From: <sip:probe@dims.test>;tag=t1\r\n"
           "To: <sip:dims.test>\r\n"
           "Call-ID: options-" +
           transport +
           "@127.0.0.1\r\n"
           "CSeq: 1 OPTIONS\r\n"
           "Content-Length: 0\r\n\r\n";
  };
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(stack_.sip_port()));
  timeval tv{5, 0};
  char buf[4096];
  for (std::string transport : {"UDP", "TCP"}) {
    int fd = socket(AF_INET, transport == "UDP" ? SOCK_DGRAM : SOCK_STREAM, 0);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0) << transport;
    std::string request = options(transport);
    ASSERT_EQ(write(fd, request.data(), request.size()), static_cast<ssize_t>(request.size()));
    ssize_t n = read(fd, buf, sizeof buf);
    close(fd);
    ASSERT_GT(n, 0) << transport << ": no answer";
    std::string answer(buf, static_cast<size_t>(n));
    EXPECT_EQ(answer.rfind("SIP/2.0 200", 0), 0u) << transport << ":\n" << answer;
    // Every answer names the IM release (OMA Appendix F) and carries a Date (seed 004).
    EXPECT_NE(answer.find("\r\nServer: IM-serv/OMA1.0 DIMS/"), std::string::npos) << answer;
    EXPECT_NE(answer.find("\r\nDate: "), std::string::npos) << answer;
  }
}

TEST_F(StackTest, SigtermStopsEveryServiceWithinFiveSecondsWithExitCodeZero) {
  StartAllAndWait();
  for (const auto& name : stack_.service_names()) {
    auto& process = stack_.process(name);
    process.Signal(SIGTERM);
    auto status = process.Wait(5s);
    ASSERT_TRUE(status.has_value()) << name << " still running 5 s after SIGTERM";
    EXPECT_TRUE(WIFEXITED(*status)) << name << " ended by signal " << WTERMSIG(*status);
    EXPECT_EQ(WEXITSTATUS(*status), 0) << name << "\n" << process.ReadLog();
  }
}

class StorageWithoutDatabaseTest : public ::testing::Test {
 protected:
  DimsStack stack_{DimsStack::Options{.start_postgres = false}};
};

TEST_F(StorageWithoutDatabaseTest, ReportsNotServingUntilPostgresIsUpThenServesWithoutRestart) {
  stack_.StartService("storage");
  const auto& ep = stack_.endpoints("storage");
  ASSERT_TRUE(WaitFor([&] { return HealthStatus(ep.grpc_address()) == "NOT_SERVING"; }, 15s))
      << HealthStatus(ep.grpc_address());
  // Several probe rounds pass without the database; it must stay NOT_SERVING.
  std::this_thread::sleep_for(2500ms);
  EXPECT_EQ(HealthStatus(ep.grpc_address()), "NOT_SERVING");
  EXPECT_EQ(HealthStatus(ep.grpc_address(), "dims.v1.Storage"), "NOT_SERVING");
  // Liveness is about the process, not its dependencies: nothing should restart it.
  EXPECT_EQ(HealthStatus(ep.grpc_address(), "liveness"), "SERVING");
  auto metrics = HttpGet(ep.metrics_port, "/metrics");
  ASSERT_TRUE(metrics);
  EXPECT_NE(metrics->find("dims_storage_dependency_up{dependency=\"postgres\"} 0"),
            std::string::npos);
  EXPECT_NE(metrics->find("\ndims_storage_ready 0"), std::string::npos);

  pid_t pid_before = stack_.process("storage").pid();
  stack_.postgres().Start();
  ASSERT_TRUE(stack_.WaitServing("storage", 20s)) << stack_.process("storage").ReadLog();
  EXPECT_EQ(stack_.process("storage").pid(), pid_before);
  EXPECT_TRUE(stack_.process("storage").running());

  // Becoming ready includes applying the schema.
  pqxx::connection c(stack_.postgres().dsn());
  pqxx::nontransaction tx(c);
  EXPECT_GE(tx.exec1("SELECT MAX(version) FROM schema_migrations")[0].as<int>(), 1);
  EXPECT_FALSE(tx.exec("SELECT to_regclass('deferred_messages')")[0][0].is_null());

  // And it follows the database down again.
  stack_.postgres().Stop();
  EXPECT_TRUE(WaitFor([&] { return HealthStatus(ep.grpc_address()) == "NOT_SERVING"; }, 15s));
}

}  // namespace
}  // namespace dims::testing
