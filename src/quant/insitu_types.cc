// The rows of the type table for the formats only insitu and mistral.rs know. Each family appends
// its own rows (geometry and functions) from its file; this file fixes their order.
#include "quant/type_traits.h"

#include "quant/fp8.h"

namespace insitu {

void append_insitu_types(std::vector<TypeTraits>& table) {
  (void)table;  // families: see the QuantType ids from kFirstInsituTypeId in insitu/quant_type.h
  append_fp8_types(table);  // fp8 fp8_b128 f8q8 (1019..1021)
}

}  // namespace insitu
