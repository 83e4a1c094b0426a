// The msrp-relay's metrics (docs/msrp.md "Metrics"), created once at start.
#pragma once

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>

#include <string>

#include "dims/v1/relay.pb.h"
#include "metrics.h"

namespace dims::relay {

struct RelayMetrics {
  explicit RelayMetrics(MetricsRegistry& registry);

  prometheus::Gauge& sessions_outgoing;
  prometheus::Counter& sessions_opened;
  prometheus::Family<prometheus::Counter>& session_connects;
  prometheus::Gauge& connections;
  // Per outcome, resolved once: counted for every message pushed.
  prometheus::Counter& messages_delivered;
  prometheus::Counter& messages_rejected;
  prometheus::Counter& messages_failed;
  prometheus::Counter& bytes_sent;
  prometheus::Counter& chunks_sent;
  prometheus::Counter& transaction_timeouts;
  prometheus::Histogram& push_duration;

  // setup "active" | "passive", result "connected" | "failed" | "timeout".
  void CountConnect(const std::string& setup, const std::string& result);
  void CountMessage(dims::v1::PushOutcome outcome);
};

}  // namespace dims::relay
