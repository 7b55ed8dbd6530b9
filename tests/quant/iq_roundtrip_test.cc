// Properties of the i-quant, ternary and MXFP4 formats beyond the golden bytes (golden_test.cc):
// the format tables, the lattice search tables the quantizers depend on, errors against ggml's
// published figures, exact round trips, zeros, imatrix handling, argument checks and
// reentrancy.
#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <fstream>
#include <iterator>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "insitu/error.h"
#include "quant/float_convert.h"
#include "quant/iq_grid_search.h"
#include "quant/iq_tables.h"
#include "quant/type_traits.h"
#include "test_paths.h"

namespace insitu {
namespace {

using iq::GridSearch;
using iq::Lattice;

// ------------------------------------------------------------------------------ format tables

TEST(IqTables, SignCodesAppendTheirParityBit) {
  for (int i = 0; i < 128; ++i) {
    EXPECT_EQ(kSignsIQ2XS[i] & 127, i);
    EXPECT_EQ(std::popcount(static_cast<unsigned>(kSignsIQ2XS[i])) % 2, 0) << i;
  }
}

template <typename Entry>
void expect_grid(const Entry* grid, int size, const std::set<int>& levels, const char* name) {
  std::set<Entry> unique(grid, grid + size);
  EXPECT_EQ(static_cast<int>(unique.size()), size) << name << ": duplicate entries";
  for (int k = 0; k < size; ++k) {
    for (size_t j = 0; j < sizeof(Entry); ++j) {
      const int v = static_cast<int8_t>(grid[k] >> (8 * j));
      EXPECT_TRUE(levels.count(v)) << name << " entry " << k << " byte " << j << " = " << v;
    }
  }
}

TEST(IqTables, GridsHoldOnlyTheirLevels) {
  expect_grid(kGridIQ2XXS, 256, {8, 25, 43}, "iq2xxs");
  expect_grid(kGridIQ2XS, 512, {8, 25, 43}, "iq2xs");
  expect_grid(kGridIQ2S, 1024, {8, 25, 43}, "iq2s");
  expect_grid(kGridIQ3XXS, 256, {4, 12, 20, 28, 36, 44, 52, 62}, "iq3xxs");
  expect_grid(kGridIQ3S, 512, {1, 3, 5, 7, 9, 11, 13, 15}, "iq3s");
  expect_grid(kGridIQ1S, 2048, {-1, 0, 1}, "iq1s");
}

TEST(IqTables, ValueTables) {
  EXPECT_TRUE(std::is_sorted(kValuesIQ4NL, kValuesIQ4NL + 16));
  EXPECT_EQ(std::set<int>(kValuesIQ4NL, kValuesIQ4NL + 16).size(), 16u);
  // FP4 E2M1 magnitudes {0, 0.5, 1, 1.5, 2, 3, 4, 6}, doubled; bit 3 is the sign.
  const int e2m1_doubled[8] = {0, 1, 2, 3, 4, 6, 8, 12};
  for (int i = 0; i < 8; ++i) {
    EXPECT_EQ(kValuesFP4[i], e2m1_doubled[i]);
    EXPECT_EQ(kValuesFP4[i + 8], -e2m1_doubled[i]);
  }
}

// ------------------------------------------------------------------ lattice search tables

struct LatticeCase {
  Lattice lattice;
  int bits;       // per packed level
  int max_level;  // highest level the quantizers produce
  int nwant;      // distinct distances per neighbour list (ggml's iq2xs/iq3xs_init_impl)
  const char* name;
};
constexpr LatticeCase kLattices[] = {
    {Lattice::kIQ2XXS, 2, 2, 2, "iq2xxs"}, {Lattice::kIQ2XS, 2, 2, 2, "iq2xs"},
    {Lattice::kIQ2S, 2, 2, 1, "iq2s"},     {Lattice::kIQ1S, 2, 2, 3, "iq1s"},
    {Lattice::kIQ3XXS, 3, 7, 2, "iq3xxs"}, {Lattice::kIQ3S, 3, 7, 3, "iq3s"},
};

class LatticeSearch : public ::testing::TestWithParam<LatticeCase> {};

// Every grid entry is found at its own index, and every vector the quantizers can produce that
// is not on the grid lists, nearest first and ties by index, exactly the entries within its
// nwant smallest distinct distances: checked here by brute force over the whole grid.
TEST_P(LatticeSearch, NeighbourListsAreTheNearestEntriesInOrder) {
  const LatticeCase& c = GetParam();
  const GridSearch& g = iq::grid_search(c.lattice);
  const int width = g.width();
  for (int k = 0; k < g.size(); ++k) {
    uint32_t u = 0;
    for (int j = 0; j < width; ++j)
      u |= static_cast<uint32_t>((g.entry(k)[j] - 1) / 2) << (c.bits * j);
    ASSERT_EQ(g.index(u), k) << c.name;
  }
  const uint32_t nvec = 1u << (c.bits * width);
  int off_grid = 0;
  // Every 5th vector keeps the brute force quick; the stride is coprime with the level bases.
  for (uint32_t u = 0; u < nvec; u += 5) {
    int pos[8];
    bool produced = true;
    for (int j = 0; j < width; ++j) {
      const int l = static_cast<int>((u >> (c.bits * j)) & ((1u << c.bits) - 1));
      produced = produced && l <= c.max_level;
      pos[j] = 2 * l + 1;
    }
    if (!produced || g.index(u) >= 0) continue;
    ++off_grid;
    std::vector<int> dist(g.size());
    std::set<int> distinct;
    for (int k = 0; k < g.size(); ++k) {
      int d2 = 0;
      for (int j = 0; j < width; ++j) d2 += (g.entry(k)[j] - pos[j]) * (g.entry(k)[j] - pos[j]);
      dist[k] = d2;
      distinct.insert(d2);
    }
    const int limit = *std::next(distinct.begin(), std::min<int>(c.nwant, distinct.size()) - 1);
    std::vector<uint16_t> want;
    for (int d = 0; d <= limit; ++d) {
      for (int k = 0; k < g.size(); ++k) {
        if (dist[k] == d) want.push_back(static_cast<uint16_t>(k));
      }
    }
    const auto got = g.neighbours(u);
    ASSERT_EQ(std::vector<uint16_t>(got.begin(), got.end()), want) << c.name << " vector " << u;
  }
  EXPECT_GT(off_grid, 0);
}

INSTANTIATE_TEST_SUITE_P(Grids, LatticeSearch, ::testing::ValuesIn(kLattices),
                         [](const ::testing::TestParamInfo<LatticeCase>& info) {
                           return std::string(info.param.name);
                         });

// ------------------------------------------------------------------------------ round trips

constexpr QuantType kAllFormats[] = {
    QuantType::kIQ1_S,  QuantType::kIQ1_M,   QuantType::kIQ2_XXS, QuantType::kIQ2_XS,
    QuantType::kIQ2_S,  QuantType::kIQ3_XXS, QuantType::kIQ3_S,   QuantType::kIQ4_NL,
    QuantType::kIQ4_XS, QuantType::kTQ1_0,   QuantType::kTQ2_0,   QuantType::kMXFP4,
};
// The i-quants whose search honours an imatrix but does not require one.
constexpr QuantType kOptionalImatrix[] = {QuantType::kIQ1_M,   QuantType::kIQ2_S,
                                          QuantType::kIQ3_XXS, QuantType::kIQ3_S,
                                          QuantType::kIQ4_NL,  QuantType::kIQ4_XS};
// Closed-form formats: one scale from the block's extreme, nearest level.
constexpr QuantType kClosedForm[] = {QuantType::kTQ1_0, QuantType::kTQ2_0, QuantType::kMXFP4};
// Formats with one scale per 32-element block and no sub-block scales.
constexpr QuantType kBlockScaled[] = {QuantType::kIQ4_NL, QuantType::kMXFP4};

// rel. RMS error on N(0, 0.02) weights measured with ggml d99724f2 (ggml-formats.md §2.6,
// "rel.err, no imatrix"; "imatrix" for the types that require one).
struct Published {
  QuantType type;
  double rel_err;
};
constexpr Published kPublished[] = {
    {QuantType::kIQ1_S, 0.544},  {QuantType::kIQ1_M, 0.581},  {QuantType::kIQ2_XXS, 0.390},
    {QuantType::kIQ2_XS, 0.347}, {QuantType::kIQ2_S, 0.264},  {QuantType::kIQ3_XXS, 0.213},
    {QuantType::kIQ3_S, 0.166},  {QuantType::kIQ4_NL, 0.076}, {QuantType::kIQ4_XS, 0.077},
};

class IqRoundTrip : public ::testing::TestWithParam<QuantType> {
 protected:
  const TypeTraits& tt() const { return type_traits(GetParam()); }

