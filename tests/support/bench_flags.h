// Command-line flags of the benchmarks: numbers given as `--name value` or `--name=value`.
#pragma once

#include <functional>
#include <map>
#include <string>

namespace dims::testing {

// Takes the value of a flag; false when the value is out of range.
using NumberFlag = std::function<bool(double)>;

// Parses argv against `flags` (keyed by name, "--seconds"); false on an unknown flag, a
// missing or non-numeric value, or a value its handler refused.
bool ParseNumberFlags(int argc, char** argv, const std::map<std::string, NumberFlag>& flags);

}  // namespace dims::testing
