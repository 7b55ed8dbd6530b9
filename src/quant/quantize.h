// The library's entry point for quantizing a float matrix to any type in the type table.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>

#include "insitu/quant_type.h"
#include "util/thread_pool.h"

namespace insitu {

// Quantizes `nrows` rows of `n_per_row` floats from `src` into `dst` as `type`, splitting the rows
// across `pool`, and returns the bytes written (nrows * quant_row_size(type, n_per_row)).
//
// `dst` must hold that many bytes. `imatrix` is null or holds n_per_row non-negative importance
// weights (one per column, shared by every row, as an imatrix file gives them). Quantization is
// row-local, so the bytes are identical for any thread count and any chunking; for ggml types
// they are byte-identical to ggml's ggml_quantize_chunk.
//
// Throws InvalidArgument, naming the type and the reason, when: the type has no quantizer;
// n_per_row is not a positive multiple of the type's block size; nrows is negative; the type
// requires an imatrix (iq2_xxs, iq2_xs, iq1_s) and none is given; or the output size overflows.
// Nothing is written in that case. Not re-entrant on the same pool (see ThreadPool).
size_t quantize_tensor(QuantType type, const float* src, void* dst, int64_t nrows,
                       int64_t n_per_row, const float* imatrix, ThreadPool& pool);

// Converts `nrows` rows stored as `src_type` (any type with a dequantizer) into `dst_type`, a few
// MiB of floats at a time so memory stays bounded whatever the tensor's size. Each converted step
// is handed to `emit(bytes, size)` in row order; the concatenation is exactly what
// quantize_tensor gives for the whole tensor. Throws as quantize_tensor does, and Unsupported
// when `src_type` cannot be dequantized.
void convert_rows(QuantType src_type, const uint8_t* src, QuantType dst_type, int64_t nrows,
                  int64_t n_per_row, const float* imatrix, ThreadPool& pool,
                  const std::function<void(const uint8_t* bytes, size_t size)>& emit);

}  // namespace insitu