  std::vector<uint8_t> quantize(const std::vector<float>& x, int64_t nrows, const float* im) const {
    const int64_t n = static_cast<int64_t>(x.size()) / nrows;
    std::vector<uint8_t> q(quant_row_size(tt().type, n) * static_cast<size_t>(nrows));
    EXPECT_EQ(tt().quantize(x.data(), q.data(), nrows, n, im), q.size());
    return q;
  }

  std::vector<float> dequantize(const std::vector<uint8_t>& q, size_t n) const {
    std::vector<float> y(n);
    tt().dequantize_row(q.data(), y.data(), static_cast<int64_t>(n));
    return y;
  }

  std::vector<float> round_trip(const std::vector<float>& x, int64_t nrows, const float* im) const {
    return dequantize(quantize(x, nrows, im), x.size());
  }

  // An imatrix whenever the type accepts one: required types get a flat one.
  std::vector<float> flat_imatrix(int64_t n) const { return std::vector<float>(n, 1.0f); }
  const float* needed(const std::vector<float>& flat) const {
    return tt().requires_imatrix ? flat.data() : nullptr;
  }
};

std::vector<float> gaussian(size_t n, float sigma, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0.f, sigma);
  std::vector<float> x(n);
  for (float& v : x) v = d(rng);
  return x;
}

double rel_err(const std::vector<float>& x, const std::vector<float>& y, const float* w, size_t n) {
  double e = 0;
  double s = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    const double wi = w ? w[i % n] : 1.0;
    e += wi * (static_cast<double>(x[i]) - y[i]) * (static_cast<double>(x[i]) - y[i]);
    s += wi * static_cast<double>(x[i]) * x[i];
  }
  return std::sqrt(e / s);
}

