// Block decoders (see decode.h) and the scalar activation quantizers.
//
// Element orders and scale encodings follow ggml's dequantize_row_* (src/ggml-quants.c at ggml
// commit d99724f2); the activation quantizers follow quantize_row_q8_{0,1,K}_ref there.
#include "kernels/generic/decode.h"

#include <cmath>
#include <cstring>
#include <vector>

#include "kernels/generic/decode_group_affine.h"
#include "quant/blocks.h"
#include "quant/float_convert.h"
#include "quant/fp8.h"
#include "quant/iq_tables.h"

namespace insitu {
namespace {

constexpr int8_t kValuesIq4nl[16] = {-127, -104, -83, -65, -49, -35, -22, -10,
                                     1,    13,   25,  38,  53,  69,  89,  113};
constexpr int8_t kValuesFp4[16] = {0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12};

// 2^(e-128): the MXFP4 scale halved, because kValuesFp4 are doubled E2M1 values.
float e8m0_to_fp32_half(uint8_t e) {
  const uint32_t bits = e < 2 ? 0x00200000u << e : static_cast<uint32_t>(e - 1) << 23;
  float f;
  std::memcpy(&f, &bits, sizeof(f));
  return f;
}

// Low nibble of qs[j] is element j, high nibble element j + 16 (32-element blocks).
void split_nibbles(const uint8_t* qs, int* q) {
  for (int j = 0; j < 16; ++j) {
    q[j] = qs[j] & 0x0F;
    q[j + 16] = qs[j] >> 4;
  }
}

void decode_q4_0(const void* p, int8_t* v, float* scale, float* min) {
  const auto& b = *static_cast<const BlockQ4_0*>(p);
  int q[32];
  split_nibbles(b.qs, q);
  for (int i = 0; i < 32; ++i) v[i] = static_cast<int8_t>(q[i] - 8);
  scale[0] = fp16_to_fp32(b.d);
  min[0] = 0.0f;
}

void decode_q4_1(const void* p, int8_t* v, float* scale, float* min) {
  const auto& b = *static_cast<const BlockQ4_1*>(p);
  int q[32];
  split_nibbles(b.qs, q);
  for (int i = 0; i < 32; ++i) v[i] = static_cast<int8_t>(q[i]);
  scale[0] = fp16_to_fp32(b.d);
  min[0] = fp16_to_fp32(b.m);
}

uint32_t load_u32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

void decode_q5_0(const void* p, int8_t* v, float* scale, float* min) {
  const auto& b = *static_cast<const BlockQ5_0*>(p);
  int q[32];
  split_nibbles(b.qs, q);
  const uint32_t qh = load_u32(b.qh);
  for (int i = 0; i < 32; ++i) v[i] = static_cast<int8_t>((q[i] | (((qh >> i) & 1) << 4)) - 16);
  scale[0] = fp16_to_fp32(b.d);
  min[0] = 0.0f;
}

void decode_q5_1(const void* p, int8_t* v, float* scale, float* min) {
  const auto& b = *static_cast<const BlockQ5_1*>(p);
  int q[32];
  split_nibbles(b.qs, q);
  const uint32_t qh = load_u32(b.qh);
  for (int i = 0; i < 32; ++i) v[i] = static_cast<int8_t>(q[i] | (((qh >> i) & 1) << 4));
  scale[0] = fp16_to_fp32(b.d);
  min[0] = fp16_to_fp32(b.m);
}

void decode_q8_0(const void* p, int8_t* v, float* scale, float* min) {
  const auto& b = *static_cast<const BlockQ8_0*>(p);
  std::memcpy(v, b.qs, 32);
  scale[0] = fp16_to_fp32(b.d);
  min[0] = 0.0f;
}

void decode_iq4_nl(const void* p, int8_t* v, float* scale, float* min) {
  const auto& b = *static_cast<const BlockIQ4NL*>(p);
  int q[32];
  split_nibbles(b.qs, q);
  for (int i = 0; i < 32; ++i) v[i] = kValuesIq4nl[q[i]];
  scale[0] = fp16_to_fp32(b.d);
  min[0] = 0.0f;
}

void decode_mxfp4(const void* p, int8_t* v, float* scale, float* min) {
  const auto& b = *static_cast<const BlockMXFP4*>(p);
  int q[32];
  split_nibbles(b.qs, q);
  for (int i = 0; i < 32; ++i) v[i] = kValuesFp4[q[i]];
  scale[0] = e8m0_to_fp32_half(b.e);
  min[0] = 0.0f;
}

// mistral.rs's F8Q8 (quant/fp8.h): int8 values, scale = E4M3(d) / 448.
void decode_f8q8(const void* p, int8_t* v, float* scale, float* min) {
  const auto& b = *static_cast<const BlockF8Q8*>(p);
  std::memcpy(v, b.qs, 32);
  scale[0] = f8q8_scale(b.d);
  min[0] = 0.0f;
}

// 16 groups of 16: scales[s] low nibble = scale, high nibble = min. Quants: each 128-element half
// uses 32 bytes; element 32*j + l of the half sits at bits 2*j of byte l.
void decode_q2_k(const void* p, int8_t* v, float* scale, float* min) {
  const auto& b = *static_cast<const BlockQ2K*>(p);
  for (int e = 0; e < 256; ++e) {
    const int half = e / 128, j = (e % 128) / 32, l = e % 32;
    v[e] = static_cast<int8_t>((b.qs[32 * half + l] >> (2 * j)) & 3);
  }
  const float d = fp16_to_fp32(b.d), dmin = fp16_to_fp32(b.dmin);
  for (int s = 0; s < 16; ++s) {
    scale[s] = d * static_cast<float>(b.scales[s] & 0x0F);
    min[s] = -dmin * static_cast<float>(b.scales[s] >> 4);
  }
}

// v = q2 - (high bit clear ? 4 : 0); 16 six-bit scales stored +32 (low nibbles in scales[0..7],
// top two bits in scales[8..11]).
void decode_q3_k(const void* p, int8_t* v, float* scale, float* min) {
  const auto& b = *static_cast<const BlockQ3K*>(p);
  for (int e = 0; e < 256; ++e) {
    const int half = e / 128, j = (e % 128) / 32, l = e % 32;
    const int q2 = (b.qs[32 * half + l] >> (2 * j)) & 3;
    const int hbit = (b.hmask[l] >> (e / 32)) & 1;
    v[e] = static_cast<int8_t>(q2 - (hbit ? 0 : 4));
  }
  const float d = fp16_to_fp32(b.d);
  for (int s = 0; s < 16; ++s) {
    const int low = s < 8 ? (b.scales[s] & 0x0F) : (b.scales[s - 8] >> 4);
    const int high = (b.scales[8 + s % 4] >> (2 * (s / 4))) & 3;
    scale[s] = d * static_cast<float>((low | (high << 4)) - 32);
    min[s] = 0.0f;
  }
}

// ggml's get_scale_min_k4: 8 six-bit scales and 8 six-bit mins packed in 12 bytes.
void scale_min_k4(int j, const uint8_t* q, int* sc, int* m) {
  if (j < 4) {
    *sc = q[j] & 63;
    *m = q[j + 4] & 63;
  } else {
    *sc = (q[j + 4] & 0x0F) | ((q[j - 4] >> 6) << 4);
    *m = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
  }
}

void decode_q4_k(const void* p, int8_t* v, float* scale, float* min) {
  const auto& b = *static_cast<const BlockQ4K*>(p);
  for (int c = 0; c < 4; ++c) {
    for (int l = 0; l < 32; ++l) {
      v[64 * c + l] = static_cast<int8_t>(b.qs[32 * c + l] & 0x0F);
      v[64 * c + 32 + l] = static_cast<int8_t>(b.qs[32 * c + l] >> 4);
    }
  }
  const float d = fp16_to_fp32(b.d), dmin = fp16_to_fp32(b.dmin);
  for (int s = 0; s < 8; ++s) {
    int sc, m;
    scale_min_k4(s, b.scales, &sc, &m);
    scale[s] = d * static_cast<float>(sc);
    min[s] = -dmin * static_cast<float>(m);
  }
}

void decode_q5_k(const void* p, int8_t* v, float* scale, float* min) {
  const auto& b = *static_cast<const BlockQ5K*>(p);
  for (int c = 0; c < 4; ++c) {
    for (int l = 0; l < 32; ++l) {
      const int h0 = (b.qh[l] >> (2 * c)) & 1, h1 = (b.qh[l] >> (2 * c + 1)) & 1;
      v[64 * c + l] = static_cast<int8_t>((b.qs[32 * c + l] & 0x0F) | (h0 << 4));
      v[64 * c + 32 + l] = static_cast<int8_t>((b.qs[32 * c + l] >> 4) | (h1 << 4));
    }
  }
  const float d = fp16_to_fp32(b.d), dmin = fp16_to_fp32(b.dmin);
  for (int s = 0; s < 8; ++s) {
    int sc, m;
    scale_min_k4(s, b.scales, &sc, &m);
    scale[s] = d * static_cast<float>(sc);
    min[s] = -dmin * static_cast<float>(m);
  }
}

// Per 128-element half h: ql[64h + l] holds low nibbles of elements l (low) and l + 64 (high),
// ql[64h + l + 32] those of l + 32 and l + 96; qh[32h + l] the two high bits of l, l+32, l+64,
// l+96 at shifts 0, 2, 4, 6. Values are stored +32.
void decode_q6_k(const void* p, int8_t* v, float* scale, float* min) {
  const auto& b = *static_cast<const BlockQ6K*>(p);
  for (int h = 0; h < 2; ++h) {
    const uint8_t* ql = b.ql + 64 * h;
    const uint8_t* qh = b.qh + 32 * h;
    int8_t* o = v + 128 * h;
    for (int l = 0; l < 32; ++l) {
      o[l] = static_cast<int8_t>(((ql[l] & 0x0F) | (((qh[l] >> 0) & 3) << 4)) - 32);
      o[l + 32] = static_cast<int8_t>(((ql[l + 32] & 0x0F) | (((qh[l] >> 2) & 3) << 4)) - 32);
      o[l + 64] = static_cast<int8_t>(((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32);
      o[l + 96] = static_cast<int8_t>(((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32);
    }
  }
  const float d = fp16_to_fp32(b.d);
  for (int s = 0; s < 16; ++s) {
    scale[s] = d * static_cast<float>(b.scales[s]);
    min[s] = 0.0f;
  }
}

void decode_iq4_xs(const void* p, int8_t* v, float* scale, float* min) {
  const auto& b = *static_cast<const BlockIQ4XS*>(p);
  const float d = fp16_to_fp32(b.d);
  for (int s = 0; s < 8; ++s) {
    const int ls = ((b.scales_l[s / 2] >> (4 * (s % 2))) & 0x0F) | (((b.scales_h >> (2 * s)) & 3) << 4);
    scale[s] = d * static_cast<float>(ls - 32);
    min[s] = 0.0f;
    for (int j = 0; j < 16; ++j) {
      v[32 * s + j] = kValuesIq4nl[b.qs[16 * s + j] & 0x0F];
      v[32 * s + 16 + j] = kValuesIq4nl[b.qs[16 * s + j] >> 4];
    }
  }
}

// Per 128-element chunk c: byte qs[32c + m] holds elements 128c + 32l + m at shifts 2l; v = q - 1.
void decode_tq2_0(const void* p, int8_t* v, float* scale, float* min) {
  const auto& b = *static_cast<const BlockTQ2_0*>(p);
  for (int e = 0; e < 256; ++e) {
    const int c = e / 128, l = (e % 128) / 32, m = e % 32;
    v[e] = static_cast<int8_t>(((b.qs[32 * c + m] >> (2 * l)) & 3) - 1);
  }
  const float d = fp16_to_fp32(b.d);
  for (int s = 0; s < 8; ++s) {
    scale[s] = d;
    min[s] = 0.0f;
  }
}

// ---- grid i-quants and tq1_0 (ports of dequantize_row_iq* / _tq1_0 in quant/) -----------------
// Their values are lattice points: v is the signed grid value and the scale carries d times the
// sub-block factor. Every grid magnitude has at most 6 bits and d*(2s+1) at most 16, so each
// scale * v is exact in float and equals the dequantizer's product.

// Eight grid bytes (element j in byte j), negated where bit j of `signs` is set.
void signed_grid8(uint64_t grid, uint8_t signs, int8_t* v) {
  for (int j = 0; j < 8; ++j) {
    const int g = static_cast<int>((grid >> (8 * j)) & 0xFF);
    v[j] = static_cast<int8_t>((signs >> j) & 1 ? -g : g);
  }
}

// Two 4-wide grid entries (IQ3) as one group of eight.
uint64_t join_grid4(uint32_t lo, uint32_t hi) { return lo | static_cast<uint64_t>(hi) << 32; }

// d * (0.5 + s) * 0.25 (IQ2) or * 0.5 (IQ3) written as d * (2s + 1) / 8 or / 4: exact either way.
float odd_scale(float d, int s, float pow2) { return d * static_cast<float>(2 * s + 1) * pow2; }

void decode_iq2_xxs(const void* p, int8_t* v, float* scale, float* min) {
  const auto& b = *static_cast<const BlockIQ2XXS*>(p);
  const float d = fp16_to_fp32(b.d);
  for (int ib = 0; ib < 8; ++ib, v += 32) {
    uint32_t aux[2];
    std::memcpy(aux, b.qs + 4 * ib, sizeof(aux));
    for (int l = 0; l < 4; ++l) {
      const int idx = static_cast<int>((aux[0] >> (8 * l)) & 0xFF);
      signed_grid8(kGridIQ2XXS[idx], kSignsIQ2XS[(aux[1] >> (7 * l)) & 127], v + 8 * l);
    }
    scale[ib] = odd_scale(d, static_cast<int>(aux[1] >> 28), 0.125f);
    min[ib] = 0.0f;
  }
}

// IQ2_XS / IQ2_S 16-element sub-blocks: scales[ib] low nibble for elements 0..15 of the 32,
// high nibble for 16..31.
void iq2_scales16(float d, const uint8_t* scales, float* scale, float* min) {
  for (int s = 0; s < 16; ++s) {
    scale[s] = odd_scale(d, (scales[s / 2] >> (4 * (s % 2))) & 0x0F, 0.125f);
    min[s] = 0.0f;
  }
}

void decode_iq2_xs(const void* p, int8_t* v, float* scale, float* min) {
  const auto& b = *static_cast<const BlockIQ2XS*>(p);
  const float d = fp16_to_fp32(b.d);
  for (int g = 0; g < 32; ++g) {
    const uint16_t q = b.qs[g];
    signed_grid8(kGridIQ2XS[q & 511], kSignsIQ2XS[q >> 9], v + 8 * g);
  }
  iq2_scales16(d, b.scales, scale, min);
}

// qs[0..32): low 8 index bits, qs[32..64): one sign byte per 8, qh: 2 high index bits per 8.
void decode_iq2_s(const void* p, int8_t* v, float* scale, float* min) {
  const auto& b = *static_cast<const BlockIQ2S*>(p);
  const float d = fp16_to_fp32(b.d);
  for (int g = 0; g < 32; ++g) {
    const int ib = g / 4, l = g % 4;
    const int idx = b.qs[g] | ((b.qh[ib] << (8 - 2 * l)) & 0x300);
    signed_grid8(kGridIQ2S[idx], b.qs[kQK_K / 8 + g], v + 8 * g);
  }
  iq2_scales16(d, b.scales, scale, min);
}

// qs[0..64): grid indices, two per 8 elements; then per 32 a u32 of 4 x 7-bit signs | s << 28.
void decode_iq3_xxs(const void* p, int8_t* v, float* scale, float* min) {
  const auto& b = *static_cast<const BlockIQ3XXS*>(p);
  const float d = fp16_to_fp32(b.d);
  for (int ib = 0; ib < 8; ++ib, v += 32) {
    const uint8_t* qs = b.qs + 8 * ib;
    uint32_t aux;
    std::memcpy(&aux, b.qs + kQK_K / 4 + 4 * ib, sizeof(aux));
    for (int l = 0; l < 4; ++l) {
      const uint64_t grid = join_grid4(kGridIQ3XXS[qs[2 * l]], kGridIQ3XXS[qs[2 * l + 1]]);
      signed_grid8(grid, kSignsIQ2XS[(aux >> (7 * l)) & 127], v + 8 * l);
    }
    scale[ib] = odd_scale(d, static_cast<int>(aux >> 28), 0.25f);
    min[ib] = 0.0f;
  }
}

// Per 32: qs 8 low index bytes, qh one byte of 9th bits, 4 sign bytes; 4-bit scales in pairs.
void decode_iq3_s(const void* p, int8_t* v, float* scale, float* min) {
  const auto& b = *static_cast<const BlockIQ3S*>(p);
  const float d = fp16_to_fp32(b.d);
  for (int ib = 0; ib < 8; ++ib, v += 32) {
    const uint8_t* qs = b.qs + 8 * ib;
    const int qh = b.qh[ib];
    for (int l = 0; l < 4; ++l) {
      const int i1 = qs[2 * l] | ((qh << (8 - 2 * l)) & 256);
      const int i2 = qs[2 * l + 1] | ((qh << (7 - 2 * l)) & 256);
      signed_grid8(join_grid4(kGridIQ3S[i1], kGridIQ3S[i2]), b.signs[4 * ib + l], v + 8 * l);
    }
    scale[ib] = odd_scale(d, (b.scales[ib / 2] >> (4 * (ib % 2))) & 0x0F, 1.0f);
    min[ib] = 0.0f;
  }
}

// IQ1: x = dl * (grid +- 1/8) is stored as v = 8 * grid +- 1 (in -9..9) with scale dl / 8.
void iq1_group(int idx, bool neg_delta, int8_t* v) {
  const uint64_t grid = kGridIQ1S[idx];
  for (int j = 0; j < 8; ++j) {
    const int g = static_cast<int8_t>((grid >> (8 * j)) & 0xFF);
    v[j] = static_cast<int8_t>(8 * g + (neg_delta ? -1 : 1));
  }
}

void decode_iq1_s(const void* p, int8_t* v, float* scale, float* min) {
  const auto& b = *static_cast<const BlockIQ1S*>(p);
  const float d = fp16_to_fp32(b.d);
  for (int ib = 0; ib < 8; ++ib, v += 32) {
    const int qh = b.qh[ib];
    for (int l = 0; l < 4; ++l) {
      iq1_group(b.qs[4 * ib + l] | (((qh >> (3 * l)) & 7) << 8), (qh & 0x8000) != 0, v + 8 * l);
    }
    scale[ib] = odd_scale(d, (qh >> 12) & 7, 0.125f);
    min[ib] = 0.0f;
  }
}

// 3-bit scales per 16 in `scales` (whose top nibbles hold the fp16 d), a delta sign bit per 8.
void decode_iq1_m(const void* p, int8_t* v, float* scale, float* min) {
  const auto& b = *static_cast<const BlockIQ1M*>(p);
  uint16_t sc[4];
  std::memcpy(sc, b.scales, sizeof(sc));
  const uint16_t d16 = static_cast<uint16_t>((sc[0] >> 12) | ((sc[1] >> 8) & 0x00F0) |
                                             ((sc[2] >> 4) & 0x0F00) | (sc[3] & 0xF000));
  const float d = fp16_to_fp32(d16);
  for (int g = 0; g < 32; ++g) {
    const int qh = b.qh[g / 2] >> (4 * (g % 2));
    iq1_group(b.qs[g] | ((qh & 7) << 8), (qh & 8) != 0, v + 8 * g);
  }
  for (int s = 0; s < 16; ++s) {
    scale[s] = odd_scale(d, (sc[s / 4] >> (3 * (s % 4))) & 7, 0.125f);
    min[s] = 0.0f;
  }
}

// Five trits per byte, most significant first: trit n of byte q is (uint8(q * 3^n) * 3) >> 8.
// Element order: qs[0..32) for trits 0..4 (32 each), qs[32..48) likewise (16 each), then qh[0..4)
// for trits 0..3. v = trit - 1.
void decode_tq1_0(const void* p, int8_t* v, float* scale, float* min) {
  static constexpr uint8_t kPow3[5] = {1, 3, 9, 27, 81};
  const auto& b = *static_cast<const BlockTQ1_0*>(p);
  auto trit = [](uint8_t q, int n) {
    const uint8_t s = static_cast<uint8_t>(q * kPow3[n]);
    return static_cast<int8_t>(((static_cast<uint16_t>(s) * 3) >> 8) - 1);
  };
  for (int n = 0; n < 5; ++n) {
    for (int m = 0; m < 32; ++m) *v++ = trit(b.qs[m], n);
  }
  for (int n = 0; n < 5; ++n) {
    for (int m = 0; m < 16; ++m) *v++ = trit(b.qs[32 + m], n);
  }
  for (int n = 0; n < 4; ++n) {
    for (int m = 0; m < 4; ++m) *v++ = trit(b.qh[m], n);
  }
  const float d = fp16_to_fp32(b.d);
  for (int s = 0; s < 8; ++s) {
    scale[s] = d;
    min[s] = 0.0f;
  }
}

using Q = QuantType;
const DecodeInfo kDecoders[] = {
    {Q::kQ4_0, 32, 32, false, Q::kQ8_0, sizeof(BlockQ4_0), decode_q4_0},
    {Q::kQ4_1, 32, 32, true, Q::kQ8_1, sizeof(BlockQ4_1), decode_q4_1},
    {Q::kQ5_0, 32, 32, false, Q::kQ8_0, sizeof(BlockQ5_0), decode_q5_0},
    {Q::kQ5_1, 32, 32, true, Q::kQ8_1, sizeof(BlockQ5_1), decode_q5_1},
    {Q::kQ8_0, 32, 32, false, Q::kQ8_0, sizeof(BlockQ8_0), decode_q8_0},
    {Q::kIQ4_NL, 32, 32, false, Q::kQ8_0, sizeof(BlockIQ4NL), decode_iq4_nl},
    {Q::kMXFP4, 32, 32, false, Q::kQ8_0, sizeof(BlockMXFP4), decode_mxfp4},
    {Q::kF8Q8, 32, 32, false, Q::kQ8_0, sizeof(BlockF8Q8), decode_f8q8},
    {Q::kQ2K, 256, 16, true, Q::kQ8K, sizeof(BlockQ2K), decode_q2_k},
    {Q::kQ3K, 256, 16, false, Q::kQ8K, sizeof(BlockQ3K), decode_q3_k},
    {Q::kQ4K, 256, 32, true, Q::kQ8K, sizeof(BlockQ4K), decode_q4_k},
    {Q::kQ5K, 256, 32, true, Q::kQ8K, sizeof(BlockQ5K), decode_q5_k},
    {Q::kQ6K, 256, 16, false, Q::kQ8K, sizeof(BlockQ6K), decode_q6_k},
    {Q::kIQ4_XS, 256, 32, false, Q::kQ8K, sizeof(BlockIQ4XS), decode_iq4_xs},
    {Q::kTQ2_0, 256, 32, false, Q::kQ8K, sizeof(BlockTQ2_0), decode_tq2_0},
    {Q::kTQ1_0, 256, 32, false, Q::kQ8K, sizeof(BlockTQ1_0), decode_tq1_0},
    {Q::kIQ2_XXS, 256, 32, false, Q::kQ8K, sizeof(BlockIQ2XXS), decode_iq2_xxs},
    {Q::kIQ2_XS, 256, 16, false, Q::kQ8K, sizeof(BlockIQ2XS), decode_iq2_xs},
    {Q::kIQ2_S, 256, 16, false, Q::kQ8K, sizeof(BlockIQ2S), decode_iq2_s},
    {Q::kIQ3_XXS, 256, 32, false, Q::kQ8K, sizeof(BlockIQ3XXS), decode_iq3_xxs},
    {Q::kIQ3_S, 256, 32, false, Q::kQ8K, sizeof(BlockIQ3S), decode_iq3_s},
    {Q::kIQ1_S, 256, 32, false, Q::kQ8K, sizeof(BlockIQ1S), decode_iq1_s},
    {Q::kIQ1_M, 256, 16, false, Q::kQ8K, sizeof(BlockIQ1M), decode_iq1_m},
};

float amax_of(const float* x, int n) {
  float amax = 0.0f;
  for (int j = 0; j < n; ++j) amax = std::fmax(amax, std::fabs(x[j]));
  return amax;
}

// ggml's nearest_int: round half to even through the float adder (valid for |f| <= 2^22).
int nearest_int(float f) {
  const float val = f + 12582912.0f;
  int32_t i;
  std::memcpy(&i, &val, sizeof(i));
  return (i & 0x007fffff) - 0x00400000;
}

}  // namespace

const DecodeInfo* decode_info(QuantType type) {
  for (const DecodeInfo& d : kDecoders) {
    if (d.type == type) return &d;
  }
  return group_affine_decode_info(type);
}

void pack_panel(const DecodeInfo& info, DecodeBlockFn decode, const uint8_t* rows,
                size_t row_bytes, int n_rows, int64_t n, PackedPanel& out) {
  // Block by block: decode the block of all 16 rows into a small (L1-resident) buffer, then write
  // the block's panel lines [block/4][kPanelRows][4] in order, so each output line is written
  // once and sequentially.
  const int sub = info.sub;
  const int block = info.block;
  const int subs = block / sub;
  const int64_t n_blocks = n / block;
  out.sub = sub;
  out.n_sub = n / sub;
  int8_t v[kPanelRows][256];
  float scale[kPanelRows][16], min[kPanelRows][16];
  for (int r = n_rows; r < kPanelRows; ++r) {
    std::memset(v[r], 0, sizeof(v[r]));
    std::memset(scale[r], 0, sizeof(scale[r]));
    std::memset(min[r], 0, sizeof(min[r]));
  }
  for (int64_t b = 0; b < n_blocks; ++b) {
    for (int r = 0; r < n_rows; ++r) {
      decode(rows + r * row_bytes + b * info.block_bytes, v[r], scale[r], min[r]);
    }
    uint8_t* line = out.q + b * block * kPanelRows;
    for (int g = 0; g < block / 4; ++g, line += 4 * kPanelRows) {
      for (int r = 0; r < kPanelRows; ++r) {
        uint32_t word;
        std::memcpy(&word, v[r] + 4 * g, 4);
        word ^= 0x80808080u;  // int8 v -> uint8 v + 128
        std::memcpy(line + 4 * r, &word, 4);
      }
    }
    for (int j = 0; j < subs; ++j) {
      const int64_t s = b * subs + j;
      for (int r = 0; r < kPanelRows; ++r) {
        out.scale[s * kPanelRows + r] = scale[r][j];
        if (out.min != nullptr) out.min[s * kPanelRows + r] = min[r][j];
      }
    }
  }
}

void pack_acts(QuantType act, int sub, const uint8_t* act_rows, size_t act_row_bytes,
               int64_t tok0, int64_t tok1, int64_t n, int8_t* q, int32_t* comp, float* scale,
               float* sum) {
  const int64_t n_sub = n / sub;
  for (int64_t t = tok0; t < tok1; ++t) {
    const uint8_t* row = act_rows + t * act_row_bytes;
    const int64_t tile = t / kActTile, lane = t % kActTile;
    int8_t* qt = q + tile * n * kActTile + lane * 4;
    int32_t* ct = comp + tile * n_sub * kActTile + lane;
    float* st = scale + tile * n_sub * kActTile + lane;
    float* mt = sum != nullptr ? sum + tile * n_sub * kActTile + lane : nullptr;
    for (int64_t s = 0; s < n_sub; ++s) {
      const int8_t* vals;
      float d;
      float blk_sum = 0.0f;
      if (act == QuantType::kQ8K) {
        const auto& b = reinterpret_cast<const BlockQ8K*>(row)[s * sub / kQK_K];
        const int off = static_cast<int>((s * sub) % kQK_K);
        vals = b.qs + off;
        d = b.d;
        int bs = 0;
        for (int g = off / 16; g < (off + sub) / 16; ++g) bs += b.bsums[g];
        blk_sum = d * static_cast<float>(bs);
      } else if (act == QuantType::kQ8_1) {
        const auto& b = reinterpret_cast<const BlockQ8_1*>(row)[s];
        vals = b.qs;
        d = fp16_to_fp32(b.d);
        blk_sum = fp16_to_fp32(b.s);
      } else {
        const auto& b = reinterpret_cast<const BlockQ8_0*>(row)[s];
        vals = b.qs;
        d = fp16_to_fp32(b.d);
        int bs = 0;
        for (int i = 0; i < 32; ++i) bs += b.qs[i];
        blk_sum = d * static_cast<float>(bs);
      }
      int32_t total = 0;
      for (int i = 0; i < sub; ++i) total += vals[i];
      for (int g = 0; g < sub / 4; ++g) {
        std::memcpy(qt + ((s * sub / 4) + g) * 4 * kActTile, vals + 4 * g, 4);
      }
      ct[s * kActTile] = -128 * total;
      st[s * kActTile] = d;
      if (mt != nullptr) mt[s * kActTile] = blk_sum;
    }
  }
}

// Activations are quantized the way llama.cpp's CPU backend does it on x86
// (ggml-cpu/arch/x86/quants.c quantize_row_q8_0/q8_1, llama.cpp as vendored in llama-cpp-python
// 0.3.36): id = 127 / amax and round half to even. ggml's portable reference (d = amax/127,
// id = 1/d, round half away from zero) differs in the last step on some values, and on models
// with large activations those differences are as visible in the logits as changing llama.cpp's
// KV-cache precision, so matching llama.cpp means matching its x86 rounding.
void quantize_act_q8_0_ref(const float* x, void* dst, int64_t n) {
  auto* y = static_cast<BlockQ8_0*>(dst);
  for (int64_t i = 0; i < n / 32; ++i, x += 32) {
    const float amax = amax_of(x, 32);
    const float d = amax / 127.0f;
    const float id = amax != 0.0f ? 127.0f / amax : 0.0f;
    y[i].d = fp32_to_fp16(d);
    for (int j = 0; j < 32; ++j) y[i].qs[j] = static_cast<int8_t>(nearest_int(x[j] * id));
  }
}

void quantize_act_q8_1_ref(const float* x, void* dst, int64_t n) {
  auto* y = static_cast<BlockQ8_1*>(dst);
  for (int64_t i = 0; i < n / 32; ++i, x += 32) {
    const float amax = amax_of(x, 32);
    const float d = amax / 127.0f;
    const float id = amax != 0.0f ? 127.0f / amax : 0.0f;
    y[i].d = fp32_to_fp16(d);
    int sum = 0;
    for (int j = 0; j < 32; ++j) {
      y[i].qs[j] = static_cast<int8_t>(nearest_int(x[j] * id));
      sum += y[i].qs[j];
    }
    y[i].s = fp32_to_fp16(static_cast<float>(sum) * d);
  }
}

void quantize_act_q8_k_ref(const float* x, void* dst, int64_t n) {
  auto* y = static_cast<BlockQ8K*>(dst);
  for (int64_t i = 0; i < n / kQK_K; ++i, x += kQK_K) {
    float max = 0.0f, amax = 0.0f;
    for (int j = 0; j < kQK_K; ++j) {
      const float ax = std::fabs(x[j]);
      if (ax > amax) {
        amax = ax;
        max = x[j];
      }
    }
    if (amax == 0.0f) {  // ggml leaves bsums untouched here; zero is what they would sum to
      std::memset(&y[i], 0, sizeof(BlockQ8K));
      continue;
    }
    const float iscale = -127.0f / max;
    for (int j = 0; j < kQK_K; ++j) {
      const int v = nearest_int(iscale * x[j]);
      y[i].qs[j] = static_cast<int8_t>(v < 127 ? v : 127);
    }
    for (int g = 0; g < kQK_K / 16; ++g) {
      int sum = 0;
      for (int j = 0; j < 16; ++j) sum += y[i].qs[16 * g + j];
      y[i].bsums[g] = static_cast<int16_t>(sum);
    }
    y[i].d = 1.0f / iscale;
  }
}

}  // namespace insitu
