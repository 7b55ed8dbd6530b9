// FP8 E4M3 conversion, the F8Q8 block format, fp8 / fp8_b128 tensors with their scale grids
// (quantize_tensor, convert_rows, dequantize_rows, UQFF interchange) and the MXFP4 layout
// converters. Expected values are worked out by hand in the comments.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "insitu/error.h"
#include "quant/blocks.h"
#include "quant/float_convert.h"
#include "quant/fp8.h"
#include "quant/mxfp4_layout.h"
#include "quant/quantize.h"
#include "quant/type_traits.h"
#include "util/thread_pool.h"

namespace insitu {
namespace {

using Q = QuantType;

// The nearest finite E4M3 value by search over the codes, ties to the even code (even mantissa),
// magnitudes above 448 saturating: the definition fp32_to_e4m3 must meet.
uint8_t nearest_e4m3(float x) {
  const double a = std::fabs(static_cast<double>(x));
  int best = 0;
  double best_err = std::numeric_limits<double>::infinity();
  for (int c = 0; c <= 0x7E; ++c) {
    const double err = std::fabs(static_cast<double>(e4m3_to_fp32(static_cast<uint8_t>(c))) - a);
    if (err < best_err || (err == best_err && (c & 1) == 0)) {
      best = c;
      best_err = err;
    }
  }
  return static_cast<uint8_t>(best | (std::signbit(x) ? 0x80 : 0));
}

TEST(E4M3, DecodesSubnormalsNormalsAndNaN) {
  EXPECT_EQ(e4m3_to_fp32(0x00), 0.0f);
  EXPECT_TRUE(std::signbit(e4m3_to_fp32(0x80)));
  EXPECT_EQ(e4m3_to_fp32(0x01), 0x1p-9f);         // smallest subnormal
  EXPECT_EQ(e4m3_to_fp32(0x07), 7 * 0x1p-9f);     // largest subnormal
  EXPECT_EQ(e4m3_to_fp32(0x08), 0x1p-6f);         // smallest normal
  EXPECT_EQ(e4m3_to_fp32(0x38), 1.0f);            // exponent 7 = bias
  EXPECT_EQ(e4m3_to_fp32(0x3A), 1.25f);
  EXPECT_EQ(e4m3_to_fp32(0x7E), 448.0f);
  EXPECT_EQ(e4m3_to_fp32(0xFE), -448.0f);
  EXPECT_TRUE(std::isnan(e4m3_to_fp32(0x7F)));
  EXPECT_TRUE(std::isnan(e4m3_to_fp32(0xFF)));
}

TEST(E4M3, EncodesHandWorkedValues) {
  EXPECT_EQ(fp32_to_e4m3(1.0f), 0x38);
  EXPECT_EQ(fp32_to_e4m3(-1.0f), 0xB8);
  EXPECT_EQ(fp32_to_e4m3(0.1f), 0x1D);        // 1.6 * 2^-4 -> 1.625 (m = 5), exponent 3
  EXPECT_EQ(fp32_to_e4m3(1.0625f), 0x38);     // tie between 1 and 1.125: even mantissa 0
  EXPECT_EQ(fp32_to_e4m3(1.1875f), 0x3A);     // tie between 1.125 and 1.25: even mantissa 2
  EXPECT_EQ(fp32_to_e4m3(448.0f), 0x7E);
  EXPECT_EQ(fp32_to_e4m3(464.0f), 0x7E);      // halfway to the missing 480: ties to even 448
  EXPECT_EQ(fp32_to_e4m3(465.0f), 0x7E);      // saturates instead of becoming NaN
  EXPECT_EQ(fp32_to_e4m3(1e30f), 0x7E);
  EXPECT_EQ(fp32_to_e4m3(-1e30f), 0xFE);
  EXPECT_EQ(fp32_to_e4m3(std::numeric_limits<float>::infinity()), 0x7E);
  EXPECT_EQ(fp32_to_e4m3(-std::numeric_limits<float>::infinity()), 0xFE);
  EXPECT_EQ(fp32_to_e4m3(std::numeric_limits<float>::quiet_NaN()) & 0x7F, 0x7F);
  // Subnormals: steps of 2^-9.
  EXPECT_EQ(fp32_to_e4m3(0x1p-9f), 0x01);
  EXPECT_EQ(fp32_to_e4m3(0x1p-10f), 0x00);          // tie between 0 and 2^-9: even 0
  EXPECT_EQ(fp32_to_e4m3(0x1.8p-10f), 0x01);        // above the tie
  EXPECT_EQ(fp32_to_e4m3(3 * 0x1p-10f), 0x02);      // tie between 1 and 2 steps: even 2
  EXPECT_EQ(fp32_to_e4m3(7.5f * 0x1p-9f), 0x08);    // tie between 7 steps and 2^-6: even (0x08)
  EXPECT_EQ(fp32_to_e4m3(0x1p-6f), 0x08);
  EXPECT_EQ(fp32_to_e4m3(1e-40f), 0x00);            // f32 subnormal
  EXPECT_EQ(fp32_to_e4m3(-0.0f), 0x80);
}

TEST(E4M3, EveryCodeRoundTripsAndRandomFloatsRoundToNearest) {
  for (int c = 0; c < 256; ++c) {
    if ((c & 0x7F) == 0x7F) continue;
    EXPECT_EQ(fp32_to_e4m3(e4m3_to_fp32(static_cast<uint8_t>(c))), c) << c;
  }
  std::mt19937 rng(3);
  std::uniform_real_distribution<float> expo(-12.0f, 10.0f);
  for (int i = 0; i < 20000; ++i) {
    const float x = std::exp2(expo(rng)) * (rng() & 1 ? 1.0f : -1.0f);
    ASSERT_EQ(fp32_to_e4m3(x), nearest_e4m3(x)) << x;
  }
  // Every midpoint between neighbouring codes (ties) and its two neighbours in float.
  for (int c = 0; c < 0x7E; ++c) {
    const float mid = 0.5f * (e4m3_to_fp32(static_cast<uint8_t>(c)) +
                              e4m3_to_fp32(static_cast<uint8_t>(c + 1)));
    for (float x : {mid, std::nextafter(mid, 0.0f), std::nextafter(mid, 1000.0f)}) {
      ASSERT_EQ(fp32_to_e4m3(x), nearest_e4m3(x)) << x;
    }
  }
}

// ---- F8Q8 -----------------------------------------------------------------------------------------

BlockF8Q8 quantize_block(const float* x) {
  BlockF8Q8 b{};
  EXPECT_EQ(quantize_f8q8(x, &b, 1, 32, nullptr), sizeof(BlockF8Q8));
  return b;
}

TEST(F8Q8, TableRowAndGeometry) {
  const TypeTraits& tt = type_traits(Q::kF8Q8);
  EXPECT_EQ(tt.block_size, 32);
  EXPECT_EQ(tt.type_size, 33u);
  EXPECT_EQ(tt.vec_dot_type, Q::kQ8_0);
  EXPECT_EQ(parse_quant_type("F8Q8"), Q::kF8Q8);
  EXPECT_EQ(quant_tensor_size(Q::kF8Q8, 3, 64), 3u * 2 * 33);
  EXPECT_FALSE(quant_type_has_tail(Q::kF8Q8));
}

TEST(F8Q8, HandWorkedBlock) {
  // x = j - 16: amax 16, d = 16/127, d * 448 = 56.44, rounded up to the next E4M3 value 60
  // (1.875 * 2^5: exponent 12, mantissa 7 = 0x67); the block decodes with dr = 60 / 448, so
  // q = round((j - 16) * 448 / 60) = round((j - 16) * 7.4667).
  float x[32];
  for (int j = 0; j < 32; ++j) x[j] = static_cast<float>(j - 16);
  const BlockF8Q8 b = quantize_block(x);
  EXPECT_EQ(b.d, 0x67);
  EXPECT_EQ(b.qs[0], -119);  // -119.47
  EXPECT_EQ(b.qs[16], 0);
  EXPECT_EQ(b.qs[17], 7);    // 7.47
  EXPECT_EQ(b.qs[18], 15);   // 14.93
  EXPECT_EQ(b.qs[31], 112);  // 112.0
  EXPECT_EQ(f8q8_scale(b.d), 60.0f / 448.0f);
  float y[32];
  dequantize_row_f8q8(&b, y, 32);
  EXPECT_EQ(y[17], 7 * (60.0f / 448.0f));
  // Every value within half a step of the scale it decodes with.
  for (int j = 0; j < 32; ++j) EXPECT_LE(std::fabs(y[j] - x[j]), 0.5f * 60.0f / 448.0f) << j;
}

TEST(F8Q8, TiesRoundAwayFromZeroAndZeroBlocks) {
  // amax 127: d = 1 exactly, d * 448 = 448 (0x7E), q = round(x) with halves away from zero.
  float x[32] = {};
  x[0] = 127.0f;
  x[1] = 2.5f;
  x[2] = -2.5f;
  x[3] = 0.49f;
  x[4] = -0.5f;
  const BlockF8Q8 b = quantize_block(x);
  EXPECT_EQ(b.d, 0x7E);
  EXPECT_EQ(b.qs[0], 127);
  EXPECT_EQ(b.qs[1], 3);
  EXPECT_EQ(b.qs[2], -3);
  EXPECT_EQ(b.qs[3], 0);
  EXPECT_EQ(b.qs[4], -1);
  float zeros[32] = {};
  const BlockF8Q8 z = quantize_block(zeros);
  EXPECT_EQ(z.d, 0x00);
  for (int8_t q : z.qs) EXPECT_EQ(q, 0);
  float y[32];
  dequantize_row_f8q8(&z, y, 32);
  for (float v : y) EXPECT_EQ(v, 0.0f);
}

TEST(F8Q8, RoundTripWithinStepAndScaleRounding) {
  std::mt19937 rng(9);
  std::normal_distribution<float> dist(0.0f, 0.05f);
  std::vector<float> x(32 * 64);
  for (float& v : x) v = dist(rng);
  std::vector<BlockF8Q8> q(64);
  quantize_f8q8(x.data(), q.data(), 4, 512, nullptr);
  std::vector<float> y(x.size());
  dequantize_row_f8q8(q.data(), y.data(), static_cast<int64_t>(x.size()));
  for (size_t b = 0; b < 64; ++b) {
    float amax = 0.0f;
    for (int j = 0; j < 32; ++j) amax = std::fmax(amax, std::fabs(x[b * 32 + j]));
    // Half a step of the decoding scale, which is d rounded up by at most one E4M3 step (2^-3
    // relative for a normal scale).
    const float bound = 0.5f * (amax / 127.0f) * (1.0f + 0x1p-3f) * 1.0001f;
    for (int j = 0; j < 32; ++j) ASSERT_LE(std::fabs(x[b * 32 + j] - y[b * 32 + j]), bound);
  }
}

// ---- fp8 / fp8_b128 tensors ---------------------------------------------------------------------

std::vector<float> dequantize_all(Q type, const std::vector<uint8_t>& data, int64_t rows,
                                  int64_t cols) {
  std::vector<float> y(static_cast<size_t>(rows * cols));
  dequantize_rows(type, data.data(), rows, cols, 0, rows, y.data());
  return y;
}

std::vector<uint8_t> quantize(Q type, const std::vector<float>& x, int64_t rows, int64_t cols,
                              int threads = 1) {
  ThreadPool pool(threads);
  std::vector<uint8_t> out(quant_tensor_size(type, rows, cols), 0xEE);
  EXPECT_EQ(quantize_tensor(type, x.data(), out.data(), rows, cols, nullptr, pool), out.size());
  return out;
}

TEST(Fp8, TableRowsSizesAndGrids) {
  for (Q t : {Q::kFP8, Q::kFP8_B128}) {
    const TypeTraits& tt = type_traits(t);
    EXPECT_EQ(tt.block_size, 1);
    EXPECT_EQ(tt.type_size, 1u);
    EXPECT_TRUE(quant_type_has_tail(t));
    EXPECT_TRUE(quant_type_can_quantize(t));
    EXPECT_TRUE(quant_type_can_dequantize(t));
    EXPECT_EQ(quant_row_size(t, 300), 300u);
  }
  EXPECT_EQ(parse_quant_type("fp8"), Q::kFP8);
  EXPECT_EQ(parse_quant_type("FP8_B128"), Q::kFP8_B128);
  EXPECT_EQ(quant_tensor_size(Q::kFP8, 200, 300), 200u * 300 + 4);
  const Fp8Grid g = fp8_grid(Q::kFP8_B128, 200, 300);  // ceil(200/128) x ceil(300/128)
  EXPECT_EQ(g.rows, 2);
  EXPECT_EQ(g.cols, 3);
  EXPECT_EQ(quant_tensor_size(Q::kFP8_B128, 200, 300), 200u * 300 + 6 * 4);
  EXPECT_EQ(fp8_grid(Q::kFP8_B128, 128, 256).size(), 2);
  EXPECT_EQ(fp8_grid(Q::kFP8_B128, 129, 1).size(), 2);
  EXPECT_EQ(quant_tensor_size(Q::kFP8, 0, 300), 0u);
  EXPECT_THROW(fp8_grid(Q::kQ8_0, 1, 1), InvalidArgument);
}

TEST(Fp8, PerTensorHandWorked) {
  // absmax 2: scale = 448 / 2 = 224, q = e4m3(w * 224), grid = 1 / 224.
  const std::vector<float> x = {2.0f, 1.0f, 0.5f, -2.0f, 0.0f, 0.1f};
  const auto q = quantize(Q::kFP8, x, 2, 3);
  EXPECT_EQ(q[0], 0x7E);  // 448
  EXPECT_EQ(q[1], 0x76);  // 224 = 1.75 * 2^7
  EXPECT_EQ(q[2], 0x6E);  // 112
  EXPECT_EQ(q[3], 0xFE);
  EXPECT_EQ(q[4], 0x00);
  EXPECT_EQ(q[5], fp32_to_e4m3(0.1f * 224.0f));  // 22.4 -> 22 (1.375 * 2^4 = 0x5B)
  EXPECT_EQ(q[5], 0x5B);
  float grid;
  std::memcpy(&grid, q.data() + 6, 4);
  EXPECT_EQ(grid, 1.0f / 224.0f);
  const auto y = dequantize_all(Q::kFP8, q, 2, 3);
  for (size_t i = 0; i < x.size(); ++i) EXPECT_EQ(y[i], e4m3_to_fp32(q[i]) * grid);
  EXPECT_NEAR(y[0], 2.0f, 1e-6f);
  const Fp8UqffScalars s = fp8_uqff_scalars(q.data(), 2, 3);
  EXPECT_EQ(s.dequant_w_scale, grid);
  EXPECT_EQ(s.dequant_x_scale, grid);
  EXPECT_EQ(s.quant_scale, 1.0f / grid);
}

TEST(Fp8, PerTensorScaleClampedAt448AndZeroTensor) {
  // absmax 0.5: 448 / 0.5 = 896 is clamped to 448 (mistral.rs), so 0.5 -> 224 (0x76).
  const auto q = quantize(Q::kFP8, {0.5f, -0.25f}, 1, 2);
  EXPECT_EQ(q[0], 0x76);
  EXPECT_EQ(q[1], 0xEE);  // -112 = -(1.75 * 2^6)
  float grid;
  std::memcpy(&grid, q.data() + 2, 4);
  EXPECT_EQ(grid, 1.0f / 448.0f);
  const auto z = quantize(Q::kFP8, std::vector<float>(8, 0.0f), 2, 4);
  for (int i = 0; i < 8; ++i) EXPECT_EQ(z[i], 0x00);
  std::memcpy(&grid, z.data() + 8, 4);
  EXPECT_EQ(grid, 1.0f / 448.0f);
  for (float v : dequantize_all(Q::kFP8, z, 2, 4)) EXPECT_EQ(v, 0.0f);
}

// A 200 x 300 tensor (grid 2 x 3, partial tiles on both edges) whose tiles have different ranges,
// one of them all zero.
std::vector<float> tiled_matrix(int64_t rows, int64_t cols) {
  std::mt19937 rng(21);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  std::vector<float> x(static_cast<size_t>(rows * cols));
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c = 0; c < cols; ++c) {
      const int64_t tile = (r / 128) * 3 + c / 128;
      const float range = tile == 4 ? 0.0f : std::ldexp(1.0f, static_cast<int>(tile) - 3);
      x[r * cols + c] = dist(rng) * range;
    }
  }
  x[5 * cols + 7] = 448.0f;  // tile 0: amax 448 -> grid exactly 1, q = e4m3(w)
  return x;
}