class IqPublished : public ::testing::TestWithParam<Published> {};

TEST_P(IqPublished, ErrorMatchesGgmlsPublishedFigure) {
  const TypeTraits& tt = type_traits(GetParam().type);
  constexpr int64_t n = 4096;
  const auto x = gaussian(16 * n, 0.02f, 7);
  std::vector<float> im(n);
  std::mt19937 rng(3);
  std::uniform_real_distribution<float> u(0.1f, 1.0f);
  for (float& v : im) v = u(rng);
  std::vector<uint8_t> q(quant_row_size(tt.type, n) * 16);
  ASSERT_EQ(tt.quantize(x.data(), q.data(), 16, n, tt.requires_imatrix ? im.data() : nullptr),
            q.size());
  std::vector<float> y(x.size());
  tt.dequantize_row(q.data(), y.data(), static_cast<int64_t>(y.size()));
  const double err = rel_err(x, y, nullptr, n);
  const double figure = GetParam().rel_err;
  // Another sample of the same distribution: within 5% of ggml's figure. ggml's imatrix figures
  // came from an imatrix of unstated distribution, so there only "no worse" is checked.
  EXPECT_LE(err, 1.05 * figure) << tt.name;
  if (!tt.requires_imatrix) {
    EXPECT_GE(err, 0.95 * figure) << tt.name;
  }
}

class IqImatrix : public IqRoundTrip {};

