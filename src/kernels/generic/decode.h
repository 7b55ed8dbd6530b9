// Block decoders shared by the scalar reference kernels and the GEMM panel packer.
//
// A decoder turns one packed weight block into int8 values plus, per sub-block of `sub`
// elements, a float scale and (for types with an offset) a float min, such that
//   w[i] = scale[i / sub] * v[i] + min[i / sub]
// holds exactly in float arithmetic (every scale is an fp16 times a small integer). The int8 form
// is what the integer dot products consume; the activation type supplies the other side.
#pragma once

#include <cstddef>
#include <cstdint>

#include "insitu/quant_type.h"
#include "kernels/kernel_table.h"

namespace insitu {

struct DecodeInfo {
  QuantType type;
  int block;       // elements per weight block
  int sub;         // elements per sub-block (16 or 32)
  bool has_min;    // min[] is meaningful (else all zero)
  QuantType act;   // paired activation type
  size_t block_bytes;
  DecodeBlockFn decode;
};

// The decoder of a weight type, or null for types without one (floats).
const DecodeInfo* decode_info(QuantType type);

// Decodes rows [0, n_rows) of a weight (row_bytes apart, n elements each) into `out` with
// `decode` (info.decode or a SIMD equivalent), whose buffers must hold n / info.sub sub-blocks;
// rows n_rows..kPanelRows-1 are zero-filled.
void pack_panel(const DecodeInfo& info, DecodeBlockFn decode, const uint8_t* rows,
                size_t row_bytes, int n_rows, int64_t n, PackedPanel& out);

// Converts activation rows [tok0, tok1) (paired-type blocks, act_row_bytes apart, row 0 at
// act_rows) into the tiled GEMM form of PackedActs for sub-blocks of `sub`. The arrays cover every
// token (tiles of kActTile); only the given tokens' lanes are written. sum may be null.
void pack_acts(QuantType act, int sub, const uint8_t* act_rows, size_t act_row_bytes,
               int64_t tok0, int64_t tok1, int64_t n, int8_t* q, int32_t* comp, float* scale,
               float* sum);

// Scalar activation quantizers (ggml's reference algorithms, bit-exact).
void quantize_act_q8_0_ref(const float* x, void* dst, int64_t n);
void quantize_act_q8_1_ref(const float* x, void* dst, int64_t n);
void quantize_act_q8_k_ref(const float* x, void* dst, int64_t n);

}  // namespace insitu
