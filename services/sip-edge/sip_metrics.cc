#include "sip_metrics.h"

namespace dims::edge {
namespace {

const prometheus::Histogram::BucketBoundaries kLatency = {
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};

}  // namespace

SipMetrics::SipMetrics(MetricsRegistry& registry)
    : requests_(registry.CounterFamily("sip_requests_total", "SIP requests received, by method.")),
      answers_(registry.CounterFamily("sip_answers_total",
                                      "Final SIP answers sent by DIMS, by method and status.")),
      latency_(registry.HistogramFamily(
          "sip_answer_duration_seconds",
          "Time from a request's arrival to DIMS's final answer, by method.")) {
  queue_depth_ = &registry
                      .GaugeFamily("loop_queue_depth",
                                   "Tasks (service answers) waiting for the SIP loop thread.")
                      .Add({});
  queue_delay_ = &registry
                      .HistogramFamily("loop_queue_delay_seconds",
                                       "Time a task waited before the SIP loop thread ran it.")
                      .Add({}, prometheus::Histogram::BucketBoundaries{0.0001, 0.0005, 0.001, 0.005,
                                                                       0.01, 0.05, 0.1, 0.5});
}

void SipMetrics::Request(const std::string& method) {
  auto& c = request_counters_[method];
  if (!c) c = &requests_.Add({{"method", method}});
  c->Increment();
}

void SipMetrics::Answered(const std::string& method, int status,
                          std::chrono::steady_clock::duration took) {
  auto& c = answer_counters_[{method, status}];
  if (!c) c = &answers_.Add({{"method", method}, {"status", std::to_string(status)}});
  c->Increment();
  auto& h = latency_histograms_[method];
  if (!h) h = &latency_.Add({{"method", method}}, kLatency);
  h->Observe(std::chrono::duration<double>(took).count());
}

}  // namespace dims::edge
