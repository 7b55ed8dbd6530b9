// ggml's i-quants: IQ1_S IQ1_M IQ2_XXS IQ2_XS IQ2_S IQ3_XXS IQ3_S IQ4_NL IQ4_XS.
//
// This file holds the dequantizers of every i-quant, the IQ4_NL / IQ4_XS quantizer and the type
// table registration; the grid quantizers are in iq2_quants.cc, iq3_quants.cc, iq1_quants.cc.
// Ports of dequantize_row_iq* and quantize_row_iq4_nl_impl / quantize_iq4_nl / quantize_iq4_xs
// of ggml's src/ggml-quants.c at commit d99724f2 (as vendored in llama-cpp-python 0.3.36); the
// output is byte-identical to ggml's, and the dequantizers multiply in ggml's order so their
// floats are identical too.
//
// Bit layout per 32 elements (grids and sign codes in quant/iq_tables.h):
//   IQ2_XXS  two u32: a = 4 x 8-bit grid index; b = 4 x 7-bit sign code | 4-bit scale << 28.
//            x = d * (0.5 + s) * 0.25 * grid * sign.
//   IQ2_XS   qs[i] = 9-bit grid index | 7-bit sign code << 9; one 4-bit scale per 16.
//   IQ2_S    qs[0..32): low 8 index bits, qs[32..64): sign bytes, qh: 2 high index bits per 8,
//            one 4-bit scale per 16.
//   IQ3_XXS  qs[0..64): 8-bit indices into a 4-wide grid, then 8 u32: 4 x 7-bit signs | s << 28.
//            x = d * (0.5 + s) * 0.5 * grid * sign.
//   IQ3_S    qs: low 8 index bits, qh: 9th bit, signs: one byte per 8, 4-bit scales per 32:
//            x = d * (1 + 2s) * grid * sign.
//   IQ1_S    qs: low 8 bits of 11-bit indices; qh[ib] = 3 high bits per 8 | 3-bit scale << 12 |
//            delta sign << 15. x = d * (2s + 1) * (grid +- 0.125).
//   IQ1_M    as IQ1_S with 3-bit scales per 16 in `scales`, whose top nibbles hold the fp16 d, and
//            one delta-sign bit per 8 in qh.
//   IQ4_NL   qs[j] low nibble = element j, high nibble = element j + 16; x = d * kValuesIQ4NL[q].
//   IQ4_XS   per 32: 6-bit scale ls (low 4 bits in scales_l, high 2 in scales_h);
//            x = d * (ls - 32) * kValuesIQ4NL[q].
#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>

#include "insitu/error.h"
#include "quant/blocks.h"
#include "quant/float_convert.h"
#include "quant/iq_quants.h"
#include "quant/iq_simd.h"
#include "quant/iq_tables.h"
#include "quant/quant_common.h"
#include "quant/type_traits.h"

