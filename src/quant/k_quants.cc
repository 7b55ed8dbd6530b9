#include "quant/type_traits.h"

namespace insitu {

void register_k_quant_types(std::span<TypeTraits> table) {}

}  // namespace insitu
