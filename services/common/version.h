// Release identification. DIMS_VERSION comes from the build (CMake project version).
#pragma once

#include <string>

namespace dims {

inline constexpr const char* kVersion = DIMS_VERSION;

// The IM release version token that leads Server (answers) and User-Agent (requests DIMS
// originates), as OMA IM servers send it (see docs/architecture.md).
inline std::string ReleaseToken() { return std::string("IM-serv/OMA1.0 DIMS/") + DIMS_VERSION; }

}  // namespace dims
