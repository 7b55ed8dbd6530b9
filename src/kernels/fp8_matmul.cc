#include "kernels/fp8_matmul.h"

#include <string>
#include <vector>

#include "insitu/error.h"
#include "kernels/kernel_table.h"
#include "quant/fp8.h"

namespace insitu {

void matmul_fp8(const WeightView& w, const float* x, int64_t n_tokens, float* y, ThreadPool& pool) {
  if (!is_fp8_type(w.type) || w.row_bytes != static_cast<size_t>(w.n_in)) {
    throw InvalidArgument("matmul: " + quant_type_name(w.type) +
                          " weights need row_bytes == n_in (" + std::to_string(w.n_in) + "), got " +
                          std::to_string(w.row_bytes));
  }
  const auto* q = static_cast<const uint8_t*>(w.data);
  const std::vector<float> grid = fp8_read_grid(w.type, q, w.n_out, w.n_in);
  Fp8Job job;
  job.q = q;
  job.n_in = w.n_in;
  job.n_out = w.n_out;
  job.grid = grid.data();
  job.tiled = w.type == QuantType::kFP8_B128;
  job.grid_cols = job.tiled ? fp8_grid(w.type, w.n_out, w.n_in).cols : 1;
  job.x = x;
  job.n_tok = n_tokens;
  job.y = y;
  Fp8RowsFn rows = fp8_rows_generic;
  switch (active_kernels().isa) {
    case Isa::kAvx512: rows = fp8_rows_avx512; break;
    case Isa::kAvx2: rows = fp8_rows_avx2; break;
    case Isa::kGeneric: break;
  }
  pool.parallel_for(w.n_out, [&](int, int64_t begin, int64_t end) { rows(job, begin, end); });
}

}  // namespace insitu
