#include "thread_name.h"

#include <gtest/gtest.h>
#include <pthread.h>

#include <chrono>
#include <future>
#include <string>
#include <thread>

#include "periodic_task.h"
#include "worker_pool.h"

namespace dims {
namespace {

std::string ThisThreadName() {
  char name[64] = {};
  pthread_getname_np(pthread_self(), name, sizeof name);
  return name;
}

TEST(ThreadName, CutToWhatTheKernelKeeps) {
  std::string seen;
  std::thread t([&] {
    NameThisThread("a-name-longer-than-fifteen");
    seen = ThisThreadName();
  });
  t.join();
  EXPECT_EQ(seen, "a-name-longer-t");
}

TEST(ThreadName, WorkerPoolThreadsCarryThePoolName) {
  WorkerPool pool("db-readers", 2, 10);
  std::promise<std::string> name;
  ASSERT_TRUE(pool.Post([&] { name.set_value(ThisThreadName()); }));
  EXPECT_EQ(name.get_future().get(), "db-readers");
}

TEST(ThreadName, PeriodicTaskThreadCarriesTheTaskName) {
  std::promise<std::string> name;
  bool set = false;
  PeriodicTask task("outbox relay", std::chrono::hours(1), [&] {
    if (!set) name.set_value(ThisThreadName());
    set = true;
  });
  EXPECT_EQ(name.get_future().get(), "outbox relay");
}

}  // namespace
}  // namespace dims
