// FP8 weights (fp8 per tensor, fp8_b128 per 128x128 tile) through matmul on every ISA: GEMV and
// GEMM against a double-precision oracle over the quant layer's dequantized weights, the E4M3
// widening exact for every code, and results independent of the thread count.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "insitu/error.h"
#include "kernels/cpu_features.h"
#include "kernels/fp8_matmul.h"
#include "kernels/isa_guard.h"
#include "kernels/kernel_table.h"
#include "kernels/matmul.h"
#include "quant/fp8.h"
#include "quant/quantize.h"

namespace insitu {
namespace {

using Q = QuantType;

std::vector<float> gaussian(size_t n, std::mt19937& rng, float sigma) {
  std::normal_distribution<float> dist(0.0f, sigma);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

struct Fp8Weight {
  std::vector<uint8_t> data;
  WeightView view;
  std::vector<float> deq;  // [n_out][n_in]
};

Fp8Weight make_weight(Q type, int64_t n_out, int64_t n_in, std::mt19937& rng) {
  Fp8Weight w;
  std::vector<float> src = gaussian(static_cast<size_t>(n_out * n_in), rng, 0.05f);
  // Tiles of different magnitudes, and tiny values that land on E4M3 subnormals.
  for (int64_t r = 0; r < n_out; ++r)
    for (int64_t c = 0; c < n_in; ++c)
      src[r * n_in + c] *= std::ldexp(1.0f, static_cast<int>((r / 128 + c / 128) % 4) * 2);
  for (size_t i = 0; i < src.size(); i += 7) src[i] *= 1e-4f;
  ThreadPool pool(1);
  w.data.resize(quant_tensor_size(type, n_out, n_in));
  quantize_tensor(type, src.data(), w.data.data(), n_out, n_in, nullptr, pool);
  w.view = WeightView{type, n_in, n_out, w.data.data(), static_cast<size_t>(n_in)};
  w.deq.resize(src.size());
  dequantize_rows(type, w.data.data(), n_out, n_in, 0, n_out, w.deq.data());
  return w;
}

// y = x W^T in double from the dequantized weights, and the bound sum |w||x| * tol.
void check(const Fp8Weight& w, const std::vector<float>& x, int64_t n_tok,
           const std::vector<float>& y, const std::string& what) {
  const int64_t n_in = w.view.n_in, n_out = w.view.n_out;
  for (int64_t t = 0; t < n_tok; ++t) {
    for (int64_t o = 0; o < n_out; ++o) {
      double ref = 0.0, mag = 0.0;
      for (int64_t i = 0; i < n_in; ++i) {
        ref += static_cast<double>(w.deq[o * n_in + i]) * x[t * n_in + i];
        mag += std::fabs(static_cast<double>(w.deq[o * n_in + i]) * x[t * n_in + i]);
      }
      // f32 accumulation of n_in exact products: a few ulps of the magnitude per addition.
      ASSERT_NEAR(y[t * n_out + o], ref, mag * 2e-6 * std::sqrt(static_cast<double>(n_in)) + 1e-30)
          << what << " token " << t << " row " << o;
    }
  }
}

TEST(Fp8Matmul, GemvAndGemmMatchDequantizedReferenceOnEveryIsa) {
  IsaGuard guard;
  std::mt19937 rng(31);
  ThreadPool pool(2);
  struct Shape {
    int64_t n_out, n_in;
  };
  for (Q type : {Q::kFP8, Q::kFP8_B128}) {
    for (Shape s : {Shape{37, 300}, Shape{130, 257}, Shape{5, 7}, Shape{260, 1024}}) {
      const Fp8Weight w = make_weight(type, s.n_out, s.n_in, rng);
      for (int64_t n_tok : {1, 2, 3, 8, 17}) {
        const std::vector<float> x = gaussian(static_cast<size_t>(n_tok * s.n_in), rng, 1.0f);
        for (Isa isa : supported_isas()) {
          set_active_isa(isa);
          std::vector<float> y(static_cast<size_t>(n_tok * s.n_out), NAN);
          matmul(w.view, x.data(), n_tok, y.data(), pool);
          check(w, x, n_tok, y,
                quant_type_name(type) + "/" + isa_name(isa) + " " + std::to_string(s.n_out) +
                    "x" + std::to_string(s.n_in) + " tokens " + std::to_string(n_tok));
        }
      }
    }
  }
}

// Every E4M3 code (bar the NaNs) as a weight against one-hot activations: the SIMD widening
// returns exactly the quant layer's value times the scale.
TEST(Fp8Matmul, EveryCodeWidensExactly) {
  IsaGuard guard;
  ThreadPool pool(1);
  const int64_t n_in = 254, n_out = 1;
  std::vector<uint8_t> data(static_cast<size_t>(n_in) + 4);
  int k = 0;
  for (int c = 0; c < 256; ++c)
    if ((c & 0x7F) != 0x7F) data[k++] = static_cast<uint8_t>(c);
  const float scale = 0.75f;
  std::memcpy(data.data() + n_in, &scale, 4);
  const WeightView w{Q::kFP8, n_in, n_out, data.data(), static_cast<size_t>(n_in)};
  for (Isa isa : supported_isas()) {
    set_active_isa(isa);
    for (int64_t n_tok : {1, 2}) {
      for (int64_t i = 0; i < n_in; ++i) {
        std::vector<float> x(static_cast<size_t>(n_tok * n_in), 0.0f);
        for (int64_t t = 0; t < n_tok; ++t) x[t * n_in + i] = 1.0f;
        std::vector<float> y(static_cast<size_t>(n_tok));
        matmul(w, x.data(), n_tok, y.data(), pool);
        for (int64_t t = 0; t < n_tok; ++t)
          ASSERT_EQ(y[t], e4m3_to_fp32(data[i]) * scale) << isa_name(isa) << " code " << int(data[i]);
      }
    }
  }
}

TEST(Fp8Matmul, ResultsDoNotDependOnThreadCount) {
  IsaGuard guard;
  std::mt19937 rng(5);
  for (Q type : {Q::kFP8, Q::kFP8_B128}) {
    const Fp8Weight w = make_weight(type, 300, 520, rng);
    for (int64_t n_tok : {1, 9}) {
      const std::vector<float> x = gaussian(static_cast<size_t>(n_tok * 520), rng, 1.0f);
      for (Isa isa : supported_isas()) {
        set_active_isa(isa);
        std::vector<float> want;
        for (int threads : {1, 2, 3}) {
          ThreadPool pool(threads);
          std::vector<float> y(static_cast<size_t>(n_tok * 300));
          matmul(w.view, x.data(), n_tok, y.data(), pool);
          if (want.empty()) {
            want = y;
          } else {
            EXPECT_TRUE(y == want) << quant_type_name(type) << "/" << isa_name(isa) << " "
                                   << threads << " threads";
          }
        }
      }
    }
  }
}

TEST(Fp8Matmul, RejectsPaddedRows) {
  std::vector<uint8_t> data(64 * 4 + 4, 0);
  ThreadPool pool(1);
  std::vector<float> x(32), y(4);
  const WeightView w{Q::kFP8, 32, 4, data.data(), 64};
  EXPECT_THROW(matmul(w, x.data(), 1, y.data(), pool), InvalidArgument);
}

}  // namespace
}  // namespace insitu
