// What the benchmarks share: numeric flags, percentiles, the machine line, and a main that
// reports an exception instead of aborting.
#pragma once

#include <functional>
#include <map>
#include <string>
#include <vector>

namespace dims::testing {

// Takes the value of a flag; false when the value is out of range.
using NumberFlag = std::function<bool(double)>;

// Parses argv against `flags` (keyed by name, "--seconds"); false on an unknown flag, a
// missing or non-numeric value, or a value its handler refused.
bool ParseNumberFlags(int argc, char** argv, const std::map<std::string, NumberFlag>& flags);

// The nearest-rank percentile `p` (0..1) of ascending `sorted`; 0 when it is empty.
double Percentile(const std::vector<double>& sorted, double p);

// Prints the cores the figures were measured on.
void PrintMachine();

// Runs `bench_main`; an exception ends the benchmark with its message and exit code 1.
int RunBenchmark(const char* name, int (*bench_main)(int, char**), int argc, char** argv);

}  // namespace dims::testing
