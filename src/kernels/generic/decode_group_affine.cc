#include "kernels/generic/decode_group_affine.h"

#include <cstring>

#include "quant/float_convert.h"
#include "quant/group_affine.h"

namespace insitu {
namespace {

template <int kBits, int kGroup, AffineHeader kHeader>
void decode_group_affine(const void* p, int8_t* v, float* scale, float* min) {
  const auto* b = static_cast<const uint8_t*>(p);
  float s, m;
  size_t header;
  if constexpr (kHeader == AffineHeader::kAfq) {
    uint16_t s16, b16;
    std::memcpy(&s16, b, 2);
    std::memcpy(&b16, b + 2, 2);
    s = bf16_to_fp32(s16);
    m = bf16_to_fp32(b16);
    if constexpr (kBits == 8) m = m + 128.0f * s;  // 128 * s is exact: no rounding to contract
    header = 4;
  } else {
    float zero;
    std::memcpy(&s, b, 4);
    std::memcpy(&zero, b + 4, 4);
    m = (kBits == 8 ? 128.0f - zero : -zero) * s;
    header = 8;
  }
  uint8_t q[kGroup];
  unpack_bit_stream(b + header, kGroup, kBits, q);
  for (int i = 0; i < kGroup; ++i) v[i] = static_cast<int8_t>(kBits == 8 ? q[i] - 128 : q[i]);
  for (int j = 0; j < kGroup / 32; ++j) {
    scale[j] = s;
    min[j] = m;
  }
}

template <QuantType kType, int kBits, int kGroup, AffineHeader kHeader>
constexpr DecodeInfo info() {
  constexpr size_t header = kHeader == AffineHeader::kAfq ? 4 : 8;
  return {kType, kGroup, 32, true, QuantType::kQ8_1, header + kGroup * kBits / 8,
          decode_group_affine<kBits, kGroup, kHeader>};
}

using Q = QuantType;
constexpr AffineHeader kA = AffineHeader::kAfq;
constexpr AffineHeader kH = AffineHeader::kHqq;

const DecodeInfo kDecoders[] = {
    info<Q::kHQQ2, 2, 64, kH>(),       info<Q::kHQQ3, 3, 64, kH>(),
    info<Q::kHQQ4, 4, 64, kH>(),       info<Q::kHQQ8, 8, 64, kH>(),
    info<Q::kAFQ2, 2, 64, kA>(),       info<Q::kAFQ3, 3, 64, kA>(),
    info<Q::kAFQ4, 4, 64, kA>(),       info<Q::kAFQ6, 6, 64, kA>(),
    info<Q::kAFQ8, 8, 64, kA>(),       info<Q::kAFQ2_G32, 2, 32, kA>(),
    info<Q::kAFQ3_G32, 3, 32, kA>(),   info<Q::kAFQ4_G32, 4, 32, kA>(),
    info<Q::kAFQ6_G32, 6, 32, kA>(),   info<Q::kAFQ8_G32, 8, 32, kA>(),
    info<Q::kAFQ2_G128, 2, 128, kA>(), info<Q::kAFQ3_G128, 3, 128, kA>(),
    info<Q::kAFQ4_G128, 4, 128, kA>(), info<Q::kAFQ6_G128, 6, 128, kA>(),
    info<Q::kAFQ8_G128, 8, 128, kA>(),
};

}  // namespace

const DecodeInfo* group_affine_decode_info(QuantType type) {
  for (const DecodeInfo& d : kDecoders) {
    if (d.type == type) return &d;
  }
  return nullptr;
}

}  // namespace insitu
