#include "quant/quantize.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "insitu/error.h"
#include "quant/fp8.h"
#include "quant/type_traits.h"

namespace insitu {
namespace {

// Rows per work item: large enough (~64K weights) to amortise scheduling, small enough that
// threads finish together. Work items are claimed dynamically; bytes do not depend on this.
constexpr int64_t kChunkWeights = 64 * 1024;

std::string quantizable_list() {
  std::string out;
  for (const TypeTraits& t : all_type_traits()) {
    if (!quant_type_can_quantize(t.type)) continue;
    if (!out.empty()) out += ' ';
    out += t.name;
  }
  return out;
}

// Runs fn(chunk) for every chunk on the pool, chunks claimed dynamically. A tensor is a coarse
// job: no thread spins for a late worker or for the next call (see WaitPolicy).
template <class Fn>
void run_chunks(ThreadPool& pool, int64_t n_chunks, const Fn& fn) {
  if (pool.size() <= 1 || n_chunks == 1) {
    for (int64_t c = 0; c < n_chunks; ++c) fn(c);
    return;
  }
  std::atomic<int64_t> next{0};
  pool.run_on_all(
      [&](int) {
        for (int64_t c = next.fetch_add(1); c < n_chunks; c = next.fetch_add(1)) fn(c);
      },
      WaitPolicy::kSleep);
}

// fp8 / fp8_b128 from floats: tile maxima over the whole tensor, then the rows, then the grid.
// Chunks are whole 128-row tile rows, so fp8_b128 chunks write disjoint maxima; fp8's single
// maximum is reduced from per-chunk partials (max is order-independent, so bytes never depend on
// the thread count).
void quantize_fp8_tensor(QuantType type, const float* src, uint8_t* dst, int64_t nrows,
                         int64_t n_per_row, ThreadPool& pool) {
  const Fp8Grid g = fp8_grid(type, nrows, n_per_row);
  const int64_t tiles = std::max<int64_t>(1, kChunkWeights / (n_per_row * kFp8Tile));
  const int64_t rows_per_chunk = tiles * kFp8Tile;
  const int64_t n_chunks = (nrows + rows_per_chunk - 1) / rows_per_chunk;
  std::vector<float> amax(static_cast<size_t>(g.size()), 0.0f);
  std::vector<float> partial(static_cast<size_t>(n_chunks), 0.0f);
  run_chunks(pool, n_chunks, [&](int64_t c) {
    const int64_t first = c * rows_per_chunk;
    const int64_t count = std::min(rows_per_chunk, nrows - first);
    float* target = type == QuantType::kFP8 ? &partial[static_cast<size_t>(c)] : amax.data();
    fp8_accumulate_amax(type, src + first * n_per_row, first, count, n_per_row, target);
  });
  if (type == QuantType::kFP8) {
    for (float m : partial) amax[0] = std::fmax(amax[0], m);
  }
  run_chunks(pool, n_chunks, [&](int64_t c) {
    const int64_t first = c * rows_per_chunk;
    const int64_t count = std::min(rows_per_chunk, nrows - first);
    fp8_quantize_rows(type, src + first * n_per_row, first, count, n_per_row, amax.data(),
                      dst + first * n_per_row);
  });
  fp8_grid_from_amax(type, amax.data(), amax.data(), g.size());
  std::memcpy(dst + nrows * n_per_row, amax.data(), amax.size() * sizeof(float));
}

}  // namespace

bool quant_type_has_tail(QuantType type) { return is_fp8_type(type); }

size_t quant_tensor_size(QuantType type, int64_t n_rows, int64_t n_per_row) {
  const size_t row_bytes = quant_row_size(type, n_per_row);
  if (n_rows < 0 || (n_rows > 0 && row_bytes > std::numeric_limits<size_t>::max() /
                                                    static_cast<size_t>(n_rows))) {
    throw InvalidArgument("quant: " + quant_type_name(type) + ": " + std::to_string(n_rows) +
                          " rows of " + std::to_string(n_per_row) + " elements overflow the size");
  }
  size_t bytes = row_bytes * static_cast<size_t>(n_rows);
  if (quant_type_has_tail(type) && n_rows > 0 && n_per_row > 0) {
    bytes += static_cast<size_t>(fp8_grid(type, n_rows, n_per_row).size()) * sizeof(float);
  }
  return bytes;
}

bool quant_type_can_quantize(QuantType type) {
  return quant_type_has_tail(type) || type_traits(type).quantize != nullptr;
}

bool quant_type_can_dequantize(QuantType type) {
  return quant_type_has_tail(type) || type_traits(type).dequantize_row != nullptr;
}

void dequantize_rows(QuantType type, const uint8_t* data, int64_t n_rows, int64_t n_per_row,
                     int64_t r0, int64_t r1, float* dst) {
  if (quant_type_has_tail(type)) {
    fp8_dequantize_rows(type, data, n_rows, n_per_row, r0, r1, dst);
    return;
  }
  const TypeTraits& tt = type_traits(type);
  if (tt.dequantize_row == nullptr) {
    throw Unsupported("dequantize: type '" + std::string(tt.name) + "' cannot be dequantized");
  }
  if (r0 < 0 || r1 > n_rows || r0 > r1) {
    throw InvalidArgument("dequantize: rows [" + std::to_string(r0) + ", " + std::to_string(r1) +
                          ") outside [0, " + std::to_string(n_rows) + ")");
  }
  const size_t row_bytes = quant_row_size(type, n_per_row);
  for (int64_t r = r0; r < r1; ++r) {
    tt.dequantize_row(data + static_cast<size_t>(r) * row_bytes, dst + (r - r0) * n_per_row,
                      n_per_row);
  }
}

size_t quantize_tensor(QuantType type, const float* src, void* dst, int64_t nrows,
                       int64_t n_per_row, const float* imatrix, ThreadPool& pool) {
  const TypeTraits& tt = type_traits(type);
  if (!quant_type_can_quantize(type)) {
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
  if (quant_type_has_tail(type)) {
    const size_t total = quant_tensor_size(type, nrows, n_per_row);
    quantize_fp8_tensor(type, src, static_cast<uint8_t*>(dst), nrows, n_per_row, pool);
    return total;
  }

  const int64_t rows_per_chunk = std::max<int64_t>(1, kChunkWeights / n_per_row);
  const int64_t n_chunks = (nrows + rows_per_chunk - 1) / rows_per_chunk;
  auto quantize_chunk = [&](int64_t chunk) {
    const int64_t first = chunk * rows_per_chunk;
    const int64_t count = std::min(rows_per_chunk, nrows - first);
    tt.quantize(src + first * n_per_row, static_cast<uint8_t*>(dst) + first * row_bytes, count,
                n_per_row, imatrix);
  };
  run_chunks(pool, n_chunks, quantize_chunk);
  return row_bytes * static_cast<size_t>(nrows);
}

void convert_rows(QuantType src_type, const uint8_t* src, QuantType dst_type, int64_t nrows,
                  int64_t n_per_row, const float* imatrix, ThreadPool& pool,
                  const std::function<void(const uint8_t* bytes, size_t size)>& emit) {
  if (!quant_type_can_dequantize(src_type)) {
    throw Unsupported("convert: type '" + quant_type_name(src_type) + "' cannot be dequantized");
  }
  if (nrows <= 0) return;
  (void)quant_row_size(src_type, n_per_row);  // validates the source row length
  const size_t dst_row = quant_row_size(dst_type, n_per_row);
  // Enough rows to keep every thread busy, few enough that the float buffer stays ~4 MiB.
  const int64_t step =
      std::min(nrows, std::max<int64_t>(16, (int64_t{4} << 20) / std::max<int64_t>(1, n_per_row)));
  std::vector<float> f32(static_cast<size_t>(step * n_per_row));
  auto dequantize_step = [&](int64_t r0, int64_t n) {
    pool.parallel_for(n, [&](int, int64_t b, int64_t e) {
      dequantize_rows(src_type, src, nrows, n_per_row, r0 + b, r0 + e, f32.data() + b * n_per_row);
    });
  };
  std::vector<uint8_t> q(static_cast<size_t>(step) * dst_row);

  if (quant_type_has_tail(dst_type)) {
    // Two passes over the source, so only one step of floats is ever held: the tile maxima, then
    // the rows; the grid of scales follows the rows.
    const Fp8Grid g = fp8_grid(dst_type, nrows, n_per_row);
    std::vector<float> amax(static_cast<size_t>(g.size()), 0.0f);
    for (int64_t r0 = 0; r0 < nrows; r0 += step) {
      const int64_t n = std::min(step, nrows - r0);
      dequantize_step(r0, n);
      fp8_accumulate_amax(dst_type, f32.data(), r0, n, n_per_row, amax.data());
    }
    for (int64_t r0 = 0; r0 < nrows; r0 += step) {
      const int64_t n = std::min(step, nrows - r0);
      dequantize_step(r0, n);
      pool.parallel_for(n, [&](int, int64_t b, int64_t e) {
        fp8_quantize_rows(dst_type, f32.data() + b * n_per_row, r0 + b, e - b, n_per_row,
                          amax.data(), q.data() + b * n_per_row);
      });
      emit(q.data(), static_cast<size_t>(n * n_per_row));
    }
    fp8_grid_from_amax(dst_type, amax.data(), amax.data(), g.size());
    emit(reinterpret_cast<const uint8_t*>(amax.data()), amax.size() * sizeof(float));
    return;
  }

  for (int64_t r0 = 0; r0 < nrows; r0 += step) {
    const int64_t n = std::min(step, nrows - r0);
    dequantize_step(r0, n);
    const size_t size =
        quantize_tensor(dst_type, f32.data(), q.data(), n, n_per_row, imatrix, pool);
    emit(q.data(), size);
  }
}

}  // namespace insitu
