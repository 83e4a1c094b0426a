// The test support that the integration tests rely on: the Prometheus text checker is itself
// an assertion, so it must reject what Prometheus would reject; FreePort must not hand one port
// to two test processes running side by side.
#include "test_servers.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <unistd.h>

#include <set>

namespace dims::testing {
namespace {

TEST(PrometheusText, AcceptsTheExpositionFormat) {
  std::string error;
  EXPECT_TRUE(IsValidPrometheusText(
      "# HELP dims_storage_ready 1 when serving\n"
      "# TYPE dims_storage_ready gauge\n"
      "dims_storage_ready 1\n"
      "dims_storage_dependency_up{dependency=\"postgres\"} 0\n"
      "dims_storage_latency_seconds_bucket{le=\"+Inf\",op=\"a\\\"b\"} 3 1700000000000\n"
      "dims_storage_x 1.5e-3\n"
      "exposer_request_latencies{quantile=\"0.5\"} Nan\n",
      &error))
      << error;
}

TEST(PrometheusText, RejectsMalformedLines) {
  std::string error;
  EXPECT_FALSE(IsValidPrometheusText("dims ready 1\n", &error));
  EXPECT_EQ(error, "line 1: dims ready 1");
  EXPECT_FALSE(IsValidPrometheusText("dims_x{a=b} 1\n", &error));
  EXPECT_FALSE(IsValidPrometheusText("# TYPE dims_x meter\n", &error));
  EXPECT_FALSE(IsValidPrometheusText("dims_x one\n", &error));
  EXPECT_FALSE(IsValidPrometheusText("# HELP dims_x nothing else\n", &error));
  EXPECT_EQ(error, "no samples");
}

// Another process cannot claim a port this one was handed: its claim file is locked.
TEST(FreePort, APortHandedOutIsClaimedAgainstOtherTestProcesses) {
  std::set<int> ports;
  for (int i = 0; i < 20; ++i) ports.insert(FreePort());
  EXPECT_EQ(ports.size(), 20u) << "a port handed out twice";
  std::string path = PortClaimFile(*ports.begin());
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    int fd = open(path.c_str(), O_RDWR);
    _exit(fd >= 0 && flock(fd, LOCK_EX | LOCK_NB) != 0 ? 0 : 1);
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
      << "another process could claim port " << *ports.begin();
}

}  // namespace
}  // namespace dims::testing
