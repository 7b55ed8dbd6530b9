// The library's entry point for quantizing a float matrix to any type in the type table.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>

#include "insitu/quant_type.h"
#include "util/thread_pool.h"

namespace insitu {

// True for types whose tensors carry data after their rows (kFP8 and kFP8_B128: a grid of f32
// scales, quant/fp8.h); their row-local TypeTraits functions are null and every tensor-level
// function below handles them.
bool quant_type_has_tail(QuantType type);

// Bytes of a whole n_rows x n_per_row tensor: n_rows * quant_row_size(type, n_per_row), plus the
// tail for types that have one. Throws InvalidArgument as quant_row_size does, or on overflow.
size_t quant_tensor_size(QuantType type, int64_t n_rows, int64_t n_per_row);

// Whether quantize_tensor / convert_rows can produce the type, and dequantize_rows read it.
bool quant_type_can_quantize(QuantType type);
bool quant_type_can_dequantize(QuantType type);

// Dequantizes rows [r0, r1) of a whole tensor `data` (n_rows x n_per_row of `type`, laid out as
// quant_tensor_size describes) into dst ((r1 - r0) * n_per_row floats). Single-threaded. Throws
// Unsupported for a type without a dequantizer and InvalidArgument for rows outside the tensor.
void dequantize_rows(QuantType type, const uint8_t* data, int64_t n_rows, int64_t n_per_row,
                     int64_t r0, int64_t r1, float* dst);

// Quantizes `nrows` rows of `n_per_row` floats from `src` into `dst` as `type`, splitting the rows
// across `pool`, and returns the bytes written (quant_tensor_size(type, nrows, n_per_row)).
//
// `dst` must hold that many bytes. Types with a tail (fp8) first take their scales from the whole
// tensor, then quantize the rows; their bytes too are independent of the thread count. `imatrix` is null or holds n_per_row non-negative importance
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
// quantize_tensor gives for the whole tensor. `src` is the whole source tensor (for a source with
// a tail its scales are read from there). A destination with a tail is produced in two passes over
// the source (scales, then rows), its tail emitted last. Throws as quantize_tensor does, and
// Unsupported when `src_type` cannot be dequantized.
void convert_rows(QuantType src_type, const uint8_t* src, QuantType dst_type, int64_t nrows,
                  int64_t n_per_row, const float* imatrix, ThreadPool& pool,
                  const std::function<void(const uint8_t* bytes, size_t size)>& emit);

}  // namespace insitu
