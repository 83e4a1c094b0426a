// sip_edge_bench: REGISTER and PUBLISH transactions through the sip-edge at a ladder of offered
// rates, driven by sipp over UDP: transactions per second achieved, failures and timeouts, and
// answer latency.
//
//   sip_edge_bench [--seconds N] [--max-transactions N] [--rate R]...
//
// Starts a private Redis, dims-settings and dims-sip-edge (tests/support), then for REGISTER and
// PUBLISH at each rate (default 500, 1000 and 2000 per second) runs one sipp with
// min(rate * --seconds, --max-transactions) transactions (defaults 5 s and 20000), each cell
// with users of its own (copies of tests/sip/load_register.xml and load_publish.xml). Latency
// is printed twice: as sipp measured it (request sent to 200 received, its response-time trace,
// exact percentiles), and as the edge's histogram dims_sip_edge_sip_answer_duration_seconds saw
// it (arrival to answer inside the edge, interpolated within buckets). Exits 1 when a cell got
// no answer at all or a service died, so that the ctest smoke run notices a broken edge.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "bench_support.h"
#include "dims_stack.h"
#include "test_servers.h"

namespace dims::testing {
namespace {
using namespace std::chrono_literals;
namespace fs = std::filesystem;

constexpr int kRecvTimeoutMs = 5000;  // sipp gives a transaction up after this

struct Flags {
  double seconds = 5;
  long max_transactions = 20'000;
  std::vector<int> rates;  // empty: 500, 1000 and 2000
};

bool ParseFlags(int argc, char** argv, Flags* flags) {
  bool ok = ParseNumberFlags(
      argc, argv,
      {{"--seconds", [&](double v) { return (flags->seconds = v) > 0; }},
       {"--max-transactions",
        [&](double v) { return (flags->max_transactions = static_cast<long>(v)) > 0; }},
       {"--rate", [&](double v) {
          flags->rates.push_back(static_cast<int>(v));
          return v >= 1 && v <= 100'000;
        }}});
  if (flags->rates.empty()) flags->rates = {500, 1000, 2000};
  return ok;
}

// Replaces every `from` in `text`; false when there was none.
bool ReplaceAll(std::string& text, const std::string& from, const std::string& to) {
  bool found = false;
  for (size_t at = text.find(from); at != std::string::npos; at = text.find(from, at + to.size())) {
    text.replace(at, from.size(), to);
    found = true;
  }
  return found;
}

// A copy of a load scenario with users of the cell's own, and sipp's response-time timer
// around the transaction (started by the request, stopped by the 200).
std::string CellScenario(const std::string& load_scenario, const std::string& cell) {
  std::string xml = ReadFile(fs::path(DIMS_SIP_SCENARIOS) / (load_scenario + ".xml"));
  if (!ReplaceAll(xml, "load-[call_number]", "bench-" + cell + "-[call_number]") ||
      !ReplaceAll(xml, "<send retrans=\"500\">", "<send retrans=\"500\" start_rtd=\"1\">") ||
      !ReplaceAll(xml, "<recv response=\"200\"/>", "<recv response=\"200\" rtd=\"1\"/>")) {
    throw std::runtime_error(load_scenario + ".xml no longer has the shape this bench edits");
  }
  return xml;
}

// Cumulative bucket counts of the edge's answer-duration histogram for `method`, by upper bound.
std::map<double, double> AnswerBuckets(int metrics_port, const std::string& method) {
  std::map<double, double> buckets;
  auto page = HttpGet(metrics_port, "/metrics");
  if (!page) return buckets;
  std::istringstream lines(*page);
  const std::string family = "dims_sip_edge_sip_answer_duration_seconds_bucket{";
  const std::string label = "method=\"" + method + "\"";
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind(family, 0) != 0 || line.find(label) == std::string::npos) continue;
    auto le = line.find("le=\"");
    auto close = line.find('}');
    if (le == std::string::npos || close == std::string::npos) continue;
    std::string bound = line.substr(le + 4, line.find('"', le + 4) - le - 4);
    double upper = bound == "+Inf" ? INFINITY : std::strtod(bound.c_str(), nullptr);
    buckets[upper] = std::strtod(line.c_str() + close + 1, nullptr);
  }
  return buckets;
}

// Prometheus' histogram_quantile over the increase between two scrapes, in milliseconds.
double HistogramQuantile(const std::map<double, double>& before,
                         const std::map<double, double>& after, double q) {
  std::vector<std::pair<double, double>> increase;
  for (const auto& [upper, count] : after) {
    auto it = before.find(upper);
    increase.emplace_back(upper, count - (it == before.end() ? 0 : it->second));
  }
  if (increase.empty() || increase.back().second <= 0) return 0;
  double rank = q * increase.back().second;
  double lower = 0;
  double below = 0;
  for (const auto& [upper, count] : increase) {
    if (count >= rank) {
      if (std::isinf(upper)) return lower * 1000;  // past the last finite bound
      double within = count - below;
      return (lower + (upper - lower) * (within > 0 ? (rank - below) / within : 0)) * 1000;
    }
    lower = upper;
    below = count;
  }
  return lower * 1000;
}

struct CellResult : SippLoadResult {
  double edge_p50_ms = 0;  // the edge's histogram
  double edge_p99_ms = 0;
};

class Bench {
 public:
  explicit Bench(DimsStack& stack) : stack_(stack) {}

