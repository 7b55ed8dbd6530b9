// Packed block layouts of ggml's quantized types, byte-compatible with GGUF.
//
// Each struct is one block; a row of n elements is n / kBlockSize consecutive blocks. Field order
// and sizes follow ggml's src/ggml-common.h (commit d99724f2); the element order inside each block
// is documented where it is packed (quant/*.cc). `uint16_t` scale fields hold IEEE fp16 bits.
// kQK = elements per block; the comment gives bytes and bits per weight.
#pragma once

#include <cstddef>
#include <cstdint>

namespace insitu {

inline constexpr int kQK4_0 = 32;
inline constexpr int kQK4_1 = 32;
inline constexpr int kQK5_0 = 32;
inline constexpr int kQK5_1 = 32;
inline constexpr int kQK8_0 = 32;
inline constexpr int kQK8_1 = 32;
inline constexpr int kQK_K = 256;
inline constexpr int kKScaleSize = 12;
inline constexpr int kQK4_NL = 32;
inline constexpr int kQK_MXFP4 = 32;

using fp16_t = uint16_t;  // IEEE half, stored as raw bits

#pragma pack(push, 1)

// 18 bytes, 4.5 bpw: x = d * (q - 8)
struct BlockQ4_0 {
  fp16_t d;
  uint8_t qs[kQK4_0 / 2];
};
static_assert(sizeof(BlockQ4_0) == 18);

// 20 bytes, 5.0 bpw: x = d * q + m
struct BlockQ4_1 {
  fp16_t d;
  fp16_t m;
  uint8_t qs[kQK4_1 / 2];
};
static_assert(sizeof(BlockQ4_1) == 20);

// 22 bytes, 5.5 bpw: x = d * (q - 16); qh = 5th bits (little-endian u32)
struct BlockQ5_0 {
  fp16_t d;
  uint8_t qh[4];
  uint8_t qs[kQK5_0 / 2];
};
static_assert(sizeof(BlockQ5_0) == 22);

// 24 bytes, 6.0 bpw: x = d * q + m
struct BlockQ5_1 {
  fp16_t d;
  fp16_t m;
  uint8_t qh[4];
  uint8_t qs[kQK5_1 / 2];
};
static_assert(sizeof(BlockQ5_1) == 24);

// 34 bytes, 8.5 bpw: x = d * q
struct BlockQ8_0 {
  fp16_t d;
  int8_t qs[kQK8_0];
};
static_assert(sizeof(BlockQ8_0) == 34);

// 36 bytes, 9.0 bpw, activations only: x = d * q; s = d * sum(q)
struct BlockQ8_1 {
  fp16_t d;
  fp16_t s;
  int8_t qs[kQK8_1];
};
static_assert(sizeof(BlockQ8_1) == 36);

// 84 bytes, 2.625 bpw: x = d * sc * q - dmin * m, 16 groups of 16
struct BlockQ2K {
  uint8_t scales[kQK_K / 16];  // low nibble scale, high nibble min
  uint8_t qs[kQK_K / 4];
  fp16_t d;
  fp16_t dmin;
};
static_assert(sizeof(BlockQ2K) == 84);

// 110 bytes, 3.4375 bpw: x = d * (sc - 32) * (q2 - (hbit ? 0 : 4))
struct BlockQ3K {
  uint8_t hmask[kQK_K / 8];
  uint8_t qs[kQK_K / 4];
  uint8_t scales[12];
  fp16_t d;
};
static_assert(sizeof(BlockQ3K) == 110);

// 144 bytes, 4.5 bpw: x = d * sc * q - dmin * m, 8 groups of 32, 6-bit scales/mins
struct BlockQ4K {
  fp16_t d;
  fp16_t dmin;
  uint8_t scales[kKScaleSize];
  uint8_t qs[kQK_K / 2];
};
static_assert(sizeof(BlockQ4K) == 144);

// 176 bytes, 5.5 bpw
struct BlockQ5K {
  fp16_t d;
  fp16_t dmin;
  uint8_t scales[kKScaleSize];
  uint8_t qh[kQK_K / 8];
  uint8_t qs[kQK_K / 2];
};
static_assert(sizeof(BlockQ5K) == 176);

// 210 bytes, 6.5625 bpw: x = d * sc * (q - 32)
struct BlockQ6K {
  uint8_t ql[kQK_K / 2];
  uint8_t qh[kQK_K / 4];
  int8_t scales[kQK_K / 16];
  fp16_t d;
};
static_assert(sizeof(BlockQ6K) == 210);

// 292 bytes, activations only: float scale, int8 quants, sums of each 16
struct BlockQ8K {
  float d;
  int8_t qs[kQK_K];
  int16_t bsums[kQK_K / 16];
};
static_assert(sizeof(BlockQ8K) == 292);

// 66 bytes, 2.0625 bpw
struct BlockIQ2XXS {
  fp16_t d;
  uint16_t qs[kQK_K / 8];
};
static_assert(sizeof(BlockIQ2XXS) == 66);

// 74 bytes, 2.3125 bpw
struct BlockIQ2XS {
  fp16_t d;
  uint16_t qs[kQK_K / 8];
  uint8_t scales[kQK_K / 32];
};
static_assert(sizeof(BlockIQ2XS) == 74);

// 82 bytes, 2.5625 bpw
struct BlockIQ2S {
  fp16_t d;
  uint8_t qs[kQK_K / 4];
  uint8_t qh[kQK_K / 32];
  uint8_t scales[kQK_K / 32];
};
static_assert(sizeof(BlockIQ2S) == 82);

// 98 bytes, 3.0625 bpw
struct BlockIQ3XXS {
  fp16_t d;
  uint8_t qs[3 * kQK_K / 8];
};
static_assert(sizeof(BlockIQ3XXS) == 98);

// 110 bytes, 3.4375 bpw
struct BlockIQ3S {
  fp16_t d;
  uint8_t qs[kQK_K / 4];
  uint8_t qh[kQK_K / 32];
  uint8_t signs[kQK_K / 8];
  uint8_t scales[kQK_K / 64];
};
static_assert(sizeof(BlockIQ3S) == 110);

// 50 bytes, 1.5625 bpw
struct BlockIQ1S {
  fp16_t d;
  uint8_t qs[kQK_K / 8];
  uint16_t qh[kQK_K / 32];
};
static_assert(sizeof(BlockIQ1S) == 50);

// 56 bytes, 1.75 bpw; the fp16 super-scale is spread over the top nibbles of `scales`
struct BlockIQ1M {
  uint8_t qs[kQK_K / 8];
  uint8_t qh[kQK_K / 16];
  uint8_t scales[kQK_K / 32];
};
static_assert(sizeof(BlockIQ1M) == 56);

// 18 bytes, 4.5 bpw: x = d * kvalues_iq4nl[q]
struct BlockIQ4NL {
  fp16_t d;
  uint8_t qs[kQK4_NL / 2];
};
static_assert(sizeof(BlockIQ4NL) == 18);

// 136 bytes, 4.25 bpw
struct BlockIQ4XS {
  fp16_t d;
  uint16_t scales_h;
  uint8_t scales_l[kQK_K / 64];
  uint8_t qs[kQK_K / 2];
};
static_assert(sizeof(BlockIQ4XS) == 136);

// 54 bytes, 1.6875 bpw: ternary, 5 trits per byte in qs, 4 per byte in qh
struct BlockTQ1_0 {
  uint8_t qs[(kQK_K - 4 * kQK_K / 64) / 5];
  uint8_t qh[kQK_K / 64];
  fp16_t d;
};
static_assert(sizeof(BlockTQ1_0) == 54);

// 66 bytes, 2.0625 bpw: x = d * (q - 1)
struct BlockTQ2_0 {
  uint8_t qs[kQK_K / 4];
  fp16_t d;
};
static_assert(sizeof(BlockTQ2_0) == 66);

// 17 bytes, 4.25 bpw: x = kvalues_fp4[q] * 2^(e - 128)
struct BlockMXFP4 {
  uint8_t e;
  uint8_t qs[kQK_MXFP4 / 2];
};
static_assert(sizeof(BlockMXFP4) == 17);

#pragma pack(pop)

}  // namespace insitu