namespace insitu {
namespace {

inline float sign_of(uint8_t signs, int j) { return (signs >> j) & 1 ? -1.f : 1.f; }

inline const uint8_t* grid_bytes(const uint64_t* grid, int index) {
  return reinterpret_cast<const uint8_t*>(grid + index);
}
inline const uint8_t* grid_bytes(const uint32_t* grid, int index) {
  return reinterpret_cast<const uint8_t*>(grid + index);
}

// ------------------------------------------------------------------------------ dequantizers

void dequantize_row_iq2_xxs(const void* src, float* y, int64_t k) {
  const auto* x = static_cast<const BlockIQ2XXS*>(src);
  for (int64_t i = 0; i < k / kQK_K; ++i) {
    const float d = fp16_to_fp32(x[i].d);
    for (int ib32 = 0; ib32 < kQK_K / 32; ++ib32) {
      uint32_t aux[2];
      std::memcpy(aux, x[i].qs + 4 * ib32, sizeof(aux));
      const auto* idx = reinterpret_cast<const uint8_t*>(aux);
      const float db = d * (0.5f + (aux[1] >> 28)) * 0.25f;
      for (int l = 0; l < 4; ++l) {
        const uint8_t* grid = grid_bytes(kGridIQ2XXS, idx[l]);
        const uint8_t signs = kSignsIQ2XS[(aux[1] >> 7 * l) & 127];
        for (int j = 0; j < 8; ++j) y[j] = db * grid[j] * sign_of(signs, j);
        y += 8;
      }
    }
  }
}

void dequantize_row_iq2_xs(const void* src, float* y, int64_t k) {
  const auto* x = static_cast<const BlockIQ2XS*>(src);
  for (int64_t i = 0; i < k / kQK_K; ++i) {
    const float d = fp16_to_fp32(x[i].d);
    for (int ib32 = 0; ib32 < kQK_K / 32; ++ib32) {
      const float db[2] = {d * (0.5f + (x[i].scales[ib32] & 0xf)) * 0.25f,
                           d * (0.5f + (x[i].scales[ib32] >> 4)) * 0.25f};
      for (int l = 0; l < 4; ++l) {
        const uint16_t q = x[i].qs[4 * ib32 + l];
        const uint8_t* grid = grid_bytes(kGridIQ2XS, q & 511);
        const uint8_t signs = kSignsIQ2XS[q >> 9];
        for (int j = 0; j < 8; ++j) y[j] = db[l / 2] * grid[j] * sign_of(signs, j);
        y += 8;
      }
    }
  }
}

void dequantize_row_iq2_s(const void* src, float* y, int64_t k) {
  const auto* x = static_cast<const BlockIQ2S*>(src);
  for (int64_t i = 0; i < k / kQK_K; ++i) {
    const float d = fp16_to_fp32(x[i].d);
    const uint8_t* qs = x[i].qs;
    const uint8_t* signs = qs + kQK_K / 8;
    for (int ib32 = 0; ib32 < kQK_K / 32; ++ib32) {
      const float db[2] = {d * (0.5f + (x[i].scales[ib32] & 0xf)) * 0.25f,
                           d * (0.5f + (x[i].scales[ib32] >> 4)) * 0.25f};
      for (int l = 0; l < 4; ++l) {
        const int index = qs[l] | ((x[i].qh[ib32] << (8 - 2 * l)) & 0x300);
        const uint8_t* grid = grid_bytes(kGridIQ2S, index);
        for (int j = 0; j < 8; ++j) y[j] = db[l / 2] * grid[j] * sign_of(signs[l], j);
        y += 8;
      }
      qs += 4;
      signs += 4;
    }
  }
}

void dequantize_row_iq3_xxs(const void* src, float* y, int64_t k) {
  const auto* x = static_cast<const BlockIQ3XXS*>(src);
  for (int64_t i = 0; i < k / kQK_K; ++i) {
    const float d = fp16_to_fp32(x[i].d);
    const uint8_t* qs = x[i].qs;
    const uint8_t* scales_and_signs = qs + kQK_K / 4;
    for (int ib32 = 0; ib32 < kQK_K / 32; ++ib32) {
      uint32_t aux;
      std::memcpy(&aux, scales_and_signs + 4 * ib32, sizeof(aux));
      const float db = d * (0.5f + (aux >> 28)) * 0.5f;
      for (int l = 0; l < 4; ++l) {
        const uint8_t signs = kSignsIQ2XS[(aux >> 7 * l) & 127];
        const uint8_t* grid1 = grid_bytes(kGridIQ3XXS, qs[2 * l + 0]);
        const uint8_t* grid2 = grid_bytes(kGridIQ3XXS, qs[2 * l + 1]);
        for (int j = 0; j < 4; ++j) {
          y[j + 0] = db * grid1[j] * sign_of(signs, j + 0);
          y[j + 4] = db * grid2[j] * sign_of(signs, j + 4);
        }
        y += 8;
      }
      qs += 8;
    }
  }
}

void dequantize_row_iq3_s(const void* src, float* y, int64_t k) {
  const auto* x = static_cast<const BlockIQ3S*>(src);
  for (int64_t i = 0; i < k / kQK_K; ++i) {
    const float d = fp16_to_fp32(x[i].d);
    const uint8_t* qs = x[i].qs;
    const uint8_t* qh = x[i].qh;
    const uint8_t* signs = x[i].signs;
    for (int ib32 = 0; ib32 < kQK_K / 32; ib32 += 2) {
      const float db[2] = {d * (1 + 2 * (x[i].scales[ib32 / 2] & 0xf)),
                           d * (1 + 2 * (x[i].scales[ib32 / 2] >> 4))};
      for (int half = 0; half < 2; ++half) {
        for (int l = 0; l < 4; ++l) {
          const uint8_t* grid1 =
              grid_bytes(kGridIQ3S, qs[2 * l + 0] | ((qh[half] << (8 - 2 * l)) & 256));
          const uint8_t* grid2 =
              grid_bytes(kGridIQ3S, qs[2 * l + 1] | ((qh[half] << (7 - 2 * l)) & 256));
          for (int j = 0; j < 4; ++j) {
            y[j + 0] = db[half] * grid1[j] * sign_of(signs[l], j + 0);
            y[j + 4] = db[half] * grid2[j] * sign_of(signs[l], j + 4);
          }
          y += 8;
        }
        qs += 8;
        signs += 4;
      }
      qh += 2;
    }
  }
}

void dequantize_row_iq1_s(const void* src, float* y, int64_t k) {
  const auto* x = static_cast<const BlockIQ1S*>(src);
  for (int64_t i = 0; i < k / kQK_K; ++i) {
    const float d = fp16_to_fp32(x[i].d);
    const uint8_t* qs = x[i].qs;
    for (int ib = 0; ib < kQK_K / 32; ++ib) {
      const uint16_t qh = x[i].qh[ib];
      const float dl = d * (2 * ((qh >> 12) & 7) + 1);
      const float delta = qh & 0x8000 ? -kIQ1Delta : kIQ1Delta;
      for (int l = 0; l < 4; ++l) {
        const auto* grid =
            reinterpret_cast<const int8_t*>(kGridIQ1S + (qs[l] | (((qh >> 3 * l) & 7) << 8)));
        for (int j = 0; j < 8; ++j) y[j] = dl * (grid[j] + delta);
        y += 8;
      }
      qs += 4;
    }
  }
}

void dequantize_row_iq1_m(const void* src, float* y, int64_t k) {
  const auto* x = static_cast<const BlockIQ1M*>(src);
  for (int64_t i = 0; i < k / kQK_K; ++i) {
    uint16_t sc[4];
    std::memcpy(sc, x[i].scales, sizeof(sc));
    const uint16_t d16 = static_cast<uint16_t>((sc[0] >> 12) | ((sc[1] >> 8) & 0x00f0) |
                                               ((sc[2] >> 4) & 0x0f00) | (sc[3] & 0xf000));
    const float d = fp16_to_fp32(d16);
    const uint8_t* qs = x[i].qs;
    const uint8_t* qh = x[i].qh;
    for (int ib = 0; ib < kQK_K / 32; ++ib) {
      const float dl1 = d * (2 * ((sc[ib / 2] >> (6 * (ib % 2) + 0)) & 0x7) + 1);
      const float dl2 = d * (2 * ((sc[ib / 2] >> (6 * (ib % 2) + 3)) & 0x7) + 1);
      const int idx[4] = {qs[0] | ((qh[0] << 8) & 0x700), qs[1] | ((qh[0] << 4) & 0x700),
                          qs[2] | ((qh[1] << 8) & 0x700), qs[3] | ((qh[1] << 4) & 0x700)};
      const float delta[4] = {
          qh[0] & 0x08 ? -kIQ1Delta : kIQ1Delta, qh[0] & 0x80 ? -kIQ1Delta : kIQ1Delta,
          qh[1] & 0x08 ? -kIQ1Delta : kIQ1Delta, qh[1] & 0x80 ? -kIQ1Delta : kIQ1Delta};
      for (int l = 0; l < 4; ++l) {
        const auto* grid = reinterpret_cast<const int8_t*>(kGridIQ1S + idx[l]);
        const float dl = l < 2 ? dl1 : dl2;
        for (int j = 0; j < 8; ++j) y[j] = dl * (grid[j] + delta[l]);
        y += 8;
      }
      qs += 4;
      qh += 2;
    }
  }
}

void dequantize_row_iq4_nl(const void* src, float* y, int64_t k) {
  const auto* x = static_cast<const BlockIQ4NL*>(src);
  for (int64_t i = 0; i < k / kQK4_NL; ++i, y += kQK4_NL) {
    const float d = fp16_to_fp32(x[i].d);
    for (int j = 0; j < kQK4_NL / 2; ++j) {
      y[j] = d * kValuesIQ4NL[x[i].qs[j] & 0xf];
      y[j + kQK4_NL / 2] = d * kValuesIQ4NL[x[i].qs[j] >> 4];
    }
  }
}

void dequantize_row_iq4_xs(const void* src, float* y, int64_t k) {
  const auto* x = static_cast<const BlockIQ4XS*>(src);
  for (int64_t i = 0; i < k / kQK_K; ++i) {
    const float d = fp16_to_fp32(x[i].d);
    const uint8_t* qs = x[i].qs;
    for (int ib = 0; ib < kQK_K / 32; ++ib) {
      const int ls =
          ((x[i].scales_l[ib / 2] >> 4 * (ib % 2)) & 0xf) | (((x[i].scales_h >> 2 * ib) & 3) << 4);
      const float dl = d * (ls - 32);
      for (int j = 0; j < 16; ++j) {
        y[j] = dl * kValuesIQ4NL[qs[j] & 0xf];
        y[j + 16] = dl * kValuesIQ4NL[qs[j] >> 4];
      }
      y += 32;
      qs += 16;
    }
  }
}

// ------------------------------------------------------------------------- IQ4_NL / IQ4_XS

// One super-block of IQ4_NL (super_block_size 32, a single sub-block) or IQ4_XS (256, eight
// sub-blocks with 6-bit scales). Per sub-block, the scale maximises the weighted correlation
// over 2 * kNtry + 1 candidate inverse scales around max / kValuesIQ4NL[0], after a first fit at
// -max / kValuesIQ4NL[0]. `qw` is null or the super-block's importance weights; scratch:
// scales[nsub], weight[32], L[super_block_size]. Port of quantize_row_iq4_nl_impl
// (ggml-quants.c, d99724f2) with ntry = 7, as ggml's quantize_iq4_nl / quantize_iq4_xs call it;
// its first fit's indices are never stored (every index is re-picked at the final scale), so
// the kernels only sum.
void quantize_iq4_super_block(const iq::IqKernels& kernels, int super_block_size, const float* x,
                              fp16_t* dh, uint8_t* q4, uint16_t* scales_h, uint8_t* scales_l,
                              float* scales, float* weight, uint8_t* L, const float* qw) {
  constexpr int kBlock = 32;
  constexpr int kNtry = 7;
  const int8_t* values = kValuesIQ4NL;
  float sigma2 = 0;
  for (int j = 0; j < super_block_size; ++j) sigma2 += x[j] * x[j];
  sigma2 *= 2.f / super_block_size;

  std::memset(q4, 0, static_cast<size_t>(super_block_size / 2));
  *dh = fp32_to_fp16(0.f);

  float max_scale = 0;
  float amax_scale = 0;
  const int nsub = super_block_size / kBlock;
  for (int ib = 0; ib < nsub; ++ib) {
    const float* xb = x + ib * kBlock;
    if (qw != nullptr) {
      const float* qwb = qw + ib * kBlock;
      for (int j = 0; j < kBlock; ++j) weight[j] = qwb[j] * std::sqrt(sigma2 + xb[j] * xb[j]);
    } else {
      for (int j = 0; j < kBlock; ++j) weight[j] = xb[j] * xb[j];
    }
    float amax = 0;
    float max = 0;
    for (int j = 0; j < kBlock; ++j) {
      const float ax = std::fabs(xb[j]);
      if (ax > amax) {
        amax = ax;
        max = xb[j];
      }
    }
    if (amax < kGroupMaxEps) {
      scales[ib] = 0;
      continue;
    }
    // Candidate 0 is the first fit, candidates 1..15 the trials itry = -kNtry..kNtry in order.
    float id[2 * kNtry + 2];
    float d = -max / values[0];
    id[0] = 1 / d;
    for (int itry = -kNtry; itry <= kNtry; ++itry) id[itry + kNtry + 1] = (itry + values[0]) / max;
    float sumqx[2 * kNtry + 2];
    float sumq2[2 * kNtry + 2];
    kernels.iq4_trials(xb, weight, id, sumqx, sumq2);
    d = sumq2[0] > 0 ? sumqx[0] / sumq2[0] : 0.f;
    float best = d * sumqx[0];
    for (int c = 1; c <= 2 * kNtry + 1; ++c) {
      if (sumq2[c] > 0 && sumqx[c] * sumqx[c] > best * sumq2[c]) {
        d = sumqx[c] / sumq2[c];
        best = d * sumqx[c];
      }
    }
    scales[ib] = d;
    const float abs_d = std::fabs(d);
    if (abs_d > amax_scale) {
      amax_scale = abs_d;
      max_scale = d;
    }
  }

  if (nsub > 1) {
    // IQ4_XS: 6-bit signed sub-block scales against d = -max_scale / 32, then re-pick every
    // index against the scale as stored (not the fitted one).
    *scales_h = 0;
    const float d = -max_scale / 32;
    *dh = fp32_to_fp16(d);
    const float id = d != 0 ? 1 / d : 0.f;
    for (int ib = 0; ib < nsub; ++ib) {
      int l = nearest_int(id * scales[ib]);
      l = std::max(-32, std::min(31, l));
      const float dl = d * l;
      const float idl = dl != 0 ? 1 / dl : 0.f;
      kernels.iq4_indices(x + ib * kBlock, kBlock, idl, L + ib * kBlock);
      l += 32;
      const uint8_t l_l = l & 0xf;
      const uint8_t l_h = static_cast<uint8_t>(l >> 4);
      if (ib % 2 == 0) {
        scales_l[ib / 2] = l_l;
      } else {
        scales_l[ib / 2] |= static_cast<uint8_t>(l_l << 4);
      }
      *scales_h |= static_cast<uint16_t>(l_h << 2 * (ib % 8));
    }
  } else {
    *dh = fp32_to_fp16(scales[0]);
    const float id = scales[0] != 0 ? 1 / scales[0] : 0;
    kernels.iq4_indices(x, super_block_size, id, L);
  }

  for (int i = 0; i < super_block_size / 32; ++i) {
    for (int j = 0; j < 16; ++j)
      q4[16 * i + j] = static_cast<uint8_t>(L[32 * i + j] | (L[32 * i + 16 + j] << 4));
  }
}

void quantize_row_iq4_nl(const float* x, BlockIQ4NL* y, int64_t n, const float* qw) {
  const iq::IqKernels& kernels = iq::iq_kernels();
  uint8_t L[kQK4_NL];
  float weight[kQK4_NL];
  float scale;
  for (int64_t ib = 0; ib < n / kQK4_NL; ++ib) {
    fp16_t d;
    uint16_t unused_h;
    quantize_iq4_super_block(kernels, kQK4_NL, x + kQK4_NL * ib, &d, y[ib].qs, &unused_h, nullptr,
                             &scale, weight, L, qw ? qw + kQK4_NL * ib : nullptr);
    y[ib].d = d;
  }
}

void quantize_row_iq4_xs(const float* x, BlockIQ4XS* y, int64_t n, const float* qw) {
  const iq::IqKernels& kernels = iq::iq_kernels();
  uint8_t L[kQK_K];
  float weight[32];
  float scales[kQK_K / 32];
  for (int64_t ib = 0; ib < n / kQK_K; ++ib) {
    fp16_t d;
    uint16_t scales_h;
    quantize_iq4_super_block(kernels, kQK_K, x + kQK_K * ib, &d, y[ib].qs, &scales_h,
                             y[ib].scales_l, scales, weight, L, qw ? qw + kQK_K * ib : nullptr);
    y[ib].d = d;
    y[ib].scales_h = scales_h;
  }
}

// ------------------------------------------------------------------------------ registration

constexpr char kNameIQ1S[] = "iq1_s";
constexpr char kNameIQ1M[] = "iq1_m";
constexpr char kNameIQ2XXS[] = "iq2_xxs";
constexpr char kNameIQ2XS[] = "iq2_xs";
constexpr char kNameIQ2S[] = "iq2_s";
constexpr char kNameIQ3XXS[] = "iq3_xxs";
constexpr char kNameIQ3S[] = "iq3_s";
constexpr char kNameIQ4NL[] = "iq4_nl";
constexpr char kNameIQ4XS[] = "iq4_xs";

// ggml's quantize_<type>: rows are quantized independently, each with the same imatrix row.
template <typename Block, int kBlock, const char* kName, bool kNeedsImatrix,
          void (*kRow)(const float*, Block*, int64_t, const float*)>
size_t quantize_rows(const float* src, void* dst, int64_t nrows, int64_t n_per_row,
                     const float* imatrix) {
  if (nrows < 0) {
    throw InvalidArgument(std::string("quant: ") + kName + ": negative row count " +
                          std::to_string(nrows));
  }
  if (n_per_row <= 0 || n_per_row % kBlock != 0) {
    throw InvalidArgument(
        std::string("quant: ") + kName + ": row length " + std::to_string(n_per_row) +
        " is not a positive multiple of the block size " + std::to_string(kBlock));
  }
  if (kNeedsImatrix && imatrix == nullptr) {
    throw InvalidArgument(std::string("quant: ") + kName +
                          " requires an importance matrix (imatrix); none was given");
  }
  auto* y = static_cast<Block*>(dst);
  const int64_t blocks_per_row = n_per_row / kBlock;
  for (int64_t r = 0; r < nrows; ++r) {
    kRow(src + r * n_per_row, y + r * blocks_per_row, n_per_row, imatrix);
  }
  return static_cast<size_t>(nrows * blocks_per_row) * sizeof(Block);
}

}  // namespace

void register_i_quant_types(std::span<TypeTraits> table) {
  TypeTraits& iq1_s = table_row(table, QuantType::kIQ1_S);
  iq1_s.dequantize_row = dequantize_row_iq1_s;
  iq1_s.quantize = quantize_rows<BlockIQ1S, kQK_K, kNameIQ1S, true, iq::quantize_row_iq1_s>;

  TypeTraits& iq1_m = table_row(table, QuantType::kIQ1_M);
  iq1_m.dequantize_row = dequantize_row_iq1_m;
  iq1_m.quantize = quantize_rows<BlockIQ1M, kQK_K, kNameIQ1M, false, iq::quantize_row_iq1_m>;

  TypeTraits& iq2_xxs = table_row(table, QuantType::kIQ2_XXS);
  iq2_xxs.dequantize_row = dequantize_row_iq2_xxs;
  iq2_xxs.quantize = quantize_rows<BlockIQ2XXS, kQK_K, kNameIQ2XXS, true, iq::quantize_row_iq2_xxs>;

  TypeTraits& iq2_xs = table_row(table, QuantType::kIQ2_XS);
  iq2_xs.dequantize_row = dequantize_row_iq2_xs;
  iq2_xs.quantize = quantize_rows<BlockIQ2XS, kQK_K, kNameIQ2XS, true, iq::quantize_row_iq2_xs>;

  TypeTraits& iq2_s = table_row(table, QuantType::kIQ2_S);
  iq2_s.dequantize_row = dequantize_row_iq2_s;
  iq2_s.quantize = quantize_rows<BlockIQ2S, kQK_K, kNameIQ2S, false, iq::quantize_row_iq2_s>;

  TypeTraits& iq3_xxs = table_row(table, QuantType::kIQ3_XXS);
  iq3_xxs.dequantize_row = dequantize_row_iq3_xxs;
  iq3_xxs.quantize =
      quantize_rows<BlockIQ3XXS, kQK_K, kNameIQ3XXS, false, iq::quantize_row_iq3_xxs>;

  TypeTraits& iq3_s = table_row(table, QuantType::kIQ3_S);
  iq3_s.dequantize_row = dequantize_row_iq3_s;
  iq3_s.quantize = quantize_rows<BlockIQ3S, kQK_K, kNameIQ3S, false, iq::quantize_row_iq3_s>;

  TypeTraits& iq4_nl = table_row(table, QuantType::kIQ4_NL);
  iq4_nl.dequantize_row = dequantize_row_iq4_nl;
  iq4_nl.quantize = quantize_rows<BlockIQ4NL, kQK4_NL, kNameIQ4NL, false, quantize_row_iq4_nl>;

  TypeTraits& iq4_xs = table_row(table, QuantType::kIQ4_XS);
  iq4_xs.dequantize_row = dequantize_row_iq4_xs;
  iq4_xs.quantize = quantize_rows<BlockIQ4XS, kQK_K, kNameIQ4XS, false, quantize_row_iq4_xs>;
}

}  // namespace insitu
