// The metrics registry of a service and its Prometheus /metrics endpoint. Every metric name
// starts with dims_<service>_ (service "sip-edge" -> "dims_sip_edge_"). Families and
// metrics are created once at start and kept by reference: prometheus-cpp owns them.
#pragma once

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <map>
#include <memory>
#include <string>
#include <string_view>

namespace prometheus {
class Exposer;
}

namespace dims {

class MetricsRegistry {
 public:
  explicit MetricsRegistry(std::string_view service);
  ~MetricsRegistry();
  MetricsRegistry(const MetricsRegistry&) = delete;
  MetricsRegistry& operator=(const MetricsRegistry&) = delete;

  // "dims_sip_edge_" for "sip-edge".
  static std::string PrefixFor(std::string_view service);
  const std::string& prefix() const { return prefix_; }

  // `name` is without the prefix, e.g. "requests_total". Calling twice with the same name
  // returns the same family.
  prometheus::Family<prometheus::Counter>& CounterFamily(const std::string& name,
                                                         const std::string& help);
  prometheus::Family<prometheus::Gauge>& GaugeFamily(const std::string& name,
                                                     const std::string& help);
  prometheus::Family<prometheus::Histogram>& HistogramFamily(const std::string& name,
                                                             const std::string& help);

  // Starts serving /metrics on host:port (port 0 picks a free port; see bound_port()).
  void Serve(const std::string& host_port);
  int bound_port() const;

  // Standard metrics every service carries.
  void SetReady(bool ready);
  void SetDependencyUp(const std::string& dependency, bool up);

  std::shared_ptr<prometheus::Registry> registry() const { return registry_; }

 private:
  std::string prefix_;
  std::shared_ptr<prometheus::Registry> registry_;
  std::unique_ptr<prometheus::Exposer> exposer_;
  std::map<std::string, prometheus::Family<prometheus::Counter>*> counters_;
  std::map<std::string, prometheus::Family<prometheus::Gauge>*> gauges_;
  std::map<std::string, prometheus::Family<prometheus::Histogram>*> histograms_;
  prometheus::Gauge* ready_ = nullptr;
  prometheus::Family<prometheus::Gauge>* dependency_up_ = nullptr;
};

}  // namespace dims
