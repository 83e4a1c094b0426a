// A per-user lease in Redis with a fencing token (DESIGN "Scaling": work for one user is
// serialised by a Redis lock, never by pinning a user to a pod). Delivery replicas take the
// lease of a user before they notify or push, so that two replicas never work on one user at
// once; a replica that dies loses its lease when it runs out, and the next holder gets a
// higher token, so that anything still arriving from the old holder can be told apart.
//
// Keys, in the user's hash tag so that both land on one cluster slot:
//   dims:lease:<purpose>:{<aor>}  the holder's token, with the lease's TTL
//   dims:fence:<purpose>:{<aor>}  the last token handed out (only ever grows)
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "redis_pool.h"

namespace dims {

struct Lease {
  std::string aor;
  uint64_t token = 0;  // fencing token: higher for every new holder of this user's lease
};

class UserLeases {
 public:
  UserLeases(RedisPool& redis, std::string purpose, std::chrono::milliseconds ttl);

  // The lease, or nothing while another holder has it. Throws RedisError.
  std::optional<Lease> TryAcquire(const std::string& aor);
  // Extends a lease still held by `lease`; false when it ran out (or another holder has it):
  // the work must stop. Throws RedisError.
  bool Renew(const Lease& lease);
  // Gives the lease up if `lease` still holds it; nothing otherwise. Throws RedisError.
  void Release(const Lease& lease);
  // Sets `fields` of the hash at `key` (one of the user's keys: the same hash tag) and gives
  // the hash `ttl`, only while `lease` holds the lease: a holder whose lease ran out writes
  // nothing. False when it did not hold it. Throws RedisError.
  bool HashSetIfHeld(const Lease& lease, const std::string& key,
                     const std::vector<std::pair<std::string, std::string>>& fields,
                     std::chrono::seconds ttl);

  std::string LeaseKey(const std::string& aor) const;
  std::string FenceKey(const std::string& aor) const;

 private:
  RedisPool& redis_;
  std::string purpose_;
  std::chrono::milliseconds ttl_;
};

}  // namespace dims
