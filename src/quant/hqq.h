// HQQ (half-quadratic quantization) as insitu block types: hqq2, hqq3, hqq4, hqq8.
//
// Block (quant/group_affine.h): one group of 64 consecutive elements of a row:
//   [f32 scale][f32 zero][64 * bits / 8 bytes: little-endian bit stream of the group's q]
//   w = (q - zero) * scale;  hqq4: 40 bytes per 64 (5 bpw), hqq8: 72 (9 bpw), hqq2: 24, hqq3: 32.
// Groups run along each row (HQQ's axis = 1). mistral.rs's ISQ quantizes with axis = 0, whose
// groups are strided columns of the flattened tensor; those cannot be stored as row blocks, so
// insitu deliberately uses axis 1 and writes axis = 1 when it exports to UQFF.
//
// Quantizer: mistral.rs's HqqLayer::quantize with its ISQ settings (mistralrs-quant/src/hqq/
// {quantize,optimize}.rs, a port of hqq's optimize_weights_proximal_legacy): per group min/max,
// inverse scale s = clamp((2^bits - 1) / (max - min), 0, 2e4) (a constant group gets 2e4),
// zero z = -min * s; then up to 10 proximal iterations (lp norm 0.7, beta 10, kappa 1.01) that
// update z only; final q = clamp(round(w * s + z), 0, 2^bits - 1); stored scale = 1 / s.
// mistral.rs stops early when the mean error of the whole tensor stops improving; here each group
// stops on its own mean error, so a row's bytes never depend on how rows are split between threads
// or calls (the quantizer contract in quant/type_traits.h). `imatrix` is ignored (mistral.rs
// refuses one for HQQ; the ISQ layer decides what to do with one). The shrink operator's
// exp(log|x| * (p - 1)) uses insitu's own log and exp (quant/hqq_simd.h), correctly rounded but
// for rare midpoint cases, so the bytes do not depend on the C library and the AVX2 / AVX-512
// optimisers reproduce the generic one exactly.
//
// UQFF (mistral.rs HqqLayer tensors for axis = 1): with R = rows * n / 64 groups in row-major
// order, the q matrix Q[R][64] is bit-packed along dim 0 as HqqBits::bitpack_type does:
//   8 bits: u8 [R][64] = Q
//   4 bits: u8 [R/2][64],  Q[i] << 4 | Q[i + R/2]                          (R even)
//   2 bits: u8 [R/4][64],  Q[i] << 6 | Q[i + R/4] << 4 | Q[i + R/2] << 2 | Q[i + 3R/4]
//           (R % 4 == 0)
//   3 bits: i32 [P/10][64] with P = R rounded up to a multiple of 10 (padding rows are 0):
//           sum over k < 10 of Q[i + k * P/10] << (27 - 3k)
//   scales: f32 [R][1] (the real step),  zeros: f32 [R][1].
// The scalar fields (shape, bits, group_size = 64, axis = 1, optimization_steps, round_zeros =
// false, channel_wise = true) belong to the UQFF writer.
#pragma once

#include <cstdint>
#include <vector>

#include "insitu/quant_type.h"
#include "quant/type_traits.h"

namespace insitu {

inline constexpr int kHqqGroup = 64;
inline constexpr int kHqqOptSteps = 10;  // mistral.rs ISQ_HQQ_DEFAULT_OPT_STEPS

// True for hqq2, hqq3, hqq4, hqq8.
bool is_hqq_type(QuantType type);

struct HqqUqffTensors {
  int bits = 0;
  std::vector<int64_t> w_q_shape;  // [packed rows, 64]
  std::vector<uint8_t> w_q;        // u8 elements (2, 4, 8 bits) or little-endian i32 (3 bits)
  std::vector<float> scales;       // [R, 1]
  std::vector<float> zeros;        // [R, 1]
};

// Packs `rows` rows of n elements of an HQQ type as mistral.rs's axis-1 tensors. Throws
// InvalidArgument for a non-HQQ type, n not a multiple of 64, or a group count the packing cannot
// split (odd R for 4 bits, R % 4 != 0 for 2 bits).
HqqUqffTensors hqq_to_uqff(QuantType type, const void* blocks, int64_t rows, int64_t n);

// The inverse: writes rows * quant_row_size(type, n) bytes of blocks. Shapes and sizes are checked
// (InvalidArgument on a mismatch); q values above 2^bits - 1 cannot occur in a well-formed tensor
// and are masked.
void hqq_from_uqff(QuantType type, const HqqUqffTensors& uqff, int64_t rows, int64_t n,
                   void* blocks);

// Appends the HQQ rows of the type table in id order.
void append_hqq_types(std::vector<TypeTraits>& table);

}  // namespace insitu
