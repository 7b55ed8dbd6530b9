// Matrix multiplication of FP8 weights (kFP8 / kFP8_B128, quant/fp8.h) by float activations.
//
//   y[t][o] = sum_i e4m3(q[o][i]) * grid[o / 128][i / 128] * x[t][i]
//
// The weight is the whole tensor: n_out rows of n_in E4M3 bytes, then the f32 scale grid. The
// activations stay in f32 (no activation quantization): each weight element is widened exactly
// (on x86 through an f16 bit pattern and F16C, the E4M3 value times 2^-8) and multiplied by its
// tile's scale, which gives the dequantized weight fl(e4m3 * scale) bit for bit, then accumulated
// in f32. GEMV (n_tokens == 1) reads the bytes once; GEMM dequantizes 16 rows at a time, 256
// columns at a time, into a per-thread buffer and takes them past every token, two (AVX2) or four
// (AVX-512) tokens per pass. Rows are split over the
// pool and each output's summation order is fixed by the ISA alone, so results do not depend on
// the thread count. Called by matmul() (kernels/matmul.h), which owns the shape checks; this
// additionally requires row_bytes == n_in (the grid sits right after the rows).
#pragma once

#include <cstdint>

#include "kernels/matmul.h"

namespace insitu {

void matmul_fp8(const WeightView& w, const float* x, int64_t n_tokens, float* y, ThreadPool& pool);

// ---- per-ISA kernels (kernels/generic/fp8_generic.cc, x86/fp8_avx2.cc, x86/fp8_avx512.cc) ----

// One call's operands. grid is 4-byte aligned (copied out of the weight).
struct Fp8Job {
  const uint8_t* q = nullptr;  // [n_out][n_in] E4M3
  int64_t n_in = 0;
  int64_t n_out = 0;
  const float* grid = nullptr;  // [grid_rows][grid_cols]; 1 x 1 when !tiled
  int64_t grid_cols = 1;
  bool tiled = false;
  const float* x = nullptr;  // [n_tok][n_in]
  int64_t n_tok = 0;
  float* y = nullptr;  // [n_tok][n_out]
};

// Writes y[t][o] for o in [o0, o1) and every token.
using Fp8RowsFn = void (*)(const Fp8Job& job, int64_t o0, int64_t o1);
void fp8_rows_generic(const Fp8Job& job, int64_t o0, int64_t o1);
void fp8_rows_avx2(const Fp8Job& job, int64_t o0, int64_t o1);
void fp8_rows_avx512(const Fp8Job& job, int64_t o0, int64_t o1);

// The scale of 128-column tile c of row o.
inline float fp8_tile_scale(const Fp8Job& j, int64_t o, int64_t c) {
  return j.tiled ? j.grid[(o / 128) * j.grid_cols + c] : j.grid[0];
}

}  // namespace insitu
