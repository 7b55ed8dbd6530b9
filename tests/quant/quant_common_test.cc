// The lane-parallel candidate searches (quant_search.cc) against their scalar transcriptions of
// ggml (scalar_ref::), bit for bit, over random groups of every shape the families use, plus
// edge cases: all-zero, constant, one-signed, tiny and huge magnitudes. Also nearest_int's
// round-half-to-even.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "quant/quant_common.h"

namespace insitu {
namespace {

bool same_bits(float a, float b) { return std::memcmp(&a, &b, sizeof(float)) == 0; }

// Groups of n values drawn from several shapes; `kind` picks the shape.
std::vector<float> group(std::mt19937& rng, int n, int kind) {
  std::normal_distribution<float> gauss(0.f, 1.f);
  std::uniform_real_distribution<float> uni(0.f, 1.f);
  std::vector<float> x(n);
  for (float& v : x) {
    switch (kind % 7) {
      case 0: v = 0.02f * gauss(rng); break;
      case 1: v = gauss(rng) * (uni(rng) < 0.05f ? 30.f : 1.f); break;
      case 2: v = uni(rng) + 0.1f; break;                   // all positive
      case 3: v = -uni(rng) - 0.1f; break;                  // all negative
      case 4: v = 1e-9f * gauss(rng); break;                // tiny
      case 5: v = 300.f * gauss(rng); break;                // huge
      default: v = std::round(gauss(rng) * 3.f) * 0.25f; break;  // many ties
    }
  }
  if (kind == 7) std::fill(x.begin(), x.end(), 0.f);
  if (kind == 8) std::fill(x.begin(), x.end(), 0.5f);
  return x;
}

std::vector<float> positive_weights(std::mt19937& rng, int n) {
  std::uniform_real_distribution<float> uni(0.01f, 3.f);
  std::vector<float> w(n);
  for (float& v : w) v = uni(rng);
  return w;
}

TEST(QuantCommon, NearestIntRoundsHalfToEven) {
  EXPECT_EQ(nearest_int(0.5f), 0);
  EXPECT_EQ(nearest_int(1.5f), 2);
  EXPECT_EQ(nearest_int(2.5f), 2);
  EXPECT_EQ(nearest_int(-0.5f), 0);
  EXPECT_EQ(nearest_int(-1.5f), -2);
  EXPECT_EQ(nearest_int(-2.49f), -2);
  EXPECT_EQ(nearest_int(4194303.f), 4194303);
  EXPECT_EQ(nearest_int(-4194303.f), -4194303);
}

// ggml compares with a strict <, so an exact tie picks the upper entry (as the golden iq4 bytes
// confirm).
TEST(QuantCommon, BestIndexTiesGoToTheUpperEntry) {
  const int8_t values[] = {-10, -2, 0, 4, 9};
  EXPECT_EQ(best_index_int8(5, values, -100.f), 0);
  EXPECT_EQ(best_index_int8(5, values, 100.f), 4);
  EXPECT_EQ(best_index_int8(5, values, 2.f), 3);  // tie between 0 and 4
  EXPECT_EQ(best_index_int8(5, values, 2.1f), 3);
  EXPECT_EQ(best_index_int8(5, values, -6.f), 1);  // tie between -10 and -2
  EXPECT_EQ(best_index_int8(5, values, 1.9f), 2);
}

TEST(QuantCommon, QxQuantsLanesMatchScalar) {
  std::mt19937 rng(1);
  const int shapes[][2] = {{16, 4}, {16, 32}, {32, 8}, {32, 16}, {16, 8}, {64, 8}, {8, 32}};
  for (const auto& s : shapes) {
    for (int kind = 0; kind < 9; ++kind) {
      for (int rep = 0; rep < 40; ++rep) {
        const auto x = group(rng, s[0], kind);
        const auto w = positive_weights(rng, s[0]);
        for (int rmse_type : {1, 2, 3, 4}) {
          for (const float* qw : {static_cast<const float*>(nullptr), w.data()}) {
            std::vector<int8_t> a(s[0]), b(s[0]);
            const float fa = make_qx_quants(s[0], s[1], x.data(), a.data(), rmse_type, qw);
            const float fb = scalar_ref::make_qx_quants(s[0], s[1], x.data(), b.data(), rmse_type, qw);
            ASSERT_TRUE(same_bits(fa, fb)) << "n " << s[0] << " nmax " << s[1] << " kind " << kind;
            ASSERT_EQ(a, b) << "n " << s[0] << " nmax " << s[1] << " kind " << kind;
          }
        }
      }
    }
  }
}

struct QkxParams {
  int n, nmax;
  float rmin, rdelta;
  int nstep;
  bool use_mad;
};

TEST(QuantCommon, QkxQuantsLanesMatchScalar) {
  std::mt19937 rng(2);
  // The parameter sets ggml's families use, plus odd ones.
  const QkxParams params[] = {
      {16, 3, -0.5f, 0.1f, 15, true},   {32, 15, -1.f, 0.1f, 20, false},
      {32, 31, -0.5f, 0.1f, 15, false}, {16, 3, -0.9f, 0.05f, 36, false},
      {32, 15, -0.9f, 0.05f, 36, false}, {32, 31, -0.9f, 0.05f, 36, false},
      {24, 7, -0.3f, 0.2f, 3, true},    {48, 15, -1.f, 0.1f, 0, false},
  };
  for (const QkxParams& p : params) {
    for (int kind = 0; kind < 9; ++kind) {
      for (int rep = 0; rep < 40; ++rep) {
        const auto x = group(rng, p.n, kind);
        const auto w = positive_weights(rng, p.n);
        for (int variant = 0; variant < 3; ++variant) {
          std::vector<uint8_t> a(p.n), b(p.n), aux(p.n);
          float ma = 0, mb = 0;
          float fa, fb;
          if (variant == 0) {
            fa = make_qkx2_quants(p.n, p.nmax, x.data(), w.data(), a.data(), &ma, aux.data(),
                                  p.rmin, p.rdelta, p.nstep, p.use_mad);
            fb = scalar_ref::make_qkx2_quants(p.n, p.nmax, x.data(), w.data(), b.data(), &mb,
                                              aux.data(), p.rmin, p.rdelta, p.nstep, p.use_mad);
          } else {
            const float* wp = variant == 1 ? w.data() : nullptr;
            fa = make_qkx3_quants(p.n, p.nmax, x.data(), wp, a.data(), &ma, aux.data(), p.rmin,
                                  p.rdelta, p.nstep, p.use_mad);
            fb = scalar_ref::make_qkx3_quants(p.n, p.nmax, x.data(), wp, b.data(), &mb,
                                              aux.data(), p.rmin, p.rdelta, p.nstep, p.use_mad);
          }
          ASSERT_TRUE(same_bits(fa, fb) && same_bits(ma, mb))
              << "variant " << variant << " n " << p.n << " nmax " << p.nmax << " kind " << kind;
          ASSERT_EQ(a, b) << "variant " << variant << " n " << p.n << " kind " << kind;
        }
      }
    }
  }
}

TEST(QuantCommon, QxQuantsGroupsMatchScalar) {
  std::mt19937 rng(5);
  const int shapes[][2] = {{16, 32}, {16, 4}, {32, 8}, {32, 16}};
  for (const auto& shape : shapes) {
    const int n = shape[0];
    const int nmax = shape[1];
    for (int ngroups : {1, 3, 8, 16, 17}) {
      for (int kind = 0; kind < 9; ++kind) {
        for (int rep = 0; rep < 15; ++rep) {
          std::vector<float> x;
          for (int g = 0; g < ngroups; ++g) {
            const auto part = group(rng, n, (kind + 2 * g) % 9);
            x.insert(x.end(), part.begin(), part.end());
          }
          const auto w = positive_weights(rng, n * ngroups);
          for (const float* qw : {static_cast<const float*>(nullptr), w.data()}) {
            std::vector<int8_t> a(x.size()), b(x.size());
            std::vector<float> sa(ngroups);
            make_qx_quants_rmse1_groups(ngroups, n, nmax, x.data(), a.data(), qw, sa.data());
            for (int g = 0; g < ngroups; ++g) {
              const float sb = scalar_ref::make_qx_quants(n, nmax, x.data() + n * g,
                                                          b.data() + n * g, 1,
                                                          qw ? qw + n * g : nullptr);
              ASSERT_TRUE(same_bits(sa[g], sb)) << "n " << n << " group " << g << " kind " << kind;
            }
            ASSERT_EQ(a, b) << "n " << n << " ngroups " << ngroups << " kind " << kind;
          }
        }
      }
    }
  }
}

TEST(QuantCommon, QkxQuantsGroupsMatchScalar) {
  std::mt19937 rng(6);
  const QkxParams params[] = {
      {16, 3, -0.5f, 0.1f, 15, true},    {32, 15, -1.f, 0.1f, 20, false},
      {32, 31, -0.5f, 0.1f, 15, false},  {16, 3, -0.9f, 0.05f, 36, false},
      {32, 15, -0.9f, 0.05f, 36, false}, {32, 31, -0.9f, 0.05f, 36, false},
      {24, 7, -0.3f, 0.2f, 0, true},
  };
  for (const QkxParams& p : params) {
    for (int ngroups : {1, 5, 8, 16, 11}) {
      for (int kind = 0; kind < 9; ++kind) {
        for (int rep = 0; rep < 10; ++rep) {
          std::vector<float> x;
          for (int g = 0; g < ngroups; ++g) {
            const auto part = group(rng, p.n, (kind + 3 * g) % 9);
            x.insert(x.end(), part.begin(), part.end());
          }
          const auto w = positive_weights(rng, p.n * ngroups);
          for (int variant = 0; variant < 3; ++variant) {
            const float* wp = variant == 2 ? nullptr : w.data();
            std::vector<uint8_t> a(x.size()), b(x.size()), aux(p.n);
            std::vector<float> sa(ngroups), ma(ngroups);
            if (variant == 0) {
              make_qkx2_quants_groups(ngroups, p.n, p.nmax, x.data(), wp, a.data(), sa.data(),
                                      ma.data(), p.rmin, p.rdelta, p.nstep, p.use_mad);
            } else {
              make_qkx3_quants_groups(ngroups, p.n, p.nmax, x.data(), wp, a.data(), sa.data(),
                                      ma.data(), p.rmin, p.rdelta, p.nstep, p.use_mad);
            }
            for (int g = 0; g < ngroups; ++g) {
              float mb = 0;
              const float* wg = wp ? wp + p.n * g : nullptr;
              const float sb =
                  variant == 0
                      ? scalar_ref::make_qkx2_quants(p.n, p.nmax, x.data() + p.n * g, wg,
                                                     b.data() + p.n * g, &mb, aux.data(), p.rmin,
                                                     p.rdelta, p.nstep, p.use_mad)
                      : scalar_ref::make_qkx3_quants(p.n, p.nmax, x.data() + p.n * g, wg,
                                                     b.data() + p.n * g, &mb, aux.data(), p.rmin,
                                                     p.rdelta, p.nstep, p.use_mad);
              ASSERT_TRUE(same_bits(sa[g], sb) && same_bits(ma[g], mb))
                  << "variant " << variant << " n " << p.n << " group " << g << " kind " << kind;
            }
            ASSERT_EQ(a, b) << "variant " << variant << " n " << p.n << " kind " << kind;
          }
        }
      }
    }
  }
}

TEST(QuantCommon, Q3QuantsGroupsMatchScalar) {
  std::mt19937 rng(4);
  for (int ngroups : {1, 5, 8, 16, 19}) {
    for (int kind = 0; kind < 9; ++kind) {
      for (int rep = 0; rep < 30; ++rep) {
        std::vector<float> x;
        for (int g = 0; g < ngroups; ++g) {
          const auto part = group(rng, 16, (kind + g) % 9);
          x.insert(x.end(), part.begin(), part.end());
        }
        std::vector<int8_t> a(x.size()), b(x.size());
        std::vector<float> sa(ngroups);
        make_q3_quants_rmse_groups(ngroups, 16, 4, x.data(), a.data(), sa.data());
        for (int g = 0; g < ngroups; ++g) {
          const float sb = make_q3_quants(16, 4, x.data() + 16 * g, b.data() + 16 * g, true);
          ASSERT_TRUE(same_bits(sa[g], sb)) << "group " << g << " kind " << kind;
        }
        ASSERT_EQ(a, b) << "ngroups " << ngroups << " kind " << kind;
      }
    }
  }
}

TEST(QuantCommon, QpQuantsMatchScalar) {
  std::mt19937 rng(3);
  for (int n : {8, 16, 32}) {
    for (int rep = 0; rep < 200; ++rep) {
      auto x = group(rng, n, 2);
      const auto w = positive_weights(rng, n);
      std::vector<uint8_t> a(n), b(n);
      const float fa = make_qp_quants(n, 63, x.data(), a.data(), w.data());
      const float fb = scalar_ref::make_qp_quants(n, 63, x.data(), b.data(), w.data());
      ASSERT_TRUE(same_bits(fa, fb));
      ASSERT_EQ(a, b);
    }
  }
}

}  // namespace
}  // namespace insitu
