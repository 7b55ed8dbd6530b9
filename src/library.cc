// The shared library's own translation unit: libinsitu.so is the objects of every layer linked
// together (src/CMakeLists.txt); this file only gives the target a source of its own.
#include "insitu/version.h"

namespace insitu {
namespace {
[[maybe_unused]] const char* const kLinkedVersion = INSITU_VERSION_STRING;
}  // namespace
}  // namespace insitu
