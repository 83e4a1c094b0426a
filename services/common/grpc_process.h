// Process-wide settings for a process that speaks gRPC, applied before its first call:
// ServiceHost::Create applies them, and so does a benchmark's load generator.
#pragma once

#include <absl/synchronization/mutex.h>

namespace dims {

inline void ApplyGrpcProcessSettings() {
  // Debian's Abseil keeps absl::Mutex's lock-order graph (deadlock detection) on, and gRPC
  // takes such mutexes on every call: a cost paid per RPC for a debugging aid.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
}

}  // namespace dims
