// A GoogleTest fixture for the suites that test one DIMS service against real servers: it owns
// the stack, starts the service with extra DIMS_* variables, and shows the end of the
// service's log when a test fails.
#pragma once

#include <gtest/gtest.h>

#include <iostream>
#include <map>
#include <string>

#include "dims_stack.h"

namespace dims::testing {

class ServiceTest : public ::testing::Test {
 protected:
  explicit ServiceTest(std::string service) : service_(std::move(service)) {}

  // Starts the service and waits until it serves (a fatal failure if it does not).
  void StartService(const std::map<std::string, std::string>& env = {}) {
    stack_.StartService(service_, env);
    ASSERT_TRUE(stack_.WaitServing(service_, std::chrono::seconds(30)))
        << service_ << " is " << HealthStatus(address()) << "\n"
        << stack_.process(service_).ReadLog();
    started_ = true;
  }

  void TearDown() override {
    if (!HasFailure() || !started_) return;
    std::cout << "--- end of the " << service_ << " log ---\n"
              << stack_.process(service_).LogTail(80) << "\n";
  }

  std::string address() const { return stack_.endpoints(service_).grpc_address(); }

  DimsStack stack_;

 private:
  std::string service_;
  bool started_ = false;
};

}  // namespace dims::testing
