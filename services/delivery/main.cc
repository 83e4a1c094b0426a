// dims-delivery: decides and drives delivery and notification of deferred messages, and
// serves the public Messaging API for other backend systems.
#include "bus_event.h"
#include "delivery_dispatcher.h"
#include "delivery_runner.h"
#include "delivery_schedule.h"
#include "delivery_service.h"
#include "dims/v1/messaging.grpc.pb.h"
#include "event_consumer.h"
#include "service_host.h"
#include "user_lease.h"
#include "worker_pool.h"

int main(int argc, char** argv) {
  namespace validate = dims::validate;
  auto
      host =
          dims::ServiceHost::Create(
              {.name = "delivery",
               .description = "delivery decisions and runs; public Messaging API",
               .default_grpc_port = 50054,
               .default_metrics_port = 9104,
               .options =
                   {
                       dims::RedisOption(
                           "event bus, delivery schedule and per-user delivery locks"),
                       dims::PeerOption("settings", "settings", 50052),
                       dims::PeerOption("storage", "storage", 50053),
                       dims::PeerOption("relay", "msrp-relay", 50055),
                       {"event-stream", dims::kEventStream, "Redis stream of the event bus",
                        validate::NonEmpty()},
                       {"notify-by-message", "unsubscribed",
                        "who gets a notification MESSAGE about new deferred messages (seed 000): "
                        "never, "
                        "unsubscribed (users without a message-summary subscription) or always",
                        validate::OneOf({"never", "unsubscribed", "always"})},
                       {"notification-message-entries", "5",
                        "per-message blocks in a notification MESSAGE (the counts cover all)",
                        validate::IntInRange(0, 50)},
                       {"notify-summary-entries", "50",
                        "per-message blocks in a message-summary NOTIFY",
                        validate::IntInRange(0, 100)},
                       {"registration-settle-ms", "2000",
                        "how long a new registration waits for the client's settings PUBLISH "
                        "before the user is evaluated without it (seed 002: the client publishes "
                        "after every initial registration)",
                        validate::IntInRange(0, 60000)},
                       {"concurrent-users", "128",
                        "users evaluated at once by this instance (a push holds one for its "
                        "length, mostly waiting on the client)",
                        validate::IntInRange(1, 1024)},
                       {"lease-ms", "30000", "per-user lease; renewed before every step",
                        validate::IntInRange(1000, 600000)},
                       {"push-window", "1",
                        "MSRP SENDs of a push awaiting the client's answer at once; with 1, a "
                        "broken "
                        "session can leave at most one message delivered but not confirmed (sent "
                        "again)",
                        validate::IntInRange(1, 64)},
                       {"push-ack-linger-ms", "20",
                        "how long a push's confirmed messages wait for others to share their "
                        "Ack to storage",
                        validate::IntInRange(0, 1000)},
                       {"push-invite-timeout-ms", "40000",
                        "how long a push INVITE may wait for the client's final answer",
                        validate::IntInRange(1000, 300000)},
                       {"push-max-seconds", "600",
                        "the longest a push may run (then the rest waits)",
                        validate::IntInRange(10, 86400)},
                       {"claim-idle-ms", "30000",
                        "a bus event pending this long at a consumer is taken over by another",
                        validate::IntInRange(1000, 3600000)},
                   }},
              argc, argv);
  const auto& config = host->config();
  const int concurrent = static_cast<int>(config.GetInt("concurrent-users"));
  auto redis = host->ConnectRedis(concurrent + 6);
  auto settings = host->ConnectPeer("settings", "settings");
  auto storage = host->ConnectPeer("storage", "storage");
  auto relay = host->ConnectPeer("relay", "msrp-relay");

  const auto lease_ms = std::chrono::milliseconds(config.GetInt("lease-ms"));
  dims::UserLeases leases(*redis, "delivery", lease_ms);
  dims::delivery::DeliverySchedule schedule(*redis, {.claim_visibility = 2 * lease_ms});
  std::string by_message = config.Get("notify-by-message");
  dims::delivery::DeliveryRunner runner(
      *redis, schedule, leases, settings, storage, relay, host->metrics(),
      {.instance_id = host->instance_id(),
       .by_message = by_message == "never"    ? dims::delivery::MessageNotification::kNever
                     : by_message == "always" ? dims::delivery::MessageNotification::kAlways
                                              : dims::delivery::MessageNotification::kUnsubscribed,
       .summary_entries = static_cast<int>(config.GetInt("notify-summary-entries")),
       .message_entries = static_cast<int>(config.GetInt("notification-message-entries")),
       .push = {
           .invite_timeout = std::chrono::milliseconds(config.GetInt("push-invite-timeout-ms")),
           .max_duration = std::chrono::seconds(config.GetInt("push-max-seconds")),
           .window = static_cast<uint32_t>(config.GetInt("push-window")),
           .ack_linger = std::chrono::milliseconds(config.GetInt("push-ack-linger-ms")),
           .keep_alive_every = lease_ms / 3}});
  dims::delivery::DeliveryDispatcher dispatcher(
      *redis, schedule, runner, host->metrics(), concurrent,
      std::chrono::milliseconds(config.GetInt("registration-settle-ms")));
  dims::delivery::EventConsumer events(
      *redis,
      {.stream = config.Get("event-stream"),
       .consumer = host->instance_id(),
       .claim_idle = std::chrono::milliseconds(config.GetInt("claim-idle-ms"))},
      [&dispatcher](const auto& batch) { return dispatcher.Accept(batch); });

  dims::WorkerPool api_workers("delivery-api", 4, 1000);
  dims::delivery::DeliveryService delivery(schedule, leases, api_workers,
                                           [&dispatcher] { dispatcher.Wake(); });
  // The Messaging API answers UNIMPLEMENTED until its issue lands.
  dims::v1::Messaging::CallbackService messaging;
  host->AddService(&delivery, dims::v1::Delivery::service_full_name());
  host->AddService(&messaging, dims::v1::Messaging::service_full_name());
  host->OnDrain([&] {
    events.Stop();
    dispatcher.Stop();
  });
  host->OnStop([&] { api_workers.Stop(); });
  return host->Run();
}
