#include "quant/group_affine.h"

#include <iterator>

namespace insitu {
namespace {

using Q = QuantType;
constexpr AffineHeader kA = AffineHeader::kAfq;
constexpr AffineHeader kH = AffineHeader::kHqq;

constexpr GroupAffineFormat kFormats[] = {
    {Q::kHQQ2, 2, 64, kH},       {Q::kHQQ3, 3, 64, kH},       {Q::kHQQ4, 4, 64, kH},
    {Q::kHQQ8, 8, 64, kH},       {Q::kAFQ2, 2, 64, kA},       {Q::kAFQ3, 3, 64, kA},
    {Q::kAFQ4, 4, 64, kA},       {Q::kAFQ6, 6, 64, kA},       {Q::kAFQ8, 8, 64, kA},
    {Q::kAFQ2_G32, 2, 32, kA},   {Q::kAFQ3_G32, 3, 32, kA},   {Q::kAFQ4_G32, 4, 32, kA},
    {Q::kAFQ6_G32, 6, 32, kA},   {Q::kAFQ8_G32, 8, 32, kA},   {Q::kAFQ2_G128, 2, 128, kA},
    {Q::kAFQ3_G128, 3, 128, kA}, {Q::kAFQ4_G128, 4, 128, kA}, {Q::kAFQ6_G128, 6, 128, kA},
    {Q::kAFQ8_G128, 8, 128, kA},
};

}  // namespace

std::span<const GroupAffineFormat> group_affine_formats() { return kFormats; }

const GroupAffineFormat* group_affine_format(QuantType type) {
  for (const GroupAffineFormat& f : kFormats) {
    if (f.type == type) return &f;
  }
  return nullptr;
}

TypeTraits group_affine_traits(QuantType type, const char* name, DequantizeRowFn dequantize,
                               QuantizeFn quantize) {
  const GroupAffineFormat& f = *group_affine_format(type);
  TypeTraits t;
  t.type = type;
  t.name = name;
  t.ggml_name = name;
  t.block_size = f.group;
  t.type_size = f.block_bytes();
  t.is_quantized = true;
  t.requires_imatrix = false;
  t.vec_dot_type = QuantType::kQ8_1;
  t.dequantize_row = dequantize;
  t.quantize = quantize;
  return t;
}

void pack_bit_stream(const uint8_t* q, int64_t n, int bits, uint8_t* out) {
  // Eight values at a time fill exactly `bits` bytes (a 64-bit accumulator holds 8 x 8 bits).
  for (int64_t i = 0; i < n; i += 8) {
    uint64_t acc = 0;
    for (int k = 0; k < 8 && i + k < n; ++k) acc |= static_cast<uint64_t>(q[i + k]) << (k * bits);
    const int bytes = static_cast<int>(((n - i < 8 ? n - i : 8) * bits) / 8);
    for (int b = 0; b < bytes; ++b) *out++ = static_cast<uint8_t>(acc >> (8 * b));
  }
}

void unpack_bit_stream(const uint8_t* in, int64_t n, int bits, uint8_t* q) {
  const uint32_t mask = (1u << bits) - 1;
  for (int64_t i = 0; i < n; i += 8) {
    const int count = static_cast<int>(n - i < 8 ? n - i : 8);
    uint64_t acc = 0;
    for (int b = 0; b < count * bits / 8; ++b) acc |= static_cast<uint64_t>(*in++) << (8 * b);
    for (int k = 0; k < count; ++k) q[i + k] = static_cast<uint8_t>((acc >> (k * bits)) & mask);
  }
}

}  // namespace insitu
