// The msrp-relay's metrics (docs/msrp.md "Metrics"), created once at start.
#pragma once

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>

#include <string>

#include "metrics.h"

namespace dims::relay {

struct RelayMetrics {
  explicit RelayMetrics(MetricsRegistry& registry);

  prometheus::Gauge& sessions_outgoing;
  prometheus::Counter& sessions_opened;
  prometheus::Family<prometheus::Counter>& session_connects;
  prometheus::Gauge& connections;
  prometheus::Family<prometheus::Counter>& messages_sent;
  prometheus::Counter& bytes_sent;
  prometheus::Counter& chunks_sent;
  prometheus::Counter& transaction_timeouts;
  prometheus::Histogram& push_duration;

  // setup "active" | "passive", result "connected" | "failed" | "timeout".
  void CountConnect(const std::string& setup, const std::string& result);
  // outcome "delivered" | "rejected" | "failed".
  void CountMessage(const std::string& outcome);
};

}  // namespace dims::relay