TEST(Fp8, BlockScalesPerTileWithZeroTile) {
  const int64_t rows = 200, cols = 300;
  const auto x = tiled_matrix(rows, cols);
  const auto q = quantize(Q::kFP8_B128, x, rows, cols);
  const std::vector<float> grid = fp8_read_grid(Q::kFP8_B128, q.data(), rows, cols);
  ASSERT_EQ(grid.size(), 6u);
  EXPECT_EQ(grid[0], 1.0f);
  EXPECT_EQ(grid[4], 0.0f);  // the all-zero tile (rows 128.., columns 128..255)
  for (int t = 0; t < 6; ++t) {
    float amax = 0.0f;
    for (int64_t r = (t / 3) * 128; r < std::min<int64_t>(rows, (t / 3 + 1) * 128); ++r)
      for (int64_t c = (t % 3) * 128; c < std::min<int64_t>(cols, (t % 3 + 1) * 128); ++c)
        amax = std::fmax(amax, std::fabs(x[r * cols + c]));
    EXPECT_EQ(grid[t], amax / 448.0f) << t;
  }
  for (int64_t c = 0; c < 128; ++c) EXPECT_EQ(q[5 * cols + c], fp32_to_e4m3(x[5 * cols + c]));
  const auto y = dequantize_all(Q::kFP8_B128, q, rows, cols);
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c = 0; c < cols; ++c) {
      const float g = grid[(r / 128) * 3 + c / 128];
      const float w = x[r * cols + c];
      ASSERT_EQ(y[r * cols + c], e4m3_to_fp32(q[r * cols + c]) * g);
      // Relative error of a normal E4M3 value is at most 2^-4; subnormals lose 2^-10 * 448 * g.
      ASSERT_LE(std::fabs(y[r * cols + c] - w), std::fabs(w) * 0x1p-4f * 1.001f + g * 0x1p-10f * 1.01f);
    }
  }
}

