#include "retry_delay.h"

#include <gtest/gtest.h>

#include <set>

namespace dims::delivery {
namespace {
using namespace std::chrono_literals;

TEST(RetryDelay, DoublesFromTheFirstUpToTheCapWithAtMostAQuarterTakenOff) {
  std::mt19937_64 random(7);
  for (int run = 0; run < 200; ++run) {
    auto first = RetryDelay(1, 1000ms, 60000ms, random);
    EXPECT_LE(first, 1000ms);
    EXPECT_GE(first, 750ms);
    auto third = RetryDelay(3, 1000ms, 60000ms, random);
    EXPECT_LE(third, 4000ms);
    EXPECT_GE(third, 3000ms);
    auto late = RetryDelay(40, 1000ms, 60000ms, random);
    EXPECT_LE(late, 60000ms);
    EXPECT_GE(late, 45000ms);
  }
  // The jitter spreads users: not every delay is the same.
  std::set<int64_t> seen;
  for (int run = 0; run < 20; ++run) seen.insert(RetryDelay(5, 1000ms, 60000ms, random).count());
  EXPECT_GT(seen.size(), 5u);
}

}  // namespace
}  // namespace dims::delivery
