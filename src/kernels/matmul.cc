#include "kernels/matmul.h"

#include <vector>

#include "quant/type_traits.h"

namespace insitu {

// Straightforward path: dequantize one weight row at a time into a thread-local buffer and take
// float dot products with every token. Correct for every type with a dequantizer.
void matmul(const WeightView& w, const float* x, int64_t n_tokens, float* y, ThreadPool& pool) {
  const TypeTraits& tt = type_traits(w.type);
  pool.parallel_for(w.n_out, [&](int, int64_t begin, int64_t end) {
    std::vector<float> row(static_cast<size_t>(w.n_in));
    for (int64_t o = begin; o < end; ++o) {
      tt.dequantize_row(static_cast<const uint8_t*>(w.data) + o * w.row_bytes, row.data(), w.n_in);
      for (int64_t t = 0; t < n_tokens; ++t) {
        const float* xt = x + t * w.n_in;
        float sum = 0.0f;
        for (int64_t i = 0; i < w.n_in; ++i) sum += row[i] * xt[i];
        y[t * w.n_out + o] = sum;
      }
    }
  });
}

}  // namespace insitu
