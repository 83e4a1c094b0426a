// dims-health: asks a gRPC server for its grpc.health.v1 status. For scripts, container
// health checks and people on call.
//   dims-health 127.0.0.1:50053 [service] [--wait SECONDS]
// Exit code 0 when SERVING, 1 otherwise (after waiting up to --wait seconds).
#include <chrono>
#include <cstdlib>
#include <iostream>
#include <string>
#include <thread>

#include "grpc_client.h"

int main(int argc, char** argv) {
  std::string target;
  std::string service;
  int wait_seconds = 0;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--wait" && i + 1 < argc) {
      wait_seconds = std::atoi(argv[++i]);
    } else if (target.empty()) {
      target = arg;
    } else {
      service = arg;
    }
  }
  if (target.empty()) {
    std::cerr << "usage: dims-health HOST:PORT [SERVICE] [--wait SECONDS]\n";
    return 2;
  }
  auto channel = dims::MakeChannel(target);
  auto until = std::chrono::steady_clock::now() + std::chrono::seconds(wait_seconds);
  while (true) {
    if (dims::CheckHealth(*channel, service)) {
      std::cout << target << " SERVING\n";
      return 0;
    }
    if (std::chrono::steady_clock::now() >= until) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  std::cout << target << " NOT SERVING\n";
  return 1;
}
