// The Prometheus text checker is itself an assertion in the integration tests, so it must
// reject what Prometheus would reject.
#include "test_servers.h"

#include <gtest/gtest.h>

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

}  // namespace
}  // namespace dims::testing
