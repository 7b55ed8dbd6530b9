// FP8 E4M3 weights and F8Q8 blocks, the two 8-bit float formats insitu shares with mistral.rs
// (mistralrs-quant/src/fp8/quantize.rs and src/f8q8/mod.rs; ../shared/reference/mistralrs-quant.md
// §3.4, §3.5; checkpoint-formats.md §6).
//
// E4M3 ("e4m3fn"): 1 sign, 4 exponent (bias 7) and 3 mantissa bits; no infinities, S.1111.111 is
// NaN, so 448 (S.1111.110) is the largest finite value and 2^-9 the smallest subnormal.
//
// kF8Q8 -- a block type: 32 elements in 33 bytes (8.25 bpw), struct BlockF8Q8 below.
//   amax = max |x|, d = amax / 127, stored d_fp8 = the smallest E4M3 value >= d * 448 (448 at
//   most), q = round(x / dr) with dr = E4M3 value of d_fp8 / 448, the scale the block decodes
//   with (ties away from zero, clamped to +-127, 0 when dr == 0); x = q * dr. mistral.rs rounds
//   d_fp8 to nearest and q against the exact d, leaving each block's scale up to 6% off; the
//   layout, and so any reader, is the same.
//   Paired with q8_0 activations. mistral.rs flattens the whole tensor into blocks; rows here are
//   multiples of 32, so a tensor's blocks are the same bytes.
//
// kFP8 / kFP8_B128 -- E4M3 weights with f32 dequantization scales that are not row-local. A
// tensor of n_rows x n_per_row elements is stored as
//   [n_rows * n_per_row bytes of E4M3, row-major][grid of f32 scales, little-endian, row-major]
// with w[r][c] = E4M3(q[r][c]) * grid[r / 128][c / 128]. The grid is 1 x 1 for kFP8 (one scale per
// tensor) and ceil(n_rows / 128) x ceil(n_per_row / 128) for kFP8_B128 (DeepSeek-V3's
// weight_scale_inv). The type table gives them one byte per element, so quant_row_size is the
// E4M3 part; quant_tensor_size (quant/quantize.h) adds the grid, and the tensor-level
// quantize_tensor / convert_rows / dequantize_rows handle them (the row-local TypeTraits functions
// are null for these types).
//   kFP8 quantizer (mistral.rs's FP8 ISQ): absmax over the tensor, scale = min(448 / absmax,
//     448) (mistral.rs clamps the quantization scale to the E4M3 range; an all-zero tensor gets
//     448), q = E4M3(w * scale), stored grid value = 1 / scale. mistral.rs evaluates the scale and
//     the products in bf16; here they are f32, so a few bytes may differ by one E4M3 step.
//   kFP8_B128 quantizer (DeepSeek-V3 style): per 128 x 128 tile amax, grid = amax / 448,
//     q = E4M3(w / grid); an all-zero tile stores grid 0 and q 0.
//   Neither uses an importance matrix (the argument is accepted and ignored, as for q8_0).
//
// All functions are pure and thread-safe; none allocate unless stated.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "insitu/quant_type.h"
#include "quant/type_traits.h"

