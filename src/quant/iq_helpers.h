// Small exact building blocks shared by the grid i-quant quantizers (iq1/iq2/iq3_quants.cc).
//
// Ports of expressions that recur in ggml's src/ggml-quants.c (commit d99724f2) i-quant
// quantizers; each keeps ggml's operation order, since the output bytes depend on it. Internal:
// not part of the library's API. Pure functions, safe from any thread.
#pragma once

#include <bit>
#include <cmath>
#include <cstdint>

#include "quant/blocks.h"

namespace insitu::iq {

// Σ w·x·q and Σ w·q² over n elements with q = 2·L + 1, in ggml's order.
inline void weighted_sums(int n, const float* weight, const float* xval, const int8_t* L,
                          float* sumqx, float* sumq2) {
  float qx = 0;
  float q2 = 0;
  for (int i = 0; i < n; ++i) {
    const float w = weight[i];
    const float q = 2 * L[i] + 1;
    qx += w * xval[i] * q;
    q2 += w * q * q;
  }
  *sumqx = qx;
  *sumq2 = q2;
}

// Importance of each element: the imatrix scaled by the local magnitude, or x² without one.
inline void block_weights(int n, const float* xb, const float* qw, float sigma2, float* weight) {
  if (qw != nullptr) {
    for (int i = 0; i < n; ++i) weight[i] = qw[i] * std::sqrt(sigma2 + xb[i] * xb[i]);
  } else {
    for (int i = 0; i < n; ++i) weight[i] = xb[i] * xb[i];
  }
}

// Σ x² over a 256-element super-block, summed in order.
inline float super_block_sumx2(const float* xbl) {
  float sumx2 = 0;
  for (int i = 0; i < kQK_K; ++i) sumx2 += xbl[i] * xbl[i];
  return sumx2;
}

// Split 8 values into magnitudes and a sign byte (bit i set = x[i] negative).
inline uint8_t split_signs8(const float* x, float* xval) {
  uint8_t s = 0;
  for (int i = 0; i < 8; ++i) {
    if (x[i] >= 0) {
      xval[i] = x[i];
    } else {
      xval[i] = -x[i];
      s = static_cast<uint8_t>(s | (1 << i));
    }
  }
  return s;
}

// IQ2_XXS, IQ2_XS and IQ3_XXS store 7 sign bits per 8 (the 8th is their parity): with an odd
// count of negatives, the element of least weight·x² keeps the wrong sign.
inline uint8_t split_signs8_even(const float* x, const float* weight, float* xval) {
  uint8_t s = split_signs8(x, xval);
  if (std::popcount(s) % 2) {
    int imin = 0;
    float min = weight[imin] * x[imin] * x[imin];
    for (int i = 1; i < 8; ++i) {
      const float ax = weight[i] * x[i] * x[i];
      if (ax < min) {
        min = ax;
        imin = i;
      }
    }
    xval[imin] = -xval[imin];
    s = static_cast<uint8_t>(s ^ (1 << imin));
  }
  return s;
}

}  // namespace insitu::iq
