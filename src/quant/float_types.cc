// F32, F16 and BF16 rows: conversion only, so they slot into the same table as the quantized types.
#include <cstring>

#include "quant/float_convert.h"
#include "quant/type_traits.h"

namespace insitu {
namespace {

void dequantize_f32(const void* src, float* dst, int64_t n) {
  std::memcpy(dst, src, static_cast<size_t>(n) * sizeof(float));
}
void dequantize_f16(const void* src, float* dst, int64_t n) {
  const auto* s = static_cast<const uint16_t*>(src);
  for (int64_t i = 0; i < n; ++i) dst[i] = fp16_to_fp32(s[i]);
}
void dequantize_bf16(const void* src, float* dst, int64_t n) {
  const auto* s = static_cast<const uint16_t*>(src);
  for (int64_t i = 0; i < n; ++i) dst[i] = bf16_to_fp32(s[i]);
}

size_t quantize_f32(const float* src, void* dst, int64_t nrows, int64_t n_per_row, const float*) {
  const size_t n = static_cast<size_t>(nrows * n_per_row);
  std::memcpy(dst, src, n * sizeof(float));
  return n * sizeof(float);
}
size_t quantize_f16(const float* src, void* dst, int64_t nrows, int64_t n_per_row, const float*) {
  const int64_t n = nrows * n_per_row;
  auto* d = static_cast<uint16_t*>(dst);
  for (int64_t i = 0; i < n; ++i) d[i] = fp32_to_fp16(src[i]);
  return static_cast<size_t>(n) * 2;
}
size_t quantize_bf16(const float* src, void* dst, int64_t nrows, int64_t n_per_row, const float*) {
  const int64_t n = nrows * n_per_row;
  auto* d = static_cast<uint16_t*>(dst);
  for (int64_t i = 0; i < n; ++i) d[i] = fp32_to_bf16(src[i]);
  return static_cast<size_t>(n) * 2;
}

}  // namespace

void register_float_types(std::span<TypeTraits> table) {
  TypeTraits& f32 = table_row(table, QuantType::kF32);
  f32.dequantize_row = dequantize_f32;
  f32.quantize = quantize_f32;
  TypeTraits& f16 = table_row(table, QuantType::kF16);
  f16.dequantize_row = dequantize_f16;
  f16.quantize = quantize_f16;
  TypeTraits& bf16 = table_row(table, QuantType::kBF16);
  bf16.dequantize_row = dequantize_bf16;
  bf16.quantize = quantize_bf16;
}

}  // namespace insitu