TEST_P(IqImatrix, LowersTheWeightedError) {
  constexpr int64_t n = 2048;
  const auto x = gaussian(8 * n, 0.02f, 11);
  // Strongly uneven importance: a few columns matter far more than the rest.
  std::vector<float> im(n, 0.05f);
  for (int64_t i = 0; i < n; i += 7) im[i] = 20.0f;
  const double plain = rel_err(x, round_trip(x, 8, nullptr), im.data(), n);
  const double weighted = rel_err(x, round_trip(x, 8, im.data()), im.data(), n);
  EXPECT_LT(weighted, plain) << tt().name;
}

class ClosedForm : public IqRoundTrip {};

TEST_P(ClosedForm, ErrorWithinTheLevelSpacingBound) {
  const QuantType t = tt().type;
  constexpr int64_t n = 1024;
  auto x = gaussian(4 * n, 1.0f, 5);
  for (size_t i = 0; i < x.size(); i += 97) x[i] *= 30;
  const auto y = round_trip(x, 4, nullptr);
  const int64_t bs = tt().block_size;
  for (size_t b = 0; b < x.size(); b += static_cast<size_t>(bs)) {
    float amax = 0;
    for (int64_t i = 0; i < bs; ++i) amax = std::max(amax, std::fabs(x[b + i]));
    // Ternary: levels {-d, 0, d} with d = fp16(amax), so half a level plus d's rounding.
    // MXFP4: d = 2^floor(log2 amax) / 8 and the widest gap (8d..12d, or 12d up to amax < 16d)
    // leaves at most 4d.
    const double bound =
        t == QuantType::kMXFP4 ? std::ldexp(1.0, std::ilogb(amax)) / 2 : amax * (0.5 + 1.0 / 1024);
    for (int64_t i = 0; i < bs; ++i) {
      ASSERT_LE(std::fabs(static_cast<double>(x[b + i]) - y[b + i]), bound)
          << tt().name << " element " << b + i;
    }
  }
}

// Values a format represents exactly come back bit for bit.
TEST_P(ClosedForm, RepresentableValuesComeBackExactly) {
  const QuantType t = tt().type;
  std::mt19937 rng(9);
  std::vector<float> x(1024);
  if (t == QuantType::kTQ1_0 || t == QuantType::kTQ2_0) {
    // d = amax = 0.375 (exact in fp16); every element is -d, 0 or d.
    std::uniform_int_distribution<int> trit(-1, 1);
    for (float& v : x) v = 0.375f * trit(rng);
    for (size_t b = 0; b < x.size(); b += 256) x[b] = 0.375f;
  } else {
    // E2M1 values times 2^m, each block reaching 6 * 2^m, so the chosen scale is exactly 2^m / 2.
    std::uniform_int_distribution<int> code(0, 15);
    for (size_t b = 0; b < x.size(); b += 32) {
      const float scale = std::ldexp(1.0f, static_cast<int>(b / 32) % 9 - 4) / 2;
      for (size_t i = 0; i < 32; ++i) x[b + i] = kValuesFP4[code(rng)] * scale;
      x[b + 5] = 12 * scale;
    }
  }
  const auto y = round_trip(x, 1, nullptr);
  for (size_t i = 0; i < x.size(); ++i) ASSERT_EQ(y[i], x[i]) << tt().name << " element " << i;
}

TEST_P(IqRoundTrip, ZeroRowsComeBackAsZeros) {
  const std::vector<float> x(2 * 512, 0.0f);
  const auto flat = flat_imatrix(512);
  const auto y = round_trip(x, 2, needed(flat));
  for (size_t i = 0; i < y.size(); ++i) ASSERT_EQ(y[i], 0.0f) << tt().name << " element " << i;
}

// Formats with a scale per block keep zero blocks at zero beside large ones. (The super-block
// formats cannot: their sub-block scales d * (2s + 1) or d * (0.5 + s) have no zero code.)
class BlockScaled : public IqRoundTrip {};

TEST_P(BlockScaled, ZeroBlocksBesideLargeOnesStayZero) {
  auto x = gaussian(512, 100.0f, 13);
  for (size_t b = 0; b < x.size(); b += 64) std::fill(x.begin() + b, x.begin() + b + 32, 0.0f);
  const auto y = round_trip(x, 1, nullptr);
  for (size_t b = 0; b < x.size(); b += 64) {
    for (size_t i = 0; i < 32; ++i) ASSERT_EQ(y[b + i], 0.0f) << tt().name << " element " << b + i;
  }
}

