// ggml's ternary formats (TQ1_0, TQ2_0) and MXFP4.
//
// A port of quantize_row_tq1_0_ref, quantize_row_tq2_0_ref, quantize_row_mxfp4_ref and their
// dequantizers in ggml's src/ggml-quants.c at commit d99724f2 (as vendored in llama-cpp-python
// 0.3.36). All three ignore an imatrix, as ggml's quantize_tq1_0 / quantize_tq2_0 /
// quantize_mxfp4 do. Output is byte-identical to ggml's.
//
// Element order:
//   TQ1_0 (256 per block): trits t = round(x / amax) + 1 in {0, 1, 2}. A byte holds 5 trits as
//     ceil(sum_n t_n * 3^(4-n) * 256 / 243), the first trit most significant; trit n is recovered
//     as ((uint8)(q * 3^n) * 3) >> 8. qs[0..32) hold elements m + 32n (n = 0..4) of the first 160,
//     qs[32..48) elements 160 + m + 16n of the next 80, qh[0..4) (4 trits, then a zero trit)
//     elements 240 + j + 4n.
//   TQ2_0: qs[32c + m] holds elements 128h + m + 32n at bit 2n, where c = 0..1 is the 128-chunk
//     h; value x = d * (q - 1).
//   MXFP4 (32 per block): qs[j] low nibble = element j, high nibble = element j + 16; x =
//     kValuesFP4[q] * 2^(e - 128). kValuesFP4 holds doubled E2M1 values, hence the halved scale.
#include <algorithm>
#include <climits>
#include <cmath>
#include <cstring>
#include <string>

#include "insitu/error.h"
#include "quant/blocks.h"
#include "quant/float_convert.h"
#include "quant/iq_tables.h"
#include "quant/quant_common.h"
#include "quant/quant_vec.h"
#include "quant/type_traits.h"

