// Kernels of the group-affine formats (HQQ, AFQ): every ISA's block decoder against the scalar
// decoder, decoders against the type table's dequantizer, dot products against the scalar
// reference and a double-precision dot, and matmul (GEMV and the panel GEMM) against a
// dequantize-then-multiply oracle.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "kernels/cpu_features.h"
#include "kernels/generic/decode.h"
#include "kernels/kernel_table.h"
#include "kernels/matmul.h"
#include "quant/blocks.h"
#include "quant/float_convert.h"
#include "quant/group_affine.h"
#include "quant/type_traits.h"
#include "util/thread_pool.h"

namespace insitu {
namespace {

class IsaGuard {
 public:
  IsaGuard() : saved_(active_kernels().isa) {}
  ~IsaGuard() { set_active_isa(saved_); }

 private:
  Isa saved_;
};

std::string label(QuantType t, Isa isa) { return quant_type_name(t) + "/" + isa_name(isa); }

std::vector<float> gaussian(size_t n, std::mt19937& rng, float sigma = 1.0f) {
  std::normal_distribution<float> dist(0.0f, sigma);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

// n_rows rows of n elements: from the quantizer on Gaussian data, or (raw) random payload bytes
// under sane headers, which reach every q pattern, including 0 and 2^bits - 1 in 8-bit groups.
std::vector<uint8_t> make_weights(const GroupAffineFormat& f, int64_t n_rows, int64_t n,
                                  std::mt19937& rng, bool raw) {
  const TypeTraits& tt = type_traits(f.type);
  std::vector<uint8_t> out(quant_row_size(f.type, n) * n_rows);
  if (!raw) {
    const std::vector<float> x = gaussian(static_cast<size_t>(n_rows * n), rng, 0.05f);
    tt.quantize(x.data(), out.data(), n_rows, n, nullptr);
    return out;
  }
  for (uint8_t& b : out) b = static_cast<uint8_t>(rng());
  std::uniform_real_distribution<float> step(0.001f, 0.02f), off(-0.5f, 0.5f);
  for (size_t blk = 0; blk < out.size() / f.block_bytes(); ++blk) {
    uint8_t* p = out.data() + blk * f.block_bytes();
    const float s = step(rng) * (rng() & 1 ? 1.0f : -1.0f);
    if (f.header == AffineHeader::kAfq) {
      const uint16_t s16 = fp32_to_bf16(s), b16 = fp32_to_bf16(off(rng));
      std::memcpy(p, &s16, 2);
      std::memcpy(p + 2, &b16, 2);
    } else {
      const float scale = std::fabs(s), zero = off(rng) * static_cast<float>(1 << f.bits);
      std::memcpy(p, &scale, 4);
      std::memcpy(p + 4, &zero, 4);
    }
  }
  return out;
}

std::vector<double> dequant(QuantType t, const uint8_t* data, int64_t n) {
  std::vector<float> f(static_cast<size_t>(n));
  type_traits(t).dequantize_row(data, f.data(), n);
  return {f.begin(), f.end()};
}

std::vector<uint8_t> quantize_q8_1(const float* x, int64_t n) {
  std::vector<uint8_t> out(quant_row_size(QuantType::kQ8_1, n));
  kernel_table(Isa::kGeneric).quantize_act[type_slot(QuantType::kQ8_1)](x, out.data(), n);
  return out;
}

// q8_1's s = fp16(d * sum q) carries the min term: the kernels compute
// sum_i (w_i - m) * a_i + m * s per sub-block. Returns that minus sum_i w_i * a_i for one row,
// with m from the scalar decoder (checked against the dequantizer below).
double min_correction(QuantType t, const uint8_t* w, const uint8_t* a, int64_t n) {
  const DecodeInfo& info = *decode_info(t);
  const auto* ab = reinterpret_cast<const BlockQ8_1*>(a);
  double corr = 0.0;
  int8_t v[256];
  float scale[16], min[16];
  for (int64_t b = 0; b < n / info.block; ++b) {
    info.decode(w + b * info.block_bytes, v, scale, min);
    for (int j = 0; j < info.block / 32; ++j) {
      const BlockQ8_1& y = ab[b * (info.block / 32) + j];
      double sum_a = 0.0;
      for (int i = 0; i < 32; ++i) sum_a += static_cast<double>(fp16_to_fp32(y.d)) * y.qs[i];
      corr += static_cast<double>(min[j]) * (fp16_to_fp32(y.s) - sum_a);
    }
  }
  return corr;
}

// The double-precision dot of a weight row with an activation row plus the min correction, and
// the sum of |terms| that scales the float tolerance.
struct ExactDot {
  double value = 0.0;
  double abs_terms = 0.0;
};

ExactDot exact_dot(QuantType t, const uint8_t* w, const std::vector<double>& wd, const uint8_t* a,
                   const std::vector<double>& xd) {
  ExactDot e;
  for (size_t i = 0; i < wd.size(); ++i) {
    e.value += wd[i] * xd[i];
    e.abs_terms += std::fabs(wd[i] * xd[i]);
  }
  e.value += min_correction(t, w, a, static_cast<int64_t>(wd.size()));
  return e;
}

TEST(GroupAffineKernels, TablesCoverEveryType) {
  for (Isa isa : supported_isas()) {
    const KernelTable& k = kernel_table(isa);
    for (const GroupAffineFormat& f : group_affine_formats()) {
      EXPECT_NE(k.vec_dot[type_slot(f.type)], nullptr) << label(f.type, isa);
      EXPECT_NE(k.decode[type_slot(f.type)], nullptr) << label(f.type, isa);
      ASSERT_NE(decode_info(f.type), nullptr) << label(f.type, isa);
      EXPECT_EQ(decode_info(f.type)->block_bytes, f.block_bytes());
    }
  }
}

// scale * v + min reproduces the dequantizer up to float rounding (exactly for AFQ below 8 bits,
// where both compute q * scale + bias).
TEST(GroupAffineKernels, DecoderMatchesDequantizer) {
  std::mt19937 rng(5);
  for (const GroupAffineFormat& f : group_affine_formats()) {
    const DecodeInfo& info = *decode_info(f.type);
    for (bool raw : {false, true}) {
      const int64_t n = 4 * f.group;
      const std::vector<uint8_t> w = make_weights(f, 1, n, rng, raw);
      const std::vector<double> ref = dequant(f.type, w.data(), n);
      int8_t v[256];
      float scale[16], min[16];
      for (int64_t b = 0; b < n / f.group; ++b) {
        info.decode(w.data() + b * info.block_bytes, v, scale, min);
        for (int i = 0; i < f.group; ++i) {
          const int s = i / 32;
          const double got = static_cast<double>(scale[s] * static_cast<float>(v[i]) + min[s]);
          const double want = ref[b * f.group + i];
          const double size = std::fabs(want) + std::fabs(min[s]) + 256 * std::fabs(scale[s]);
          const double tol = f.header == AffineHeader::kAfq && f.bits < 8 ? 0.0 : 4e-7 * size;
          ASSERT_LE(std::fabs(got - want), tol)
              << quant_type_name(f.type) << (raw ? " raw" : "") << " element " << b * f.group + i;
        }
      }
    }
  }
}

TEST(GroupAffineKernels, EveryIsaDecoderMatchesScalarDecoder) {
  std::mt19937 rng(21);
  for (const GroupAffineFormat& f : group_affine_formats()) {
    const DecodeInfo& info = *decode_info(f.type);
    const std::vector<uint8_t> w = make_weights(f, 1, 8 * f.group, rng, true);
    const int subs = f.group / 32;
    for (Isa isa : supported_isas()) {
      const DecodeBlockFn fn = kernel_table(isa).decode[type_slot(f.type)];
      for (int b = 0; b < 8; ++b) {
        int8_t v0[256], v1[256];
        float s0[16], s1[16], m0[16], m1[16];
        info.decode(w.data() + b * info.block_bytes, v0, s0, m0);
        fn(w.data() + b * info.block_bytes, v1, s1, m1);
        ASSERT_EQ(0, std::memcmp(v0, v1, static_cast<size_t>(f.group))) << label(f.type, isa);
        ASSERT_EQ(0, std::memcmp(s0, s1, sizeof(float) * subs)) << label(f.type, isa);
        ASSERT_EQ(0, std::memcmp(m0, m1, sizeof(float) * subs)) << label(f.type, isa);
      }
    }
  }
}

// |got - want| <= 1e-6 * n * sum |w_i * a_i| + the min terms' size: the float summation bound.
void expect_close(double got, double want, double abs_terms, int64_t n, const std::string& what) {
  const double tol = 1e-6 * static_cast<double>(n) * abs_terms + 1e-30;
  EXPECT_LE(std::fabs(got - want), tol) << what << ": got " << got << " want " << want;
}

TEST(GroupAffineKernels, VecDotEveryIsaAgreesWithReferenceAndExactDot) {
  std::mt19937 rng(8);
  const KernelTable& generic = kernel_table(Isa::kGeneric);
  for (const GroupAffineFormat& f : group_affine_formats()) {
    for (int64_t n : {int64_t{f.group}, 3 * int64_t{f.group}, 2048 + 2 * int64_t{f.group}}) {
      for (bool raw : {false, true}) {
        const std::vector<uint8_t> w = make_weights(f, 1, n, rng, raw);
        const std::vector<float> x = gaussian(static_cast<size_t>(n), rng);
        const std::vector<uint8_t> a = quantize_q8_1(x.data(), n);
        const std::vector<double> wd = dequant(f.type, w.data(), n);
        const std::vector<double> xd = dequant(QuantType::kQ8_1, a.data(), n);
        const ExactDot e = exact_dot(f.type, w.data(), wd, a.data(), xd);
        const double exact = e.value, abs_terms = e.abs_terms;
        const std::string what =
            quant_type_name(f.type) + " n=" + std::to_string(n) + (raw ? " raw" : "");
        const float ref = generic.vec_dot[type_slot(f.type)](n, w.data(), a.data());
        expect_close(ref, exact, abs_terms, n, what + " generic vs exact");
        for (Isa isa : supported_isas()) {
          const float got = kernel_table(isa).vec_dot[type_slot(f.type)](n, w.data(), a.data());
          expect_close(got, ref, abs_terms, n, what + " " + isa_name(isa) + " vs generic");
        }
      }
    }
  }
}

// matmul for 1 token (GEMV), 13 and 64 tokens (the panel GEMM where the ISA has one, tiles of
// vec_dot otherwise) against the dequantized weights times the dequantized activations.
TEST(GroupAffineKernels, MatmulEveryIsaMatchesDequantizedReference) {
  std::mt19937 rng(12);
  ThreadPool pool(2);
  IsaGuard guard;
  const int64_t n_in = 384, n_out = 37;  // a partial panel; 384 holds every group size
  for (const GroupAffineFormat& f : group_affine_formats()) {
    const size_t row_bytes = quant_row_size(f.type, n_in);
    const std::vector<uint8_t> w = make_weights(f, n_out, n_in, rng, (rng() & 1) != 0);
    std::vector<std::vector<double>> wd;
    for (int64_t o = 0; o < n_out; ++o) {
      wd.push_back(dequant(f.type, w.data() + o * row_bytes, n_in));
    }
    const int64_t max_tok = 64;
    const std::vector<float> x = gaussian(static_cast<size_t>(max_tok * n_in), rng);
    std::vector<std::vector<uint8_t>> xq;
    std::vector<std::vector<double>> xd;
    for (int64_t k = 0; k < max_tok; ++k) {
      xq.push_back(quantize_q8_1(x.data() + k * n_in, n_in));
      xd.push_back(dequant(QuantType::kQ8_1, xq.back().data(), n_in));
    }
    const WeightView view{f.type, n_in, n_out, w.data(), row_bytes};
    for (Isa isa : supported_isas()) {
      set_active_isa(isa);
      for (int64_t n_tok : {1, 13, 64}) {
        std::vector<float> y(static_cast<size_t>(n_tok * n_out), std::nanf(""));
        matmul(view, x.data(), n_tok, y.data(), pool);
        for (int64_t k = 0; k < n_tok; ++k) {
          for (int64_t o = 0; o < n_out; ++o) {
            const ExactDot e =
                exact_dot(f.type, w.data() + o * row_bytes, wd[o], xq[k].data(), xd[k]);
            expect_close(y[k * n_out + o], e.value, e.abs_terms, n_in,
                         label(f.type, isa) + " tokens=" + std::to_string(n_tok) + " token " +
                             std::to_string(k) + " row " + std::to_string(o));
          }
        }
      }
    }
  }
}

}  // namespace
}  // namespace insitu
