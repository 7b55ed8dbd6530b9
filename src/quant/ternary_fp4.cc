#include "quant/type_traits.h"

namespace insitu {

void register_ternary_and_fp4_types(std::span<TypeTraits> table) {}

}  // namespace insitu
