// Block decoders of the group-affine formats (HQQ, AFQ; layout in quant/group_affine.h).
//
// A block of g elements decodes into g / 32 sub-blocks that share the group's scale and min:
//   bits <= 6:  v = q,        AFQ: scale = s, min = bias          HQQ: scale = s, min = -zero * s
//   8 bits:     v = q - 128,  AFQ: min = bias + 128 * s           HQQ: min = (128 - zero) * s
// (q up to 255 does not fit an int8, and maddubs would saturate on it). Unlike the ggml types the
// decoded scale * v + min equals the dequantizer's value only up to float rounding: the formats
// store a float offset, not an integer one. Paired with q8_1 activations, whose s carries the
// min term.
#pragma once

#include "insitu/quant_type.h"
#include "kernels/generic/decode.h"

namespace insitu {

// The decoder of an HQQ or AFQ type, or null for any other type.
const DecodeInfo* group_affine_decode_info(QuantType type);

}  // namespace insitu