TEST_P(IqRoundTrip, ImatrixRequirementMatchesGgml) {
  const QuantType t = tt().type;
  const bool ggml_requires =
      t == QuantType::kIQ2_XXS || t == QuantType::kIQ2_XS || t == QuantType::kIQ1_S;
  EXPECT_EQ(tt().requires_imatrix, ggml_requires) << tt().name;
  const auto x = gaussian(256, 0.02f, 1);
  std::vector<uint8_t> q(tt().type_size * (256 / tt().block_size));
  if (ggml_requires) {
    try {
      tt().quantize(x.data(), q.data(), 1, 256, nullptr);
      ADD_FAILURE() << tt().name << " quantized without an imatrix";
    } catch (const InvalidArgument& e) {
      EXPECT_NE(std::string(e.what()).find(tt().name), std::string::npos) << e.what();
    }
  } else {
    EXPECT_EQ(tt().quantize(x.data(), q.data(), 1, 256, nullptr), q.size());
  }
}

TEST_P(IqRoundTrip, RejectsBadShapes) {
  const auto x = gaussian(1024, 0.02f, 1);
  const auto flat = flat_imatrix(1024);
  std::vector<uint8_t> q(4096);
  EXPECT_THROW(tt().quantize(x.data(), q.data(), 1, tt().block_size + 16, needed(flat)),
               InvalidArgument);
  EXPECT_THROW(tt().quantize(x.data(), q.data(), 1, 0, needed(flat)), InvalidArgument);
  EXPECT_THROW(tt().quantize(x.data(), q.data(), -1, 256, needed(flat)), InvalidArgument);
  EXPECT_EQ(tt().quantize(x.data(), q.data(), 0, 256, needed(flat)), 0u);
}

TEST_P(IqRoundTrip, WritesExactlyTheRowSizes) {
  constexpr int64_t n = 512;
  constexpr int64_t nrows = 3;
  const auto x = gaussian(n * nrows, 0.02f, 2);
  const auto flat = flat_imatrix(n);
  const size_t size = quant_row_size(tt().type, n) * nrows;
  EXPECT_EQ(size, static_cast<size_t>(n * nrows / tt().block_size) * tt().type_size);
  std::vector<uint8_t> q(size + 64, 0xA5);
  EXPECT_EQ(tt().quantize(x.data(), q.data(), nrows, n, needed(flat)), size);
  for (size_t i = size; i < q.size(); ++i) ASSERT_EQ(q[i], 0xA5) << "wrote past the end";
}

// Quantizers share only immutable tables, so concurrent calls give the single-threaded bytes.
TEST_P(IqRoundTrip, ConcurrentCallsGiveTheSameBytes) {
  constexpr int64_t n = 1024;
  const auto x = gaussian(4 * n, 0.02f, 17);
  const auto flat = flat_imatrix(n);
  const auto want = quantize(x, 4, needed(flat));
  std::vector<std::vector<uint8_t>> got(4, std::vector<uint8_t>(want.size()));
  std::vector<std::thread> threads;
  for (auto& out : got) {
    threads.emplace_back([&] { tt().quantize(x.data(), out.data(), 4, n, needed(flat)); });
  }
  for (auto& th : threads) th.join();
  for (const auto& out : got) EXPECT_EQ(out, want) << tt().name;
}

