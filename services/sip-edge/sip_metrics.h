// What the edge counts, for operators: requests and answers by method and status, answer
// latency, and the SIP loop's post queue. Used on the SIP loop thread only, except the queue
// metrics, which prometheus-cpp makes safe to update from any thread.
#pragma once

#include <chrono>
#include <map>
#include <string>
#include <utility>

#include "metrics.h"

namespace dims::edge {

class SipMetrics {
 public:
  explicit SipMetrics(MetricsRegistry& registry);

  void Request(const std::string& method);
  void Answered(const std::string& method, int status, std::chrono::steady_clock::duration took);

  prometheus::Gauge& queue_depth() { return *queue_depth_; }
  prometheus::Histogram& queue_delay() { return *queue_delay_; }

 private:
  prometheus::Family<prometheus::Counter>& requests_;
  prometheus::Family<prometheus::Counter>& answers_;
  prometheus::Family<prometheus::Histogram>& latency_;
  // prometheus-cpp looks labels up under a lock; the loop keeps what it made.
  std::map<std::string, prometheus::Counter*> request_counters_;
  std::map<std::pair<std::string, int>, prometheus::Counter*> answer_counters_;
  std::map<std::string, prometheus::Histogram*> latency_histograms_;
  prometheus::Gauge* queue_depth_;
  prometheus::Histogram* queue_delay_;
};

}  // namespace dims::edge
