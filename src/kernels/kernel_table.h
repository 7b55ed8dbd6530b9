// The kernel dispatch table: one row of function pointers per instruction set, bound once.
//
// matmul() looks up the active table once per call and then calls whole-row (vec_dot) or
// whole-tile (panel_gemm) functions, so no ISA or type branch sits inside a dot product.
// Tables are immutable after construction and safe to share between threads. set_active_isa
// switches which table later matmul calls use; it is meant for tests and benchmarks and must not
// race with running matmuls.
//
// Shapes: a weight row is n elements packed in its type's blocks; an activation row is n elements
// packed in the paired activation type (TypeTraits::vec_dot_type: q8_0, q8_1, q8_K, or f32 for
// float weights). n is a multiple of the weight type's block size.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

#include "insitu/quant_type.h"
#include "kernels/cpu_features.h"

namespace insitu {

// Slots: ggml ids map to themselves, insitu ids (kFirstInsituTypeId + k) to kGgmlTypeSlots + k.
inline constexpr int kGgmlTypeSlots = static_cast<int>(kLastGgmlQuantType) + 1;
inline constexpr int kInsituTypeSlots =
    static_cast<int>(static_cast<uint32_t>(kLastQuantType) + 1 - kFirstInsituTypeId);
inline constexpr int kTypeSlots = kGgmlTypeSlots + kInsituTypeSlots;
inline constexpr int kPanelRows = 16;  // weight rows per GEMM panel (one zmm of int32 lanes)

// Dot product of one weight row with one activation row of n elements.
using VecDotFn = float (*)(int64_t n, const void* w, const void* a);

// Quantizes one activation row of n floats into q8_0 / q8_1 / q8_K blocks, producing exactly the
// values of the reference quantizer (ggml's quantize_row_q8_*_ref).
using QuantizeActFn = void (*)(const float* x, void* dst, int64_t n);

// Decodes one weight block into int8 values and per-sub-block scale / min (generic/decode.h has
// the contract); SIMD versions return exactly what the scalar decoders return.
using DecodeBlockFn = void (*)(const void* block, int8_t* v, float* scale, float* min);

// A panel: kPanelRows weight rows decoded into the form the GEMM kernel reads. Every weight type
// is expressed per sub-block of `sub` elements (16 or 32) as
//   w[r][i] = scale[s][r] * v[r][i] + min[s][r]      (s = i / sub, v an int8)
// with v stored shifted to unsigned (v + 128), the operand order vpdpbusd wants. Rows beyond the
// matrix are zero. Owned by the caller (see PanelBuffer in matmul.cc).
struct PackedPanel {
  int sub = 32;
  int64_t n_sub = 0;
  uint8_t* q = nullptr;    // [n_sub][sub/4][kPanelRows][4]: 4 consecutive v + 128 of each row
  float* scale = nullptr;  // [n_sub][kPanelRows]
  float* min = nullptr;    // [n_sub][kPanelRows], or null when the type has no min term
};

// Activations in the GEMM kernel's form, in tiles of kActTile tokens whose bytes interleave so one
// pointer serves the whole tile: per sub-block of `sub` elements,
//   x[t][i] ~= scale[t][s] * q[t][i],  sum[t][s] = scale[t][s] * sum_i q[t][i],
//   comp[t][s] = -128 * sum_i q[t][i]   (undoes the +128 shift of the weights exactly)
// with q (int8) stored as [n_tok / kActTile][n / 4][kActTile][4] and scale / sum / comp as
// [n_tok / kActTile][n_sub][kActTile] (sum is only filled when the weight type has a min term).
inline constexpr int kActTile = 8;
struct PackedActs {
  int sub = 32;
  int64_t n = 0;                 // elements per token row
  int64_t n_sub = 0;             // n / sub
  const int8_t* q = nullptr;
  const int32_t* comp = nullptr;
  const float* scale = nullptr;
  const float* sum = nullptr;    // or null
};

// For t < n_tok (at most kActTile) and r < kPanelRows, the partial product over sub-blocks
// [s0, s1):  p = sum_{s0*sub <= i < s1*sub} w[r][i] * x[tile * kActTile + t][i],
// stored to y[t][r] (accumulate == false) or added to it. y is [n_tok][kPanelRows]. Splitting
// the sum at fixed sub-block boundaries lets callers block over the input dimension.
using PanelGemmFn = void (*)(const PackedPanel& w, const PackedActs& a, int64_t tile, int n_tok,
                             int64_t s0, int64_t s1, bool accumulate, float* y);

struct KernelTable {
  Isa isa = Isa::kGeneric;
  std::array<VecDotFn, kTypeSlots> vec_dot{};          // by weight type id
  std::array<QuantizeActFn, kTypeSlots> quantize_act{};  // by activation type id (8, 9, 15)
  std::array<DecodeBlockFn, kTypeSlots> decode{};        // by weight type id (GEMM panel packing)
  PanelGemmFn panel_gemm = nullptr;  // null: GEMM runs tiles of vec_dot calls instead
};

// The table for one ISA (built on first use). Throws InvalidArgument when the CPU cannot run it.
const KernelTable& kernel_table(Isa isa);

// The table matmul uses: default_isa()'s until set_active_isa changes it.
const KernelTable& active_kernels();
void set_active_isa(Isa isa);

// Fillers, one per translation unit family. Each sets the entries it implements and leaves the
// rest as the previous filler left them (generic first, then avx2, then avx512).
void fill_generic_kernels(KernelTable& t);
void fill_avx2_kernels(KernelTable& t);
void fill_avx512_kernels(KernelTable& t);

inline int type_slot(QuantType t) {
  const auto id = static_cast<uint32_t>(t);
  return id >= kFirstInsituTypeId ? kGgmlTypeSlots + static_cast<int>(id - kFirstInsituTypeId)
                                  : static_cast<int>(id);
}

}  // namespace insitu
