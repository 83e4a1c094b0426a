// Names the calling thread, so that `top -H`, `ps -L`, perf and gdb tell a DIMS process's
// threads apart (a committer from a reader from gRPC's own). Linux keeps 15 bytes of a name;
// the rest is cut.
#pragma once

#include <string_view>

namespace dims {

void NameThisThread(std::string_view name);

}  // namespace dims
