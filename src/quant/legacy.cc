#include "quant/type_traits.h"

namespace insitu {

void register_legacy_types(std::span<TypeTraits> table) {}

}  // namespace insitu
