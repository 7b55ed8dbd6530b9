// Operators against straightforward double-precision formulas.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "model/ops.h"
#include "quant/float_convert.h"

namespace insitu {
namespace {

std::vector<float> random_vec(int n, uint32_t seed, float scale = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0.0f, scale);
  std::vector<float> v(n);
  for (float& x : v) x = d(rng);
  return v;
}

TEST(Ops, RmsNormMatchesDoubleFormula) {
  for (int n : {1, 7, 64, 576, 2049}) {
    const std::vector<float> x = random_vec(n, 1 + n, 3.0f);
    const std::vector<float> w = random_vec(n, 2 + n);
    const float eps = 1e-6f;
    std::vector<float> y(n);
    ops::rms_norm(x.data(), w.data(), y.data(), n, eps);
    double ss = 0;
    for (float v : x) ss += static_cast<double>(v) * v;
    const double scale = 1.0 / std::sqrt(ss / n + eps);
    for (int i = 0; i < n; ++i) EXPECT_NEAR(y[i], x[i] * scale * w[i], 1e-5 * (1 + std::fabs(x[i] * scale * w[i])));
    // Without a weight, and in place.
    std::vector<float> z = x;
    ops::rms_norm(z.data(), nullptr, z.data(), n, eps);
    for (int i = 0; i < n; ++i) EXPECT_NEAR(z[i], x[i] * scale, 1e-5 * (1 + std::fabs(x[i] * scale)));
  }
}

// Reference RoPE in double: pair i of a head rotates by pos * freq_scale * base^(-2i/d) / ff[i].
std::vector<double> rope_ref(const std::vector<float>& x, int n_heads, int d, int pos, double base,
                             double freq_scale, const std::vector<float>& ff, bool neox) {
  std::vector<double> y(x.begin(), x.end());
  for (int h = 0; h < n_heads; ++h) {
    for (int i = 0; i < d / 2; ++i) {
      const double theta = pos * freq_scale * std::pow(base, -2.0 * i / d) / (ff.empty() ? 1.0 : ff[i]);
      const int i0 = h * d + (neox ? i : 2 * i);
      const int i1 = h * d + (neox ? i + d / 2 : 2 * i + 1);
      const double a = x[i0], b = x[i1];
      y[i0] = a * std::cos(theta) - b * std::sin(theta);
      y[i1] = a * std::sin(theta) + b * std::cos(theta);
    }
  }
  return y;
}

void check_rope(bool neox, float base, float freq_scale, std::vector<float> ff) {
  const int d = 64, heads = 3;
  for (int pos : {0, 1, 17, 500, 4000}) {
    std::vector<float> x = random_vec(d * heads, pos + 5);
    const std::vector<double> ref = rope_ref(x, heads, d, pos, base, freq_scale, ff, neox);
    ops::RopeParams p;
    p.n_dims = d;
    p.freq_base = base;
    p.freq_scale = freq_scale;
    p.freq_factors = ff;
    p.neox = neox;
    std::vector<float> cs(d);
    ops::rope_cache(p, pos, cs.data());
    ops::rope_apply(p, cs.data(), x.data(), heads, d);
    // The angle is built in float as ggml does: its error grows with the position.
    const double tol = 2e-5 + 2e-6 * pos;
    for (int i = 0; i < d * heads; ++i) EXPECT_NEAR(x[i], ref[i], tol) << "pos " << pos << " i " << i;
  }
}

TEST(Ops, RopeNormal) { check_rope(false, 10000.0f, 1.0f, {}); }
TEST(Ops, RopeNeox) { check_rope(true, 1000000.0f, 1.0f, {}); }
TEST(Ops, RopeLinearScaling) { check_rope(true, 10000.0f, 0.125f, {}); }
TEST(Ops, RopeFreqFactors) {
  std::vector<float> ff(32);
  for (int i = 0; i < 32; ++i) ff[i] = 1.0f + 0.25f * i;
  check_rope(false, 500000.0f, 1.0f, ff);
}

TEST(Ops, RopePositionZeroIsIdentity) {
  ops::RopeParams p;
  p.n_dims = 8;
  std::vector<float> cs(8);
  ops::rope_cache(p, 0, cs.data());
  std::vector<float> x = {1, 2, 3, 4, 5, 6, 7, 8};
  ops::rope_apply(p, cs.data(), x.data(), 1, 8);
  EXPECT_EQ(x, (std::vector<float>{1, 2, 3, 4, 5, 6, 7, 8}));
}

TEST(Ops, SoftmaxMatchesDouble) {
  std::vector<float> x = random_vec(100, 9, 5.0f);
  x[3] = 80.0f;  // large values must not overflow
  std::vector<double> e(x.size());
  double mx = 80.0, s = 0;
  for (size_t i = 0; i < x.size(); ++i) s += e[i] = std::exp(x[i] - mx);
  ops::softmax(x.data(), static_cast<int64_t>(x.size()));
  double total = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    EXPECT_NEAR(x[i], e[i] / s, 1e-6);
    total += x[i];
  }
  EXPECT_NEAR(total, 1.0, 1e-5);
}