// Corrupt weights (NaN, infinities, extremes) give some bytes, as in ggml, but never a crash or a
// write outside the output (ggml aborts on some of these inputs).
TEST_P(IqRoundTrip, NonFiniteInputStaysInBounds) {
  constexpr int64_t n = 512;
  const float specials[] = {std::nanf(""), INFINITY, -INFINITY, 3e38f, -3e38f, 1e-45f, 0.0f};
  for (const float special : specials) {
    auto x = gaussian(2 * n, 0.02f, 23);
    for (size_t i = 0; i < x.size(); i += 5) x[i] = special;
    std::fill(x.begin() + n, x.begin() + n + 64, special);  // whole groups of it
    std::vector<float> im(n, 1.0f);
    for (size_t i = 0; i < im.size(); i += 7)
      im[i] = std::isnan(special) ? special : std::fabs(special);
    const size_t size = quant_row_size(tt().type, n) * 2;
    const float* const imatrices[] = {nullptr, im.data()};
    for (const float* imatrix : imatrices) {
      if (imatrix == nullptr && tt().requires_imatrix) continue;
      std::vector<uint8_t> q(size + 64, 0xA5);
      EXPECT_EQ(tt().quantize(x.data(), q.data(), 2, n, imatrix), size);
      for (size_t i = size; i < q.size(); ++i) ASSERT_EQ(q[i], 0xA5) << "wrote past the end";
      std::vector<float> y(x.size());
      tt().dequantize_row(q.data(), y.data(), static_cast<int64_t>(y.size()));
    }
  }
}

// Any bytes decode without reading outside the tables (every index field fits its grid).
TEST_P(IqRoundTrip, ArbitraryBytesDecode) {
  std::mt19937 rng(21);
  std::vector<uint8_t> q(tt().type_size * (1024 / tt().block_size));
  for (uint8_t& b : q) b = static_cast<uint8_t>(rng());
  const auto y = dequantize(q, 1024);
  EXPECT_EQ(y.size(), 1024u);
}

// Rows on which ggml d99724f2's direct-sum IQ1_M split search and the installed llama.cpp's
// prefix-sum search round differently (scripts/gen_iq1m_fixture.py wrote them with the installed
// libggml-base). insitu follows the installed llama.cpp, so its files match what llama.cpp writes.
TEST(IqRegression, Iq1mSplitSearchRoundsLikeTheInstalledLlamaCpp) {
  const std::string path = test::data_dir() + "/quant/iq1_m_split_rounding.bin";
  std::ifstream f(path, std::ios::binary);
  ASSERT_TRUE(f) << path;
  const std::vector<char> bytes((std::istreambuf_iterator<char>(f)), {});
  uint32_t header[2];
  ASSERT_GE(bytes.size(), sizeof(header));
  std::memcpy(header, bytes.data(), sizeof(header));
  const int64_t nrows = header[0];
  const int64_t n = header[1];
  const TypeTraits& tt = type_traits(QuantType::kIQ1_M);
  const size_t q_size = quant_row_size(QuantType::kIQ1_M, n) * static_cast<size_t>(nrows);
  ASSERT_EQ(bytes.size(), sizeof(header) + static_cast<size_t>(nrows * n) * sizeof(float) + q_size);
  std::vector<float> x(static_cast<size_t>(nrows * n));
  std::memcpy(x.data(), bytes.data() + sizeof(header), x.size() * sizeof(float));
  std::vector<uint8_t> got(q_size);
  ASSERT_EQ(tt.quantize(x.data(), got.data(), nrows, n, nullptr), q_size);
  const auto* want =
      reinterpret_cast<const uint8_t*>(bytes.data() + sizeof(header) + x.size() * sizeof(float));
  EXPECT_EQ(got, std::vector<uint8_t>(want, want + q_size));
}

std::string type_name(const ::testing::TestParamInfo<QuantType>& info) {
  return quant_type_name(info.param);
}

INSTANTIATE_TEST_SUITE_P(Formats, IqRoundTrip, ::testing::ValuesIn(kAllFormats), type_name);
INSTANTIATE_TEST_SUITE_P(Formats, IqImatrix, ::testing::ValuesIn(kOptionalImatrix), type_name);
INSTANTIATE_TEST_SUITE_P(Formats, ClosedForm, ::testing::ValuesIn(kClosedForm), type_name);
INSTANTIATE_TEST_SUITE_P(Formats, BlockScaled, ::testing::ValuesIn(kBlockScaled), type_name);
INSTANTIATE_TEST_SUITE_P(Ggml, IqPublished, ::testing::ValuesIn(kPublished),
                         [](const ::testing::TestParamInfo<Published>& info) {
                           return quant_type_name(info.param.type);
                         });

}  // namespace
}  // namespace insitu
