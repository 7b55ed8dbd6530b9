// AVX-512 VNNI panel GEMM: 16 weight rows x a tile of up to 8 tokens per call, register-tiled.
//
// The panel stores 4 consecutive int8 values of each of 16 rows in one 64-byte line, so one
// vpdpbusd multiplies a full line by 4 activation bytes broadcast from one token and adds into
// that token's 16 row sums: each weight line is loaded once per tile of tokens instead of once
// per dot product (the outer-product layout of ggml's repacked q4_0_8x8 / AMX VNNI kernels,
// ggml-cpu/arch/x86/repack.cpp and amx/mmq.cpp at ggml commit d99724f2; written anew).
// vpdpbusd takes u8 x s8 with only the s8 operand broadcastable from memory, so weights are stored
// shifted to unsigned (v + 128) and activation bytes are broadcast into the instruction itself
// (one fused micro-op per 16x4 products); each token's int accumulator starts from
// -128 * sum(a) (PackedActs::comp), which makes every sub-block sum exact. One float
// multiply-add per sub-block applies the weight and activation scales.
#include <cstring>

// GCC 12 reports the deliberately undefined pass-through operand inside _mm512_cvtepi32_ps as
// "may be used uninitialized"; the intrinsic is fully defined.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
#pragma GCC diagnostic pop

#include "kernels/kernel_table.h"

namespace insitu {
namespace {

using AliasedI32 = int32_t __attribute__((may_alias, aligned(1)));

// acc += w (u8) x the 4 signed bytes at p broadcast to every lane, with the broadcast folded into
// vpdpbusd's memory operand (GCC 12 keeps a separate vpbroadcastd for the intrinsic form, which
// doubles the vector micro-ops of the inner loop).
inline __m512i dpbusd_bcast(__m512i acc, __m512i w, const int8_t* p) {
  __asm__("vpdpbusd %[m]%{1to16%}, %[w], %[acc]"
          : [acc] "+v"(acc)
          : [w] "v"(w), [m] "m"(*reinterpret_cast<const AliasedI32*>(p)));
  return acc;
}

template <int T, int kSub, bool kMin>
void panel_tile(const PackedPanel& w, const PackedActs& a, int64_t tile, int64_t s0, int64_t s1,
                bool accumulate, float* y) {
  constexpr int kSteps = kSub / 4;
  __m512 facc[T];
  for (int t = 0; t < T; ++t) facc[t] = _mm512_setzero_ps();
  // One pointer per operand: the tile's tokens interleave in 4-byte groups (PackedActs).
  const int8_t* aq = a.q + tile * a.n * kActTile + s0 * kSub * kActTile;
  const int32_t* ac = a.comp + (tile * a.n_sub + s0) * kActTile;
  const float* as = a.scale + (tile * a.n_sub + s0) * kActTile;
  const float* am = kMin ? a.sum + (tile * a.n_sub + s0) * kActTile : nullptr;
  const uint8_t* wq = w.q + s0 * kSub * kPanelRows;
  for (int64_t s = s0; s < s1; ++s) {
    __m512i acc[T];
    for (int t = 0; t < T; ++t) acc[t] = _mm512_set1_epi32(ac[t]);
    ac += kActTile;
    for (int k = 0; k < kSteps; ++k) {
      const __m512i wv = _mm512_loadu_si512(wq + k * 64);
      for (int t = 0; t < T; ++t) {
        acc[t] = dpbusd_bcast(acc[t], wv, aq + (k * kActTile + t) * 4);
      }
    }
    wq += kSub * kPanelRows;
    aq += kSub * kActTile;
    const __m512 ws = _mm512_loadu_ps(w.scale + s * kPanelRows);
    for (int t = 0; t < T; ++t) {
      facc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(acc[t]), _mm512_mul_ps(ws, _mm512_set1_ps(as[t])),
                                facc[t]);
    }
    as += kActTile;
    if constexpr (kMin) {
      const __m512 wm = _mm512_loadu_ps(w.min + s * kPanelRows);
      for (int t = 0; t < T; ++t) facc[t] = _mm512_fmadd_ps(wm, _mm512_set1_ps(am[t]), facc[t]);
      am += kActTile;
    }
  }
  for (int t = 0; t < T; ++t) {
    if (accumulate) facc[t] = _mm512_add_ps(_mm512_loadu_ps(y + t * kPanelRows), facc[t]);
    _mm512_storeu_ps(y + t * kPanelRows, facc[t]);
  }
}

template <int kSub, bool kMin>
void panel_dispatch(const PackedPanel& w, const PackedActs& a, int64_t tile, int n_tok, int64_t s0,
                    int64_t s1, bool acc, float* y) {
  switch (n_tok) {
    case 8: return panel_tile<8, kSub, kMin>(w, a, tile, s0, s1, acc, y);
    case 7: return panel_tile<7, kSub, kMin>(w, a, tile, s0, s1, acc, y);
    case 6: return panel_tile<6, kSub, kMin>(w, a, tile, s0, s1, acc, y);
    case 5: return panel_tile<5, kSub, kMin>(w, a, tile, s0, s1, acc, y);
    case 4: return panel_tile<4, kSub, kMin>(w, a, tile, s0, s1, acc, y);
    case 3: return panel_tile<3, kSub, kMin>(w, a, tile, s0, s1, acc, y);
    case 2: return panel_tile<2, kSub, kMin>(w, a, tile, s0, s1, acc, y);
    default: return panel_tile<1, kSub, kMin>(w, a, tile, s0, s1, acc, y);
  }
}

}  // namespace

void panel_gemm_avx512(const PackedPanel& w, const PackedActs& a, int64_t tile, int n_tok,
                       int64_t s0, int64_t s1, bool acc, float* y) {
  static_assert(kActTile == 8, "panel_dispatch covers tiles of up to 8 tokens");
  const bool has_min = w.min != nullptr;
  if (w.sub == 32) {
    has_min ? panel_dispatch<32, true>(w, a, tile, n_tok, s0, s1, acc, y)
            : panel_dispatch<32, false>(w, a, tile, n_tok, s0, s1, acc, y);
  } else {
    has_min ? panel_dispatch<16, true>(w, a, tile, n_tok, s0, s1, acc, y)
            : panel_dispatch<16, false>(w, a, tile, n_tok, s0, s1, acc, y);
  }
}

}  // namespace insitu
