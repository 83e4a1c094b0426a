// The sip-edge with real SIP peers (sipp scenarios in tests/sip/), Redis and the settings
// service: IM service settings by PUBLISH over UDP and TCP.
#include <gtest/gtest.h>
#include <hiredis/hiredis.h>
#include <sys/wait.h>

#include <fstream>
#include <sstream>

#include "dims/v1/settings.grpc.pb.h"
#include "dims_stack.h"
#include "test_clients.h"

namespace dims::testing {
namespace {
using namespace std::chrono_literals;

class SipEdgeTest : public ::testing::Test {
 protected:
  // Runs one sipp scenario as user `user`; returns sipp's exit code (0: every call passed).
  int RunSipp(const std::string& scenario, const std::string& user, const std::string& transport) {
    auto users = stack_.dir().path() / ("users-" + user + ".csv");
    std::ofstream(users) << "SEQUENTIAL\n" << user << ";\n";
    auto errors = stack_.dir().path() / (scenario + "-" + transport + "-errors.log");
    Process sipp({.program = "/usr/bin/sipp",
                  .args = {"127.0.0.1:" + std::to_string(stack_.sip_port()),
                           "-sf",
                           std::string(DIMS_SIP_SCENARIOS) + "/" + scenario + ".xml",
                           "-inf",
                           users.string(),
                           "-t",
                           transport,
                           "-i",
                           "127.0.0.1",
                           "-p",
                           std::to_string(FreePort()),
                           "-m",
                           "1",
                           "-l",
                           "1",
                           "-timeout",
                           "40",
                           "-timeout_error",
                           "-nostdin",
                           "-trace_err",
                           "-error_file",
                           errors.string()},
                  .log = stack_.dir().path() / (scenario + "-" + transport + ".log")});
    auto status = sipp.Wait(60s);
    if (!status) return -1;
    if (!WIFEXITED(*status) || WEXITSTATUS(*status) != 0) {
      std::ifstream in(errors);
      std::stringstream ss;
      ss << in.rdbuf();
      ADD_FAILURE() << scenario << " over " << transport << " failed:\n"
                    << sipp.ReadLog() << "\n"
                    << ss.str() << "\nedge log:\n"
                    << stack_.process("sip-edge").ReadLog();
    }
    return WIFEXITED(*status) ? WEXITSTATUS(*status) : 128;
  }

  // Runs `calls` calls of a load scenario at `rate` calls per second, at most 100 at once;
  // returns sipp's exit code (0: every call got its expected answers).
  int RunSippLoad(const std::string& scenario, int calls, int rate) {
    auto errors = stack_.dir().path() / (scenario + "-errors.log");
    Process sipp({.program = "/usr/bin/sipp",
                  .args = {"127.0.0.1:" + std::to_string(stack_.sip_port()),
                           "-sf",
                           std::string(DIMS_SIP_SCENARIOS) + "/" + scenario + ".xml",
                           "-t",
                           "u1",
                           "-i",
                           "127.0.0.1",
                           "-p",
                           std::to_string(FreePort()),
                           "-m",
                           std::to_string(calls),
                           "-r",
                           std::to_string(rate),
                           "-l",
                           "100",
                           "-timeout",
                           "120",
                           "-timeout_error",
                           "-nostdin",
                           "-trace_err",
                           "-error_file",
                           errors.string()},
                  .log = stack_.dir().path() / (scenario + ".log")});
    auto status = sipp.Wait(150s);
    if (!status) return -1;
    if (!WIFEXITED(*status) || WEXITSTATUS(*status) != 0) {
      std::ifstream in(errors);
      std::stringstream ss;
      ss << in.rdbuf();
      ADD_FAILURE() << scenario << " failed:\n"
                    << sipp.LogTail(40) << "\n"
                    << ss.str().substr(0, 4000);
    }
    return WIFEXITED(*status) ? WEXITSTATUS(*status) : 128;
  }

  dims::v1::SettingsGetResponse Settings(const std::string& aor) {
    auto channel = grpc::CreateChannel(stack_.endpoints("settings").grpc_address(),
                                       grpc::InsecureChannelCredentials());
    auto stub = dims::v1::Settings::NewStub(channel);
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + 5s);
    dims::v1::SettingsGetRequest request;
    request.mutable_aor()->set_uri(aor);
    dims::v1::SettingsGetResponse response;
    EXPECT_TRUE(stub->Get(&context, request, &response).ok());
    return response;
  }

  // The user's registration as the edge keeps it in Redis; empty when there is none.
  std::optional<dims::v1::Registration> Registration(const std::string& aor) {
    timeval timeout{2, 0};
    redisContext* c = redisConnectWithTimeout("127.0.0.1", stack_.redis().port(), timeout);
    if (!c || c->err) {
      ADD_FAILURE() << "redis connect";
      if (c) redisFree(c);
      return std::nullopt;
    }
    std::string key = "dims:reg:{" + aor + "}";
    auto* reply = static_cast<redisReply*>(redisCommand(c, "GET %b", key.data(), key.size()));
    std::optional<dims::v1::Registration> out;
    if (reply && reply->type == REDIS_REPLY_STRING) {
      dims::v1::Registration r;
      if (r.ParseFromString(std::string(reply->str, reply->len))) out = r;
    }
    if (reply) freeReplyObject(reply);
    redisFree(c);
    return out;
  }

