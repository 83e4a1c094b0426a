// How long delivery waits before trying a user again after failed attempts: capped exponential
// backoff with jitter. Pure; the runner schedules the retry.
#pragma once

#include <chrono>
#include <cstdint>
#include <random>

namespace dims::delivery {

// After `consecutive_failures` failed attempts (1 or more): doubling from `first`, capped at
// `cap`, with up to a quarter taken off at random so that users who failed together do not all
// come back together.
std::chrono::milliseconds RetryDelay(uint32_t consecutive_failures, std::chrono::milliseconds first,
                                     std::chrono::milliseconds cap, std::mt19937_64& random);

}  // namespace dims::delivery