namespace insitu {
namespace {

void check_shape(const char* type, int64_t nrows, int64_t n_per_row, int64_t block) {
  if (nrows < 0) {
    throw InvalidArgument(std::string("quant: ") + type + ": negative row count " +
                          std::to_string(nrows));
  }
  if (n_per_row <= 0 || n_per_row % block != 0) {
    throw InvalidArgument(std::string("quant: ") + type + ": row length " +
                          std::to_string(n_per_row) +
                          " is not a positive multiple of the block size " + std::to_string(block));
  }
}

// ------------------------------------------------------------------------------------- TQ1_0

// lroundf(x * id) + 1 (round_half_away is lroundf, in a form loops vectorise; for NaN both give
// a value whose low byte is that of 1 after the + 1, and only that byte is stored).
inline int trit(float x, float id) { return round_half_away(x * id) + 1; }

// Packs 5 trits (most significant first) into one byte with the 256/243 scaling.
inline uint8_t pack_trits(uint8_t q) {
  return static_cast<uint8_t>((static_cast<uint16_t>(q) * 256 + (243 - 1)) / 243);
}

// max |x[j]| over a 256-element block, skipping NaNs as `std::max(amax, |x|)` does; max is exact
// in any order, so the lanes of the vectorised loop may each keep their own.
INSITU_QUANT_CLONES float absmax256(const float* x) {
  float lanes[8] = {};
  for (int j = 0; j < kQK_K; j += 8) {
    for (int l = 0; l < 8; ++l) {
      const float a = std::fabs(x[j + l]);
      lanes[l] = lanes[l] < a ? a : lanes[l];
    }
  }
  float amax = 0.0f;
  for (const float a : lanes) amax = std::max(amax, a);
  return amax;
}

INSITU_QUANT_CLONES void quantize_block_tq1_0(const float* x, BlockTQ1_0* y) {
  const float amax = absmax256(x);
  const float d = amax;
  const float id = d != 0 ? 1.0f / d : 0.0f;
  y->d = fp32_to_fp16(d);

  constexpr int kFirst = sizeof(y->qs) - sizeof(y->qs) % 32;  // 32 bytes, stride 32
  for (int j = 0; j < kFirst; j += 32) {
    for (int m = 0; m < 32; ++m) {
      uint8_t q = 0;
      for (int n = 0; n < 5; ++n) q = static_cast<uint8_t>(q * 3 + trit(x[m + n * 32], id));
      y->qs[j + m] = pack_trits(q);
    }
    x += 5 * 32;
  }
  for (int j = kFirst; j < static_cast<int>(sizeof(y->qs)); j += 16) {
    for (int m = 0; m < 16; ++m) {
      uint8_t q = 0;
      for (int n = 0; n < 5; ++n) q = static_cast<uint8_t>(q * 3 + trit(x[m + n * 16], id));
      y->qs[j + m] = pack_trits(q);
    }
    x += 5 * 16;
  }
  constexpr int kQh = sizeof(y->qh);
  for (int j = 0; j < kQh; ++j) {
    uint8_t q = 0;
    for (int m = 0; m < 4; ++m) q = static_cast<uint8_t>(q * 3 + trit(x[j + m * kQh], id));
    q = static_cast<uint8_t>(q * 3);  // the first trit goes to the most significant position
    y->qh[j] = pack_trits(q);
  }
}

inline float unpack_trit(uint8_t byte, uint8_t pow3, float d) {
  const uint8_t q = static_cast<uint8_t>(byte * pow3);
  const int xi = (static_cast<uint16_t>(q) * 3) >> 8;
  return static_cast<float>(xi - 1) * d;
}

void dequantize_row_tq1_0(const void* src, float* y, int64_t k) {
  static constexpr uint8_t kPow3[6] = {1, 3, 9, 27, 81, 243};
  const auto* x = static_cast<const BlockTQ1_0*>(src);
  constexpr int kFirst = sizeof(x->qs) - sizeof(x->qs) % 32;
  for (int64_t i = 0; i < k / kQK_K; ++i) {
    const float d = fp16_to_fp32(x[i].d);
    for (int j = 0; j < kFirst; j += 32) {
      for (int n = 0; n < 5; ++n) {
        for (int m = 0; m < 32; ++m) *y++ = unpack_trit(x[i].qs[j + m], kPow3[n], d);
      }
    }
    for (int j = kFirst; j < static_cast<int>(sizeof(x->qs)); j += 16) {
      for (int n = 0; n < 5; ++n) {
        for (int m = 0; m < 16; ++m) *y++ = unpack_trit(x[i].qs[j + m], kPow3[n], d);
      }
    }
    for (int n = 0; n < 4; ++n) {
      for (int j = 0; j < static_cast<int>(sizeof(x->qh)); ++j) {
        *y++ = unpack_trit(x[i].qh[j], kPow3[n], d);
      }
    }
  }
}

// ------------------------------------------------------------------------------------- TQ2_0

INSITU_QUANT_CLONES void quantize_block_tq2_0(const float* x, BlockTQ2_0* y) {
  const float amax = absmax256(x);
  const float d = amax;
  const float id = d != 0 ? 1.0f / d : 0.0f;
  y->d = fp32_to_fp16(d);
  for (int j = 0; j < static_cast<int>(sizeof(y->qs)); j += 32) {
    for (int m = 0; m < 32; ++m) {
      uint8_t q = 0;
      for (int n = 0; n < 4; ++n)
        q = static_cast<uint8_t>(q + ((trit(x[m + n * 32], id) & 3) << (2 * n)));
      y->qs[j + m] = q;
    }
    x += 4 * 32;
  }
}

void dequantize_row_tq2_0(const void* src, float* y, int64_t k) {
  const auto* x = static_cast<const BlockTQ2_0*>(src);
  for (int64_t i = 0; i < k / kQK_K; ++i) {
    const float d = fp16_to_fp32(x[i].d);
    for (int j = 0; j < static_cast<int>(sizeof(x->qs)); j += 32) {
      for (int l = 0; l < 4; ++l) {
        for (int m = 0; m < 32; ++m) {
          const int q = (x[i].qs[j + m] >> (l * 2)) & 3;
          *y++ = static_cast<float>(q - 1) * d;
        }
      }
    }
  }
}

// ------------------------------------------------------------------------------------- MXFP4

// 2^(e - 128) as ggml's GGML_E8M0_TO_FP32_HALF builds it (e < 2 gives the two subnormals).
inline float e8m0_to_fp32_half(uint8_t e) {
  const uint32_t bits = e < 2 ? 0x00200000u << e : static_cast<uint32_t>(e - 1) << 23;
  float f;
  std::memcpy(&f, &bits, sizeof(f));
  return f;
}

INSITU_QUANT_CLONES void quantize_block_mxfp4(const float* x, BlockMXFP4* y) {
  using qvec::V8f;
  using qvec::V8i;
  V8f xs[kQK_MXFP4 / 8];
  V8f lanes =
      {};  // max |x| per lane, NaNs skipped (`amax < |x|` fails for them); exact in any order
  for (int k = 0; k < kQK_MXFP4 / 8; ++k) {
    xs[k] = qvec::load8(x + 8 * k);
    const V8f a = qvec::abs8(xs[k]);
    lanes = lanes < a ? a : lanes;
  }
  float amax = 0.0f;
  for (int l = 0; l < 8; ++l) amax = amax < lanes[l] ? lanes[l] : amax;
  // floor(log2(amax)) - 2 puts amax in the top binade of the doubled E2M1 range. ggml converts the
  // float to uint8_t directly; GCC does that through a 32-bit truncation, which yields INT32_MIN
  // for NaN and out-of-range values (amax = inf): mirrored here without the undefined cast.
  const float e_f = std::floor(std::log2(amax)) - 2 + 127;
  const int32_t e_i =
      e_f >= -2147483648.0f && e_f < 2147483648.0f ? static_cast<int32_t>(e_f) : INT32_MIN;
  const uint8_t e = amax > 0.0f ? static_cast<uint8_t>(e_i) : 0;
  const float d = e8m0_to_fp32_half(e);
  y->e = e;
  // ggml's best_index_mxfp4 for each element in a lane: the 16 values scanned in order, the
  // first of equal errors kept.
  int32_t best[kQK_MXFP4];
  for (int k = 0; k < kQK_MXFP4 / 8; ++k) {
    V8f best_err = qvec::abs8(kValuesFP4[0] * d - xs[k]);
    V8i idx = {};
    for (int i = 1; i < 16; ++i) {
      const V8f err = qvec::abs8(kValuesFP4[i] * d - xs[k]);
      const V8i better = err < best_err;
      idx = better ? V8i{} + i : idx;
      best_err = better ? err : best_err;
    }
    std::memcpy(best + 8 * k, &idx, sizeof(idx));
  }
  for (int j = 0; j < kQK_MXFP4 / 2; ++j) {
    y->qs[j] = static_cast<uint8_t>(best[j] | (best[kQK_MXFP4 / 2 + j] << 4));
  }
}

void dequantize_row_mxfp4(const void* src, float* y, int64_t k) {
  const auto* x = static_cast<const BlockMXFP4*>(src);
  for (int64_t i = 0; i < k / kQK_MXFP4; ++i, y += kQK_MXFP4) {
    const float d = e8m0_to_fp32_half(x[i].e);
    for (int j = 0; j < kQK_MXFP4 / 2; ++j) {
      y[j] = kValuesFP4[x[i].qs[j] & 0x0F] * d;
      y[j + kQK_MXFP4 / 2] = kValuesFP4[x[i].qs[j] >> 4] * d;
    }
  }
}

constexpr char kNameTQ1_0[] = "tq1_0";
constexpr char kNameTQ2_0[] = "tq2_0";
constexpr char kNameMXFP4[] = "mxfp4";

// Rows are independent and the block quantizers take no imatrix (ggml ignores it too).
template <typename Block, int kBlock, const char* kName,
          void (*kQuantizeBlock)(const float*, Block*)>
size_t quantize_blocks(const float* src, void* dst, int64_t nrows, int64_t n_per_row,
                       const float* /*imatrix*/) {
  check_shape(kName, nrows, n_per_row, kBlock);
  const int64_t nblocks = nrows * (n_per_row / kBlock);
  auto* y = static_cast<Block*>(dst);
  for (int64_t b = 0; b < nblocks; ++b) kQuantizeBlock(src + b * kBlock, y + b);
  return static_cast<size_t>(nblocks) * sizeof(Block);
}

}  // namespace

void register_ternary_and_fp4_types(std::span<TypeTraits> table) {
  TypeTraits& tq1 = table_row(table, QuantType::kTQ1_0);
  tq1.dequantize_row = dequantize_row_tq1_0;
  tq1.quantize = quantize_blocks<BlockTQ1_0, kQK_K, kNameTQ1_0, quantize_block_tq1_0>;

  TypeTraits& tq2 = table_row(table, QuantType::kTQ2_0);
  tq2.dequantize_row = dequantize_row_tq2_0;
  tq2.quantize = quantize_blocks<BlockTQ2_0, kQK_K, kNameTQ2_0, quantize_block_tq2_0>;

  TypeTraits& mxfp4 = table_row(table, QuantType::kMXFP4);
  mxfp4.dequantize_row = dequantize_row_mxfp4;
  mxfp4.quantize = quantize_blocks<BlockMXFP4, kQK_MXFP4, kNameMXFP4, quantize_block_mxfp4>;
}

}  // namespace insitu
