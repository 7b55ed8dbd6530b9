// Matrix multiplication of a packed weight by float activations: the hot path of inference.
//
//   y[t][o] = sum_i W[o][i] * x[t][i]     for t < n_tokens, o < n_out, i < n_in
//
// W is stored as GGUF stores it: n_out rows of n_in elements (ne[0] = n_in), each row packed in
// `type`'s blocks, row_bytes apart. x is [n_tokens, n_in] floats, y is [n_tokens, n_out] floats.
// Quantized weights are never dequantized whole: activations are quantized to the weight type's
// paired format (q8_0 / q8_1 / q8_K) and each output is a packed dot product, as ggml does.
// Work is split over output rows on the pool; results do not depend on the thread count.
//
// Paths (kernels bound once per ISA in kernel_table.h; INSITU_ISA=generic|avx2|avx512 overrides):
//   n_tokens == 1: GEMV, one vec_dot per output row against the once-quantized activation.
//   n_tokens >= 8 with a panel kernel (AVX-512 VNNI) and a block decoder for the type: weights
//     decoded 16 rows at a time into an interleaved int8 panel, each panel line multiplied with up
//     to 8 tokens per load (kernels/x86/gemm_avx512.cc).
//   otherwise: tiles of 16 weight rows, every token visiting a tile while it is cached.
//   fp8 / fp8_b128: float activations against E4M3 weights widened in registers
//     (kernels/fp8_matmul.h); `data` is the whole tensor, its scale grid after the rows.
//   types without a kernel: one dequantized weight row at a time against float activations.
// Throws InvalidArgument for a shape the type cannot hold (n_in not a multiple of the block size,
// row_bytes too small) and Unsupported for a type with neither kernel nor dequantizer. x and y
// must not overlap; y is fully written.
#pragma once

#include <cstddef>
#include <cstdint>

#include "insitu/quant_type.h"
#include "util/thread_pool.h"

namespace insitu {

struct WeightView {
  QuantType type = QuantType::kF32;
  int64_t n_in = 0;   // ne[0]: elements per row
  int64_t n_out = 0;  // ne[1]: rows
  const void* data = nullptr;
  size_t row_bytes = 0;
};

void matmul(const WeightView& w, const float* x, int64_t n_tokens, float* y, ThreadPool& pool);

}  // namespace insitu
