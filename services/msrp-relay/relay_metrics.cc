#include "relay_metrics.h"

namespace dims::relay {

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
      messages_sent(registry.CounterFamily("messages_sent_total",
                                           "Pushed messages by outcome (delivered, rejected, "
                                           "failed).")),
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

void RelayMetrics::CountMessage(const std::string& outcome) {
  messages_sent.Add({{"outcome", outcome}}).Increment();
}

}  // namespace dims::relay
