#include "retry_delay.h"

#include <algorithm>

namespace dims::delivery {

std::chrono::milliseconds RetryDelay(uint32_t consecutive_failures, std::chrono::milliseconds first,
                                     std::chrono::milliseconds cap, std::mt19937_64& random) {
  uint32_t doublings =
      std::min<uint32_t>(consecutive_failures > 0 ? consecutive_failures - 1 : 0, 20);
  int64_t delay = std::min<int64_t>(first.count() << doublings, cap.count());
  std::uniform_int_distribution<int64_t> jitter(0, delay / 4);
  return std::chrono::milliseconds(delay - jitter(random));
}

}  // namespace dims::delivery
