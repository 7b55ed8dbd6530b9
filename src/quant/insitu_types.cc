// The rows of the type table for the formats only insitu and mistral.rs know. Each family appends
// its own rows (geometry and functions) from its file; this file fixes their order.
#include "quant/type_traits.h"

#include "quant/afq.h"
#include "quant/fp8.h"
#include "quant/hqq.h"

namespace insitu {

void append_insitu_types(std::vector<TypeTraits>& table) {
  (void)table;  // families: see the QuantType ids from kFirstInsituTypeId in insitu/quant_type.h
  append_hqq_types(table);  // hqq2 hqq3 hqq4 hqq8 (1000..1003)
  append_afq_types(table);  // afq2..afq8, _g32, _g128 (1004..1018)
  append_fp8_types(table);  // fp8 fp8_b128 f8q8 (1019..1021)
}

}  // namespace insitu