TEST(Fp8, BytesDoNotDependOnThreadsAndConvertRowsMatches) {
  const int64_t rows = 300, cols = 544;  // several 128-row chunks, a 32-column last tile
  std::mt19937 rng(4);
  std::normal_distribution<float> dist(0.0f, 0.02f);
  std::vector<float> x(static_cast<size_t>(rows * cols));
  for (float& v : x) v = dist(rng);
  // An f16 source, so convert_rows reads something other than floats.
  std::vector<uint16_t> h(x.size());
  for (size_t i = 0; i < x.size(); ++i) {
    h[i] = fp32_to_fp16(x[i]);
    x[i] = fp16_to_fp32(h[i]);
  }
  for (Q t : {Q::kFP8, Q::kFP8_B128}) {
    SCOPED_TRACE(quant_type_name(t));
    const auto want = quantize(t, x, rows, cols, 1);
    for (int threads : {2, 3}) EXPECT_TRUE(quantize(t, x, rows, cols, threads) == want);
    ThreadPool pool(2);
    std::vector<uint8_t> got;
    convert_rows(Q::kF16, reinterpret_cast<const uint8_t*>(h.data()), t, rows, cols, nullptr, pool,
                 [&](const uint8_t* b, size_t n) { got.insert(got.end(), b, b + n); });
    EXPECT_TRUE(got == want);
    // And back out of fp8: convert_rows reads the grid of the source.
    std::vector<uint8_t> q8;
    convert_rows(t, want.data(), Q::kQ8_0, rows, cols, nullptr, pool,
                 [&](const uint8_t* b, size_t n) { q8.insert(q8.end(), b, b + n); });
    const auto deq = dequantize_all(t, want, rows, cols);
    std::vector<uint8_t> q8_want(quant_tensor_size(Q::kQ8_0, rows, cols));
    quantize_tensor(Q::kQ8_0, deq.data(), q8_want.data(), rows, cols, nullptr, pool);
    EXPECT_TRUE(q8 == q8_want);
  }
}

