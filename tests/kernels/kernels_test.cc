// Kernel tests: dispatch, activation quantizers, every ISA's dot products against the scalar
// reference, and matmul against a double-precision oracle built from the type table's own
// dequantizers (quant/, written independently of the kernels' block decoders).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "insitu/error.h"
#include "kernels/cpu_features.h"
#include "kernels/generic/decode.h"
#include "kernels/isa_guard.h"
#include "kernels/kernel_table.h"
#include "kernels/matmul.h"
#include "quant/blocks.h"
#include "quant/float_convert.h"
#include "quant/type_traits.h"

namespace insitu {
namespace {

using Q = QuantType;

// Weight types with a kernel of their own (not the dequantize-per-row fallback).
const Q kKernelTypes[] = {Q::kF32,   Q::kF16,    Q::kBF16,   Q::kQ4_0,   Q::kQ4_1,   Q::kQ5_0,
                          Q::kQ5_1,  Q::kQ8_0,   Q::kIQ4_NL, Q::kMXFP4,  Q::kQ2K,    Q::kQ3K,
                          Q::kQ4K,   Q::kQ5K,    Q::kQ6K,    Q::kIQ4_XS, Q::kTQ2_0,  Q::kTQ1_0,
                          Q::kIQ1_S, Q::kIQ1_M,  Q::kIQ2_XXS, Q::kIQ2_XS, Q::kIQ2_S, Q::kIQ3_XXS,
                          Q::kIQ3_S, Q::kF8Q8};

std::vector<float> random_floats(size_t n, std::mt19937& rng, float scale = 1.0f) {
  std::normal_distribution<float> dist(0.0f, scale);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

// Offsets of the fp16 scale fields inside one block, so random bytes can be made finite.
std::vector<size_t> fp16_fields(Q t) {
  switch (t) {
    case Q::kQ4_0: case Q::kQ5_0: case Q::kQ8_0: case Q::kIQ4_NL: case Q::kIQ4_XS: return {0};
    case Q::kQ4_1: case Q::kQ5_1: case Q::kQ4K: case Q::kQ5K: return {0, 2};
    case Q::kQ2K: return {80, 82};
    case Q::kQ3K: return {108};
    case Q::kQ6K: return {208};
    case Q::kTQ2_0: return {64};
    case Q::kTQ1_0: return {52};
    case Q::kIQ2_XXS: case Q::kIQ2_XS: case Q::kIQ2_S: case Q::kIQ3_XXS: case Q::kIQ3_S:
    case Q::kIQ1_S: return {0};
    default: return {};
  }
}

// n_rows rows of n elements of type t. Float and grid types (and half of the others) come from the
// type's quantizer on Gaussian data; the rest are random bytes with sane scales, which reach
// every bit pattern the decoders must handle.
std::vector<uint8_t> make_weights(Q t, int64_t n_rows, int64_t n, std::mt19937& rng, bool raw) {
  const TypeTraits& tt = type_traits(t);
  const size_t row_bytes = quant_row_size(t, n);
  std::vector<uint8_t> out(row_bytes * n_rows);
  const bool can_raw = decode_info(t) != nullptr;
  if (raw && can_raw) {
    for (uint8_t& b : out) b = static_cast<uint8_t>(rng());
    std::uniform_real_distribution<float> scale(0.001f, 0.02f);
    for (size_t blk = 0; blk < out.size() / tt.type_size; ++blk) {
      uint8_t* p = out.data() + blk * tt.type_size;
      for (size_t off : fp16_fields(t)) {
        const uint16_t h = fp32_to_fp16(scale(rng) * (rng() & 1 ? 1.0f : -1.0f));
        std::memcpy(p + off, &h, 2);
      }
      if (t == Q::kMXFP4) p[0] = static_cast<uint8_t>(118 + rng() % 12);
      if (t == Q::kF8Q8) p[0] = static_cast<uint8_t>((rng() & 0x80) | (0x08 + rng() % 40));  // finite
      if (t == Q::kIQ1_M) {  // the fp16 d lives in the top nibbles of the four u16 scales
        const uint16_t h = fp32_to_fp16(scale(rng) * (rng() & 1 ? 1.0f : -1.0f));
        for (int k = 0; k < 4; ++k) {
          uint16_t sc;
          std::memcpy(&sc, p + 48 + 2 * k, 2);
          sc = static_cast<uint16_t>((sc & 0x0FFF) | (((h >> (4 * k)) & 0xF) << 12));
          std::memcpy(p + 48 + 2 * k, &sc, 2);
        }
      }
    }
    return out;
  }
  const std::vector<float> src = random_floats(static_cast<size_t>(n_rows * n), rng);
  std::vector<float> imatrix(static_cast<size_t>(n), 1.0f);
  if (tt.quantize == nullptr) throw std::runtime_error("no quantizer for " + std::string(tt.name));
  tt.quantize(src.data(), out.data(), n_rows, n, tt.requires_imatrix ? imatrix.data() : nullptr);
  return out;
}

std::vector<double> dequant(Q t, const void* data, int64_t n) {
  std::vector<float> f(static_cast<size_t>(n));
  type_traits(t).dequantize_row(data, f.data(), n);
  return std::vector<double>(f.begin(), f.end());
}

// The activation row as the kernels see it: the paired format, dequantized.
std::vector<uint8_t> quantize_act(Q act, const float* x, int64_t n) {
  std::vector<uint8_t> out(quant_row_size(act, n));
  kernel_table(Isa::kGeneric).quantize_act[type_slot(act)](x, out.data(), n);
  return out;
}

// ggml pairs q4_1/q5_1 with q8_1, whose s = fp16(d * sum(q)) carries the min term: the kernels
// compute sum_i (w_i - m) * a_i + m * s per block, so the oracle does too. Returns that minus the
// plain sum_i w_i * a_i for one row.
double q8_1_min_correction(Q t, const uint8_t* w, const uint8_t* a, int64_t n) {
  if (type_traits(t).vec_dot_type != Q::kQ8_1) return 0.0;
  const size_t wb = quant_type_size(t);
  const auto* ab = reinterpret_cast<const BlockQ8_1*>(a);
  double corr = 0.0;
  for (int64_t b = 0; b < n / 32; ++b) {
    uint16_t m;
    std::memcpy(&m, w + b * wb + 2, 2);  // q4_1 and q5_1: d, then m
    double sum_a = 0.0;
    for (int i = 0; i < 32; ++i) sum_a += static_cast<double>(fp16_to_fp32(ab[b].d)) * ab[b].qs[i];
    corr += static_cast<double>(fp16_to_fp32(m)) * (fp16_to_fp32(ab[b].s) - sum_a);
  }
  return corr;
}

std::string label(Q t, Isa isa) { return quant_type_name(t) + "/" + isa_name(isa); }

TEST(CpuFeatures, GenericAlwaysSupportedAndDefaultIsSupported) {
  const std::vector<Isa> isas = supported_isas();
  ASSERT_FALSE(isas.empty());
  EXPECT_EQ(isas.front(), Isa::kGeneric);
  EXPECT_TRUE(isa_supported(default_isa()));
  EXPECT_FALSE(cpu_features().summary().empty());
}

TEST(CpuFeatures, ParseIsaNamesValidChoices) {
  EXPECT_EQ(parse_isa("GENERIC"), Isa::kGeneric);
  try {
    parse_isa("sse9");
    FAIL() << "expected InvalidArgument";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("generic avx2 avx512"), std::string::npos) << e.what();
  }
  for (Isa isa : {Isa::kAvx2, Isa::kAvx512}) {
    if (isa_supported(isa)) {
      EXPECT_EQ(parse_isa(isa_name(isa)), isa);
    } else {
      EXPECT_THROW(parse_isa(isa_name(isa)), InvalidArgument);
    }
  }
}

TEST(Dispatch, TablesCoverEveryKernelType) {
  for (Isa isa : supported_isas()) {
    const KernelTable& k = kernel_table(isa);
    EXPECT_EQ(k.isa, isa);
    for (Q t : kKernelTypes) EXPECT_NE(k.vec_dot[type_slot(t)], nullptr) << label(t, isa);
    for (Q a : {Q::kQ8_0, Q::kQ8_1, Q::kQ8K}) EXPECT_NE(k.quantize_act[type_slot(a)], nullptr);
  }
}

// Blocks whose scaled values land exactly on .5 exercise the rounding rule (roundf for q8_0/q8_1,
// round-half-even for q8_K).
std::vector<float> activation_cases(int64_t n, std::mt19937& rng) {
  std::vector<float> x = random_floats(static_cast<size_t>(n), rng, 3.0f);
  for (int64_t i = 0; i < 32 && i < n; ++i) x[i] = 0.0f;  // an all-zero block
  if (n >= 64) {
    for (int64_t i = 32; i < 64; ++i) x[i] = static_cast<float>(i - 48) + 0.5f;
    x[33] = 127.0f;  // amax 127 -> d = 1, so the halves stay halves
  }
  if (n >= 512) {
    for (int64_t i = 256; i < 512; ++i) x[i] = (i % 2 ? -1.0f : 1.0f) * static_cast<float>(i % 7);
    x[300] = -6.0f;  // largest magnitude appears with both signs; the first one decides
  }
  return x;
}

// llama.cpp's x86 activation quantizer for q8_0 / q8_1 (ggml-cpu/arch/x86/quants.c, as vendored
// in llama-cpp-python 0.3.36), written out from its formula as the oracle: d = amax / 127,
// q = round-half-even(x * (127 / amax)), s = fp16(d * sum q). The kernels quantize activations
// this way so that their products match llama.cpp's on this architecture.
std::vector<uint8_t> llama_cpp_x86_q8(Q act, const std::vector<float>& x) {
  const int64_t nb = static_cast<int64_t>(x.size()) / 32;
  const size_t block = act == Q::kQ8_0 ? sizeof(BlockQ8_0) : sizeof(BlockQ8_1);
  std::vector<uint8_t> out(static_cast<size_t>(nb) * block);
  for (int64_t b = 0; b < nb; ++b) {
    const float* xb = x.data() + 32 * b;
    float amax = 0.0f;
    for (int j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(xb[j]));
    const float d = amax / 127.0f;
    const float id = amax != 0.0f ? 127.0f / amax : 0.0f;
    int8_t q[32];
    int sum = 0;
    for (int j = 0; j < 32; ++j) {
      q[j] = static_cast<int8_t>(std::nearbyint(xb[j] * id));  // default mode: half to even
      sum += q[j];
    }
    uint8_t* dst = out.data() + b * block;
    const uint16_t dh = fp32_to_fp16(d);
    std::memcpy(dst, &dh, 2);
    if (act == Q::kQ8_1) {
      const uint16_t sh = fp32_to_fp16(d * static_cast<float>(sum));
      std::memcpy(dst + 2, &sh, 2);
      std::memcpy(dst + 4, q, 32);
    } else {
      std::memcpy(dst + 2, q, 32);
    }
  }
  return out;
}

TEST(ActivationQuant, EveryIsaMatchesTheReferenceBitForBit) {
  std::mt19937 rng(7);
  const int64_t n = 1024;
  const std::vector<float> x = activation_cases(n, rng);
  for (Q act : {Q::kQ8_0, Q::kQ8_1, Q::kQ8K}) {
    const size_t bytes = quant_row_size(act, n);
    std::vector<uint8_t> ref(bytes);
    const TypeTraits& tt = type_traits(act);
    ASSERT_NE(tt.quantize_row_ref, nullptr) << tt.name;
    if (act == Q::kQ8K) {
      tt.quantize_row_ref(x.data(), ref.data(), n);  // llama.cpp's x86 q8_K is ggml's reference
    } else {
      ref = llama_cpp_x86_q8(act, x);
    }
    for (Isa isa : supported_isas()) {
      std::vector<uint8_t> got(bytes, 0xAA);
      kernel_table(isa).quantize_act[type_slot(act)](x.data(), got.data(), n);
      if (act == Q::kQ8K) {
        // ggml leaves bsums of an all-zero block unwritten; compare d and qs there.
        for (int64_t b = 0; b < n / kQK_K; ++b) {
          const auto* r = reinterpret_cast<const BlockQ8K*>(ref.data()) + b;
          const auto* g = reinterpret_cast<const BlockQ8K*>(got.data()) + b;
          EXPECT_EQ(r->d, g->d) << isa_name(isa) << " block " << b;
          EXPECT_EQ(0, std::memcmp(r->qs, g->qs, sizeof(r->qs))) << isa_name(isa) << " block " << b;
          if (r->d != 0.0f) {
            EXPECT_EQ(0, std::memcmp(r->bsums, g->bsums, sizeof(r->bsums))) << isa_name(isa);
          }
        }
      } else {
        EXPECT_EQ(ref, got) << quant_type_name(act) << "/" << isa_name(isa);
      }
    }
  }
}

// Decoding a block into int8 values with sub-block scale/min reproduces the type table's
// dequantizer exactly.
TEST(Decode, MatchesTypeTableDequantizerExactly) {
  std::mt19937 rng(11);
  for (Q t : kKernelTypes) {
    const DecodeInfo* info = decode_info(t);
    if (info == nullptr) continue;
    for (bool raw : {false, true}) {
      const int64_t n = 4 * info->block;
      const std::vector<uint8_t> w = make_weights(t, 1, n, rng, raw);
      const std::vector<double> ref = dequant(t, w.data(), n);
      int8_t v[256];
      float scale[16], min[16];
      for (int64_t b = 0; b < n / info->block; ++b) {
        info->decode(w.data() + b * info->block_bytes, v, scale, min);
        for (int i = 0; i < info->block; ++i) {
          const float got = scale[i / info->sub] * static_cast<float>(v[i]) + min[i / info->sub];
          ASSERT_EQ(got, static_cast<float>(ref[b * info->block + i]))
              << quant_type_name(t) << (raw ? " raw" : " quantized") << " element " << b * info->block + i;
        }
      }
    }
  }
}

// The SIMD block decoders used for GEMM panels return exactly the scalar decoders' output.
TEST(Decode, EveryIsaDecoderMatchesScalarDecoder) {
  std::mt19937 rng(19);
  for (Q t : kKernelTypes) {
    const DecodeInfo* info = decode_info(t);
    if (info == nullptr) continue;
    const std::vector<uint8_t> w = make_weights(t, 1, 8 * info->block, rng, true);
    for (Isa isa : supported_isas()) {
      const DecodeBlockFn fn = kernel_table(isa).decode[type_slot(t)];
      ASSERT_NE(fn, nullptr) << label(t, isa);
      for (int b = 0; b < 8; ++b) {
        int8_t v0[256], v1[256];
        float s0[16], s1[16], m0[16], m1[16];
        info->decode(w.data() + b * info->block_bytes, v0, s0, m0);
        fn(w.data() + b * info->block_bytes, v1, s1, m1);
        const int subs = info->block / info->sub;
        EXPECT_EQ(0, std::memcmp(v0, v1, static_cast<size_t>(info->block))) << label(t, isa);
        EXPECT_EQ(0, std::memcmp(s0, s1, sizeof(float) * subs)) << label(t, isa);
        EXPECT_EQ(0, std::memcmp(m0, m1, sizeof(float) * subs)) << label(t, isa);
      }
    }
  }
}

// |got - want| <= 1e-6 * n * sum |w_i * a_i|: the float summation bound, relative to the size of
// the terms (a relative bound on the result itself cannot hold when terms cancel).
void expect_close(double got, double want, double abs_terms, int64_t n, const std::string& what) {
  const double tol = 1e-6 * static_cast<double>(n) * abs_terms + 1e-30;
  EXPECT_LE(std::fabs(got - want), tol) << what << ": got " << got << " want " << want;
}

struct DotCase {
  std::vector<uint8_t> w;
  std::vector<uint8_t> a;  // paired activation (f32 bytes for float weights)
  double exact = 0.0;      // double-precision dot of the dequantized operands
  double abs_terms = 0.0;
};

DotCase make_dot_case(Q t, int64_t n, std::mt19937& rng, bool raw) {
  const TypeTraits& tt = type_traits(t);
  DotCase c;
  c.w = make_weights(t, 1, n, rng, raw);
  const std::vector<float> x = random_floats(static_cast<size_t>(n), rng);
  std::vector<double> xa;
  if (tt.is_quantized) {
    c.a = quantize_act(tt.vec_dot_type, x.data(), n);
    xa = dequant(tt.vec_dot_type, c.a.data(), n);
  } else {
    c.a.resize(static_cast<size_t>(n) * 4);
    std::memcpy(c.a.data(), x.data(), c.a.size());
    xa.assign(x.begin(), x.end());
  }
  const std::vector<double> wd = dequant(t, c.w.data(), n);
  for (int64_t i = 0; i < n; ++i) {
    c.exact += wd[i] * xa[i];
    c.abs_terms += std::fabs(wd[i] * xa[i]);
  }
  c.exact += q8_1_min_correction(t, c.w.data(), c.a.data(), n);
  return c;
}

TEST(VecDot, EveryIsaAgreesWithScalarReferenceAndExactDot) {
  std::mt19937 rng(3);
  const KernelTable& generic = kernel_table(Isa::kGeneric);
  for (Q t : kKernelTypes) {
    const int64_t blk = quant_block_size(t) == 1 ? 1 : quant_block_size(t);
    const std::vector<int64_t> lengths = blk == 1 ? std::vector<int64_t>{1, 7, 8, 31, 33, 100, 1000}
                                                  : std::vector<int64_t>{blk, 3 * blk, 7 * blk, 18 * blk};
    for (int64_t n : lengths) {
      for (bool raw : {false, true}) {
        const DotCase c = make_dot_case(t, n, rng, raw);
        const float ref = generic.vec_dot[type_slot(t)](n, c.w.data(), c.a.data());
        expect_close(ref, c.exact, c.abs_terms, n, label(t, Isa::kGeneric) + " n=" + std::to_string(n));
        for (Isa isa : supported_isas()) {
          const float got = kernel_table(isa).vec_dot[type_slot(t)](n, c.w.data(), c.a.data());
          expect_close(got, ref, c.abs_terms, n, label(t, isa) + " vs generic n=" + std::to_string(n));
        }
      }
    }
  }
}

// matmul against sum_i deq(W)[o][i] * deq(q(x))[t][i] in double, for every ISA, over shapes that
// exercise partial panels (n_out not a multiple of 16) and every token-tile remainder.
void check_matmul(Q t, int64_t n_in, int64_t n_out, const std::vector<int64_t>& token_counts,
                  ThreadPool& pool, std::mt19937& rng) {
  const TypeTraits& tt = type_traits(t);
  const size_t row_bytes = quant_row_size(t, n_in);
  const std::vector<uint8_t> w = make_weights(t, n_out, n_in, rng, (rng() & 1) != 0);
  std::vector<std::vector<double>> wd(static_cast<size_t>(n_out));
  for (int64_t o = 0; o < n_out; ++o) wd[o] = dequant(t, w.data() + o * row_bytes, n_in);
  WeightView view{t, n_in, n_out, w.data(), row_bytes};
  const int64_t max_tokens = token_counts.back();
  const std::vector<float> x = random_floats(static_cast<size_t>(max_tokens * n_in), rng);
  std::vector<std::vector<double>> xd(static_cast<size_t>(max_tokens));
  std::vector<std::vector<uint8_t>> xq(static_cast<size_t>(max_tokens));
  for (int64_t k = 0; k < max_tokens; ++k) {
    const float* xk = x.data() + k * n_in;
    if (tt.is_quantized) {
      xq[k] = quantize_act(tt.vec_dot_type, xk, n_in);
      xd[k] = dequant(tt.vec_dot_type, xq[k].data(), n_in);
    } else {
      xd[k].assign(xk, xk + n_in);
    }
  }
  IsaGuard guard;
  for (Isa isa : supported_isas()) {
    set_active_isa(isa);
    for (int64_t n_tok : token_counts) {
      std::vector<float> y(static_cast<size_t>(n_tok * n_out), std::nanf(""));
      matmul(view, x.data(), n_tok, y.data(), pool);
      for (int64_t k = 0; k < n_tok; ++k) {
        for (int64_t o = 0; o < n_out; ++o) {
          double exact = 0.0, abs_terms = 0.0;
          for (int64_t i = 0; i < n_in; ++i) {
            exact += wd[o][i] * xd[k][i];
            abs_terms += std::fabs(wd[o][i] * xd[k][i]);
          }
          if (tt.is_quantized) exact += q8_1_min_correction(t, w.data() + o * row_bytes, xq[k].data(), n_in);
          const double got = y[k * n_out + o];
          const double tol = 2e-6 * static_cast<double>(n_in) * abs_terms + 1e-30;
          ASSERT_LE(std::fabs(got - exact), tol)
              << label(t, isa) << " n_in=" << n_in << " n_out=" << n_out << " n_tok=" << n_tok
              << " t=" << k << " o=" << o << ": got " << got << " want " << exact;
        }
      }
    }
  }
}

TEST(Matmul, MatchesDoubleReferenceForEveryTypeAndIsa) {
  std::mt19937 rng(5);
  ThreadPool pool(2);
  for (Q t : kKernelTypes) {
    const int64_t blk = quant_block_size(t);
    const int64_t n_in = blk == 1 ? 96 : (blk == 32 ? 128 : 512);
    check_matmul(t, n_in, 37, {1, 2, 3, 5, 8, 9, 13}, pool, rng);
  }
}

TEST(Matmul, OddShapesAllTokenCountsPriorityTypes) {
  std::mt19937 rng(9);
  ThreadPool pool(2);
  std::vector<int64_t> tokens;
  for (int64_t k = 1; k <= 37; ++k) tokens.push_back(k);
  for (Q t : {Q::kQ4_1, Q::kQ8_0, Q::kQ4K, Q::kQ6K, Q::kQ5_0, Q::kQ5K, Q::kQ4_0, Q::kF32, Q::kF16,
              Q::kBF16}) {
    const int64_t n_in = quant_block_size(t) == kQK_K ? 256 : 64;
    for (int64_t n_out : {1, 15, 17}) check_matmul(t, n_in, n_out, tokens, pool, rng);
  }
}

// Rows longer than the GEMM's input chunk (1024 elements), with a partial last chunk, and more
// panels than one blocking group (8 x 16 rows).
TEST(Matmul, LongRowsAndManyPanels) {
  std::mt19937 rng(17);
  ThreadPool pool(2);
  for (Q t : {Q::kQ4_1, Q::kQ4K, Q::kQ6K, Q::kQ8_0}) {
    check_matmul(t, 2304, 150, {1, 9, 12}, pool, rng);
  }
}

// Every quantized kernel type has a block decoder, so prompt-sized matmuls of every one run as
// panel GEMMs rather than per-row dot products.
TEST(Decode, EveryQuantizedKernelTypeHasADecoder) {
  for (Q t : kKernelTypes) {
    if (!type_traits(t).is_quantized) continue;
    const DecodeInfo* info = decode_info(t);
    ASSERT_NE(info, nullptr) << quant_type_name(t);
    EXPECT_EQ(info->act, type_traits(t).vec_dot_type) << quant_type_name(t);
    EXPECT_EQ(info->block_bytes, quant_type_size(t)) << quant_type_name(t);
  }
}

// The grid i-quants and tq1_0 (16- and 32-element sub-blocks, values from lattice tables) through
// the panel GEMM over a partial input chunk, several panels and token tiles.
TEST(Matmul, GridTypesThroughPanels) {
  std::mt19937 rng(23);
  ThreadPool pool(2);
  for (Q t : {Q::kIQ1_S, Q::kIQ1_M, Q::kIQ2_XXS, Q::kIQ2_XS, Q::kIQ2_S, Q::kIQ3_XXS, Q::kIQ3_S,
              Q::kTQ1_0}) {
    check_matmul(t, 1280, 40, {8, 17}, pool, rng);
  }
}

TEST(Matmul, ResultsDoNotDependOnThreadCount) {
  std::mt19937 rng(13);
  for (Q t : {Q::kQ4_0, Q::kQ4_1, Q::kQ4K, Q::kQ6K, Q::kF16}) {
    const int64_t n_in = 1280, n_out = 300;
    const size_t row_bytes = quant_row_size(t, n_in);
    const std::vector<uint8_t> w = make_weights(t, n_out, n_in, rng, false);
    WeightView view{t, n_in, n_out, w.data(), row_bytes};
    for (int64_t n_tok : {1, 3, 11}) {
      const std::vector<float> x = random_floats(static_cast<size_t>(n_tok * n_in), rng);
      std::vector<float> first;
      for (int threads : {1, 2, 3, 5}) {
        ThreadPool pool(threads);
        std::vector<float> y(static_cast<size_t>(n_tok * n_out));
        matmul(view, x.data(), n_tok, y.data(), pool);
        if (first.empty()) {
          first = y;
        } else {
          EXPECT_EQ(0, std::memcmp(first.data(), y.data(), y.size() * sizeof(float)))
              << quant_type_name(t) << " threads=" << threads << " n_tok=" << n_tok;
        }
      }
    }
  }
}

TEST(Matmul, RejectsBadShapes) {
  std::vector<uint8_t> w(quant_row_size(Q::kQ4_0, 64) * 2);
  ThreadPool pool(1);
  std::vector<float> x(64), y(2);
  WeightView bad{Q::kQ4_0, 48, 2, w.data(), quant_row_size(Q::kQ4_0, 64)};  // 48 % 32 != 0
  EXPECT_THROW(matmul(bad, x.data(), 1, y.data(), pool), InvalidArgument);
  WeightView short_rows{Q::kQ4_0, 64, 2, w.data(), 10};
  EXPECT_THROW(matmul(short_rows, x.data(), 1, y.data(), pool), InvalidArgument);
}

}  // namespace
}  // namespace insitu
