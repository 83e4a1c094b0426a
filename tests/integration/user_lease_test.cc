// The per-user lease with its fencing token against a real Redis: one holder at a time, a
// higher token for every new holder, renewal and release only by the holder, and a lease that
// runs out passing to the next one.
#include "user_lease.h"

#include <gtest/gtest.h>
#include <hiredis/hiredis.h>

#include <thread>

#include "test_servers.h"

namespace dims::testing {
namespace {
using namespace std::chrono_literals;

class UserLeaseTest : public ::testing::Test {
 protected:
  TempDir dir_;
  RedisServer redis_server_{dir_.path()};
  RedisPool redis_{{.port = redis_server_.port()}};
};

TEST_F(UserLeaseTest, OneHolderAtATimeAndEveryNewHolderGetsAHigherToken) {
  UserLeases replica_a(redis_, "delivery", 5000ms);
  UserLeases replica_b(redis_, "delivery", 5000ms);
  auto first = replica_a.TryAcquire("sip:alice@dims.test");
  ASSERT_TRUE(first);
  EXPECT_FALSE(replica_b.TryAcquire("sip:alice@dims.test"));
  // Other users are independent.
  EXPECT_TRUE(replica_b.TryAcquire("sip:bob@dims.test"));

  replica_a.Release(*first);
  auto second = replica_b.TryAcquire("sip:alice@dims.test");
  ASSERT_TRUE(second);
  EXPECT_GT(second->token, first->token);
}

TEST_F(UserLeaseTest, OnlyTheHolderRenewsOrReleases) {
  UserLeases leases(redis_, "delivery", 5000ms);
  auto held = leases.TryAcquire("sip:alice@dims.test");
  ASSERT_TRUE(held);
  Lease stale{held->aor, held->token - 1};
  EXPECT_FALSE(leases.Renew(stale));
  leases.Release(stale);  // not the holder: nothing happens
  EXPECT_FALSE(leases.TryAcquire("sip:alice@dims.test"));
  EXPECT_TRUE(leases.Renew(*held));
  leases.Release(*held);
  EXPECT_TRUE(leases.TryAcquire("sip:alice@dims.test"));
}

TEST_F(UserLeaseTest, ALeaseThatRunsOutPassesOnAndTheOldHolderCanNoLongerRenew) {
  UserLeases short_lived(redis_, "delivery", 300ms);
  auto dead_holder = short_lived.TryAcquire("sip:alice@dims.test");
  ASSERT_TRUE(dead_holder);
  ASSERT_TRUE(
      WaitFor([&] { return short_lived.TryAcquire("sip:alice@dims.test").has_value(); }, 5s));
  EXPECT_FALSE(short_lived.Renew(*dead_holder));
  // The purpose separates leases: a push lease does not block a notification lease.
  UserLeases push(redis_, "push", 5000ms);
  EXPECT_TRUE(push.TryAcquire("sip:alice@dims.test"));
}

TEST_F(UserLeaseTest, OnlyTheHolderWritesTheUsersState) {
  UserLeases leases(redis_, "delivery", 5000ms);
  auto held = leases.TryAcquire("sip:alice@dims.test");
  ASSERT_TRUE(held);
  const std::string key = "dims:delivery:{sip:alice@dims.test}";
  EXPECT_TRUE(leases.HashSetIfHeld(*held, key, {{"state", "one"}, {"seen", "7"}}, 60s));
  Lease stale{held->aor, held->token - 1};
  EXPECT_FALSE(leases.HashSetIfHeld(stale, key, {{"state", "stale"}}, 60s));
  auto value = redis_.Command({"HGET", key, "state"});
  ASSERT_EQ(value->type, REDIS_REPLY_STRING);
  EXPECT_EQ(std::string(value->str, value->len), "one");
  auto ttl = redis_.Command({"TTL", key});
  EXPECT_GT(ttl->integer, 0);
  leases.Release(*held);
  EXPECT_FALSE(leases.HashSetIfHeld(*held, key, {{"state", "late"}}, 60s));
}

}  // namespace
}  // namespace dims::testing
