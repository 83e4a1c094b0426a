// The sip-edge with real SIP peers (sipp scenarios in tests/sip/), Redis and the settings
// service: IM service settings by PUBLISH over UDP and TCP.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <fstream>

#include "dims/v1/settings.grpc.pb.h"
#include "dims_stack.h"

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
}

TEST_F(SipEdgeTest, PublishWhileSettingsIsAwayGets503WithRetryAfter) {
  stack_.StartService("sip-edge");  // settings never started
  ASSERT_TRUE(stack_.WaitServing("sip-edge", 20s)) << stack_.process("sip-edge").ReadLog();
  EXPECT_EQ(RunSipp("publish_unavailable", "bob", "u1"), 0);
}

}  // namespace
}  // namespace dims::testing