TEST(Ops, ActivationsMatchFormulas) {
  for (double x = -12.0; x <= 12.0; x += 0.37) {
    const double silu = x / (1.0 + std::exp(-x));
    const double gelu = 0.5 * x * (1.0 + std::tanh(std::sqrt(2.0 / M_PI) * (x + 0.044715 * x * x * x)));
    EXPECT_NEAR(ops::silu(static_cast<float>(x)), silu, 1e-5 * (1 + std::fabs(silu)));
    EXPECT_NEAR(ops::gelu_tanh(static_cast<float>(x)), gelu, 1e-5 * (1 + std::fabs(gelu)));
    // The ggml flavour rounds input and output to fp16: within fp16 precision of the formula.
    EXPECT_NEAR(ops::gelu_tanh_ggml(static_cast<float>(x)), gelu, 2e-3 * (1 + std::fabs(gelu)));
  }
  // Its table value is exactly gelu(fp16(x)) rounded to fp16.
  const float x = 0.3337f;
  EXPECT_EQ(ops::gelu_tanh_ggml(x),
            round_to_fp16(ops::gelu_tanh(round_to_fp16(x))));
  EXPECT_EQ(ops::gelu_tanh_ggml(-10.5f), 0.0f);
  EXPECT_EQ(ops::gelu_tanh_ggml(11.0f), 11.0f);
  std::vector<float> g = {1.0f, -2.0f}, u = {3.0f, 4.0f}, out(2);
  ops::swiglu(g.data(), u.data(), out.data(), 2);
  EXPECT_FLOAT_EQ(out[0], ops::silu(1.0f) * 3.0f);
  ops::geglu(g.data(), u.data(), out.data(), 2);
  EXPECT_FLOAT_EQ(out[1], ops::gelu_tanh_ggml(-2.0f) * 4.0f);
}

TEST(Ops, DotAndAxpyWithF16Rows) {
  for (int n : {1, 8, 15, 16, 33, 256}) {
    const std::vector<float> a = random_vec(n, 11 + n), b = random_vec(n, 12 + n);
    std::vector<uint16_t> bh(n);
    ops::store_f16(b.data(), bh.data(), n);
    double ref32 = 0, ref16 = 0;
    for (int i = 0; i < n; ++i) {
      EXPECT_EQ(bh[i], fp32_to_fp16(b[i]));
      ref32 += static_cast<double>(a[i]) * b[i];
      ref16 += static_cast<double>(a[i]) * fp16_to_fp32(bh[i]);
    }
    EXPECT_NEAR(ops::dot_f32(a.data(), b.data(), n), ref32, 1e-4 * (1 + std::sqrt(n)));
    EXPECT_NEAR(ops::dot_f16(a.data(), bh.data(), n), ref16, 1e-4 * (1 + std::sqrt(n)));
    std::vector<float> y(n, 1.0f), z(n, 1.0f);
    ops::axpy_f32(0.5f, a.data(), y.data(), n);
    ops::axpy_f16(-2.0f, bh.data(), z.data(), n);
    for (int i = 0; i < n; ++i) {
      EXPECT_NEAR(y[i], 1.0 + 0.5 * a[i], 1e-6);
      EXPECT_NEAR(z[i], 1.0 - 2.0 * fp16_to_fp32(bh[i]), 1e-6);
    }
  }
}

}  // namespace
}  // namespace insitu
