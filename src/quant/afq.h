// AFQ: MLX's affine group quantization (mx.quantize, mode "affine") as insitu block types.
//
// Block (quant/group_affine.h): one group of g consecutive elements of a row (g = 64 for
// afq2..afq8, 32 for the _g32 and 128 for the _g128 types), bits in {2, 3, 4, 6, 8}:
//   [bf16 scale][bf16 bias][g * bits / 8 bytes: MLX's little-endian bit stream of the group's q]
//   w = q * scale + bias;  bits per weight = bits + 32 / g (afq4: 36 bytes per 64, 4.5 bpw).
//
// Quantizer: MLX's CPU affine quantizer (mlx/backend/cpu/quantized.cpp `quantize`, MLX 0.32),
// computed in float in MLX's operation order, so from bf16 (or f32) weights it writes the bytes
// mx.quantize writes (tests/quant/afq_test.cc checks them against scripts/gen_afq_reference.py's
// MLX output). Per group: min/max; scale = max((max - min) / (2^bits - 1), 1e-7), negated unless
// |min| > |max|; the larger-magnitude edge e is made exact: q0 = rint(e / scale), and when q0 != 0
// scale = e / q0, bias = e (else bias = 0); q = clamp(rint((w - bias) / scale), 0, 2^bits - 1);
// scale and bias are stored rounded to bf16. `imatrix` is ignored (mistral.rs refuses one for AFQ;
// the ISQ layer decides what to do with one).
//
// MLX / UQFF layout of a weight W[rows][n] (what mistral.rs's AfqLayer stores):
//   w_q:    u32 [rows][n * bits / 32]  each row the concatenation of its groups' bit streams,
//                                      i.e. exactly the payload bytes (little-endian words)
//   scales: bf16 [rows][n / g]
//   biases: bf16 [rows][n / g]
// afq_to_mlx / afq_from_mlx convert losslessly between that layout and rows of blocks.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "insitu/quant_type.h"
#include "quant/type_traits.h"

namespace insitu {

// The AFQ type for bits and group size; nullopt for a combination MLX does not define.
std::optional<QuantType> afq_type(int bits, int group);

// True for the 15 AFQ types.
bool is_afq_type(QuantType type);

// MLX's arrays for `rows` rows of n elements of an AFQ type. u32 words are little-endian.
struct AfqMlxTensors {
  int bits = 0;
  int group = 0;
  std::vector<uint32_t> w_q;     // [rows][n * bits / 32]
  std::vector<uint16_t> scales;  // bf16 [rows][n / group]
  std::vector<uint16_t> biases;  // bf16 [rows][n / group]
};

// Splits packed AFQ rows (quant_row_size(type, n) bytes each) into MLX's three arrays.
// Throws InvalidArgument for a non-AFQ type or n not a multiple of the group.
AfqMlxTensors afq_to_mlx(QuantType type, const void* blocks, int64_t rows, int64_t n);

// Joins MLX's arrays back into packed AFQ rows (`blocks` holds rows * quant_row_size(type, n)
// bytes). The array sizes are checked against rows and n; a mismatch throws InvalidArgument.
void afq_from_mlx(QuantType type, const AfqMlxTensors& mlx, int64_t rows, int64_t n, void* blocks);

// Appends the AFQ rows of the type table in id order (afq2..afq8, _g32, _g128).
void append_afq_types(std::vector<TypeTraits>& table);

}  // namespace insitu