namespace insitu {

inline constexpr float kE4M3Max = 448.0f;
inline constexpr int64_t kFp8Tile = 128;  // rows and columns of a kFP8_B128 scale tile
inline constexpr int kQKF8Q8 = 32;

// float -> E4M3, round to nearest even, saturating to +-448 (infinities too), NaN -> S.1111.111.
// Identical to the float8 crate's F8E4M3::from_f32 (CUDA's __nv_cvt_double_to_fp8 with
// __NV_SATFINITE), which mistral.rs uses.
uint8_t fp32_to_e4m3(float x);

// E4M3 -> float, exact; 0x7F / 0xFF are NaN.
float e4m3_to_fp32(uint8_t b);

#pragma pack(push, 1)
// 33 bytes, 8.25 bpw: x = qs[i] * (e4m3(d) / 448)
struct BlockF8Q8 {
  uint8_t d;  // E4M3 bits of (amax / 127) * 448
  int8_t qs[kQKF8Q8];
};
static_assert(sizeof(BlockF8Q8) == 33);
#pragma pack(pop)

// The dequantization scale of an F8Q8 block: e4m3_to_fp32(d) / 448, as mistral.rs's dq_d.
float f8q8_scale(uint8_t d);
// The same for all 256 codes (kernels read it once per call).
const float* f8q8_scale_table();

// Row functions of kF8Q8 (the TypeTraits contract: n and n_per_row multiples of 32).
void dequantize_row_f8q8(const void* src, float* dst, int64_t n);
size_t quantize_f8q8(const float* src, void* dst, int64_t nrows, int64_t n_per_row,
                     const float* imatrix);

// ---- kFP8 / kFP8_B128 tensors ---------------------------------------------------------------------

// True for kFP8 and kFP8_B128.
bool is_fp8_type(QuantType type);

// Rows and columns of the scale grid of an n_rows x n_per_row tensor (1 x 1 for kFP8). Throws
// InvalidArgument for another type or a non-positive shape.
struct Fp8Grid {
  int64_t rows = 1;
  int64_t cols = 1;
  int64_t size() const { return rows * cols; }
};
Fp8Grid fp8_grid(QuantType type, int64_t n_rows, int64_t n_per_row);

// Pass 1 of quantization: folds rows [r0, r0 + n) (n rows of n_per_row floats at `rows`) into the
// per-tile absolute maxima `amax` (fp8_grid(...).size() values, start at 0). Order-independent.
void fp8_accumulate_amax(QuantType type, const float* rows, int64_t r0, int64_t n,
                         int64_t n_per_row, float* amax);

// Pass 2: writes the E4M3 bytes of rows [r0, r0 + n) to dst (n * n_per_row bytes), using the
// finished maxima of pass 1.
void fp8_quantize_rows(QuantType type, const float* rows, int64_t r0, int64_t n,
                       int64_t n_per_row, const float* amax, uint8_t* dst);

// The stored grid (dequantization scales) from the finished maxima; grid may alias amax.
void fp8_grid_from_amax(QuantType type, const float* amax, float* grid, int64_t count);

// Dequantizes rows [r0, r1) of a whole tensor `data` (n_rows x n_per_row, layout above) into dst.
void fp8_dequantize_rows(QuantType type, const uint8_t* data, int64_t n_rows, int64_t n_per_row,
                         int64_t r0, int64_t r1, float* dst);

// The scale grid of a whole tensor, copied out of `data` (which need not be 4-byte aligned).
std::vector<float> fp8_read_grid(QuantType type, const uint8_t* data, int64_t n_rows,
                                 int64_t n_per_row);

// ---- interchange with mistral.rs's UQFF entries (format Fp8 = 3, F8Q8 = 5) -------------------------
//
// Fp8 entry: `weight` F8_E4M3 [out, in] = our first n_rows * n_per_row bytes unchanged; scalars
// `weight.dequant_w_scale` (= grid[0]), `weight.dequant_x_scale` (mistral.rs writes the same value)
// and `weight.quant_scale` (= 1 / grid[0]). mistral.rs's Fp8 entry is per tensor only; a kFP8_B128
// tensor's grid travels as its own f32 [ceil(out/128), ceil(in/128)] tensor (DeepSeek's
// weight_scale_inv layout) beside the same `weight` bytes.
// F8Q8 entry: `weight` u8 raw 33-byte blocks = our rows unchanged (rows are multiples of 32, so the
// flattened blocks of mistral.rs are the same bytes); `weight.num_blocks` = numel / 32.
struct Fp8UqffScalars {
  float dequant_w_scale = 1.0f;
  float dequant_x_scale = 1.0f;
  float quant_scale = 1.0f;
};
Fp8UqffScalars fp8_uqff_scalars(const uint8_t* data, int64_t n_rows, int64_t n_per_row);

// Builds a kFP8 or kFP8_B128 tensor from its E4M3 bytes (n_rows * n_per_row) and grid
// (fp8_grid(...).size() values: for kFP8 the UQFF dequant_w_scale). Throws InvalidArgument when a
// size does not match the shape, naming both.
std::vector<uint8_t> fp8_assemble(QuantType type, std::span<const uint8_t> e4m3,
                                  std::span<const float> grid, int64_t n_rows, int64_t n_per_row);

// Appends the table rows of kFP8, kFP8_B128 and kF8Q8 (quant/insitu_types.cc).
void append_fp8_types(std::vector<TypeTraits>& table);

}  // namespace insitu
