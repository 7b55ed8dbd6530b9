// The generic HQQ optimiser and its log / exp (see hqq_simd.h): plain scalar code, the reference
// that the AVX2 / AVX-512 versions reproduce bit for bit (tests/quant/hqq_simd_test.cc).
#include "quant/hqq_simd.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>

namespace insitu::hqq {

float hqq_log(float x) {
  // Subnormals are scaled into the normal range first (exactly); the split below needs a normal
  // exponent field. 0, inf and NaN give finite or NaN results that the shrink operator maps to
  // the right answer (see shrink_lp).
  int e_adjust = 0;
  if (std::bit_cast<uint32_t>(x) < 0x00800000u) {
    x *= 8388608.0f;  // 2^23
    e_adjust = -23;
  }
  const uint32_t bits = std::bit_cast<uint32_t>(x);
  // e = floor(log2(x / kSqrtHalf)) from the bit pattern; m = x / 2^e in [kSqrtHalf, 2 kSqrtHalf).
  const int32_t e = static_cast<int32_t>(bits - std::bit_cast<uint32_t>(kSqrtHalf)) >> 23;
  const float m = std::bit_cast<float>(bits - (static_cast<uint32_t>(e) << 23));
  const double f = static_cast<double>(m) - 1.0;
  const double s = f / (2.0 + f);
  const double z = s * s;
  // Estrin's scheme (see hqq_simd.h), c = kLogCoeff.
  const double z2 = z * z;
  const double z4 = z2 * z2;
  const double z8 = z4 * z4;
  const double* c = kLogCoeff;
  const double p01 = c[0] + c[1] * z, p23 = c[2] + c[3] * z, p45 = c[4] + c[5] * z;
  const double p67 = c[6] + c[7] * z, p89 = c[8] + c[9] * z;
  const double p03 = p01 + p23 * z2, p47 = p45 + p67 * z2;
  const double p = (p03 + p47 * z4) + p89 * z8;
  const double log_m = s * p;
  return static_cast<float>(static_cast<double>(e + e_adjust) * kLn2 + log_m);
}

float hqq_exp(float y) {
  const double yd = std::min(std::max(static_cast<double>(y), -kExpClamp), kExpClamp);
  const double t = yd * kInvLn2 + kShift;
  const double kd = t - kShift;
  const int64_t k = std::bit_cast<int64_t>(t) - std::bit_cast<int64_t>(kShift);
  const double r = (yd - kd * kLn2Hi) - kd * kLn2Lo;
  // Estrin's scheme (see hqq_simd.h), c = kExpCoeff.
  const double r2 = r * r;
  const double r4 = r2 * r2;
  const double r8 = r4 * r4;
  const double* c = kExpCoeff;
  const double p01 = c[0] + c[1] * r, p23 = c[2] + c[3] * r, p45 = c[4] + c[5] * r;
  const double p67 = c[6] + c[7] * r, p89 = c[8] + c[9] * r, p1011 = c[10] + c[11] * r;
  const double p03 = p01 + p23 * r2, p47 = p45 + p67 * r2, p811 = p89 + p1011 * r2;
  const double p07 = p03 + p47 * r4, p812 = p811 + c[12] * r4;
  const double p = p07 + p812 * r8;
  const double scale = std::bit_cast<double>(static_cast<uint64_t>(k + 1023) << 52);
  return static_cast<float>(p * scale);
}

float hqq_shrink_zero_below(float inv_beta) {
  const double c = kLpNormM1;
  return static_cast<float>(0.99 * std::exp(std::log(static_cast<double>(inv_beta)) / (1.0 - c)));
}

namespace {

// hqq's shrink_lp_op: sign(x) * relu(|x| - (1/beta) * |x|^(p-1)), the power as candle evaluates
// it, exp(log|x| * (p-1)). At x = 0 the power is huge (+inf in candle), so the result is 0 either
// way; at |x| = inf it is tiny (0 in candle), so the result is +-inf either way; NaN gives 0.
inline float shrink_lp(float x, float inv_beta, float zero_below) {
  const float ax = std::fabs(x);
  if (ax < zero_below) return 0.0f;
  const float r = ax - inv_beta * hqq_exp(hqq_log(ax) * kLpNormM1);
  if (!(r > 0.0f)) return 0.0f;
  return x > 0.0f ? r : -r;
}

inline float quant_value(float w, float s, float z, float max_v) {
  return std::clamp(std::round(w * s + z), 0.0f, max_v);
}

void optimize_group(const float* w, float max_v, float* s_out, float* z_out) {
  float w_min = w[0], w_max = w[0];
  for (int j = 1; j < kGroup; ++j) {
    w_min = std::min(w_min, w[j]);
    w_max = std::max(w_max, w[j]);
  }
  // max - min == 0 gives +inf, clamped to 2e4 like candle's clamp.
  const float s = std::clamp(max_v / (w_max - w_min), 0.0f, 2e4f);
  float z = -w_min * s;

  // optimize_weights_proximal_legacy: z is replaced after the error of the current z is measured,
  // and the loop stops (keeping that replacement) once the error no longer improves.
  double beta = kBeta;
  float best_error = 1e4f;
  for (int it = 0; it < kHqqOptSteps; ++it) {
    const float inv_beta = static_cast<float>(1.0 / beta);
    const float zero_below = hqq_shrink_zero_below(inv_beta);
    float zero_sum = 0.0f, err_sum = 0.0f;
    for (int j = 0; j < kGroup; ++j) {
      const float wq = quant_value(w[j], s, z, max_v);
      const float wr = (wq - z) / s;
      const float we = shrink_lp(w[j] - wr, inv_beta, zero_below);
      zero_sum += wq - (w[j] - we) * s;
      err_sum += std::fabs(w[j] - wr);
    }
    z = zero_sum / static_cast<float>(kGroup);
    beta *= kKappa;
    const float error = err_sum / static_cast<float>(kGroup);
    if (error < best_error) {
      best_error = error;
    } else {
      break;
    }
  }
  *s_out = s;
  *z_out = z;
}

void optimize_generic(const float* w, int64_t count, float max_v, float* s, float* z, uint8_t* q) {
  for (int64_t g = 0; g < count; ++g) {
    optimize_group(w + g * kGroup, max_v, s + g, z + g);
    for (int j = 0; j < kGroup; ++j) {
      q[g * kGroup + j] = static_cast<uint8_t>(quant_value(w[g * kGroup + j], s[g], z[g], max_v));
    }
  }
}

const HqqKernels kHqqKernelsGeneric = {optimize_generic};

}  // namespace

const HqqKernels& hqq_kernels(QuantIsa isa) {
#if defined(__x86_64__)
  if (isa == QuantIsa::kAvx512) return kHqqKernelsAvx512;
  if (isa == QuantIsa::kAvx2) return kHqqKernelsAvx2;
#endif
  return kHqqKernelsGeneric;
}

}  // namespace insitu::hqq