TEST(Fp8, DequantizeRowsSliceEqualsWholeTensor) {
  const int64_t rows = 200, cols = 300;
  const auto x = tiled_matrix(rows, cols);
  for (Q t : {Q::kFP8, Q::kFP8_B128, Q::kF8Q8}) {
    SCOPED_TRACE(quant_type_name(t));
    const int64_t c = t == Q::kF8Q8 ? 288 : cols;
    std::vector<float> xs(static_cast<size_t>(rows * c));
    for (int64_t r = 0; r < rows; ++r) std::copy_n(x.begin() + r * cols, c, xs.begin() + r * c);
    const auto q = quantize(t, xs, rows, c);
    const auto all = dequantize_all(t, q, rows, c);
    for (int64_t r0 : {0, 127, 128, 199}) {  // an embedding lookup of one row
      std::vector<float> row(static_cast<size_t>(c));
      dequantize_rows(t, q.data(), rows, c, r0, r0 + 1, row.data());
      for (int64_t i = 0; i < c; ++i) ASSERT_EQ(row[i], all[r0 * c + i]) << r0 << " " << i;
    }
    EXPECT_THROW(dequantize_rows(t, q.data(), rows, c, 199, 201, nullptr), InvalidArgument);
  }
}

TEST(Fp8, AssembleFromUqffPartsAndRejectsBadSizes) {
  const int64_t rows = 130, cols = 140;
  std::vector<float> x(static_cast<size_t>(rows * cols));
  for (size_t i = 0; i < x.size(); ++i) x[i] = std::sin(static_cast<float>(i)) * 0.3f;
  for (Q t : {Q::kFP8, Q::kFP8_B128}) {
    const auto q = quantize(t, x, rows, cols);
    const size_t n = static_cast<size_t>(rows * cols);
    const std::vector<float> grid = fp8_read_grid(t, q.data(), rows, cols);
    const auto back = fp8_assemble(t, std::span(q.data(), n), grid, rows, cols);
    EXPECT_TRUE(back == q);
    EXPECT_THROW(fp8_assemble(t, std::span(q.data(), n - 1), grid, rows, cols), InvalidArgument);
    EXPECT_THROW(fp8_assemble(t, std::span(q.data(), n), std::span(grid.data(), 0), rows, cols),
                 InvalidArgument);
  }
}