  std::vector<StreamEntry> EventsOf(const std::string& type, const std::string& aor) {
    std::vector<StreamEntry> found;
    for (auto& e : ReadEventStream(stack_.redis().port())) {
      if (e.fields["type"] == type && e.fields["aor"] == aor) found.push_back(e);
    }
    return found;
  }

  DimsStack stack_{DimsStack::Options{.start_postgres = false}};
};

TEST_F(SipEdgeTest, PublishFollowsRfc3903OverUdpAndTcp) {
  stack_.StartService("settings");
  stack_.StartService("sip-edge");
  ASSERT_TRUE(stack_.WaitServing("settings", 20s));
  ASSERT_TRUE(stack_.WaitServing("sip-edge", 20s)) << stack_.process("sip-edge").ReadLog();
  for (std::string transport : {"u1", "t1"}) {
    std::string user = "alice-" + transport;
    EXPECT_EQ(RunSipp("publish_settings", user, transport), 0);
    // The scenario ends by removing its publication: the defaults apply again.
    auto after = Settings("sip:" + user + "@dims.test");
    EXPECT_EQ(after.publications_size(), 0);
    EXPECT_EQ(after.effective().source(), dims::v1::SETTINGS_SOURCE_DEFAULT);
  }
  // Operators see what happened, by method and status.
  auto metrics = HttpGet(stack_.endpoints("sip-edge").metrics_port, "/metrics");
  ASSERT_TRUE(metrics);
  for (const char* line : {
           "dims_sip_edge_sip_requests_total{method=\"PUBLISH\"} 14",
           "dims_sip_edge_sip_answers_total{method=\"PUBLISH\",status=\"200\"} 6",
           "dims_sip_edge_sip_answers_total{method=\"PUBLISH\",status=\"412\"} 2",
           "dims_sip_edge_sip_answers_total{method=\"PUBLISH\",status=\"423\"} 2",
           "dims_sip_edge_sip_answers_total{method=\"PUBLISH\",status=\"404\"} 2",
           "dims_sip_edge_sip_answer_duration_seconds_count{method=\"PUBLISH\"} 14",
       }) {
    EXPECT_NE(metrics->find(line), std::string::npos) << line << "\n" << *metrics;
  }
  EXPECT_NE(metrics->find("dims_sip_edge_loop_queue_delay_seconds_count "), std::string::npos);
}

TEST_F(SipEdgeTest, PublishWhileSettingsIsAwayGets503ThenIsServedWhenItReturns) {
  stack_.StartService("sip-edge");  // settings never started
  ASSERT_TRUE(stack_.WaitServing("sip-edge", 20s)) << stack_.process("sip-edge").ReadLog();
  EXPECT_EQ(RunSipp("publish_unavailable", "bob", "u1"), 0);
  // The settings service comes (back): the same edge, without a restart, serves PUBLISH.
  stack_.StartService("settings");
  ASSERT_TRUE(stack_.WaitServing("settings", 20s));
  EXPECT_EQ(RunSipp("publish_settings", "bob", "u1"), 0);
  EXPECT_TRUE(stack_.process("sip-edge").running());
}

TEST_F(SipEdgeTest, RegisterKeepsBindingsInRedisAndAnnouncesEveryChange) {
  stack_.StartService("sip-edge");
  ASSERT_TRUE(stack_.WaitServing("sip-edge", 20s)) << stack_.process("sip-edge").ReadLog();
  for (std::string transport : {"u1", "t1"}) {
    std::string user = "carol-" + transport;
    std::string aor = "sip:" + user + "@dims.test";
    EXPECT_EQ(RunSipp("register_bind", user, transport), 0);

    auto registration = Registration(aor);
    ASSERT_TRUE(registration) << "no registration in Redis for " << aor;
    ASSERT_EQ(registration->bindings_size(), 2) << registration->ShortDebugString();
    for (const auto& b : registration->bindings()) {
      EXPECT_EQ(b.aor().uri(), aor);
      EXPECT_EQ(b.feature_tags().count("+g.oma.sip-im"), 1u) << b.ShortDebugString();
      EXPECT_EQ(b.mode(), dims::v1::REGISTRATION_MODE_REGISTRAR);
      EXPECT_EQ(b.edge_address(), stack_.endpoints("sip-edge").grpc_address());
      EXPECT_FALSE(b.edge_instance_id().empty());
    }
    // Out of order and too brief changed nothing: still two, each announced once.
    EXPECT_EQ(EventsOf("registered", aor).size(), 2u);
    EXPECT_EQ(registration->bindings(0).feature_tags().at("+sip.instance"),
              "<urn:uuid:00000000-0000-1000-8000-000000000001>");

    EXPECT_EQ(RunSipp("register_unbind", user, transport), 0);
    EXPECT_FALSE(Registration(aor)) << "bindings left after Contact: *";
    auto gone = EventsOf("deregistered", aor);
    ASSERT_EQ(gone.size(), 2u);
    EXPECT_TRUE(gone.back().decoded);
    EXPECT_EQ(gone.back().event.deregistered().remaining_bindings(), 0u);
  }
}

TEST_F(SipEdgeTest, ThirdPartyRegisterFromTheCoreIsRecordedAsSuch) {
  stack_.StartService(
      "sip-edge", {{"DIMS_TRUSTED_CORE_ADDRESSES", "127.0.0.1"}, {"DIMS_REGISTRAR_MODE", "false"}});
  ASSERT_TRUE(stack_.WaitServing("sip-edge", 20s)) << stack_.process("sip-edge").ReadLog();
  EXPECT_EQ(RunSipp("register_third_party", "dave", "u1"), 0);
  auto registration = Registration("sip:dave@dims.test");
  ASSERT_TRUE(registration);
  ASSERT_EQ(registration->bindings_size(), 1);
  const auto& b = registration->bindings(0);
  EXPECT_EQ(b.mode(), dims::v1::REGISTRATION_MODE_THIRD_PARTY);
  EXPECT_EQ(b.contact_uri().rfind("sip:scscf.core.test", 0), 0u) << b.contact_uri();
  EXPECT_EQ(b.feature_tags().count("+g.oma.sip-im"), 1u);
  EXPECT_EQ(EventsOf("registered", "sip:dave@dims.test").size(), 1u);
}

TEST_F(SipEdgeTest, RegisterFromOutsideTheCoreIsRefusedWhenOnlyTheCoreMayRegister) {
  stack_.StartService(
      "sip-edge", {{"DIMS_TRUSTED_CORE_ADDRESSES", "127.0.0.2"}, {"DIMS_REGISTRAR_MODE", "false"}});
  ASSERT_TRUE(stack_.WaitServing("sip-edge", 20s)) << stack_.process("sip-edge").ReadLog();
  EXPECT_EQ(RunSipp("register_forbidden", "eve", "u1"), 0);
  EXPECT_FALSE(Registration("sip:eve@dims.test"));
  EXPECT_TRUE(EventsOf("registered", "sip:eve@dims.test").empty());
}

TEST_F(SipEdgeTest, ABindingIsGoneFromRedisWhenItExpires) {
  stack_.StartService("sip-edge", {{"DIMS_REGISTER_MIN_EXPIRES_SECONDS", "1"}});
  ASSERT_TRUE(stack_.WaitServing("sip-edge", 20s)) << stack_.process("sip-edge").ReadLog();
  EXPECT_EQ(RunSipp("register_short", "frank", "u1"), 0);
  auto registration = Registration("sip:frank@dims.test");
  ASSERT_TRUE(registration);
  EXPECT_EQ(registration->bindings_size(), 1);
  // Nobody sweeps: the record expires with its last binding.
  EXPECT_TRUE(WaitFor([&] { return !Registration("sip:frank@dims.test"); }, 10s))
      << "the binding outlived its 2 s";
}

// Bounded load: 10,000 REGISTERs and 10,000 PUBLISHes at a steady rate, every one answered
// as expected (sipp fails a call on a missing or unexpected answer).
TEST_F(SipEdgeTest, TenThousandRegistersAndPublishesAtASteadyRateAreAllAnswered) {
  stack_.StartService("settings");
  stack_.StartService("sip-edge");
  ASSERT_TRUE(stack_.WaitServing("settings", 20s));
  ASSERT_TRUE(stack_.WaitServing("sip-edge", 20s)) << stack_.process("sip-edge").ReadLog();
  EXPECT_EQ(RunSippLoad("load_register", 10000, 400), 0);
  EXPECT_EQ(RunSippLoad("load_publish", 10000, 400), 0);
  auto metrics = HttpGet(stack_.endpoints("sip-edge").metrics_port, "/metrics");
  ASSERT_TRUE(metrics);
  EXPECT_NE(metrics->find("dims_sip_edge_sip_answers_total{method=\"REGISTER\",status=\"200\"} "
                          "10000"),
            std::string::npos);
  EXPECT_NE(metrics->find("dims_sip_edge_sip_answers_total{method=\"PUBLISH\",status=\"200\"} "
                          "10000"),
            std::string::npos);
  EXPECT_TRUE(Registration("sip:load-9999@dims.test").has_value());
  // What the services hold, as operators see it (the gauges count every 15 s).
  auto gauge_reads = [&](const std::string& service, const std::string& line) {
    return WaitFor(
        [&] {
          auto page = HttpGet(stack_.endpoints(service).metrics_port, "/metrics");
          return page && page->find("\n" + line + "\n") != std::string::npos;
        },
        40s);
  };
  EXPECT_TRUE(gauge_reads("sip-edge", "dims_sip_edge_registrations 10000"));
  EXPECT_TRUE(gauge_reads("settings", "dims_settings_users 10000"));
}

}  // namespace
}  // namespace dims::testing
