#include "bench_flags.h"

#include <cstdlib>

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

}  // namespace dims::testing
