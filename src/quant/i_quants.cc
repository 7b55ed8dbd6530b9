#include "quant/type_traits.h"

namespace insitu {

void register_i_quant_types(std::span<TypeTraits> table) {}

}  // namespace insitu
