#include "relay_metrics.h"

namespace dims::relay {
namespace {

prometheus::Family<prometheus::Counter>& MessagesSent(MetricsRegistry& registry) {
  return registry.CounterFamily("messages_sent_total",
                                "Pushed messages by outcome (delivered, rejected, failed).");
}

}  // namespace

RelayMetrics::RelayMetrics(MetricsRegistry& registry)
    : sessions_outgoing(registry.GaugeFamily("sessions", "MSRP sessions held, by direction.")
                            .Add({{"direction", "outgoing"}})),
      sessions_opened(
          registry.CounterFamily("sessions_opened_total", "Push sessions opened (OpenSession).")
              .Add({})),
      session_connects(registry.CounterFamily(
          "session_connects_total",
          "Session connection attempts by the relay's role (setup) and result.")),
      connections(registry.GaugeFamily("connections", "Open MSRP TCP connections.").Add({})),
      messages_delivered(MessagesSent(registry).Add({{"outcome", "delivered"}})),
      messages_rejected(MessagesSent(registry).Add({{"outcome", "rejected"}})),
      messages_failed(MessagesSent(registry).Add({{"outcome", "failed"}})),
      bytes_sent(registry.CounterFamily("bytes_sent_total", "SEND body bytes written.").Add({})),
      chunks_sent(registry.CounterFamily("chunks_sent_total", "SEND chunks written.").Add({})),
      transaction_timeouts(registry
                               .CounterFamily("transaction_timeouts_total",
                                              "MSRP transactions without a response in time (408).")
                               .Add({})),
      push_duration(registry
                        .HistogramFamily("push_duration_seconds",
                                         "Duration of Push streams, from start to end.")
                        .Add({}, prometheus::Histogram::BucketBoundaries{0.01, 0.05, 0.1, 0.5, 1, 5,
                                                                         10, 30, 60, 300, 600})) {
  registry.GaugeFamily("sessions", "MSRP sessions held, by direction.")
      .Add({{"direction", "incoming"}});
}

void RelayMetrics::CountConnect(const std::string& setup, const std::string& result) {
  session_connects.Add({{"setup", setup}, {"result", result}}).Increment();
}

void RelayMetrics::CountMessage(dims::v1::PushOutcome outcome) {
  switch (outcome) {
    case dims::v1::PUSH_OUTCOME_DELIVERED:
      messages_delivered.Increment();
      break;
    case dims::v1::PUSH_OUTCOME_REJECTED:
      messages_rejected.Increment();
      break;
    default:
      messages_failed.Increment();
  }
}

}  // namespace dims::relay