// ---- MXFP4 layouts ---------------------------------------------------------------------------------

TEST(Mxfp4Layout, LosslessBothWaysAndSameValues) {
  const int64_t rows = 3, cols = 96;
  const int64_t nb = rows * cols / 32;
  std::mt19937 rng(8);
  std::vector<uint8_t> ggml(static_cast<size_t>(nb) * sizeof(BlockMXFP4));
  for (uint8_t& b : ggml) b = static_cast<uint8_t>(rng());
  for (int64_t b = 0; b < nb; ++b) ggml[b * sizeof(BlockMXFP4)] = static_cast<uint8_t>(120 + b);
  std::vector<uint8_t> blocks(static_cast<size_t>(rows * cols / 2)), scales(static_cast<size_t>(nb));
  mxfp4_ggml_to_split(ggml.data(), rows, cols, blocks.data(), scales.data());
  std::vector<uint8_t> back(ggml.size());
  mxfp4_split_to_ggml(blocks.data(), scales.data(), rows, cols, back.data());
  EXPECT_TRUE(back == ggml);
  // mistral.rs's dequantization of the split form equals ours of the ggml form.
  static constexpr float kFp4[16] = {0, .5f, 1, 1.5f, 2, 3, 4, 6, -0.f, -.5f, -1, -1.5f, -2, -3, -4, -6};
  std::vector<float> y(static_cast<size_t>(rows * cols));
  dequantize_rows(Q::kMXFP4, ggml.data(), rows, cols, 0, rows, y.data());
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t k = 0; k < cols; ++k) {
      const uint8_t byte = blocks[r * cols / 2 + k / 2];
      const int code = k % 2 == 0 ? byte & 0x0F : byte >> 4;
      const int s = scales[r * cols / 32 + k / 32];
      ASSERT_EQ(y[r * cols + k], kFp4[code] * std::ldexp(1.0f, s - 127)) << r << " " << k;
    }
  }
  EXPECT_THROW(mxfp4_ggml_to_split(ggml.data(), 1, 48, blocks.data(), scales.data()),
               InvalidArgument);
}

}  // namespace
}  // namespace insitu
