// HQQ rows of the type table: mistral.rs's HQQ quantizer (axis 1, per-group early stop), the
// dequantizer and the UQFF tensor converters (layout and algorithm: quant/hqq.h).
#include "quant/hqq.h"

#include <algorithm>
#include <cstring>
#include <string>

#include "insitu/error.h"
#include "quant/group_affine.h"
#include "quant/hqq_simd.h"

namespace insitu {
namespace {

template <int kBits>
void write_group(const uint8_t* q, float s, float z, uint8_t* block) {
  const float scale = 1.0f / s;
  std::memcpy(block, &scale, 4);
  std::memcpy(block + 4, &z, 4);
  pack_bit_stream(q, kHqqGroup, kBits, block + 8);
}

template <int kBits>
constexpr size_t kBlockBytes = 8 + kHqqGroup* kBits / 8;

template <int kBits>
size_t quantize_hqq(const float* src, void* dst, int64_t nrows, int64_t n_per_row, const float*) {
  auto* out = static_cast<uint8_t*>(dst);
  const int64_t blocks = nrows * (n_per_row / kHqqGroup);
  // The optimiser (quant/hqq_simd.h) finds each group's inverse scale and zero, a chunk of groups
  // per call; every group is optimised on its own, so chunking does not change the bytes.
  const hqq::HqqKernels& kernels = hqq::hqq_kernels();
  constexpr int64_t kChunk = 64;
  float s[kChunk], z[kChunk];
  uint8_t q[kChunk * kHqqGroup];
  for (int64_t b0 = 0; b0 < blocks; b0 += kChunk) {
    const int64_t count = std::min(kChunk, blocks - b0);
    kernels.optimize(src + b0 * kHqqGroup, count, static_cast<float>((1 << kBits) - 1), s, z, q);
    for (int64_t i = 0; i < count; ++i) {
      write_group<kBits>(q + i * kHqqGroup, s[i], z[i], out + (b0 + i) * kBlockBytes<kBits>);
    }
  }
  return static_cast<size_t>(blocks) * kBlockBytes<kBits>;
}

template <int kBits>
void dequantize_hqq(const void* src, float* dst, int64_t n) {
  const auto* in = static_cast<const uint8_t*>(src);
  uint8_t q[kHqqGroup];
  for (int64_t b = 0; b < n / kHqqGroup; ++b, in += kBlockBytes<kBits>, dst += kHqqGroup) {
    float scale, zero;
    std::memcpy(&scale, in, 4);
    std::memcpy(&zero, in + 4, 4);
    unpack_bit_stream(in + 8, kHqqGroup, kBits, q);
    for (int j = 0; j < kHqqGroup; ++j) dst[j] = (static_cast<float>(q[j]) - zero) * scale;
  }
}

template <int kBits>
TypeTraits row(QuantType type, const char* name) {
  return group_affine_traits(type, name, dequantize_hqq<kBits>, quantize_hqq<kBits>);
}

const GroupAffineFormat& hqq_format(QuantType type) {
  const GroupAffineFormat* f = group_affine_format(type);
  if (f == nullptr || f->header != AffineHeader::kHqq) {
    throw InvalidArgument("hqq: type " + quant_type_name(type) + " is not an HQQ type");
  }
  return *f;
}

// Rows of the q matrix packed into one element of the UQFF tensor, and the packed row count.
int pack_factor(int bits) { return bits == 8 ? 1 : bits == 4 ? 2 : bits == 2 ? 4 : 10; }

int64_t packed_rows(const GroupAffineFormat& f, int64_t groups) {
  const int k = pack_factor(f.bits);
  if (f.bits == 3) return (groups + 9) / 10;
  if (groups % k != 0) {
    throw InvalidArgument("hqq: " + quant_type_name(f.type) + " packs " + std::to_string(k) +
                          " groups per byte for UQFF, got " + std::to_string(groups) +
                          " groups (not a multiple of " + std::to_string(k) + ")");
  }
  return groups / k;
}

int64_t group_count(const GroupAffineFormat& f, int64_t rows, int64_t n) {
  if (rows <= 0 || n <= 0 || n % kHqqGroup != 0) {
    throw InvalidArgument("hqq: " + quant_type_name(f.type) +
                          " needs rows of a positive multiple of " + std::to_string(kHqqGroup) +
                          " elements, got " + std::to_string(rows) + " rows of " +
                          std::to_string(n));
  }
  return rows * (n / kHqqGroup);
}

}  // namespace

bool is_hqq_type(QuantType type) {
  const GroupAffineFormat* f = group_affine_format(type);
  return f != nullptr && f->header == AffineHeader::kHqq;
}

HqqUqffTensors hqq_to_uqff(QuantType type, const void* blocks, int64_t rows, int64_t n) {
  const GroupAffineFormat& f = hqq_format(type);
  const int64_t groups = group_count(f, rows, n);
  const int64_t out_rows = packed_rows(f, groups);
  const int64_t step = f.bits == 3 ? out_rows : groups / pack_factor(f.bits);
  HqqUqffTensors out;
  out.bits = f.bits;
  out.w_q_shape = {out_rows, kHqqGroup};
  out.scales.resize(static_cast<size_t>(groups));
  out.zeros.resize(static_cast<size_t>(groups));
  const size_t elem = f.bits == 3 ? 4 : 1;
  out.w_q.assign(static_cast<size_t>(out_rows * kHqqGroup) * elem, 0);
  const auto* in = static_cast<const uint8_t*>(blocks);
  uint8_t q[kHqqGroup];
  for (int64_t g = 0; g < groups; ++g, in += f.block_bytes()) {
    std::memcpy(&out.scales[g], in, 4);
    std::memcpy(&out.zeros[g], in + 4, 4);
    unpack_bit_stream(in + 8, kHqqGroup, f.bits, q);
    // Group g is row g of Q: packed row g % step, slot k = g / step (the most significant first).
    const int64_t dst_row = g % step;
    const int k = static_cast<int>(g / step);
    for (int c = 0; c < kHqqGroup; ++c) {
      const size_t at = static_cast<size_t>(dst_row * kHqqGroup + c);
      if (f.bits == 3) {
        uint32_t word;
        std::memcpy(&word, &out.w_q[at * 4], 4);
        word |= static_cast<uint32_t>(q[c]) << (27 - 3 * k);
        std::memcpy(&out.w_q[at * 4], &word, 4);
      } else {
        const int shift = 8 - f.bits * (k + 1);
        out.w_q[at] = static_cast<uint8_t>(out.w_q[at] | (q[c] << shift));
      }
    }
  }
  return out;
}

void hqq_from_uqff(QuantType type, const HqqUqffTensors& uqff, int64_t rows, int64_t n,
                   void* blocks) {
  const GroupAffineFormat& f = hqq_format(type);
  const int64_t groups = group_count(f, rows, n);
  const int64_t in_rows = packed_rows(f, groups);
  const size_t elem = f.bits == 3 ? 4 : 1;
  if (uqff.bits != f.bits || uqff.w_q_shape != std::vector<int64_t>{in_rows, kHqqGroup} ||
      uqff.w_q.size() != static_cast<size_t>(in_rows * kHqqGroup) * elem ||
      uqff.scales.size() != static_cast<size_t>(groups) ||
      uqff.zeros.size() != static_cast<size_t>(groups)) {
    throw InvalidArgument("hqq: UQFF tensors do not match " + quant_type_name(type) + " for " +
                          std::to_string(rows) + " rows of " + std::to_string(n) + ": want w_q [" +
                          std::to_string(in_rows) + ", 64] and " + std::to_string(groups) +
                          " scales and zeros, got " + std::to_string(uqff.w_q.size()) +
                          " w_q bytes, " + std::to_string(uqff.scales.size()) + " scales, " +
                          std::to_string(uqff.zeros.size()) + " zeros");
  }
  const int64_t step = f.bits == 3 ? in_rows : groups / pack_factor(f.bits);
  const uint32_t mask = (1u << f.bits) - 1;
  auto* out = static_cast<uint8_t*>(blocks);
  uint8_t q[kHqqGroup];
  for (int64_t g = 0; g < groups; ++g, out += f.block_bytes()) {
    const int64_t src_row = g % step;
    const int k = static_cast<int>(g / step);
    for (int c = 0; c < kHqqGroup; ++c) {
      const size_t at = static_cast<size_t>(src_row * kHqqGroup + c);
      uint32_t v;
      if (f.bits == 3) {
        uint32_t word;
        std::memcpy(&word, &uqff.w_q[at * 4], 4);
        v = word >> (27 - 3 * k);
      } else {
        v = static_cast<uint32_t>(uqff.w_q[at]) >> (8 - f.bits * (k + 1));
      }
      q[c] = static_cast<uint8_t>(v & mask);
    }
    std::memcpy(out, &uqff.scales[g], 4);
    std::memcpy(out + 4, &uqff.zeros[g], 4);
    pack_bit_stream(q, kHqqGroup, f.bits, out + 8);
  }
}

void append_hqq_types(std::vector<TypeTraits>& table) {
  using Q = QuantType;
  table.push_back(row<2>(Q::kHQQ2, "hqq2"));
  table.push_back(row<3>(Q::kHQQ3, "hqq3"));
  table.push_back(row<4>(Q::kHQQ4, "hqq4"));
  table.push_back(row<8>(Q::kHQQ8, "hqq8"));
}

}  // namespace insitu
