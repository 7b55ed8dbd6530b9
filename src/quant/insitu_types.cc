// The rows of the type table for the formats only insitu and mistral.rs know. Each family appends
// its own rows (geometry and functions) from its file; this file fixes their order.
#include "quant/type_traits.h"

namespace insitu {

void append_insitu_types(std::vector<TypeTraits>& table) {
  (void)table;  // families: see the QuantType ids from kFirstInsituTypeId in insitu/quant_type.h
}

}  // namespace insitu