  CellResult Run(const std::string& load_scenario, const std::string& method, int rate,
                 long transactions) {
    std::string cell = method + "-" + std::to_string(rate) + "-" + std::to_string(++cells_);
    fs::path dir = stack_.dir().path() / ("cell-" + cell);
    fs::create_directories(dir);
    std::ofstream(dir / "scenario.xml") << CellScenario(load_scenario, cell);

    int metrics_port = stack_.endpoints("sip-edge").metrics_port;
    auto buckets_before = AnswerBuckets(metrics_port, method);
    CellResult r;
    static_cast<SippLoadResult&>(r) = RunSippLoad({.sip_port = stack_.sip_port(),
                                                   .dir = dir,
                                                   .calls = transactions,
                                                   .rate = rate,
                                                   .recv_timeout_ms = kRecvTimeoutMs});
    auto buckets_after = AnswerBuckets(metrics_port, method);
    r.edge_p50_ms = HistogramQuantile(buckets_before, buckets_after, 0.50);
    r.edge_p99_ms = HistogramQuantile(buckets_before, buckets_after, 0.99);
    return r;
  }

 private:
  DimsStack& stack_;
  int cells_ = 0;
};

int Main(int argc, char** argv) {
  Flags flags;
  if (!ParseFlags(argc, argv, &flags)) {
    std::cerr << "usage: sip_edge_bench [--seconds N (default 5)] [--max-transactions N (default "
                 "20000)] [--rate R (per second; repeatable; default 500, 1000 and 2000)]\n";
    return 2;
  }
  PrintMachine();
  std::printf(
      "per cell: %g s or %ld transactions, whichever is fewer; sipp over UDP, "
      "a new user per transaction\n",
      flags.seconds, flags.max_transactions);
  std::fflush(stdout);

  DimsStack stack(DimsStack::Options{.start_postgres = false});
  // Debug logging would cost the edge more than the work measured.
  stack.StartService("settings", {{"DIMS_LOG_LEVEL", "info"}});
  stack.StartService("sip-edge", {{"DIMS_LOG_LEVEL", "info"}});
  for (const char* name : {"settings", "sip-edge"}) {
    if (!stack.WaitServing(name, 30s)) {
      std::cerr << name << " did not become SERVING:\n" << stack.process(name).ReadLog();
      return 1;
    }
  }

  Bench bench(stack);
  const std::vector<std::pair<std::string, std::string>> methods = {{"REGISTER", "load_register"},
                                                                    {"PUBLISH", "load_publish"}};
  // Warm-up (the edge's gRPC channel to settings, Redis connections), not measured.
  for (const auto& [method, scenario] : methods) {
    CellResult r = bench.Run(scenario, method, 100, 100);
    if (r.answered == 0) {
      std::cerr << method << " warm-up got no answer (sipp exit " << r.sipp_status << "):\n"
                << r.first_errors;
      return 1;
    }
  }

  std::printf("\n%-8s | %9s | %6s | %10s | %6s | %8s | %7s | %7s | %11s | %11s\n", "method",
              "offered/s", "sent", "answered/s", "failed", "timeouts", "p50 ms", "p99 ms",
              "edge p50 ms", "edge p99 ms");
  std::printf("%s\n", std::string(110, '-').c_str());
  std::fflush(stdout);
  bool failed = false;
  for (const auto& [method, scenario] : methods) {
    for (int rate : flags.rates) {
      long transactions = std::min<long>(flags.max_transactions,
                                         std::max<long>(1, std::lround(rate * flags.seconds)));
      CellResult r = bench.Run(scenario, method, rate, transactions);
      std::printf("%-8s | %9d | %6ld | %10.0f | %6ld | %8ld | %7s | %7s | %11s | %11s\n",
                  method.c_str(), rate, r.sent, r.per_second(), r.failed, r.timeouts,
                  FormatMs(r.p50_ms, r.tick_ms).c_str(), FormatMs(r.p99_ms, r.tick_ms).c_str(),
                  FormatMs(r.edge_p50_ms, 1).c_str(), FormatMs(r.edge_p99_ms, 1).c_str());
      std::fflush(stdout);
      if (!r.first_errors.empty()) {
        std::fprintf(stderr, "  %s at %d/s: %ld of %ld failed (sipp exit %d); first errors:\n%s",
                     method.c_str(), rate, r.failed, r.sent, r.sipp_status, r.first_errors.c_str());
      }
      if (r.answered == 0) failed = true;
      if (!ServicesRunning(stack, {"settings", "sip-edge"})) return 1;
    }
  }
  std::printf(
      "\nanswered/s: 200 OKs per second, first request sent to last 200 received.\n"
      "failed: transactions without their 200 (another answer, or none); timeouts: of those, "
      "none within sipp's retransmissions or %d ms.\n"
      "p50/p99 ms: sipp's response time, request sent to 200 received (sipp -trace_rtt), in "
      "steps of sipp's clock (\"<N\": under one step of N ms).\n"
      "edge p50/p99 ms: dims_sip_edge_sip_answer_duration_seconds (arrival to answer in the "
      "edge), interpolated within buckets; the first bucket ends at 1 ms.\n",
      kRecvTimeoutMs);
  return failed ? 1 : 0;
}

}  // namespace
}  // namespace dims::testing

int main(int argc, char** argv) {
  return dims::testing::RunBenchmark("sip_edge_bench", dims::testing::Main, argc, argv);
}
