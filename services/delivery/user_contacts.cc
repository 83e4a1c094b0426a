#include "user_contacts.h"

#include <hiredis/hiredis.h>

#include "user_records.h"

namespace dims::delivery {

std::vector<UserView> ReadContacts(RedisPool& redis, const std::vector<std::string>& aors) {
  std::vector<std::vector<std::string>> commands;
  for (const auto& aor : aors) {
    commands.push_back({"HVALS", SubscriptionsKey(aor)});
    commands.push_back({"GET", RegistrationKey(aor)});
  }
  auto replies = redis.Pipeline(commands);
  auto now = std::chrono::system_clock::now();
  std::vector<UserView> users(aors.size());
  for (size_t i = 0; i < aors.size(); ++i) {
    const redisReply* subscriptions = replies[2 * i].get();
    const redisReply* registration = replies[2 * i + 1].get();
    if (subscriptions->type == REDIS_REPLY_ERROR || registration->type == REDIS_REPLY_ERROR) {
      throw RedisError("reading how " + aors[i] + " can be reached");
    }
    std::vector<std::string> records;
    for (size_t k = 0; subscriptions->type == REDIS_REPLY_ARRAY && k < subscriptions->elements;
         ++k) {
      records.emplace_back(subscriptions->element[k]->str, subscriptions->element[k]->len);
    }
    users[i].subscriptions = LiveSubscriptions(records, now);
    if (registration->type == REDIS_REPLY_STRING) {
      users[i].registration.ParseFromArray(registration->str, static_cast<int>(registration->len));
    }
  }
  return users;
}

}  // namespace dims::delivery
