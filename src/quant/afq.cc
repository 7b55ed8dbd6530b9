// AFQ rows of the type table: MLX's affine quantizer, the dequantizer and the MLX layout
// converters (layout and algorithm: quant/afq.h).
#include "quant/afq.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>

#include "insitu/error.h"
#include "quant/float_convert.h"
#include "quant/group_affine.h"

namespace insitu {
namespace {

// One group, in the operation order of MLX's CPU `quantize` (mlx/backend/cpu/quantized.cpp):
// every intermediate is a float, divisions stay divisions, rint rounds half to even.
template <int kBits, int kGroup>
void quantize_group(const float* w, uint8_t* block) {
  constexpr float kBins = static_cast<float>((1 << kBits) - 1);
  constexpr float kEps = 1e-7f;
  float w_min = std::numeric_limits<float>::infinity();
  float w_max = -w_min;
  for (int j = 0; j < kGroup; ++j) {
    w_max = std::max(w_max, w[j]);
    w_min = std::min(w_min, w[j]);
  }
  const bool mask = std::fabs(w_min) > std::fabs(w_max);
  float scale = std::max((w_max - w_min) / kBins, kEps);
  scale = mask ? scale : -scale;
  const float edge = mask ? w_min : w_max;
  const float q0 = std::rint(edge / scale);
  float bias = 0.0f;
  if (q0 != 0.0f) {
    scale = edge / q0;
    bias = edge;
  }
  uint8_t q[kGroup];
  for (int j = 0; j < kGroup; ++j) {
    float el = std::rint((w[j] - bias) / scale);
    el = std::min(std::max(el, 0.0f), kBins);
    q[j] = static_cast<uint8_t>(el);
  }
  const uint16_t s16 = fp32_to_bf16(scale), b16 = fp32_to_bf16(bias);
  std::memcpy(block, &s16, 2);
  std::memcpy(block + 2, &b16, 2);
  pack_bit_stream(q, kGroup, kBits, block + 4);
}

template <int kBits, int kGroup>
constexpr size_t kBlockBytes = 4 + kGroup * kBits / 8;

template <int kBits, int kGroup>
size_t quantize_afq(const float* src, void* dst, int64_t nrows, int64_t n_per_row, const float*) {
  auto* out = static_cast<uint8_t*>(dst);
  const int64_t blocks = nrows * (n_per_row / kGroup);
  for (int64_t b = 0; b < blocks; ++b) {
    quantize_group<kBits, kGroup>(src + b * kGroup, out + b * kBlockBytes<kBits, kGroup>);
  }
  return static_cast<size_t>(blocks) * kBlockBytes<kBits, kGroup>;
}

template <int kBits, int kGroup>
void dequantize_afq(const void* src, float* dst, int64_t n) {
  const auto* in = static_cast<const uint8_t*>(src);
  uint8_t q[kGroup];
  for (int64_t b = 0; b < n / kGroup; ++b, in += kBlockBytes<kBits, kGroup>, dst += kGroup) {
    uint16_t s16, b16;
    std::memcpy(&s16, in, 2);
    std::memcpy(&b16, in + 2, 2);
    const float scale = bf16_to_fp32(s16), bias = bf16_to_fp32(b16);
    unpack_bit_stream(in + 4, kGroup, kBits, q);
    for (int j = 0; j < kGroup; ++j) dst[j] = static_cast<float>(q[j]) * scale + bias;
  }
}

template <int kBits, int kGroup>
TypeTraits row(QuantType type, const char* name) {
  return group_affine_traits(type, name, dequantize_afq<kBits, kGroup>,
                             quantize_afq<kBits, kGroup>);
}

const GroupAffineFormat& afq_format(QuantType type) {
  const GroupAffineFormat* f = group_affine_format(type);
  if (f == nullptr || f->header != AffineHeader::kAfq) {
    throw InvalidArgument("afq: type " + quant_type_name(type) + " is not an AFQ type");
  }
  return *f;
}

void check_row_length(const GroupAffineFormat& f, int64_t rows, int64_t n) {
  if (rows < 0 || n <= 0 || n % f.group != 0) {
    throw InvalidArgument("afq: " + quant_type_name(f.type) +
                          " needs rows of a positive multiple of " + std::to_string(f.group) +
                          " elements, got " + std::to_string(rows) + " rows of " +
                          std::to_string(n));
  }
}

}  // namespace

std::optional<QuantType> afq_type(int bits, int group) {
  for (const GroupAffineFormat& f : group_affine_formats()) {
    if (f.header == AffineHeader::kAfq && f.bits == bits && f.group == group) return f.type;
  }
  return std::nullopt;
}

bool is_afq_type(QuantType type) {
  const GroupAffineFormat* f = group_affine_format(type);
  return f != nullptr && f->header == AffineHeader::kAfq;
}

AfqMlxTensors afq_to_mlx(QuantType type, const void* blocks, int64_t rows, int64_t n) {
  const GroupAffineFormat& f = afq_format(type);
  check_row_length(f, rows, n);
  const int64_t groups = n / f.group;
  const size_t payload = f.payload_bytes();
  AfqMlxTensors out;
  out.bits = f.bits;
  out.group = f.group;
  out.w_q.resize(static_cast<size_t>(rows * n * f.bits / 32));
  out.scales.resize(static_cast<size_t>(rows * groups));
  out.biases.resize(static_cast<size_t>(rows * groups));
  const auto* in = static_cast<const uint8_t*>(blocks);
  auto* wq = reinterpret_cast<uint8_t*>(out.w_q.data());
  for (int64_t g = 0; g < rows * groups; ++g, in += f.block_bytes()) {
    std::memcpy(&out.scales[g], in, 2);
    std::memcpy(&out.biases[g], in + 2, 2);
    std::memcpy(wq + g * payload, in + 4, payload);
  }
  return out;
}

void afq_from_mlx(QuantType type, const AfqMlxTensors& mlx, int64_t rows, int64_t n, void* blocks) {
  const GroupAffineFormat& f = afq_format(type);
  check_row_length(f, rows, n);
  const int64_t groups = n / f.group;
  const auto want_wq = static_cast<size_t>(rows * n * f.bits / 32);
  const auto want_groups = static_cast<size_t>(rows * groups);
  if (mlx.bits != f.bits || mlx.group != f.group || mlx.w_q.size() != want_wq ||
      mlx.scales.size() != want_groups || mlx.biases.size() != want_groups) {
    throw InvalidArgument(
        "afq: MLX arrays do not match " + quant_type_name(type) + " for " + std::to_string(rows) +
        " rows of " + std::to_string(n) + ": bits " + std::to_string(mlx.bits) + ", group " +
        std::to_string(mlx.group) + ", w_q " + std::to_string(mlx.w_q.size()) + " words (want " +
        std::to_string(want_wq) + "), scales " + std::to_string(mlx.scales.size()) + ", biases " +
        std::to_string(mlx.biases.size()) + " (want " + std::to_string(want_groups) + ")");
  }
  const size_t payload = f.payload_bytes();
  auto* out = static_cast<uint8_t*>(blocks);
  const auto* wq = reinterpret_cast<const uint8_t*>(mlx.w_q.data());
  for (int64_t g = 0; g < rows * groups; ++g, out += f.block_bytes()) {
    std::memcpy(out, &mlx.scales[g], 2);
    std::memcpy(out + 2, &mlx.biases[g], 2);
    std::memcpy(out + 4, wq + g * payload, payload);
  }
}

void append_afq_types(std::vector<TypeTraits>& table) {
  using Q = QuantType;
  table.push_back(row<2, 64>(Q::kAFQ2, "afq2"));
  table.push_back(row<3, 64>(Q::kAFQ3, "afq3"));
  table.push_back(row<4, 64>(Q::kAFQ4, "afq4"));
  table.push_back(row<6, 64>(Q::kAFQ6, "afq6"));
  table.push_back(row<8, 64>(Q::kAFQ8, "afq8"));
  table.push_back(row<2, 32>(Q::kAFQ2_G32, "afq2_g32"));
  table.push_back(row<3, 32>(Q::kAFQ3_G32, "afq3_g32"));
  table.push_back(row<4, 32>(Q::kAFQ4_G32, "afq4_g32"));
  table.push_back(row<6, 32>(Q::kAFQ6_G32, "afq6_g32"));
  table.push_back(row<8, 32>(Q::kAFQ8_G32, "afq8_g32"));
  table.push_back(row<2, 128>(Q::kAFQ2_G128, "afq2_g128"));
  table.push_back(row<3, 128>(Q::kAFQ3_G128, "afq3_g128"));
  table.push_back(row<4, 128>(Q::kAFQ4_G128, "afq4_g128"));
  table.push_back(row<6, 128>(Q::kAFQ6_G128, "afq6_g128"));
  table.push_back(row<8, 128>(Q::kAFQ8_G128, "afq8_g128"));
}

}  // namespace insitu
