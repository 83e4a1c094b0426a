#include "bench_support.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <iostream>
#include <thread>

#include "grpc_process.h"

namespace dims::testing {

bool ParseNumberFlags(int argc, char** argv, const std::map<std::string, NumberFlag>& flags) {
  for (int i = 1; i < argc; ++i) {
    std::string name = argv[i];
    std::string value;
    if (auto eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
    } else if (i + 1 < argc) {
      value = argv[++i];
    }
    auto flag = flags.find(name);
    if (flag == flags.end() || value.empty()) return false;
    char* end = nullptr;
    double number = std::strtod(value.c_str(), &end);
    if (*end != '\0' || !flag->second(number)) return false;
  }
  return true;
}

double Percentile(const std::vector<double>& sorted, double p) {
  if (sorted.empty()) return 0;
  auto rank = static_cast<size_t>(std::ceil(p * static_cast<double>(sorted.size())));
  return sorted[std::clamp<size_t>(rank, 1, sorted.size()) - 1];
}

void PrintMachine() {
  std::printf("nproc: %ld (hardware threads: %u)\n", sysconf(_SC_NPROCESSORS_ONLN),
              std::thread::hardware_concurrency());
}

int RunBenchmark(const char* name, int (*bench_main)(int, char**), int argc, char** argv) {
  ApplyGrpcProcessSettings();  // the load generator pays what the services pay per call, no more
  try {
    return bench_main(argc, argv);
  } catch (const std::exception& e) {
    std::cerr << name << ": " << e.what() << "\n";
    return 1;
  }
}

}  // namespace dims::testing
