// The version of the library linked.
#include "insitu/version.h"

namespace insitu {

const char* version() { return INSITU_VERSION_STRING; }

}  // namespace insitu
