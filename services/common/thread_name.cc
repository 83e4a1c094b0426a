#include "thread_name.h"

#include <pthread.h>

#include <string>

namespace dims {

void NameThisThread(std::string_view name) {
  constexpr size_t kMaxLength = 15;  // the kernel's limit, without the terminating NUL
  std::string cut(name.substr(0, kMaxLength));
  pthread_setname_np(pthread_self(), cut.c_str());
}

}  // namespace dims
