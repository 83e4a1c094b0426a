// The Delivery gRPC service (delivery.proto): Trigger records a trigger in the shared schedule
// as a bus event would; GetDeliveryState tells an operator where a user's delivery stands.
// Both only touch Redis, on the service's worker threads.
#pragma once

#include <functional>

#include "delivery_schedule.h"
#include "dims/v1/delivery.grpc.pb.h"
#include "user_lease.h"
#include "worker_pool.h"

namespace dims::delivery {

class DeliveryService : public dims::v1::Delivery::CallbackService {
 public:
  // `wake` is called after a trigger that is due now was recorded.
  DeliveryService(DeliverySchedule& schedule, const UserLeases& leases, WorkerPool& workers,
                  std::function<void()> wake);

  grpc::ServerUnaryReactor* Trigger(grpc::CallbackServerContext* context,
                                    const dims::v1::DeliveryTriggerRequest* request,
                                    dims::v1::DeliveryTriggerResponse* response) override;
  grpc::ServerUnaryReactor* GetDeliveryState(
      grpc::CallbackServerContext* context,
      const dims::v1::DeliveryGetDeliveryStateRequest* request,
      dims::v1::DeliveryGetDeliveryStateResponse* response) override;

 private:
  dims::v1::DeliveryState StateOf(const std::string& aor);

  DeliverySchedule& schedule_;
  const UserLeases& leases_;
  WorkerPool& workers_;
  std::function<void()> wake_;
};

}  // namespace dims::delivery
