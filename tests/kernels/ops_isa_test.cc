// Every built SIMD path of the row operators and attention tiles against the generic scalar one,
// and the tiled attention kernel against the two-pass reference, on every ISA this CPU runs.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "isa_guard.h"
#include "kernels/attention.h"
#include "kernels/kernel_table.h"
#include "kernels/ops.h"
#include "quant/float_convert.h"
#include "util/cpu_features.h"
#include "util/thread_pool.h"

namespace insitu {
namespace {

std::vector<float> randn(int64_t n, uint32_t seed, float scale = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0.0f, scale);
  std::vector<float> v(n);
  for (float& x : v) x = d(rng);
  return v;
}

TEST(OpsIsa, RowOperatorsMatchGeneric) {
  const OpsKernels& g = kernel_table(Isa::kGeneric).ops;
  for (Isa isa : supported_isas()) {
    SCOPED_TRACE(isa_name(isa));
    const OpsKernels& k = kernel_table(isa).ops;
    for (int n : {1, 7, 16, 33, 64, 257, 2048}) {
      const std::vector<float> x = randn(n, 1 + n), w = randn(n, 2 + n);
      std::vector<float> y0(n), y1(n);
      g.rms_norm(x.data(), w.data(), y0.data(), n, 1e-6f);
      k.rms_norm(x.data(), w.data(), y1.data(), n, 1e-6f);
      for (int i = 0; i < n; ++i) EXPECT_NEAR(y1[i], y0[i], 1e-6f * (1 + std::fabs(y0[i])));
      std::vector<uint16_t> h0(n), h1(n);
      g.store_f16(x.data(), h0.data(), n);
      k.store_f16(x.data(), h1.data(), n);
      EXPECT_EQ(h0, h1);
      g.load_f16(h0.data(), y0.data(), n);
      k.load_f16(h0.data(), y1.data(), n);
      EXPECT_EQ(y0, y1);
      // Summation order differs: bound by the magnitude of the terms.
      double mag = 0;
      for (int i = 0; i < n; ++i) mag += std::fabs(double(x[i]) * w[i]) + double(x[i]) * x[i];
      const float tol = static_cast<float>(1e-6 * mag + 1e-6);
      EXPECT_NEAR(k.dot_f32(x.data(), w.data(), n), g.dot_f32(x.data(), w.data(), n), tol);
      EXPECT_NEAR(k.dot_f16(w.data(), h0.data(), n), g.dot_f16(w.data(), h0.data(), n), tol);
      std::vector<float> a0(w), a1(w);
      g.axpy_f16(0.25f, h0.data(), a0.data(), n);
      k.axpy_f16(0.25f, h0.data(), a1.data(), n);
      for (int i = 0; i < n; ++i) EXPECT_NEAR(a1[i], a0[i], 1e-6f);
    }
  }
}

TEST(OpsIsa, AttentionTilesMatchGeneric) {
  const OpsKernels& g = kernel_table(Isa::kGeneric).ops;
  const float inf = std::numeric_limits<float>::infinity();
  for (Isa isa : supported_isas()) {
    SCOPED_TRACE(isa_name(isa));
    const OpsKernels& k = kernel_table(isa).ops;
    for (int d : {16, 64, 128, 256}) {
      for (int rows : {1, 4, 9, 32}) {
        const int nk = 32;
        const std::vector<float> q = randn(rows * d, d + rows), kk = randn(nk * d, 7 * d);
        std::vector<float> s0(rows * nk), s1(rows * nk);
        g.attn_qk(q.data(), rows, kk.data(), nk, d, s0.data());
        k.attn_qk(q.data(), rows, kk.data(), nk, d, s1.data());
        for (int i = 0; i < rows * nk; ++i) ASSERT_NEAR(s1[i], s0[i], 1e-4f * std::sqrt(d));
        // A few masked scores, one fully masked row.
        for (int j = 0; j < nk; j += 5) s0[j] = -inf;
        for (int j = 0; j < nk; ++j) s0[(rows - 1) * nk + j] = rows > 1 ? -inf : s0[j];
        s1 = s0;
        std::vector<float> alpha0(rows), alpha1(rows);
        for (int r = 0; r < rows; ++r) {
          float m0 = 0.5f, l0 = 2.0f, m1 = 0.5f, l1 = 2.0f;
          alpha0[r] = g.attn_softmax(s0.data() + r * nk, nk, 0.125f, &m0, &l0);
          alpha1[r] = k.attn_softmax(s1.data() + r * nk, nk, 0.125f, &m1, &l1);
          EXPECT_NEAR(alpha1[r], alpha0[r], 1e-6f * alpha0[r]);
          EXPECT_EQ(m1, m0);
          EXPECT_NEAR(l1, l0, 1e-5f * l0);
        }
        for (int i = 0; i < rows * nk; ++i) ASSERT_NEAR(s1[i], s0[i], 2e-6f * (1 + s0[i]));
        const std::vector<float> v = randn(nk * d, 9 * d);
        std::vector<float> acc0 = randn(rows * d, 3), acc1 = acc0;
        g.attn_pv(s0.data(), rows, v.data(), nk, d, alpha0.data(), acc0.data());
        k.attn_pv(s0.data(), rows, v.data(), nk, d, alpha0.data(), acc1.data());
        for (int i = 0; i < rows * d; ++i) ASSERT_NEAR(acc1[i], acc0[i], 1e-4f);
      }
    }
  }
}

struct AttnCase {
  int head_dim, n_head, n_head_kv, n_tokens, pos0, window, cache_rows;
  bool f16;
};

// Fills a cache of `rows` rows with random keys/values (every row, as a ring would hold) and
// compares the tiled kernel on every ISA with the reference on the generic one.
void check_attention(const AttnCase& c, ThreadPool& pool) {
  SCOPED_TRACE(testing::Message() << "d=" << c.head_dim << " heads=" << c.n_head << "/"
                                  << c.n_head_kv << " tokens=" << c.n_tokens << " pos0=" << c.pos0
                                  << " window=" << c.window << " rows=" << c.cache_rows
                                  << " f16=" << c.f16);
  const int64_t kvw = static_cast<int64_t>(c.n_head_kv) * c.head_dim;
  const int64_t qw = static_cast<int64_t>(c.n_head) * c.head_dim;
  const uint32_t seed = c.head_dim * 131 + c.n_tokens * 7 + c.pos0;
  const std::vector<float> q = randn(c.n_tokens * qw, seed);
  const std::vector<float> k32 = randn(c.cache_rows * kvw, seed + 1);
  const std::vector<float> v32 = randn(c.cache_rows * kvw, seed + 2);
  std::vector<uint16_t> k16(k32.size()), v16(v32.size());
  for (size_t i = 0; i < k32.size(); ++i) {
    k16[i] = fp32_to_fp16(k32[i]);
    v16[i] = fp32_to_fp16(v32[i]);
  }
  AttentionArgs a;
  a.q = q.data();
  a.n_tokens = c.n_tokens;
  a.pos0 = c.pos0;
  a.n_head = c.n_head;
  a.n_head_kv = c.n_head_kv;
  a.head_dim = c.head_dim;
  a.window = c.window;
  a.scale = 1.0f / std::sqrt(static_cast<float>(c.head_dim));
  a.cache_rows = c.cache_rows;
  if (c.f16) {
    a.k16 = k16.data();
    a.v16 = v16.data();
  } else {
    a.k32 = k32.data();
    a.v32 = v32.data();
  }
  IsaGuard guard;
  std::vector<float> ref(c.n_tokens * qw), out(c.n_tokens * qw);
  set_active_isa(Isa::kGeneric);
  a.out = ref.data();
  attention_reference(a, pool);
  for (Isa isa : supported_isas()) {
    SCOPED_TRACE(isa_name(isa));
    set_active_isa(isa);
    std::fill(out.begin(), out.end(), std::nanf(""));
    a.out = out.data();
    attention(a, pool);
    // The reference rounds probabilities to f16 (relative 2^-11); outputs are averages of
    // unit-variance values.
    double max_err = 0;
    for (size_t i = 0; i < out.size(); ++i) max_err = std::max(max_err, std::fabs(double(out[i]) - ref[i]));
    EXPECT_LT(max_err, c.f16 ? 2e-3 : 1e-4);
  }
}

TEST(Attention, TiledMatchesReference) {
  ThreadPool pool(3);
  for (int d : {64, 128, 256}) {
    for (int group : {1, 4, 8}) {
      const int n_kv = 2;
      for (int n_tokens : {1, 37, 512}) {
        for (int pos0 : {0, 5, 1500}) {
          if (n_tokens == 512 && (pos0 == 1500 || (d == 256 && group != 4))) continue;  // time
          const int n_pos = pos0 + n_tokens;
          check_attention({d, n_kv * group, n_kv, n_tokens, pos0, 0, n_pos, true}, pool);
        }
      }
    }
  }
}

TEST(Attention, DecodeAtDepthSplitsKeys) {
  ThreadPool pool(4);
  // One KV head: the keys of a single-token decode are split across threads and merged.
  for (int depth : {100, 1000, 3000}) {
    check_attention({64, 4, 1, 1, depth, 0, depth + 1, true}, pool);
    check_attention({128, 8, 1, 1, depth, 0, depth + 1, false}, pool);
    check_attention({80, 8, 2, 3, depth, 0, depth + 3, true}, pool);  // head_dim not a multiple of 16
  }
}

TEST(Attention, SlidingWindowRing) {
  ThreadPool pool(2);
  // Ring caches of window + batch rows, positions past the ring's size (rows wrap).
  const int window = 64;
  for (int n_tokens : {1, 37, 128}) {
    for (int pos0 : {0, 50, 300, 1234}) {
      check_attention({64, 8, 2, n_tokens, pos0, window, window + 128, true}, pool);
      check_attention({256, 4, 1, n_tokens, pos0, window, window + 128, true}, pool);
    }
  }
  // Gemma 3 270M's shape: re-evaluating 16 tokens at 1520 over a 512-window ring of 1024 rows.
  check_attention({256, 4, 1, 16, 1520, 512, 1024, true}, pool);
  check_attention({256, 4, 1, 512, 1024, 512, 1024, true}, pool);
  // A window wider than the context so far.
  check_attention({64, 4, 4, 20, 3, 512, 512 + 128, false}, pool);
}

}  // namespace
}  // namespace insitu
