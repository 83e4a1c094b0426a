// How users can be reached, as the edge recorded it in Redis: their live message-summary
// subscriptions and their registration, read for many users in one round trip.
#pragma once

#include <string>
#include <vector>

#include "delivery_plan.h"
#include "redis_pool.h"

namespace dims::delivery {

// One UserView per AOR, in order, with `subscriptions` and `registration` filled in (the rest is
// left empty). Throws RedisError.
std::vector<UserView> ReadContacts(RedisPool& redis, const std::vector<std::string>& aors);

}  // namespace dims::delivery
