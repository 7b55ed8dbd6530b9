// Scalar reference for FP8 weights (kernels/fp8_matmul.h): each row is dequantized exactly as
// quant/fp8.h's fp8_dequantize_rows does, then multiplied in plain sequential f32 sums.
#include <vector>

#include "kernels/fp8_matmul.h"
#include "quant/fp8.h"

namespace insitu {

void fp8_rows_generic(const Fp8Job& j, int64_t o0, int64_t o1) {
  static thread_local std::vector<float> row;
  row.resize(static_cast<size_t>(j.n_in));
  for (int64_t o = o0; o < o1; ++o) {
    const uint8_t* q = j.q + o * j.n_in;
    for (int64_t i = 0; i < j.n_in; ++i) row[i] = e4m3_to_fp32(q[i]) * fp8_tile_scale(j, o, i / 128);
    for (int64_t t = 0; t < j.n_tok; ++t) {
      const float* x = j.x + t * j.n_in;
      float sum = 0.0f;
      for (int64_t i = 0; i < j.n_in; ++i) sum += row[i] * x[i];
      j.y[t * j.n_out + o] = sum;
    }
  }
}

}  // namespace insitu
