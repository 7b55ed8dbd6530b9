#include "quant/quantize.h"

#include <algorithm>
#include <atomic>
#include <limits>
#include <string>
#include <vector>

#include "insitu/error.h"
#include "quant/type_traits.h"

namespace insitu {
namespace {

// Rows per work item: large enough (~64K weights) to amortise scheduling, small enough that
// threads finish together. Work items are claimed dynamically; bytes do not depend on this.
constexpr int64_t kChunkWeights = 64 * 1024;

std::string quantizable_list() {
  std::string out;
  for (const TypeTraits& t : all_type_traits()) {
    if (t.quantize == nullptr) continue;
    if (!out.empty()) out += ' ';
    out += t.name;
  }
  return out;
}

}  // namespace

size_t quantize_tensor(QuantType type, const float* src, void* dst, int64_t nrows,
                       int64_t n_per_row, const float* imatrix, ThreadPool& pool) {
  const TypeTraits& tt = type_traits(type);
  if (tt.quantize == nullptr) {
    throw InvalidArgument("quantize: type " + std::string(tt.name) +
                          " cannot be produced; quantizable types: " + quantizable_list());
  }
  if (n_per_row <= 0 || n_per_row % tt.block_size != 0) {
    throw InvalidArgument("quantize: type " + std::string(tt.name) +
                          " needs a row length that is a "
                          "positive multiple of " +
                          std::to_string(tt.block_size) + ", got " + std::to_string(n_per_row));
  }
  if (nrows < 0) {
    throw InvalidArgument("quantize: type " + std::string(tt.name) + ": negative row count " +
                          std::to_string(nrows));
  }
  if (tt.requires_imatrix && imatrix == nullptr) {
    throw InvalidArgument("quantize: type " + std::string(tt.name) +
                          " requires an importance matrix (--imatrix or --calibration-file)");
  }
  const size_t row_bytes = quant_row_size(type, n_per_row);
  if (nrows > 0 && row_bytes > std::numeric_limits<size_t>::max() / static_cast<size_t>(nrows)) {
    throw InvalidArgument("quantize: type " + std::string(tt.name) + ": " + std::to_string(nrows) +
                          " rows of " + std::to_string(n_per_row) + " overflow the output size");
  }
  if (nrows == 0) return 0;

  const int64_t rows_per_chunk = std::max<int64_t>(1, kChunkWeights / n_per_row);
  const int64_t n_chunks = (nrows + rows_per_chunk - 1) / rows_per_chunk;
  auto quantize_chunk = [&](int64_t chunk) {
    const int64_t first = chunk * rows_per_chunk;
    const int64_t count = std::min(rows_per_chunk, nrows - first);
    tt.quantize(src + first * n_per_row, static_cast<uint8_t*>(dst) + first * row_bytes, count,
                n_per_row, imatrix);
  };
  if (pool.size() <= 1 || n_chunks == 1) {
    for (int64_t c = 0; c < n_chunks; ++c) quantize_chunk(c);
  } else {
    std::atomic<int64_t> next{0};
    // A tensor is a coarse job: no thread spins for a late worker or for the next call (see
    // WaitPolicy).
    pool.run_on_all(
        [&](int) {
          for (int64_t c = next.fetch_add(1); c < n_chunks; c = next.fetch_add(1)) {
            quantize_chunk(c);
          }
        },
        WaitPolicy::kSleep);
  }
  return row_bytes * static_cast<size_t>(nrows);
}

void convert_rows(QuantType src_type, const uint8_t* src, QuantType dst_type, int64_t nrows,
                  int64_t n_per_row, const float* imatrix, ThreadPool& pool,
                  const std::function<void(const uint8_t* bytes, size_t size)>& emit) {
  const TypeTraits& src_tt = type_traits(src_type);
  if (src_tt.dequantize_row == nullptr) {
    throw Unsupported("convert: type '" + std::string(src_tt.name) + "' cannot be dequantized");
  }
  if (nrows <= 0) return;
  const size_t src_row = quant_row_size(src_type, n_per_row);
  const size_t dst_row = quant_row_size(dst_type, n_per_row);
  // Enough rows to keep every thread busy, few enough that the float buffer stays ~4 MiB.
  const int64_t step =
      std::min(nrows, std::max<int64_t>(16, (int64_t{4} << 20) / std::max<int64_t>(1, n_per_row)));
  std::vector<float> f32(static_cast<size_t>(step * n_per_row));
  std::vector<uint8_t> q(static_cast<size_t>(step) * dst_row);
  for (int64_t r0 = 0; r0 < nrows; r0 += step) {
    const int64_t n = std::min(step, nrows - r0);
    pool.parallel_for(n, [&](int, int64_t b, int64_t e) {
      for (int64_t r = b; r < e; ++r) {
        src_tt.dequantize_row(src + (r0 + r) * src_row, f32.data() + r * n_per_row, n_per_row);
      }
    });
    const size_t size =
        quantize_tensor(dst_type, f32.data(), q.data(), n, n_per_row, imatrix, pool);
    emit(q.data(), size);
  }
}

}  // namespace insitu
