// insitu's version: this file is the one place it is written (CMake's project version and the
// Python package's are read from here).
#pragma once

#define INSITU_VERSION_MAJOR 0
#define INSITU_VERSION_MINOR 2
#define INSITU_VERSION_PATCH 0
#define INSITU_VERSION_STRING "0.2.0"

namespace insitu {

// INSITU_VERSION_STRING of the library actually linked (which may differ from the header's).
const char* version();

}  // namespace insitu
