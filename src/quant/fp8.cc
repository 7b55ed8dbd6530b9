// FP8 E4M3 and F8Q8 (see fp8.h). The E4M3 rounding is written from the format's definition and
// checked in tests/quant/fp8_test.cc against a nearest-value search over all 255 codes.
#include "quant/fp8.h"

#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>

#include "insitu/error.h"

namespace insitu {
namespace {

constexpr uint32_t kBits448 = 0x43E00000u;    // 448.0f
constexpr uint32_t kBitsMinNormal = 0x3C800000u;  // 2^-6, the smallest normal E4M3

std::array<float, 256> make_e4m3_table() {
  std::array<float, 256> t{};
  for (int b = 0; b < 256; ++b) {
    const uint32_t sign = static_cast<uint32_t>(b & 0x80) << 24;
    const uint32_t e = (b >> 3) & 0x0F, m = b & 0x07;
    float v;
    if (e == 15 && m == 7) {
      v = std::numeric_limits<float>::quiet_NaN();
    } else if (e == 0) {
      v = static_cast<float>(m) * 0x1p-9f;  // subnormal: m/8 * 2^-6
    } else {
      v = std::bit_cast<float>(((e + 120u) << 23) | (m << 20));  // 2^(e-7) * 1.m
    }
    t[b] = std::bit_cast<float>(std::bit_cast<uint32_t>(v) | sign);
  }
  return t;
}

const std::array<float, 256>& e4m3_table() {
  static const std::array<float, 256> t = make_e4m3_table();
  return t;
}

void check_fp8(QuantType type, const char* what) {
  if (!is_fp8_type(type)) {
    throw InvalidArgument(std::string(what) + ": type " + quant_type_name(type) +
                          " is not fp8 or fp8_b128");
  }
}

// Quantization factor of a tile (q = e4m3(w * factor)); see fp8.h for the two rules.
float quant_factor(QuantType type, float amax) {
  if (type == QuantType::kFP8) return std::fmin(kE4M3Max / amax, kE4M3Max);
  const float g = amax / kE4M3Max;
  return g > 0.0f ? 1.0f / g : 0.0f;
}

}  // namespace

uint8_t fp32_to_e4m3(float x) {
  const uint32_t u = std::bit_cast<uint32_t>(x);
  const uint8_t sign = static_cast<uint8_t>((u >> 24) & 0x80);
  const uint32_t a = u & 0x7FFFFFFFu;
  if (a > 0x7F800000u) return sign | 0x7F;  // NaN
  // 448 and above: 448 itself, values below 464 round down to it, the rest saturate.
  if (a >= kBits448) return sign | 0x7E;
  if (a < kBitsMinNormal) {
    // Subnormal range: the code is m = |x| / 2^-9 rounded to nearest even (exact scaling); m == 8
    // is the code of 2^-6, the smallest normal.
    const float scaled = std::bit_cast<float>(a) * 512.0f;
    const float rounded = (scaled + 8388608.0f) - 8388608.0f;  // RNE for 0 <= scaled < 2^22
    return sign | static_cast<uint8_t>(rounded);
  }
  // Normal: keep 3 of the 23 mantissa bits, round to nearest even on the 20 dropped ones. A carry
  // out of the mantissa increments the exponent, which is the right result.
  const uint32_t exp = (a >> 23) - 127 + 7;  // 1..15
  uint32_t r = (exp << 3) | ((a >> 20) & 0x07);
  const uint32_t rest = a & 0x000FFFFFu;
  if (rest > 0x80000u || (rest == 0x80000u && (r & 1))) ++r;
  return sign | static_cast<uint8_t>(r);
}

float e4m3_to_fp32(uint8_t b) { return e4m3_table()[b]; }

const float* f8q8_scale_table() {
  static const std::array<float, 256> t = [] {
    std::array<float, 256> s{};
    for (int b = 0; b < 256; ++b) s[b] = e4m3_table()[b] / kE4M3Max;
    return s;
  }();
  return t.data();
}

float f8q8_scale(uint8_t d) { return f8q8_scale_table()[d]; }

void dequantize_row_f8q8(const void* src, float* dst, int64_t n) {
  const auto* b = static_cast<const BlockF8Q8*>(src);
  const float* scales = f8q8_scale_table();
  for (int64_t i = 0; i < n / kQKF8Q8; ++i) {
    const float d = scales[b[i].d];
    for (int j = 0; j < kQKF8Q8; ++j) dst[i * kQKF8Q8 + j] = static_cast<float>(b[i].qs[j]) * d;
  }
}

size_t quantize_f8q8(const float* src, void* dst, int64_t nrows, int64_t n_per_row,
                     const float* /*imatrix*/) {
  const int64_t nb = nrows * n_per_row / kQKF8Q8;
  auto* y = static_cast<BlockF8Q8*>(dst);
  for (int64_t i = 0; i < nb; ++i) {
    const float* x = src + i * kQKF8Q8;
    float amax = 0.0f;
    for (int j = 0; j < kQKF8Q8; ++j) amax = std::fmax(amax, std::fabs(x[j]));
    // The scale is rounded up to an E4M3 value first and the integers are computed against that
    // rounded scale, so the block decodes with one int8 step of error. mistral.rs rounds the
    // integers against the exact d and then stores a scale up to 6% off, which costs SmolLM2 14x
    // the KLD of q8_0 (docs/accuracy.md); the block layout is the same.
    const float d = amax / 127.0f;
    uint8_t code = fp32_to_e4m3(d * kE4M3Max);
    if (code < 0x7E && e4m3_to_fp32(code) < d * kE4M3Max) ++code;  // codes 0..0x7E increase
    y[i].d = code;
    const float dr = f8q8_scale(code);
    const float id = dr != 0.0f ? 1.0f / dr : 0.0f;
    for (int j = 0; j < kQKF8Q8; ++j) {
      // Rust's `f32::round(..) as i8`: ties away from zero, saturating, NaN -> 0.
      const float r = std::round(x[j] * id);
      y[i].qs[j] = r != r ? 0 : static_cast<int8_t>(std::clamp(r, -128.0f, 127.0f));
    }
  }
  return static_cast<size_t>(nb) * sizeof(BlockF8Q8);
}

bool is_fp8_type(QuantType type) {
  return type == QuantType::kFP8 || type == QuantType::kFP8_B128;
}

Fp8Grid fp8_grid(QuantType type, int64_t n_rows, int64_t n_per_row) {
  check_fp8(type, "fp8 grid");
  if (n_rows <= 0 || n_per_row <= 0) {
    throw InvalidArgument("fp8 grid: bad shape " + std::to_string(n_rows) + " x " +
                          std::to_string(n_per_row));
  }
  if (type == QuantType::kFP8) return {};
  return {(n_rows + kFp8Tile - 1) / kFp8Tile, (n_per_row + kFp8Tile - 1) / kFp8Tile};
}

void fp8_accumulate_amax(QuantType type, const float* rows, int64_t r0, int64_t n,
                         int64_t n_per_row, float* amax) {
  const bool tiled = type == QuantType::kFP8_B128;
  const int64_t cols = tiled ? (n_per_row + kFp8Tile - 1) / kFp8Tile : 1;
  for (int64_t r = 0; r < n; ++r) {
    const float* x = rows + r * n_per_row;
    float* a = amax + (tiled ? ((r0 + r) / kFp8Tile) * cols : 0);
    for (int64_t c0 = 0, t = 0; c0 < n_per_row; c0 += kFp8Tile, ++t) {
      const int64_t c1 = std::min(n_per_row, c0 + kFp8Tile);
      float m = 0.0f;
      for (int64_t c = c0; c < c1; ++c) m = std::fmax(m, std::fabs(x[c]));
      float& slot = a[tiled ? t : 0];
      slot = std::fmax(slot, m);
    }
  }
}

void fp8_quantize_rows(QuantType type, const float* rows, int64_t r0, int64_t n,
                       int64_t n_per_row, const float* amax, uint8_t* dst) {
  const bool tiled = type == QuantType::kFP8_B128;
  const int64_t cols = tiled ? (n_per_row + kFp8Tile - 1) / kFp8Tile : 1;
  for (int64_t r = 0; r < n; ++r) {
    const float* x = rows + r * n_per_row;
    uint8_t* q = dst + r * n_per_row;
    const float* a = amax + (tiled ? ((r0 + r) / kFp8Tile) * cols : 0);
    for (int64_t c0 = 0, t = 0; c0 < n_per_row; c0 += kFp8Tile, ++t) {
      const int64_t c1 = std::min(n_per_row, c0 + kFp8Tile);
      const float f = quant_factor(type, a[tiled ? t : 0]);
      for (int64_t c = c0; c < c1; ++c) q[c] = fp32_to_e4m3(x[c] * f);
    }
  }
}

void fp8_grid_from_amax(QuantType type, const float* amax, float* grid, int64_t count) {
  for (int64_t i = 0; i < count; ++i) {
    grid[i] = type == QuantType::kFP8 ? 1.0f / quant_factor(type, amax[i]) : amax[i] / kE4M3Max;
  }
}

std::vector<float> fp8_read_grid(QuantType type, const uint8_t* data, int64_t n_rows,
                                 int64_t n_per_row) {
  const Fp8Grid g = fp8_grid(type, n_rows, n_per_row);
  std::vector<float> grid(static_cast<size_t>(g.size()));
  std::memcpy(grid.data(), data + n_rows * n_per_row, grid.size() * sizeof(float));
  return grid;
}

void fp8_dequantize_rows(QuantType type, const uint8_t* data, int64_t n_rows, int64_t n_per_row,
                         int64_t r0, int64_t r1, float* dst) {
  const Fp8Grid g = fp8_grid(type, n_rows, n_per_row);
  if (r0 < 0 || r1 > n_rows || r0 > r1) {
    throw InvalidArgument("fp8 dequantize: rows [" + std::to_string(r0) + ", " +
                          std::to_string(r1) + ") outside [0, " + std::to_string(n_rows) + ")");
  }
  const std::array<float, 256>& lut = e4m3_table();
  const uint8_t* grid_bytes = data + n_rows * n_per_row;
  for (int64_t r = r0; r < r1; ++r) {
    const uint8_t* q = data + r * n_per_row;
    float* y = dst + (r - r0) * n_per_row;
    const int64_t gr = g.rows > 1 ? r / kFp8Tile : 0;
    for (int64_t c0 = 0, t = 0; c0 < n_per_row; c0 += kFp8Tile, ++t) {
      float s;
      std::memcpy(&s, grid_bytes + (gr * g.cols + (g.cols > 1 ? t : 0)) * sizeof(float), sizeof(s));
      const int64_t c1 = std::min(n_per_row, c0 + kFp8Tile);
      for (int64_t c = c0; c < c1; ++c) y[c] = lut[q[c]] * s;
    }
  }
}

Fp8UqffScalars fp8_uqff_scalars(const uint8_t* data, int64_t n_rows, int64_t n_per_row) {
  const float s = fp8_read_grid(QuantType::kFP8, data, n_rows, n_per_row)[0];
  return {s, s, 1.0f / s};
}

std::vector<uint8_t> fp8_assemble(QuantType type, std::span<const uint8_t> e4m3,
                                  std::span<const float> grid, int64_t n_rows, int64_t n_per_row) {
  const Fp8Grid g = fp8_grid(type, n_rows, n_per_row);
  const auto n = static_cast<uint64_t>(n_rows) * static_cast<uint64_t>(n_per_row);
  if (e4m3.size() != n || grid.size() != static_cast<size_t>(g.size())) {
    throw InvalidArgument("fp8: " + quant_type_name(type) + " tensor " + std::to_string(n_rows) +
                          " x " + std::to_string(n_per_row) + " needs " + std::to_string(n) +
                          " E4M3 bytes and " + std::to_string(g.size()) + " scales, got " +
                          std::to_string(e4m3.size()) + " and " + std::to_string(grid.size()));
  }
  std::vector<uint8_t> out(e4m3.size() + grid.size_bytes());
  std::memcpy(out.data(), e4m3.data(), e4m3.size());
  std::memcpy(out.data() + e4m3.size(), grid.data(), grid.size_bytes());
  return out;
}

void append_fp8_types(std::vector<TypeTraits>& table) {
  using Q = QuantType;
  // The FP8 rows keep their row functions null: their scales are not row-local (fp8.h).
  table.push_back({Q::kFP8, "fp8", "fp8", 1, 1, true, false, Q::kF32});
  table.push_back({Q::kFP8_B128, "fp8_b128", "fp8_b128", 1, 1, true, false, Q::kF32});
  TypeTraits f8q8{Q::kF8Q8, "f8q8", "f8q8", kQKF8Q8, sizeof(BlockF8Q8), true, false, Q::kQ8_0};
  f8q8.dequantize_row = dequantize_row_f8q8;
  f8q8.quantize = quantize_f8q8;
  table.push_back(f8q8);
}

}  // namespace insitu
