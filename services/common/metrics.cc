#include "metrics.h"

#include <prometheus/exposer.h>

#include <chrono>

#include "version.h"

namespace dims {

std::string MetricsRegistry::PrefixFor(std::string_view service) {
  std::string prefix = "dims_";
  for (char c : service) prefix += (c == '-' || c == '.') ? '_' : c;
  return prefix + "_";
}

MetricsRegistry::MetricsRegistry(std::string_view service)
    : prefix_(PrefixFor(service)), registry_(std::make_shared<prometheus::Registry>()) {
  GaugeFamily("build_info", "Build of this service; the value is always 1.")
      .Add({{"version", kVersion}, {"release", ReleaseToken()}})
      .Set(1);
  auto now = std::chrono::system_clock::now().time_since_epoch();
  GaugeFamily("start_time_seconds", "Unix time at which this process started.")
      .Add({})
      .Set(std::chrono::duration<double>(now).count());
  ready_ = &GaugeFamily("ready", "1 when the service reports SERVING, 0 otherwise.").Add({});
  dependency_up_ = &GaugeFamily("dependency_up",
                                "1 when the last probe of a dependency succeeded, 0 otherwise.");
}

MetricsRegistry::~MetricsRegistry() = default;

prometheus::Family<prometheus::Counter>& MetricsRegistry::CounterFamily(const std::string& name,
                                                                        const std::string& help) {
  auto& slot = counters_[name];
  if (!slot)
    slot = &prometheus::BuildCounter().Name(prefix_ + name).Help(help).Register(*registry_);
  return *slot;
}

prometheus::Family<prometheus::Gauge>& MetricsRegistry::GaugeFamily(const std::string& name,
                                                                    const std::string& help) {
  auto& slot = gauges_[name];
  if (!slot) slot = &prometheus::BuildGauge().Name(prefix_ + name).Help(help).Register(*registry_);
  return *slot;
}

prometheus::Family<prometheus::Histogram>& MetricsRegistry::HistogramFamily(
    const std::string& name, const std::string& help) {
  auto& slot = histograms_[name];
  if (!slot) {
    slot = &prometheus::BuildHistogram().Name(prefix_ + name).Help(help).Register(*registry_);
  }
  return *slot;
}

void MetricsRegistry::Serve(const std::string& host_port) {
  exposer_ = std::make_unique<prometheus::Exposer>(host_port, 2);
  exposer_->RegisterCollectable(registry_);
}

int MetricsRegistry::bound_port() const {
  if (!exposer_) return 0;
  auto ports = exposer_->GetListeningPorts();
  return ports.empty() ? 0 : ports.front();
}

void MetricsRegistry::SetReady(bool ready) { ready_->Set(ready ? 1 : 0); }

void MetricsRegistry::SetDependencyUp(const std::string& dependency, bool up) {
  dependency_up_->Add({{"dependency", dependency}}).Set(up ? 1 : 0);
}

}  // namespace dims
